"""The paper's Table 1 in miniature: baseline, ORM, PRM, PARM and PARM++ on the held-out split.

    python bench/verification_table.py [--judge embedded] [--model embedded] [--n 20] [--per-tag 16]
        [--strategies baseline orm prm parm parm++] [--seed 0]

Each strategy picks one image per held-out record from N candidate paths (same seeds for every
strategy, so ORM and PARM judge the same candidates); the exact evaluator scores the picks. Prints the
per-tag table and the image tokens and judge calls spent per prompt.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch
from tqdm import tqdm

from cotgen.evaluate.exact import evaluate_image
from cotgen.evaluate.summary import format_table, summarize
from cotgen.generate import load_engine, prompt_ids
from cotgen.judge.vlm import load_judge
from cotgen.machine import describe_machine
from cotgen.verify.config import STRATEGIES, VerifyConfig
from cotgen.verify.strategies import Verifier
from cotgen.world.records import evaluation_records, first_per_tag


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judge", default="embedded", help="'embedded' or a judge model folder")
    parser.add_argument("--model", default="embedded", help="generator")
    parser.add_argument("--n", type=int, default=20, help="candidate paths per prompt")
    parser.add_argument("--per-tag", type=int, default=16, help="held-out records per tag")
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    engine, tokenizer = load_engine(args.model)
    judge = load_judge(args.judge)
    records = first_per_tag(evaluation_records(), args.per_tag)
    summaries, costs = {}, {}
    for strategy in args.strategies:
        verifier = Verifier(engine, judge, lambda text: prompt_ids(tokenizer, text), VerifyConfig(strategy=strategy, n=args.n))
        verdicts, spent, start = [], defaultdict(float), time.perf_counter()
        for i, record in enumerate(tqdm(records, desc=strategy, unit="prompt")):
            selection = verifier.run(record.prompt, str(i), args.seed)
            verdicts.append((record.tag, evaluate_image(selection.image, record).correct))
            spent["image tokens"] += selection.costs.image_tokens / len(records)
            spent["judge calls"] += selection.costs.judge_calls / len(records)
        spent["seconds"] = (time.perf_counter() - start) / len(records)
        summaries[strategy], costs[strategy] = summarize(verdicts), spent
    print(f"machine: {describe_machine()}; generator {args.model}, judge {args.judge}, N={args.n}, {len(records)} held-out records")
    print(format_table(summaries))
    print(f"{'per prompt':<17}" + "".join(f"{s:>16}" for s in summaries))
    for item in ("image tokens", "judge calls", "seconds"):
        print(f"{item:<17}" + "".join(f"{costs[s][item]:>16.1f}" for s in summaries))


if __name__ == "__main__":
    main()
