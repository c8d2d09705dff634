"""The sweep driver's progress lines: units done per run, and the time left once it can be estimated."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable

from cotgen.sweep.plan import Unit, run_cost

ESTIMATE_AFTER = 3
"""Units that must finish after the first before time left is estimated."""


class Progress:
    """Counts finished units and says how long the rest will take.

    The first unit to finish also waited for Ray, the actors and their models to start, and the
    costliest units run first: a rate of units per second from the start promised an hour for a
    two-minute sweep. So the clock starts when the first unit finishes, and the rate is of work
    (`run_cost`: paths decoded) rather than of units.
    """

    def __init__(self, units: list[Unit], every_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.cost = {u.id: run_cost(u.run) for u in units}
        self.total, self.cost_left = len(units), float(sum(self.cost.values()))
        self.finished, self.by_run = 0, Counter()
        self.every_s, self.clock = every_s, clock
        self.first: tuple[float, float, int] | None = None  # (time, cost left, units finished) at the first unit
        self.last = -math.inf

    def update(self, units: list[str]) -> str | None:
        """Count finished units (by id); a line to print at most every `every_s` seconds, and at the end."""
        if not units:
            return None
        now = self.clock()
        for unit in units:
            self.cost_left -= self.cost[unit]
            self.finished += 1
            self.by_run[unit.rsplit("/", 1)[0]] += 1
        if self.first is None:
            self.first = (now, self.cost_left, self.finished)
        if now - self.last < self.every_s and self.finished < self.total:
            return None
        self.last = now
        runs = ", ".join(f"{k} {v}" for k, v in sorted(self.by_run.items()))
        return f"  {self.finished}/{self.total} units{self._left(now)} ({runs})"

    def _left(self, now: float) -> str:
        since, cost_left, finished = self.first
        if self.finished == self.total or self.finished - finished < ESTIMATE_AFTER or now <= since:
            return ""
        rate = (cost_left - self.cost_left) / (now - since)
        return f", about {self.cost_left / rate:.0f} s left"
