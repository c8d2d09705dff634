"""Iterative DPO of a Janus generator on Ray Train with DeepSpeed ZeRO.

    python jobs/train_dpo.py --config jobs/configs/dpo_demo.yaml [key=value ...]
    ray job submit --working-dir . -- python jobs/train_dpo.py --config jobs/configs/dpo_demo.yaml

1. Config: load and validate (`cotgen.distributed.dpo_config.DPOJobConfig`); the resolved copy is saved
   as <out>/config.yaml. Rerunning the same command resumes where the last run stopped.
2. Round 0: the starting policy's held-out scores (exact evaluator).
3. Round r = 1..R (`cotgen.distributed.dpo_train`): K samples per training prompt from round r−1's
   policy through the sweep pipeline (judge P(yes) and exact verdict per image) → one "yes" and one
   "no" image per prompt (`cotgen.dpo.pairs`), tokens replayed from their path keys, reference
   log-probs precomputed → a Ray Train TorchTrainer whose workers run DeepSpeed ZeRO on the sigmoid
   DPO loss (`cotgen.dpo.loss`), metrics reported per step → round-r/model (save_pretrained) →
   held-out scores.
4. Report: the held-out overall of every round.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cotgen.config import load_config
from cotgen.distributed.dpo_config import DPOJobConfig
from cotgen.errors import InputError


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML config (defaults apply where it is silent)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. rounds=3 labeller=exact judge=JUDGE_DIR")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(DPOJobConfig, args.config, args.overrides)
        from cotgen.distributed.dpo_train import run_dpo

        start = time.time()
        scores = run_dpo(cfg)
    except InputError as err:
        print(f"train_dpo: error: {err}", file=sys.stderr)
        return 2
    print(f"finished in {time.time() - start:.0f} s")
    for r, summary in enumerate(scores):
        tags = " ".join(f"{t} {s['score']:.3f}" for t, s in summary["tags"].items())
        print(f"round {r}: overall {summary['overall']:.3f}  ({tags})")
    print(f"policy: {Path(cfg.out) / f'round-{len(scores) - 1}' / 'model'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
