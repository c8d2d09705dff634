"""Judge-training routes side by side (issue 16, item 2): held-out ORM balanced accuracy against
training samples seen, for a tiny Qwen2-VL judge (built by `build_judge` with each route's settings)
trained from scratch on the same data for the same wall-clock budget.

Routes:
  a  direct: the ORM question, cross-entropy on the "yes"/"no" answer token, 64 visual tokens
     (patch 8, no merging); like the recipe, the first 12 % of the budget is its vision stage
     (each visual token learns its cell's object colour and shape);
  b  describe-then-answer, 64 visual tokens: the answer is the exact evaluator's reading of the
     image ("red circle at 1 2, ..." on an 8×8 grid, `cotgen.train.judge.describe`) then
     "answer: yes|no", teacher-forced on the whole answer; tested by P(yes) after the judge's own
     greedy description;
  c  as b with 16 visual tokens (merge 2, the shipped judge's resolution).
Training data, the same stream for every route: fresh training-split renders (half broken, 30 %
degraded) and a cache of the shipped generator's images of training-split records, each image also
asked about two other training records, batches balanced yes/no per tag
(`BalancedSampler`), half from each source. Test: the shipped generator's images of 300 of the 553
held-out records, 2 each, every label from the exact evaluator. "seconds" counts training only
(data included, evaluations not); "samples_seen" counts every training image, route a's vision
stage's too ("vision_samples").

    python bench/judge_routes.py --prepare generated &        # the generator caches, once,
    python bench/judge_routes.py --prepare heldout            # one core each
    python bench/judge_routes.py --route a --minutes 25 --threads 1
    python bench/judge_routes.py --route b --minutes 25 --threads 1
    python bench/judge_routes.py --plot                       # bench/figures/judge_routes.png
    python bench/judge_routes.py --route b --tiny             # smoke test, under a minute

Each evaluation is a line of <out>/<route>.jsonl (and of stdout).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import transformers

from cotgen.evaluate.reader import Reading, read_scene
from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.vlm import VLMJudge
from cotgen.models.presets import weights_digest
from cotgen.prompts import TAGS
from cotgen.report.plot import PALETTE, Series, plot
from cotgen.train.common.schedule import set_lr, warmup_cosine
from cotgen.train.judge.cells import cell_batch
from cotgen.train.judge.config import JudgeModelConfig
from cotgen.train.judge.describe import QUESTION, describe, describe_target, described_p_yes
from cotgen.train.judge.evaluation import judge_p_yes
from cotgen.train.judge.examples import Example, ExampleSet, cached
from cotgen.train.judge.generated import build_generated, build_heldout, heldout_records
from cotgen.train.judge.losses import answer_ids, answer_loss, cell_head, cell_loss, visual_cells
from cotgen.train.judge.metrics import rates
from cotgen.train.judge.model import build_judge
from cotgen.train.judge.reflection import target_loss
from cotgen.train.judge.renders import build_renders
from cotgen.train.judge.sampler import BalancedSampler

FIGURE = Path(__file__).parent / "figures" / "judge_routes.png"
SEED = 0
SWAPS = 2
DEGRADE_RATE = 0.3
GENERATED_SHARE = 0.5
BATCH = 32
LR = 1e-3
WARMUP_STEPS = 100
EVAL_BATCH = 64
GENERATOR_BATCH = 16  # on the shared 2-core CPU: 0.3 s per image (1 thread), against 2 s in batches of 64 (2 threads)


@dataclass(frozen=True)
class Route:
    merge: int
    describe: bool
    vision_share: float
    """Share of the budget spent first on the recipe's vision stage."""


ROUTES = {"a": Route(1, False, 0.12), "b": Route(1, True, 0.0), "c": Route(2, True, 0.0)}
LABELS = {"a": "a direct, 64 tokens", "b": "b describe, 64 tokens", "c": "c describe, 16 tokens"}


@dataclass(frozen=True)
class Scale:
    generated: int
    heldout_records: int
    heldout_samples: int
    chunk: int
    """Render examples made at a time (about three per image)."""


FULL = Scale(generated=1500, heldout_records=300, heldout_samples=2, chunk=768)
TINY = Scale(generated=16, heldout_records=12, heldout_samples=1, chunk=96)


