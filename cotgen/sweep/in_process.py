"""A sweep run unit by unit in this process, without Ray: the same rows in the same store as the
distributed sweep (`cotgen.distributed.pipeline.run_sweep`), which `bench/chaos.py` checks a drilled
sweep against and `bench/sweep_throughput.py` times the actor pools against."""

from __future__ import annotations

from collections.abc import Callable

import torch

from cotgen.models.presets import weights_digest
from cotgen.sweep.config import ROLES, SweepConfig
from cotgen.sweep.plan import plan_runs, plan_units, saves_strips, strip_run, sweep_records, verify_config
from cotgen.sweep.store import SweepStore
from cotgen.sweep.work import evaluate_rows, run_unit


def run_in_process(cfg: SweepConfig, log: Callable[[str], None] = print) -> SweepStore:
    """Run every unit of the sweep that is not in `cfg.out` yet, in turn, with one generator and one
    judge loaded here; returns the store."""
    from cotgen.generate import load_engine, prompt_ids
    from cotgen.judge import load_judge

    torch.set_num_threads(cfg.cluster.threads)
    records = sweep_records(cfg)
    store = SweepStore(cfg.out)
    store.prepare(cfg, records, {role: weights_digest(getattr(cfg, role), role) for role in ROLES})
    runs = plan_runs(cfg)
    done = store.done()
    pending = [u for u in plan_units(runs, len(records)) if u.id not in done]
    log(f"sweep {cfg.out} in this process: {len(records)} prompts, {len(pending)} units to run")
    engine, tokenizer = load_engine(cfg.generator, cfg.sampling, cfg.cluster.generator_device)
    judge = load_judge(cfg.judge, device=cfg.cluster.judge_device) if any(u.run.strategy != "baseline" for u in pending) else None
    strips = strip_run(runs)
    try:
        for unit in pending:
            config = verify_config(cfg, unit.run.strategy, unit.run.n)
            strip = saves_strips(unit, strips, cfg.strip_prompts)
            rows = run_unit(engine, judge, lambda t: prompt_ids(tokenizer, t), config, unit, records[unit.index], cfg.seed, cfg.ns, strip)
            store.add(evaluate_rows(rows))
            if store.ready >= cfg.flush_units:
                store.flush(records)
    finally:  # an interrupted run keeps every unit that finished, as the distributed one does
        store.flush(records)
    return store
