"""Does the generator correct itself from feedback? PARM++'s second round, measured on its own.

    python bench/corrector.py [--model embedded] [--judge embedded] [--per-tag 16] [--retries 4]

One image per held-out record (sample 0). For every record whose image the exact evaluator rejects,
`--retries` new images (samples 1…) are drawn three ways, with the same path keys, so the three differ
only in what the generator is told:
- resample: the bare prompt again (PARM++'s `resample` corrector);
- judge feedback: the prompt + the judge's reflection on the rejected image (the `feedback` corrector);
- oracle feedback: the prompt + the exact evaluator's reasons (what a perfect judge would say).
Prints the share of retries that the evaluator accepts, per tag and overall (GenEval's mean over tags).
"""

from __future__ import annotations

import argparse
import time

import torch

from cotgen.evaluate.exact import evaluate_image
from cotgen.evaluate.summary import format_table, summarize
from cotgen.generate import load_engine
from cotgen.generate.feedback import corrective_prompt, feedback_from_explanation
from cotgen.generate.pipeline import generate_prompts
from cotgen.judge.prompts import JudgePrompts
from cotgen.judge.vlm import load_judge
from cotgen.machine import describe_machine
from cotgen.world.records import evaluation_records, first_per_tag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="embedded", help="generator")
    parser.add_argument("--judge", default="embedded", help="judge that writes the reflections")
    parser.add_argument("--per-tag", type=int, default=16, help="held-out records per tag")
    parser.add_argument("--retries", type=int, default=4, help="new images per rejected record and way")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    engine, tokenizer = load_engine(args.model)  # at the checkpoint's own guidance
    judge = load_judge(args.judge)
    records = first_per_tag(evaluation_records(), args.per_tag)
    print(f"machine: {describe_machine()}; {len(records)} held-out records", flush=True)
    start = time.perf_counter()
    with torch.no_grad():
        first = {i: image for i, _, image in generate_prompts(engine, tokenizer, [r.prompt for r in records], [0], args.seed)}
    verdicts = {i: evaluate_image(first[i], records[i]) for i in first}
    rejected = [i for i in first if not verdicts[i].correct]
    question = JudgePrompts().reflection
    explanations = judge.explain([first[i] for i in rejected], [question.format(prompt=records[i].prompt) for i in rejected])
    prompts = {
        "resample": {i: records[i].prompt for i in rejected},
        "judge feedback": {i: corrective_prompt(records[i].prompt, feedback_from_explanation(e)) for i, e in zip(rejected, explanations)},
        "oracle feedback": {i: corrective_prompt(records[i].prompt, "; ".join(verdicts[i].reasons)) for i in rejected},
    }
    retries = range(1, args.retries + 1)
    columns = {}
    for way, by_record in prompts.items():
        texts = [by_record[i] for i in rejected]  # the same order for every way: the same path keys
        with torch.no_grad():
            results = [
                (records[rejected[k]].tag, evaluate_image(image, records[rejected[k]]).correct)
                for k, _, image in generate_prompts(engine, tokenizer, texts, retries, args.seed + 1)
            ]
        columns[way] = summarize(results)
        print(f"{way}: {sum(ok for _, ok in results)} of {len(results)} retries accepted (tag mean {columns[way].overall:.3f})", flush=True)
    print(f"first images accepted: {len(records) - len(rejected)} of {len(records)}; retried: {len(rejected)} records × {args.retries}")
    print(f'judge said "no" with reasons on {sum(bool(feedback_from_explanation(e)) for e in explanations)} of {len(rejected)} rejected images')
    print(format_table(columns))
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