def generator_set(name: str, root: Path, scale: Scale, prompts: JudgePrompts) -> ExampleSet:
    """The shipped generator's images, cached: of training-split records ("generated", with swapped
    questions) or of held-out records ("heldout", the test set)."""
    common = {
        "seed": SEED,
        "prompts": asdict(prompts),
        "generator": "embedded",
        "digest": weights_digest("embedded", "generator"),
    }
    if name == "generated":
        return cached(
            root / "generated", {**common, "n": scale.generated, "swaps": SWAPS},
            lambda folder: build_generated(folder, scale.generated, SEED, SWAPS, "embedded", GENERATOR_BATCH, prompts, True),
        )  # fmt: skip
    records = heldout_records(scale.heldout_records)
    return cached(
        root / "heldout", {**common, "records": len(records), "samples": scale.heldout_samples},
        lambda folder: build_heldout(folder, records, scale.heldout_samples, SEED, "embedded", GENERATOR_BATCH, prompts, True),
    )  # fmt: skip


class Readings:
    """The exact evaluator's reading of each training image, read once (the description target)."""

    def __init__(self):
        self._readings: dict[tuple[str, str], Reading] = {}

    def __call__(self, examples: ExampleSet, path: str) -> Reading:
        key = (str(examples.folder), path)
        if key not in self._readings:
            self._readings[key] = read_scene(examples.image(path))
        return self._readings[key]


def train_loss(
    judge: VLMJudge, route: Route, batch: list[tuple[ExampleSet, Example]], readings: Readings, targets: dict
) -> torch.Tensor:
    if not route.describe:
        return answer_loss(judge, batch, targets)[0]
    images = [s.image(e.image) for s, e in batch]
    questions = [QUESTION.format(prompt=e.prompt) for _, e in batch]
    return target_loss(
        judge, images, questions, [describe_target(readings(s, e.image), e.answer) for s, e in batch]
    )


def evaluate(judge: VLMJudge, route: Route, heldout: ExampleSet, truth: list[str]) -> dict:
    """Held-out ORM balanced accuracy, pooled, tag mean and per tag; for the describing routes also
    the share of greedy descriptions equal to the evaluator's reading."""
    judge.model.eval()
    extra = {}
    if route.describe:
        p_yes, descriptions = [], []
        for start in range(0, len(heldout), EVAL_BATCH):
            chunk = heldout.examples[start : start + EVAL_BATCH]
            p, d = described_p_yes(
                judge, [heldout.image(e.image) for e in chunk], [QUESTION.format(prompt=e.prompt) for e in chunk]
            )
            p_yes += p.tolist()
            descriptions += d
        extra["description_exact"] = float(np.mean([d == t for d, t in zip(descriptions, truth)]))
    else:
        p_yes = judge_p_yes(judge, heldout, EVAL_BATCH)
    result = rates(list(zip(p_yes, heldout.examples)))
    tags = {t: result[t]["balanced"] for t in TAGS if t in result}
    return {"pooled": result["overall"]["balanced"], "tag_mean": result["tag_mean"], "tags": tags, **extra}


def render_stream(folder: Path, prompts: JudgePrompts):
    """Fresh training-split renders (`build_renders`, seeded: every route gets the same stream)."""
    return build_renders(folder, 10**9, SEED, DEGRADE_RATE, SWAPS, prompts)


