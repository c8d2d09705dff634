"""Best-of-n for every n from one run at the largest N.

Path i of a prompt has the key (seed, prompt id, i) and its record (step scores, clarity, potential,
pruning, final score) depends on nothing but that key, for orm, prm best-of-N and parm. So a run
over the first n paths would have decoded, asked and picked exactly what `choose` picks among the
first n records of a larger run, at the cost those n paths spent. parm++ (its reflection rounds
depend on earlier choices) and prm beam search (paths compete at every step) cannot be read off a
pool; they are run once per N.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cotgen.verify.config import VerifyConfig
from cotgen.verify.strategies import choose
from cotgen.verify.trace import Costs, PathTrace


def poolable(config: VerifyConfig) -> bool:
    """Whether the strategy's best-of-n can be read off the first n paths of a larger run."""
    return config.strategy in ("orm", "parm") or (config.strategy == "prm" and not config.beam)


def path_costs(strategy: str, trace: PathTrace, step_rows: list[int], grid: int) -> Costs:
    """What one path of a pool run cost: tokens up to where it stopped, the judge calls it took."""
    rows = step_rows[trace.pruned_at - 1] if trace.pruned_at is not None else grid
    # prm's final score folds its step scores; orm and parm ask the outcome question once more.
    outcome = trace.final_score is not None and strategy != "prm"
    return Costs(image_tokens=rows * grid, judge_calls=len(trace.step_scores) + (trace.potential is not None) + outcome)


@dataclass(frozen=True)
class SubsetPick:
    n: int
    chosen: int
    """Index of the chosen path among the pool's traces."""
    replayed: bool
    """The chosen path was pruned (nothing survived), so a run at this n decodes it again."""
    costs: Costs
    """What a run over the first n paths spends (no seconds: those are only measured for whole runs)."""


def subset_picks(strategy: str, traces: list[PathTrace], ns: list[int], step_rows: list[int], grid: int) -> list[SubsetPick]:
    """What a run over the first n paths picks and spends, for each n in `ns` (n ≤ len(traces))."""
    picks = []
    for n in sorted(set(ns)):
        finished = {t for t in range(n) if traces[t].pruned_at is None}
        chosen = choose(traces, range(n), finished)
        costs = Costs()
        for t in range(n):
            costs.add(path_costs(strategy, traces[t], step_rows, grid))
        replayed = chosen not in finished
        costs.image_tokens += grid * grid if replayed else 0
        picks.append(SubsetPick(n, chosen, replayed, costs))
    return picks


def at_potential_threshold(traces: list[PathTrace], outcome: list[float], threshold: float, steps: int) -> list[PathTrace]:
    """A parm pool's traces as a run with another `potential_threshold` would have left them. A path's
    clarity and its one potential question (at its first clear step) do not depend on the threshold;
    only whether it is pruned there and whether its final image is scored do. `outcome[i]`: the outcome
    P(yes) of path i's final image (an orm pool's final score for the same key); `steps`: checkpoint
    steps, the last being the final image (a path first clear there is finished, not pruned)."""
    out = []
    for trace, score in zip(traces, outcome):
        hopeful = trace.hopeful(threshold)
        pruned = not hopeful and trace.clear_at is not None and trace.clear_at < steps
        reason = "never clear" if trace.clear_at is None else None if hopeful else "no potential"
        final = score if trace.clear_at is not None and hopeful else None
        out.append(replace(trace, pruned_at=trace.clear_at if pruned else None, reason=reason, final_score=final))
    return out
