"""Progress a person can follow, in a terminal and in a file (empower-finetune, empower-evals).

In a terminal rich draws live bars; written to a file (`empower-finetune DIR > log`) a live
display draws nothing until it ends, so `Milestones` prints a plain line instead at every tenth
of the work and at least once a minute: how far, how long so far, about how long is left.
"""

from __future__ import annotations

import time


def clock(seconds: float) -> str:
    """A duration as a person reads it: 45s, 3m05s, 1h12m."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Pace:
    """Seconds left, from the pace since the first progress reported (what came before it, a
    model's load, an evaluation, is not the work being counted), else from what was planned."""

    def __init__(self, planned: float | None = None):
        self.planned = planned
        self.started = time.perf_counter()
        self.first: tuple[float, float] | None = None  # (done, when) at the first progress

    def remaining(self, done: float, total: float | None) -> float | None:
        now = time.perf_counter()
        if total and done and self.first is None:
            self.first = (done, now)
        if total and self.first is not None and done > self.first[0]:
            return (now - self.first[1]) / (done - self.first[0]) * max(0.0, total - done)
        if self.planned is not None:
            return max(0.0, self.planned - (now - self.started))
        if total and done:  # one report so far: the pace since the start
            return (now - self.started) / done * max(0.0, total - done)
        return None


class Milestones:
    """Lines for a log file: `update(done, total)` prints when a new tenth is reached or
    `every` seconds have passed since the last line; nothing in the first `quiet` seconds (work
    that ends that soon needs no milestones)."""

    def __init__(self, console, what: str, every: float = 60.0, planned: float | None = None, quiet: float = 5.0):
        self.console, self.what, self.every, self.quiet = console, what, every, quiet
        self.pace = Pace(planned)
        self.started = self.pace.started
        self.last_line = self.started
        self.tenth = 0

    def update(self, done: float, total: float | None, detail: str = "", unit: str = "") -> None:
        now = time.perf_counter()
        tenth = int(10 * done / total) if total else 0
        if now - self.started < self.quiet or tenth <= self.tenth and now - self.last_line < self.every:
            return
        self.tenth, self.last_line = max(tenth, self.tenth), now
        self.console.print(self.line(done, total, detail, unit), highlight=False, soft_wrap=True)

    def line(self, done: float, total: float | None, detail: str = "", unit: str = "") -> str:
        elapsed = time.perf_counter() - self.started
        left = self.pace.remaining(done, total)
        count = f"{done:g}/{total:g}{unit}" if total else f"{done:g}{unit}"
        share = f" {100 * done / total:3.0f}%" if total else ""
        eta = f", about {clock(left)} left" if left is not None and done != total else ""
        return f"{self.what}: {count}{share}, {clock(elapsed)}{eta}" + (f"  {detail}" if detail else "")
