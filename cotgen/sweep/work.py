"""One unit of work as result rows: a strategy's run for one prompt, one row per path; and the verdicts.

Plain Python over the core: the generator actors of `cotgen.distributed` call `run_unit`, its
evaluator stage `evaluate_rows`, and a single-process loop can call both to do the same work without
a cluster.
"""

from __future__ import annotations

from collections.abc import Callable

from cotgen.evaluate.exact import evaluate_image
from cotgen.generate.engine import StepwiseGenerator
from cotgen.generate.strips import step_strip
from cotgen.layout import from_png, png
from cotgen.prompts import Record, parse_line
from cotgen.sweep.plan import Unit
from cotgen.verify.config import VerifyConfig
from cotgen.verify.pool import path_costs, subset_picks
from cotgen.verify.strategies import Judge, Verifier
from cotgen.verify.trace import Selection


def run_unit(
    engine: StepwiseGenerator,
    judge: Judge | None,
    tokenize: Callable[[str], list[int]],
    config: VerifyConfig,
    unit: Unit,
    record: Record,
    seed: int,
    ns: list[int],
    strip: bool = False,
) -> list[dict]:
    """Run `unit` and return its rows: one per path and round, with the decoded images as PNG bytes
    and their image tokens (None for a path pruned before its end).

    A pool run also marks, for each n in `ns` up to its N, the path a run over the first n paths would
    have returned and what that run costs (`chosen_at`, `chosen_tokens`, `chosen_judge_calls`). If
    such a path was pruned (parm with no survivor among the first n), it is decoded here for its
    verdict, as that run would have replayed it (`analysis_only`: not part of this run's cost).
    """
    return run_units(engine, judge, tokenize, config, [unit], [record], seed, ns, [strip])


def run_units(
    engine: StepwiseGenerator,
    judge: Judge | None,
    tokenize: Callable[[str], list[int]],
    config: VerifyConfig,
    units: list[Unit],
    records: list[Record],
    seed: int,
    ns: list[int],
    strips: list[bool],
) -> list[dict]:
    """`run_unit` for several units of one run, batched where the strategy allows (`Verifier.run_many`):
    the same rows as unit by unit."""
    prompts = [r.prompt for r in records]
    selections = Verifier(engine, judge, tokenize, config).run_many(prompts, [str(u.index) for u in units], seed)
    rows = []
    for unit, record, selection, strip in zip(units, records, selections, strips):
        rows += _unit_rows(engine, tokenize, unit, record, selection, seed, ns, strip)
    return rows


def _unit_rows(
    engine: StepwiseGenerator, tokenize: Callable[[str], list[int]], unit: Unit, record: Record, selection: Selection,
    seed: int, ns: list[int], strip: bool,
) -> list[dict]:
    costs = selection.costs
    common = {
        "unit": unit.id,
        "run": unit.run.name,
        "strategy": unit.run.strategy,
        "n": unit.run.n,
        "pool": unit.run.pool,
        "prompt_index": unit.index,
        "tag": record.tag,
        "prompt": record.prompt,
        "record": record.to_line(),
        "seed": seed,
        "run_image_tokens": costs.image_tokens,
        "run_judge_calls": costs.judge_calls,
        "run_seconds": costs.seconds,
    }
    rows = []
    for r, round_ in enumerate(selection.rounds):
        for p, trace in enumerate(round_.traces):
            image = round_.images.get(p)
            rows.append(
                {
                    **common,
                    "round": r,
                    "path": p,
                    "sample": trace.key.sample,
                    "key": trace.key.prompt_id,
                    "step_scores": trace.step_scores,
                    "clear_at": trace.clear_at,
                    "potential": trace.potential,
                    "pruned_at": trace.pruned_at,
                    "reason": trace.reason,
                    "final_score": trace.final_score,
                    "selected": trace.selected,
                    "returned": r == selection.returned and p == round_.chosen,
                    "aligned": round_.aligned,
                    "feedback": round_.feedback,
                    "image": None if image is None else png(image),
                    "tokens": round_.tokens.get(p),
                    "analysis_only": False,
                    "chosen_at": [],
                    "chosen_tokens": [],
                    "chosen_judge_calls": [],
                }
            )
    if unit.run.pool:
        _mark_subsets(engine, tokenize(record.prompt), selection.rounds[0].traces, rows, unit.run.strategy, ns)
    if strip:
        _add_strips(engine, tokenize(record.prompt), selection.rounds[0].traces, rows)
    for row in rows:
        row["unit_rows"] = len(rows)
    return rows


def _mark_subsets(engine: StepwiseGenerator, ids: list[int], traces, rows: list[dict], strategy: str, ns: list[int]) -> None:
    step_rows, grid = engine.step_rows(), engine.grid
    for trace, row in zip(traces, rows):
        own = path_costs(strategy, trace, step_rows, grid)
        row["image_tokens"], row["judge_calls"] = own.image_tokens, own.judge_calls
    for pick in subset_picks(strategy, traces, [n for n in ns if n <= len(traces)], step_rows, grid):
        row = rows[pick.chosen]
        row["chosen_at"].append(pick.n)
        row["chosen_tokens"].append(pick.costs.image_tokens)
        row["chosen_judge_calls"].append(pick.costs.judge_calls)
        if row["image"] is None:
            tokens, images = engine.finish(engine.start([ids], [traces[pick.chosen].key]))
            row["image"], row["tokens"], row["analysis_only"] = png(images[0]), tokens[0].tolist(), True


def _add_strips(engine: StepwiseGenerator, ids: list[int], traces, rows: list[dict]) -> None:
    """Each path's preview after every step (pruned paths too, decoded on for the picture)."""
    state = engine.start([ids] * len(traces), [t.key for t in traces])
    frames = []
    for _ in engine.step_rows():
        engine.step(state)
        frames.append(engine.preview(state))
    for i, row in enumerate(rows[: len(traces)]):
        row["strip"] = png(step_strip([f[i] for f in frames], scale=1))


def evaluate_rows(rows: list[dict]) -> list[dict]:
    """The exact evaluator's verdict and reasons for every row that has an image."""
    for row in rows:
        if row.get("image") is not None:
            evaluation = evaluate_image(from_png(row["image"]), parse_line(row["record"], row["unit"]))
            row["correct"], row["reasons"] = evaluation.correct, list(evaluation.reasons)
        else:
            row["correct"], row["reasons"] = None, []
    return rows
