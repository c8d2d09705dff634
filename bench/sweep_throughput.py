"""Throughput of the Ray Data sweep against a single-process loop doing the same work.

    python bench/sweep_throughput.py [--judge embedded] [--per-tag 1] [--n 4] [--actors 1x1 2x1 2x2]

The same units (orm and parm pools at N, and baseline, over the first `--per-tag` held-out records of
each tag), the same models and torch threads: first a plain loop in this process
(`cotgen.sweep.in_process`, the same store), then the Ray Data pipeline once per actor layout GxJ (G generator
actors, J judge actors) on one local Ray instance. Every unit is written as it finishes (one
Parquet part each), so the parts' times give the steady-state rate: units after the first over the
time from the first to the last. Wall time also counts loading the models (the loop) and starting
the actors (Ray; Ray itself is started before the clock). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import ray

from cotgen.distributed.pipeline import connect, run_sweep
from cotgen.machine import describe_machine
from cotgen.sweep.config import ClusterConfig, SweepConfig
from cotgen.sweep.in_process import run_in_process
from cotgen.sweep.plan import plan_runs, plan_units, sweep_records


def single_process(cfg: SweepConfig) -> float:
    """The loop: every unit in turn, in this process, into the same kind of store."""
    start = time.perf_counter()
    run_in_process(cfg, log=lambda line: None)
    return time.perf_counter() - start


def steady_rate(out: str) -> float:
    """Units per second between the first and the last unit written."""
    times = sorted(p.stat().st_mtime for p in (Path(out) / "rows").glob("part-*.parquet"))
    return (len(times) - 1) / (times[-1] - times[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judge", default="embedded", help="judge folder ('embedded' once shipped)")
    parser.add_argument("--per-tag", type=int, default=1)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads, per actor and for the loop")
    parser.add_argument("--actors", nargs="+", default=["1x1", "2x1", "2x2"], help="GxJ: generator and judge actors")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sweep_bench_"))
    base = SweepConfig(judge=args.judge, per_tag=args.per_tag, strategies=["baseline", "orm", "parm"], ns=[args.n], strip_prompts=0, flush_units=1, cluster=ClusterConfig(threads=args.threads))
    units = len(plan_units(plan_runs(base), len(sweep_records(base))))
    loop_cfg = SweepConfig(**{**base.__dict__, "out": str(root / "loop")})
    loop, loop_rate = single_process(loop_cfg), steady_rate(loop_cfg.out)
    connect(SweepConfig(cluster=ClusterConfig(generator_actors=2, judge_actors=2)))  # room for the largest layout
    lines = [
        f"machine: {describe_machine()} (shared); {units} units (baseline, orm@{args.n} and parm@{args.n} pools, {units // 3} prompts), {args.threads} torch thread(s) per process",
        "",
        "| executor | wall s | units/s (wall) | steady units/s | steady ratio to the loop | wall ratio |",
        "|---|---|---|---|---|---|",
        f"| single-process loop | {loop:.1f} | {units / loop:.3f} | {loop_rate:.3f} | 1.00 | 1.00 |",
    ]
    print(lines[-1], flush=True)
    for layout in args.actors:
        g, j = (int(x) for x in layout.split("x"))
        cfg = SweepConfig(**{**base.__dict__, "out": str(root / layout), "cluster": ClusterConfig(generator_actors=g, judge_actors=j, threads=args.threads)})
        start = time.perf_counter()
        run_sweep(cfg, log=lambda line: None)
        wall, rate = time.perf_counter() - start, steady_rate(cfg.out)
        lines.append(f"| Ray Data, {g} generator + {j} judge actors | {wall:.1f} | {units / wall:.3f} | {rate:.3f} | {rate / loop_rate:.2f} | {loop / wall:.2f} |")
        print(lines[-1], flush=True)
    ray.shutdown()
    shutil.rmtree(root)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
