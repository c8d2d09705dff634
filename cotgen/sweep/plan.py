"""What a sweep runs: its records, and the units of work (one strategy at one N for one prompt)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cotgen.prompts import Record, load_records
from cotgen.sweep.config import SweepConfig
from cotgen.verify.config import VerifyConfig
from cotgen.verify.pool import poolable
from cotgen.world.records import evaluation_records, first_per_tag, tuning_records


@dataclass(frozen=True)
class Run:
    """One strategy at one N over every prompt. A pool run also stands for every smaller N in `ns`."""

    strategy: str
    n: int
    pool: bool

    @property
    def name(self) -> str:
        return f"{self.strategy}@{self.n}"


@dataclass(frozen=True)
class Unit:
    run: Run
    index: int
    """The record's position in the sweep's record list (its prompt id and GenEval folder number)."""

    @property
    def id(self) -> str:
        return f"{self.run.name}/{self.index:05d}"


def sweep_records(cfg: SweepConfig) -> list[Record]:
    if cfg.records in ("heldout", "train"):
        records = evaluation_records() if cfg.records == "heldout" else tuning_records(cfg.seed)
    else:
        records = load_records(cfg.records)
    return first_per_tag(records, cfg.per_tag) if cfg.per_tag else records


def verify_config(cfg: SweepConfig, strategy: str, n: int) -> VerifyConfig:
    return dataclasses.replace(cfg.verify, strategy=strategy, n=n)


def plan_runs(cfg: SweepConfig) -> list[Run]:
    runs = []
    for strategy in cfg.strategies:
        if strategy == "baseline":
            runs.append(Run(strategy, 1, pool=False))
        elif poolable(verify_config(cfg, strategy, 1)):
            runs.append(Run(strategy, max(cfg.ns), pool=True))
        else:
            runs += [Run(strategy, n, pool=False) for n in sorted(set(cfg.direct_ns or cfg.ns))]
    return runs


def strip_run(runs: list[Run]) -> Run | None:
    """The run whose first prompts are also saved step by step: parm's pool (the paper's Figure 2)."""
    pools = [r for r in runs if r.pool]
    return next((r for r in pools if r.strategy == "parm"), pools[0] if pools else None)


def saves_strips(unit: Unit, strips: Run | None, strip_prompts: int) -> bool:
    """Whether a unit also saves its paths step by step: one of the strip run's first `strip_prompts` prompts."""
    return unit.run == strips and unit.index < strip_prompts


def run_cost(run: Run) -> float:
    """A unit's rough cost relative to one decoded path: N paths, parm++ up to 3 rounds of them."""
    return run.n * (3 if run.strategy == "parm++" else 1)


def plan_units(runs: list[Run], count: int) -> list[Unit]:
    """Every unit, the costliest runs first so that no long unit is left for the end."""
    order = sorted(runs, key=lambda r: -run_cost(r))
    return [Unit(run, i) for run in order for i in range(count)]