def run(args: argparse.Namespace, scale: Scale, out: Path) -> None:
    route = ROUTES[args.route]
    prompts = JudgePrompts()
    generated, heldout = (generator_set(name, out / "data", scale, prompts) for name in ("generated", "heldout"))
    truth = [describe(read_scene(heldout.image(e.image))) for e in heldout.examples] if route.describe else []
    spec = JudgeModelConfig(merge_size=route.merge)
    judge = build_judge(spec, prompts, SEED)
    targets = answer_ids(judge)
    model = judge.model
    log_path = out / f"{args.route}.jsonl"
    log_path.write_text("")
    budget = args.minutes * 60
    trained, wall_start = 0.0, time.time()  # training seconds, and wall-clock seconds
    samples, evaluated, vision_samples, losses = 0, 0, 0, []

    def maybe_evaluate(stage: str, now: bool = False) -> None:
        nonlocal evaluated, losses
        if not now and samples < evaluated + args.eval_every:
            return
        evaluated = samples
        line = {
            "route": args.route, "stage": stage, "samples_seen": samples, "seconds": round(trained),
            "wall_seconds": round(time.time() - wall_start), "vision_samples": vision_samples, "train_loss": float(np.mean(losses)) if losses else None,
            **evaluate(judge, route, heldout, truth),
        }  # fmt: skip
        losses = []
        print(json.dumps(line), flush=True)
        with open(log_path, "a") as f:
            f.write(json.dumps(line) + "\n")

    # vision stage (route a only): the recipe's per-token object targets, constant rate
    if route.vision_share:
        head = cell_head(judge)
        params = [*model.model.visual.parameters(), *head.parameters()]
        optimizer = torch.optim.AdamW(params, lr=LR, weight_decay=0.01)
        rng = np.random.default_rng([SEED, 11])
        while trained < route.vision_share * budget:
            tick = time.time()
            model.train()
            loss, _ = cell_loss(judge, head, *cell_batch(BATCH, visual_cells(spec), rng))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            samples += BATCH
            vision_samples += BATCH
            losses.append(loss.item())
            trained += time.time() - tick
            maybe_evaluate("vision")

    # answer stage: warm-up then cosine decay over the rest of the budget
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
    rng = np.random.default_rng([SEED, 7])
    readings = Readings()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "images").mkdir()
        stream = render_stream(folder, prompts)
        stage_start, step, sampler, refresh = trained, 0, None, 0
        while trained < budget:
            tick = time.time()
            if step >= refresh:  # a new chunk of renders, each drawn about once
                renders = ExampleSet(folder, list(itertools.islice(stream, scale.chunk)))
                sampler = BalancedSampler([(renders, 1 - GENERATED_SHARE), (generated, GENERATED_SHARE)], rng)
                refresh = step + int(scale.chunk / (BATCH * (1 - GENERATED_SHARE)))
            progress = (trained - stage_start) / (budget - stage_start)
            set_lr(optimizer, warmup_cosine(LR, step, WARMUP_STEPS, progress))
            model.train()
            loss = train_loss(judge, route, sampler.draw(BATCH), readings, targets)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            samples += BATCH
            losses.append(loss.item())
            trained += time.time() - tick
            maybe_evaluate("answers")
    if evaluated < samples:  # the final state, unless just evaluated
        maybe_evaluate("final", now=True)


def draw(out: Path, figure: Path) -> None:
    """Every route's curves from <out>/<route>.jsonl: pooled solid, tag mean dashed; chance dotted grey."""
    series = []
    for k, name in enumerate(sorted(ROUTES)):
        path = out / f"{name}.jsonl"
        lines = [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []
        if not lines:
            continue
        xs = [line["samples_seen"] for line in lines]
        color = PALETTE[k]
        series.append(Series(f"{LABELS[name]}: pooled", xs, [line["pooled"] for line in lines], color))
        series.append(
            Series(f"{LABELS[name]}: tag mean", xs, [line["tag_mean"] for line in lines], color, dashed=True, radius=3)
        )
    xs = sorted({x for s in series for x in s.xs})
    series.append(Series("chance", [xs[0], xs[-1]], [0.5, 0.5], PALETTE[6], dashed=True, marker=False))
    figure.parent.mkdir(parents=True, exist_ok=True)
    plot(
        series,
        "Judge routes: held-out ORM balanced accuracy",
        "training samples seen",
        "balanced accuracy",
        size=(900, 520),
    ).save(figure)
    print(f"wrote {figure}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--route", choices=sorted(ROUTES))
    parser.add_argument("--minutes", type=float, default=25.0, help="training budget (evaluations not counted)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/judge_routes"))
    parser.add_argument("--eval-every", type=int, default=8192, help="training samples between evaluations")
    parser.add_argument(
        "--prepare", nargs="+", choices=("generated", "heldout"), help="build these generator caches and stop"
    )
    parser.add_argument("--plot", action="store_true", help="draw the routes' curves from <out> and stop")
    parser.add_argument(
        "--tiny",
        action="store_true",
        help="smoke test: tiny caches, logs and plot under <out>/tiny, 15 s, evaluations every 64 samples",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    transformers.utils.logging.disable_progress_bar()
    scale, out, figure = FULL, args.out, FIGURE
    if args.tiny:
        scale, out, args.minutes, args.eval_every = TINY, out / "tiny", 0.25, 64
        figure = out / FIGURE.name
    out.mkdir(parents=True, exist_ok=True)
    if args.plot:
        draw(out, figure)
    elif args.prepare:
        for name in args.prepare:
            generator_set(name, out / "data", scale, JudgePrompts())
    elif args.route:
        run(args, scale, out)
    else:
        parser.error("one of --route, --prepare or --plot")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
