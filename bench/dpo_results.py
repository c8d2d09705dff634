"""Iterative DPO results on the held-out split (exact evaluator): baseline, DPO, iterative DPO, and
iterative DPO with the ORM and PARM verifiers at N — the paper's DPO rows in miniature.

    python bench/dpo_results.py --config jobs/configs/dpo_demo.yaml [key=value ...] [--n 20] [--per-tag 8]

1. The DPO recipe itself (`jobs/train_dpo.py`, same config and overrides: it resumes, or finds a
   finished run folder done) for its rounds' policies.
2. One sweep per policy on the same held-out records and path keys (<out>/results/<policy>): baseline
   for the starting policy and round 1, baseline + orm@N + parm@N for the last round.
3. The tag × method table, printed and written to <out>/results/results.md with the machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from cotgen.config import load_config
from cotgen.distributed.dpo_config import DPOJobConfig
from cotgen.distributed.pipeline import run_sweep
from cotgen.errors import InputError
from cotgen.evaluate.summary import format_table
from cotgen.machine import describe_machine
from cotgen.report.sweep import sweep_points
from cotgen.sweep.config import SweepConfig
from cotgen.sweep.store import load_rows
from cotgen.train.dpo.rounds import policy

RECIPE = Path(__file__).resolve().parents[1] / "jobs" / "train_dpo.py"


def verified(cfg: DPOJobConfig, r: int, strategies: list[str], n: int, per_tag: int | None) -> dict:
    """GenEval summaries of round r's policy under `strategies` at N = n, keyed by strategy."""
    sweep = SweepConfig(
        out=str(Path(cfg.out) / "results" / f"round-{r}"), generator=policy(cfg, r), judge=cfg.judge,
        per_tag=per_tag, seed=cfg.eval.seed, strategies=strategies, ns=[n], sampling=cfg.sampling,
        cluster=cfg.cluster, strip_prompts=0, bootstrap=0,
    )  # fmt: skip
    run_sweep(sweep, log=lambda line: print(f"results round {r}: {line.strip()}", flush=True))
    points = sweep_points(load_rows(sweep.out).to_pandas(), resamples=0)
    return {p.strategy: p.summary for p in points if p.n == (1 if p.strategy == "baseline" else n)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="the DPO job's YAML config")
    parser.add_argument("--n", type=int, default=20, help="candidate paths per prompt for the verifiers")
    parser.add_argument("--per-tag", type=int, default=None, help="held-out records per tag (default: all 553)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the DPO config")
    args = parser.parse_args(argv)
    start = time.time()
    try:
        cfg = load_config(DPOJobConfig, args.config, args.overrides)
        cfg.out = str(Path(cfg.out).resolve())
        config = ["--config", args.config] if args.config else []
        trained = subprocess.run([sys.executable, str(RECIPE), *config, *args.overrides], check=False)
        if trained.returncode:
            return trained.returncode
        last = cfg.rounds
        columns = {"baseline": verified(cfg, 0, ["baseline"], args.n, args.per_tag)["baseline"]}
        if last > 1:
            columns["DPO"] = verified(cfg, 1, ["baseline"], args.n, args.per_tag)["baseline"]
        final = verified(cfg, last, ["baseline", "orm", "parm"], args.n, args.per_tag)
        name = "iterative DPO" if last > 1 else "DPO"
        columns[name] = final["baseline"]
        columns[f"{name} + ORM@{args.n}"] = final["orm"]
        columns[f"{name} + PARM@{args.n}"] = final["parm"]
    except InputError as err:
        print(f"dpo_results: error: {err}", file=sys.stderr)
        return 2
    table = format_table(columns)
    command = " ".join(["python bench/dpo_results.py", *sys.argv[1:]])
    text = f"`{command}` — {time.time() - start:.0f} s on {describe_machine()}\n\n```\n{table}\n```\n"
    path = Path(cfg.out) / "results" / "results.md"
    path.write_text(text)
    print(table)
    print(f"written: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
