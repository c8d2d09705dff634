"""The `cotgen` command line."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from cotgen.errors import InputError
from cotgen.layout import has_prompt_folders
from cotgen.prompts import TAGS, write_records, write_text_atomic
from cotgen.verify.config import STRATEGIES
from cotgen.world.records import SPLITS, evaluation_records, first_per_tag, sample_records, split_records


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _world_sample(args: argparse.Namespace) -> None:
    from cotgen.world.folders import write_scene_folders

    out = Path(args.out)
    if has_prompt_folders(out):
        if not args.overwrite:
            raise InputError(f"{out}: already holds GenEval prompt folders; choose another --out or pass --overwrite")
        for folder in out.iterdir():
            if folder.is_dir() and folder.name.isdigit():
                shutil.rmtree(folder)
    tags = TAGS if args.tag == "all" else (args.tag,)
    records = [r for tag in tags for r in sample_records(tag, args.n, args.split, args.seed)]
    write_scene_folders(out, records, args.seed, args.samples, args.size, progress=True)
    print(f"wrote {len(records)} prompts x {args.samples} images to {out}")


def _world_prompts(args: argparse.Namespace) -> None:
    if args.split == "eval":
        records = evaluation_records()
    else:
        records = [r for tag in TAGS for r in split_records(tag, "train")]
    write_records(args.out, records)
    print(f"wrote {len(records)} {args.split} records to {args.out}")


def _engine(args: argparse.Namespace):
    from transformers.utils import logging as hf_logging

    from cotgen.generate import Sampling, load_engine

    hf_logging.disable_progress_bar()  # the CLI shows its own progress; errors stay one line
    sampling = Sampling(guidance=args.guidance, temperature=args.temperature, top_k=args.top_k, steps=args.steps)
    return load_engine(args.model, sampling)


def _generate(args: argparse.Namespace) -> None:
    from cotgen.commands import generate_with_strips

    if args.strategy:
        return _generate_verified(args)
    if args.judge:
        raise InputError("--judge is used only with --strategy")
    engine, tokenizer = _engine(args)
    written = generate_with_strips(engine, tokenizer, args.prompt, args.n, Path(args.out), args.seed)
    print(f"wrote {len(written)} images and their step strips (*_steps.png) to {args.out}")


def _generate_verified(args: argparse.Namespace) -> None:
    from cotgen.generate import prompt_ids
    from cotgen.judge import load_judge
    from cotgen.judge.provenance import warn_if_mismatched
    from cotgen.verify.config import VerifyConfig
    from cotgen.verify.strategies import Verifier
    from cotgen.verify.trace import describe

    config = VerifyConfig(strategy=args.strategy, n=args.n, max_rounds=args.rounds)
    judge = None if args.strategy == "baseline" else load_judge(args.judge or "embedded")
    if judge is not None:
        warn_if_mismatched(args.judge or "embedded", args.model)
    engine, tokenizer = _engine(args)
    selection = Verifier(engine, judge, lambda text: prompt_ids(tokenizer, text), config).run(args.prompt, args.prompt, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    selection.image.save(out / "selected.png")
    write_text_atomic(out / "trace.json", json.dumps(selection.to_json(), indent=2) + "\n")
    print(describe(selection))
    print(f"wrote {out / 'selected.png'} and {out / 'trace.json'}")


def _evaluate(args: argparse.Namespace) -> None:
    from cotgen.evaluate.folder import evaluate_folder, rows_to_jsonl
    from cotgen.evaluate.summary import format_table

    if args.folder is None:
        what = "to write the generated images to" if args.generate else "to score"
        raise InputError(f"evaluate needs a FOLDER {what}")
    if args.generate:
        from cotgen.commands import generate_and_evaluate

        if args.detector:
            raise InputError("--generate scores the shapes world exactly; --detector is for folders of real images")
        out = Path(args.folder)
        if has_prompt_folders(out):
            raise InputError(f"{out}: already holds GenEval prompt folders; choose a new folder for --generate")
        args.model = args.generate  # the model --generate names, not the sampling options' default
        engine, tokenizer = _engine(args)
        records = evaluation_records() if args.split == "eval" else [r for t in TAGS for r in sample_records(t, 80, "train", args.seed)]
        if args.per_tag:
            records = first_per_tag(records, args.per_tag)
        scorer = args.generate
        rows, summary = generate_and_evaluate(engine, tokenizer, records, args.samples, out, args.seed)
    elif args.detector:
        from cotgen.evaluate.detector import load_detector
        from cotgen.evaluate.detector_folder import detect_folder

        scorer = "detector"
        rows, summary = detect_folder(args.folder, load_detector(args.detector), progress=not args.json)
    else:
        scorer = "exact"
        rows, summary = evaluate_folder(args.folder, progress=not args.json)
    if args.results:
        write_text_atomic(args.results, rows_to_jsonl(rows))
    if args.json:
        print(json.dumps(summary.to_json(), indent=2))
        return
    print(format_table({scorer: summary}))
    if args.generate:
        print(f"images in GenEval's layout: {args.folder}")
    if args.results:
        print(f"per-image results: {args.results}")


def _demo(args: argparse.Namespace) -> None:
    from cotgen.demo import run_demo
    from cotgen.evaluate.summary import format_table

    engine, tokenizer = (None, None) if args.model == "none" else _engine(args)
    summaries = run_demo(args.out, args.per_tag, args.samples, args.seed, engine, tokenizer, progress=True)
    print(format_table(summaries))
    print(f"images and metadata in GenEval's layout: {args.out}/<source>/ (score any of them with `cotgen evaluate`)")


def _report(args: argparse.Namespace) -> None:
    from cotgen.report.markdown import write_report

    path, table = write_report(args.sweep, resamples=args.bootstrap)
    print(table)
    print(f"report: {path}")


def _serve(args: argparse.Namespace) -> int:
    from cotgen.distributed.serving import ClusterLost, run_local
    from cotgen.serving.config import ServeConfig

    strategy = args.strategy or ("baseline" if args.judge == "none" else "parm")
    models = {}
    for item in args.also:
        name, sep, generator = item.partition("=")
        if not sep or not name or not generator:
            raise InputError(f"--also: expected NAME=GENERATOR (e.g. dpo-r2=runs/dpo/round-2/model), got {item!r}")
        models[name] = generator
    config = ServeConfig(generator=args.generator, judge=args.judge, default_strategy=strategy, models=models)
    try:
        run_local(config, args.host, args.port)
    except ClusterLost as err:
        print(f"cotgen: error: {err}", file=sys.stderr)
        return 1
    return 0


def _sampling_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", "--generator", dest="model", default="embedded",
        help="'embedded', a preset (janus-pro-1b, janus-pro-7b), a Janus checkpoint folder or a hub id",
    )  # fmt: skip
    parser.add_argument("--guidance", type=float, help="CFG scale (default: the checkpoint's own)")
    parser.add_argument("--temperature", type=float, default=1.0, help="0 decodes greedily")
    parser.add_argument("--top-k", type=int, default=0, help="0 samples the full distribution")
    parser.add_argument("--steps", type=_positive, default=4, help="checkpoint steps (groups of token rows)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cotgen", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    world = commands.add_parser("world", help="the shapes world: sample prompts and scenes").add_subparsers(
        dest="world_command", required=True
    )
    sample = world.add_parser("sample", help="write rendered scenes and metadata in GenEval's folder layout")
    sample.add_argument("--tag", choices=(*TAGS, "all"), default="all", help="GenEval tag, or all six")
    sample.add_argument("--n", type=_positive, default=8, help="prompts per tag")
    sample.add_argument("--out", required=True, help="output folder")
    sample.add_argument("--split", choices=SPLITS, default="eval", help="which side of the held-out split")
    sample.add_argument("--seed", type=int, default=0, help="seeds both the prompts and the scenes")
    sample.add_argument("--samples", type=_positive, default=1, help="images per prompt")
    sample.add_argument("--size", type=_positive, default=64, help="canvas side in pixels")
    sample.add_argument("--overwrite", action="store_true", help="replace prompt folders already in --out")
    sample.set_defaults(run=_world_sample)

    prompts = world.add_parser("prompts", help="write a split's records as GenEval metadata JSONL")
    prompts.add_argument("--split", choices=SPLITS, default="eval")
    prompts.add_argument("--out", required=True, help="output .jsonl file")
    prompts.set_defaults(run=_world_prompts)

    generate = commands.add_parser("generate", help="generate images of a prompt, with step-by-step strips")
    generate.add_argument("prompt")
    generate.add_argument("--n", type=_positive, default=4, help="images")
    generate.add_argument("--out", required=True, help="output folder")
    generate.add_argument("--seed", type=int, default=0)
    generate.add_argument("--strategy", choices=STRATEGIES, help="verify N candidates and keep one (N = --n)")
    generate.add_argument("--judge", help="with --strategy: 'embedded' (the default), a preset (parm, qwen2.5-vl-7b), or a Qwen2-VL, Qwen2.5-VL or LLaVA-OneVision folder")
    generate.add_argument("--rounds", type=_positive, default=3, help="with --strategy parm++: reflection rounds at most")
    _sampling_arguments(generate)
    generate.set_defaults(run=_generate)

    evaluate = commands.add_parser("evaluate", help="score a folder in GenEval's layout with the exact evaluator")
    evaluate.add_argument("folder", nargs="?", help="folder to score (with --generate: where the images go)")
    evaluate.add_argument("--json", action="store_true", help="print the summary as JSON")
    evaluate.add_argument("--results", help="also write one JSON line per image to this file")
    evaluate.add_argument(
        "--detector", metavar="PATH",
        help="score real images with GenEval's detector (Mask2Former + CLIP): a folder holding mask2former/ and clip/, "
        "or 'geneval' for $COTGEN_MODELS/geneval",
    )  # fmt: skip
    evaluate.add_argument("--generate", metavar="MODEL", help="first generate the split with MODEL into FOLDER")
    evaluate.add_argument("--split", choices=SPLITS, default="eval", help="with --generate: which records")
    evaluate.add_argument("--samples", type=_positive, default=1, help="with --generate: images per record")
    evaluate.add_argument("--per-tag", type=_positive, help="with --generate: only the first N records of each tag")
    evaluate.add_argument("--seed", type=int, default=0)
    _sampling_arguments(evaluate)
    evaluate.set_defaults(run=_evaluate)

    demo = commands.add_parser("demo", help="generate, render, evaluate and tabulate held-out prompts")
    demo.add_argument("--out", default="runs/demo", help="output folder")
    demo.add_argument("--per-tag", type=_positive, default=20, help="held-out prompts per tag")
    demo.add_argument("--samples", type=_positive, default=4, help="images per prompt (GenEval uses 4)")
    demo.add_argument("--seed", type=int, default=0)
    _sampling_arguments(demo)  # --model none: skip the generator column
    demo.set_defaults(run=_demo)

    report = commands.add_parser("report", help="write a sweep's Markdown report: table, curves, Pareto plot, strips")
    report.add_argument("sweep", help="a sweep folder written by jobs/sweep.py")
    report.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the confidence intervals")
    report.set_defaults(run=_report)

    serve = commands.add_parser("serve", help="serve the verified generator over the OpenAI Images API (Ray Serve)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    serve.add_argument("--generator", default="embedded", help="'embedded', a preset (janus-pro-1b) or a Janus checkpoint folder")
    serve.add_argument("--judge", default="embedded", help="'embedded', a preset (parm, qwen2.5-vl-7b), a judge folder, or 'none' (baseline only)")
    serve.add_argument("--also", action="append", default=[], metavar="NAME=GENERATOR",
                       help="another generator on the same endpoint, chosen by `model: NAME` in a request (repeatable)")  # fmt: skip
    serve.add_argument("--strategy", choices=STRATEGIES, help="for requests that name none (default: parm; baseline without a judge)")
    serve.set_defaults(run=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except InputError as err:
        print(f"cotgen: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
