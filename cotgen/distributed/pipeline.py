"""The sweep on Ray Data: units → generator actor pool (calling the judge pool) → evaluator → store.

    pending units ─► map_batches(GenerateUnits, ActorPoolStrategy)  one unit per block
                  ─► map_batches(evaluate_batch)                    tasks
                  ─► the driver: SweepStore.add / flush              Parquet parts + PNGs

The driver is the only writer, so a unit is written once however often Ray retried it; a rerun of
the same command reads the parts and submits only the units that are not in one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import ray

from cotgen.distributed.actors import GenerateUnits, evaluate_batch, start_judges
from cotgen.errors import InputError
from cotgen.judge.provenance import warn_if_mismatched
from cotgen.models.presets import weights_digest
from cotgen.sweep.config import ROLES, SweepConfig
from cotgen.sweep.plan import Unit, plan_runs, plan_units, strip_run, sweep_records
from cotgen.sweep.progress import Progress
from cotgen.sweep.store import SweepStore


def connect(cfg: SweepConfig) -> None:
    """Join the configured cluster, the one `ray job submit` names in RAY_ADDRESS, or start one here."""
    if ray.is_initialized():
        return
    c = cfg.cluster
    if c.address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=c.address, log_to_driver=False)
        return
    # Logical CPUs for every actor plus the evaluator: the generator and judge take turns, so the
    # actors may reserve more CPUs than the machine has.
    needed = c.generator_actors * c.cpus_per_generator + c.judge_actors * c.cpus_per_judge + 1
    ray.init(address="local", num_cpus=max(os.cpu_count() or 1, int(needed + 0.999)), include_dashboard=False, log_to_driver=False)


def run_sweep(cfg: SweepConfig, log: Callable[[str], None] = print) -> SweepStore:
    """Run every unit of the sweep that is not in `cfg.out` yet; returns the store."""
    cfg = replace(cfg, out=str(Path(cfg.out).resolve()))  # actors may run elsewhere than the driver's cwd
    records = sweep_records(cfg)
    connect(cfg)
    store = SweepStore(cfg.out)
    store.prepare(cfg, records, model_weights(cfg))
    runs = plan_runs(cfg)
    units = plan_units(runs, len(records))
    done = store.done()
    pending = [u for u in units if u.id not in done]
    log(f"sweep {cfg.out}: {len(records)} prompts, runs {', '.join(r.name + (' (pool)' if r.pool else '') for r in runs)}; "
        f"{len(units)} units, {len(units) - len(pending)} already done")
    if not pending:
        return store
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver prints its own
    # the evaluator stage's ~600 MB per task (numpy, PIL) would be reported every 30 s as a memory hazard
    context.issue_detectors_config.high_memory_detector_config.detection_time_interval_s = -1
    judges = start_judges(cfg) if any(u.run.strategy != "baseline" for u in pending) else []
    if judges and (mismatched := warn_if_mismatched(cfg.judge, cfg.generator)):
        log(f"warning: {mismatched}")
    strips = strip_run(runs)
    c = cfg.cluster
    items = [_item(u, records) for u in pending]
    dataset = (
        ray.data.from_items(items, override_num_blocks=len(items))
        .map_batches(
            GenerateUnits,
            batch_size=c.units_per_call,
            compute=ray.data.ActorPoolStrategy(size=c.generator_actors),
            num_cpus=c.cpus_per_generator,
            num_gpus=c.gpus_per_generator,
            resources=c.resources_per_generator or None,
            fn_constructor_kwargs={"cfg": cfg, "judges": judges, "strip_run": strips},
        )
        .map_batches(evaluate_batch, batch_format="pyarrow", batch_size=None, num_cpus=0.25)
    )
    _drain(dataset, store, records, cfg.flush_units, Progress(pending), log)
    for judge in judges:
        ray.kill(judge)
    return store


def model_weights(cfg: SweepConfig) -> dict[str, str]:
    """Each model's weights digest, read where its actors will run: the driver's node may hold no
    model (under `ray job submit` it is the head, and the presets are on the GPU workers)."""
    c, digest = cfg.cluster, ray.remote(weights_digest)
    found = {}
    for role in ROLES:
        task = digest.options(num_cpus=getattr(c, f"cpus_per_{role}"), num_gpus=getattr(c, f"gpus_per_{role}"),
                              resources=getattr(c, f"resources_per_{role}"))  # fmt: skip
        try:
            found[role] = ray.get(task.remote(getattr(cfg, role), role))
        except ray.exceptions.RayTaskError as err:
            if isinstance(err.cause, InputError):
                raise InputError(str(err.cause)) from None
            raise
    return found


def _item(unit: Unit, records) -> dict:
    return {"strategy": unit.run.strategy, "n": unit.run.n, "pool": unit.run.pool, "index": unit.index, "record": records[unit.index].to_line()}


def _drain(dataset, store: SweepStore, records, flush_units: int, progress: Progress, log: Callable[[str], None]) -> None:
    """Collect rows as units finish, write them in parts, and report progress."""
    try:
        for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            completed = store.add(batch.to_pylist())
            if store.ready >= flush_units:
                store.flush(records)
            line = progress.update(completed)
            if line:
                log(line)
    finally:  # an interrupted or failed sweep keeps every unit that finished
        store.flush(records)
