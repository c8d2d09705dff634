"""The paper's DPO rows in miniature on the held-out split (exact evaluator), each with its
difference from the baseline and a paired 95 % bootstrap interval.

    python bench/dpo_results.py --config jobs/configs/dpo_table.yaml [key=value ...] [--n 8] [--per-tag 20]

1. The DPO recipe itself (`jobs/train_dpo.py`, same config and overrides: it resumes, or finds a
   finished run folder done): every round's policy, and its verdicts on all 553 held-out records
   (round-R/eval.json, one image per record, the same keys in every round).
2. One sweep per round's policy on the first `--per-tag` held-out records of each tag, the same path
   keys for all: baseline, ORM@N and PARM@N (<out>/results/round-R).
3. The table (baseline; DPO; iterative DPO; ORM and PARM on the starting and on every later policy),
   each row against the starting policy's baseline on the same records, paired: printed and written
   with the machine and the command to <out>/results/results.md, with the plot rounds.png.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from cotgen.config import load_config
from cotgen.distributed.dpo_config import DPOJobConfig
from cotgen.distributed.pipeline import run_sweep
from cotgen.errors import InputError
from cotgen.machine import describe_machine
from cotgen.report.dpo import Method, compare, dpo_markdown, rounds_plot
from cotgen.report.sweep import sweep_points
from cotgen.sweep.config import SweepConfig
from cotgen.sweep.store import load_rows
from cotgen.train.dpo.rounds import policy, round_dir

RECIPE = Path(__file__).resolve().parents[1] / "jobs" / "train_dpo.py"


def policy_name(r: int, last: int) -> str:
    return "baseline policy" if r == 0 else "DPO (1 round)" if r == 1 else f"iterative DPO ({r} rounds)" if r == last else f"DPO round {r}"


def every_record(cfg: DPOJobConfig, r: int) -> Method:
    """Round r's policy, one image per held-out record, from the recipe's own scoring."""
    scores = json.loads((round_dir(cfg, r) / "eval.json").read_text())
    if "verdicts" not in scores:
        raise InputError(f"{round_dir(cfg, r)}/eval.json: scored before rounds kept every image's verdict; score the round again")
    records = "all 553" if cfg.eval.per_tag is None else f"first {cfg.eval.per_tag} per tag"
    return Method(policy_name(r, cfg.rounds), r, "baseline", records, scores["verdict_tags"], scores["verdicts"])


def verified(cfg: DPOJobConfig, r: int, n: int, per_tag: int) -> list[Method]:
    """Round r's policy on the first `per_tag` held-out records of each tag: baseline, ORM@n, PARM@n."""
    sweep = SweepConfig(
        out=str(Path(cfg.out) / "results" / f"round-{r}"), generator=policy(cfg, r), judge=cfg.judge, per_tag=per_tag,
        seed=cfg.eval.seed, strategies=["baseline", "orm", "parm"], ns=[n], sampling=cfg.sampling, cluster=cfg.cluster,
        strip_prompts=0, bootstrap=0,
    )  # fmt: skip
    run_sweep(sweep, log=lambda line: print(f"results round {r}: {line.strip()}", flush=True))
    points = {p.strategy: p for p in sweep_points(load_rows(sweep.out).to_pandas(), resamples=0)
              if p.n == (1 if p.strategy == "baseline" else n)}  # fmt: skip
    methods = []
    for strategy, label in (("baseline", ""), ("orm", f" + ORM@{n}"), ("parm", f" + PARM@{n}")):
        v = points[strategy].verdicts.sort_values("prompt_index")
        name = policy_name(r, cfg.rounds) + label
        verifier = "baseline" if strategy == "baseline" else points[strategy].name
        methods.append(Method(name, r, verifier, f"first {per_tag} per tag", list(v.tag), [bool(c) for c in v.correct]))
    return methods


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="the DPO job's YAML config")
    parser.add_argument("--n", type=int, default=8, help="candidate paths per prompt for the verifiers (default 8)")
    parser.add_argument("--per-tag", type=int, default=20, help="held-out records per tag for the verifier rows (default 20)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the DPO config")
    args = parser.parse_args(argv)
    start = time.time()
    try:
        if args.n < 2 or args.per_tag < 1:
            raise InputError(f"--n must be at least 2 and --per-tag at least 1, got {args.n} and {args.per_tag}")
        cfg = load_config(DPOJobConfig, args.config, args.overrides)
        cfg.out = str(Path(cfg.out).resolve())
        config = ["--config", args.config] if args.config else []
        trained = subprocess.run([sys.executable, str(RECIPE), *config, *args.overrides], check=False)
        if trained.returncode:
            return trained.returncode
        methods = [every_record(cfg, r) for r in range(cfg.rounds + 1)]
        for r in range(cfg.rounds + 1):
            methods += verified(cfg, r, args.n, args.per_tag)
    except InputError as err:
        print(f"dpo_results: error: {err}", file=sys.stderr)
        return 2
    rows = compare(methods)
    table = dpo_markdown(rows)
    out = Path(cfg.out) / "results"
    command = " ".join(["python bench/dpo_results.py", *sys.argv[1:]])
    labels = "the judge" if cfg.labeller == "judge" else "the exact evaluator (an oracle)"
    text = (f"`{command}` — pairs labelled by {labels}; {time.time() - start:.0f} s for this command (rounds already "
            f"trained are not retrained) on {describe_machine()}\n\n{table}\n")  # fmt: skip
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps([{"name": r.method.name, "records": r.method.records, "overall": r.method.overall,
                                                   "ci": r.ci, "difference": r.difference, "difference_ci": r.difference_ci}
                                                  for r in rows], indent=2) + "\n")  # fmt: skip
    rounds_plot(rows, f"Iterative DPO, pairs labelled by {labels}").save(out / "rounds.png")
    print(table)
    print(f"written: {out / 'results.md'}, {out / 'rounds.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
