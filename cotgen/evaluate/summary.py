"""GenEval's summary: the mean per tag, and overall = the mean of the tag means."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cotgen.prompts import TAGS


@dataclass(frozen=True)
class TagScore:
    correct: int
    total: int

    @property
    def mean(self) -> float:
        return self.correct / self.total


@dataclass(frozen=True)
class Summary:
    tags: dict[str, TagScore]  # only the tags that were scored, in GenEval's order

    @property
    def overall(self) -> float:
        return sum(s.mean for s in self.tags.values()) / len(self.tags)

    def to_json(self) -> dict:
        return {
            "overall": self.overall,
            "tags": {t: {"score": s.mean, "correct": s.correct, "total": s.total} for t, s in self.tags.items()},
            "images": sum(s.total for s in self.tags.values()),
        }


def summarize(verdicts: Iterable[tuple[str, bool]]) -> Summary:
    """Summarise (tag, correct) pairs, one per image."""
    correct = dict.fromkeys(TAGS, 0)
    total = dict.fromkeys(TAGS, 0)
    for tag, ok in verdicts:
        total[tag] += 1
        correct[tag] += bool(ok)
    tags = {t: TagScore(correct[t], total[t]) for t in TAGS if total[t]}
    if not tags:
        raise ValueError("nothing to summarise: no images were scored")
    return Summary(tags)


def format_table(columns: Mapping[str, Summary]) -> str:
    """A plain-text table: one row per tag plus overall, one column per summary."""
    tags = [t for t in TAGS if any(t in s.tags for s in columns.values())]
    cell_width = max(14, *(len(name) for name in columns))
    header = f"{'tag':<14}" + "".join(f"{name:>{cell_width + 2}}" for name in columns)
    lines = [header, "-" * len(header)]
    for tag in tags:
        cells = []
        for summary in columns.values():
            score = summary.tags.get(tag)
            cells.append(f"{score.mean:.3f} ({score.correct}/{score.total})" if score else "-")
        lines.append(f"{tag:<14}" + "".join(f"{c:>{cell_width + 2}}" for c in cells))
    lines.append("-" * len(header))
    lines.append(f"{'overall':<14}" + "".join(f"{s.overall:>{cell_width + 2}.3f}" for s in columns.values()))
    return "\n".join(lines)
