"""Test-time scaling sweep: strategies × N over GenEval records, on Ray Data.

    python jobs/sweep.py --config jobs/configs/sweep_demo.yaml [key=value ...]
    ray job submit --working-dir . -- python jobs/sweep.py --config jobs/configs/sweep_demo.yaml

1. Config: load and validate (`cotgen.sweep.config.SweepConfig`); the resolved copy is saved as
   <out>/config.yaml. Rerunning the same command resumes: finished units are not run again.
2. Plan: the records, one pool run at the largest N for orm / prm best-of-N / parm (smaller N are
   read off its first paths), one run per N for parm++ and prm beam, one baseline run.
3. Pipeline (`cotgen.distributed.pipeline`): generator actors (a Ray Data actor pool) call a separate
   pool of judge actors mid-generation; an evaluator stage scores every decoded path; the driver
   writes Parquet rows and PNGs in GenEval's layout, and prints progress.
4. Report: the strategy × tag table is printed and <out>/report/report.md written (`cotgen report`).
"""

from __future__ import annotations

import time

from cotgen.recipe import parse_config, run
from cotgen.sweep.config import SweepConfig


def main(argv: list[str]) -> int:
    cfg = parse_config(SweepConfig, argv, __doc__, "per_tag=4 ns=[1,4,16] cluster.generator_actors=2")
    from cotgen.distributed.pipeline import run_sweep  # after the config is checked: Ray takes seconds to import
    from cotgen.report.markdown import write_report

    start = time.time()
    store = run_sweep(cfg, log=lambda line: print(line, flush=True))  # progress shows up in `ray job logs` as it happens
    print(f"sweep finished in {time.time() - start:.0f} s; writing the report", flush=True)
    report, table = write_report(store.root, resamples=cfg.bootstrap)
    print(table)
    print(f"report: {report}")
    return 0


if __name__ == "__main__":
    run(main, "sweep")
