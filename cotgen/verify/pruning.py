"""PARM's pruning rule at a checkpoint and at the end, shared by the verifier and the replay of its runs."""

from __future__ import annotations

from cotgen.verify.trace import PathTrace


def parm_pruned(traces: list[PathTrace], live: list[int], step: int, threshold: float, keep: int) -> dict[int, str]:
    """Which of the `live` paths (trace indices) PARM prunes at checkpoint `step` (before the final
    image), and why. Only paths asked potential by now (first clear at or before `step`) can die: one
    whose potential is below `threshold`, and with `keep`, those beyond the `keep` highest potentials of
    the rest (ties: the earlier path stays). The cap ranks paths within the prompt, so a judge whose
    potential mostly says how hard the prompt is does not prune a hard prompt's every path."""
    asked = [t for t in live if traces[t].clear_at is not None and traces[t].clear_at <= step]
    pruned = {t: "no potential" for t in asked if not traces[t].hopeful(threshold)}
    if keep:
        ranked = sorted((t for t in asked if t not in pruned), key=lambda t: (-traces[t].potential, t))
        pruned.update({t: f"not among the {keep} most hopeful" for t in ranked[keep:]})
    return pruned


def parm_finalists(traces: list[PathTrace], finished: list[int], threshold: float) -> list[int]:
    """Of the paths decoded to the end (trace indices), those PARM ranks by the outcome question: clear
    and hopeful. The others get the reason they are not ("never clear", "no potential")."""
    finalists = []
    for t in finished:
        if traces[t].clear_at is None:
            traces[t].reason = "never clear"
        elif not traces[t].hopeful(threshold):
            traces[t].reason = "no potential"
        else:
            finalists.append(t)
    return finalists
