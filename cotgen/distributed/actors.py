"""The actors: a judge pool, and the generator that Ray Data's actor pool runs (calling the judges).

Images cross the actor boundary as uint8 arrays. Judge actors are restarted by Ray when their process
dies and their calls retried (max_restarts / max_task_retries); Ray Data does the same for the
generator actors of its pool. Actors own no policy: they load models and run `cotgen.sweep.work.run_unit`.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import ray
import torch
from PIL import Image

from cotgen.prompts import Record, parse_line
from cotgen.sweep.config import SweepConfig
from cotgen.sweep.plan import Run, Unit, saves_strips, verify_config
from cotgen.sweep.store import to_table
from cotgen.sweep.work import evaluate_rows, run_units


def exit_once(out: Path, name: str) -> None:
    """Fault injection for the tests: kill this process, unless it was done before in this sweep."""
    marker = out / ".faults" / name
    marker.parent.mkdir(parents=True, exist_ok=True)
    try:
        marker.touch(exist_ok=False)
    except FileExistsError:
        return
    os._exit(1)


class JudgeWorker:
    """One judge model answering P(yes) and explanations for any generator actor."""

    def __init__(self, cfg: SweepConfig):
        from cotgen.judge import load_judge

        torch.set_num_threads(cfg.cluster.threads)
        self.judge = load_judge(cfg.judge, device=cfg.cluster.judge_device)
        self.out, self.exit_at, self.calls = Path(cfg.out), cfg.faults.judge_exit_at_call, 0

    def _count(self) -> None:
        self.calls += 1
        if self.calls == self.exit_at:
            exit_once(self.out, "judge")

    def p_yes(self, images: np.ndarray, questions: list[str], history=None, finished=None) -> list[float]:
        self._count()
        return self.judge.p_yes([Image.fromarray(a) for a in images], questions, history, finished).tolist()

    def explain(self, images: np.ndarray, questions: list[str], history=None) -> list[str]:
        self._count()
        return self.judge.explain([Image.fromarray(a) for a in images], questions, history)


def start_judges(cfg: SweepConfig) -> list:
    actor = ray.remote(JudgeWorker).options(
        num_cpus=cfg.cluster.cpus_per_judge, num_gpus=cfg.cluster.gpus_per_judge, resources=cfg.cluster.resources_per_judge,
        max_restarts=-1, max_task_retries=-1,
    )
    return [actor.remote(cfg) for _ in range(cfg.cluster.judge_actors)]


class PoolJudge:
    """The `Judge` protocol over the judge actors: each call goes to the next actor in turn."""

    def __init__(self, handles: list, offset: int = 0):
        self.handles = itertools.cycle(handles[offset % len(handles) :] + handles[: offset % len(handles)])

    def p_yes(self, images, questions, history=None, finished=None) -> torch.Tensor:
        pixels = np.stack([np.asarray(i) for i in images])
        return torch.tensor(ray.get(next(self.handles).p_yes.remote(pixels, list(questions), history, finished)))

    def explain(self, images, questions, history=None) -> list[str]:
        pixels = np.stack([np.asarray(i) for i in images])
        return ray.get(next(self.handles).explain.remote(pixels, list(questions), history))


class GenerateUnits:
    """The callable class of the generator actor pool: a batch of units in, their result rows out."""

    def __init__(self, cfg: SweepConfig, judges: list, strip_run: Run | None):
        from transformers.utils import logging as hf_logging

        from cotgen.generate import load_engine, prompt_ids

        torch.set_num_threads(cfg.cluster.threads)
        hf_logging.disable_progress_bar()
        self.engine, tokenizer = load_engine(cfg.generator, cfg.sampling, cfg.cluster.generator_device)
        self.tokenize = lambda text: prompt_ids(tokenizer, text)
        self.judge = PoolJudge(judges, offset=os.getpid()) if judges else None
        self.cfg, self.strip_run, self.units = cfg, strip_run, 0

    def __call__(self, batch: dict[str, np.ndarray]) -> pa.Table:
        by_run: dict[Run, list[tuple[Unit, Record]]] = {}
        for i in range(len(batch["strategy"])):
            self.units += 1
            if self.units == self.cfg.faults.generator_exit_at_unit:
                exit_once(Path(self.cfg.out), "generator")
            run = Run(str(batch["strategy"][i]), int(batch["n"][i]), bool(batch["pool"][i]))
            by_run.setdefault(run, []).append((Unit(run, int(batch["index"][i])), parse_line(str(batch["record"][i]), "unit")))
        rows = []
        for run, work in by_run.items():
            units, records = [u for u, _ in work], [r for _, r in work]
            strips = [saves_strips(u, self.strip_run, self.cfg.strip_prompts) for u in units]
            config = verify_config(self.cfg, run.strategy, run.n)
            rows += run_units(self.engine, self.judge, self.tokenize, config, units, records, self.cfg.seed, self.cfg.ns, strips)
        return to_table(rows)


def evaluate_batch(batch: pa.Table) -> pa.Table:
    """The evaluator stage: verdicts for every decoded path (a plain Ray Data task, no model)."""
    return to_table(evaluate_rows(batch.to_pylist()))
