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
from cotgen.verify.pruning import parm_finalists, parm_pruned
from cotgen.verify.strategies import choose
from cotgen.verify.trace import Costs, PathTrace


def poolable(config: VerifyConfig) -> bool:
    """Whether the strategy's best-of-n can be read off the first n paths of a larger run: not for
    parm with a cap (`keep`), whose paths compete, so a run at n keeps some that one at N pruned."""
    return config.strategy == "orm" or (config.strategy == "parm" and not config.keep) or (config.strategy == "prm" and not config.beam)


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


def replayed_parm(traces: list[PathTrace], outcome: list[float], threshold: float, keep: int, steps: int) -> list[PathTrace]:
    """A parm run's traces as a run of the same paths with another `potential_threshold` and `keep` would
    have left them. A path's clarity and its one potential question (at its first clear step) depend on
    nothing but its key; only whether it is pruned, and whether its final image is scored, depend on the
    settings. `outcome[i]`: the outcome P(yes) of path i's final image (an orm run's final score for the
    same key); `steps`: checkpoint steps, the last being the final image (a path first clear there is
    finished, not pruned)."""
    out = [replace(t, pruned_at=None, reason=None, final_score=None) for t in traces]
    live = list(range(len(out)))
    for step in range(1, steps):
        for t, reason in parm_pruned(out, live, step, threshold, keep).items():
            out[t].pruned_at, out[t].reason = step, reason
        live = [t for t in live if out[t].pruned_at is None]
    for t in parm_finalists(out, live, threshold):
        out[t].final_score = outcome[t]
    return out
