"""What an A/B study (tui/ab.py) found: `empower-tui stats --ab [--study ID]`.

Per assistant, over its blocks, the user study's measures from the interaction log (replayed:
tui/replay.py), each a ratio of sums over the blocks:
- shown / min: suggestions shown per minute of editing;
- acceptance: suggestions taken (whole or in part) / shown;
- deleted / acc: characters taken from suggestions and deleted later, per acceptance;
- share: of the code written in its blocks and still in the final files, the part that came
  from its suggestions (what the person typed in those blocks is the rest);
- latency: the median over the suggestions shown.
Then the difference X − Y of each, paired over the pairs of blocks that both ran (a pair is one
block of each, back to back: same task, same hour), with a bootstrap 95% interval over pairs;
and what the person said.
"""

from __future__ import annotations

import bisect
import statistics
from collections import Counter
from dataclasses import dataclass

import numpy as np
import sqlite_utils

from coach.stats import bootstrap_interval
from tui.ab import LABELS, Arm
from tui.metrics import Totals
from tui.replay import ReplayError, replay

MEASURES = ("shown_per_min", "acceptance", "deleted_per_acceptance", "share", "latency_ms")


@dataclass
class _Block(Totals):
    """A block's sums: its suggestions' (tui/metrics.py), and its time and writing."""
    active_s: float = 0.0
    final_written: int = 0  # characters of the final files written in it (by the person or taken)

    def add(self, other: "_Block") -> None:
        for name in ("active_s", "shown", "accepted", "chars_accepted", "chars_deleted",
                     "final_suggestion_chars", "final_written"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latencies += other.latencies

    def measures(self) -> dict[str, float | None]:
        return {
            "shown_per_min": self.shown / (self.active_s / 60) if self.active_s else None,
            "acceptance": _ratio(self.accepted, self.shown),
            "deleted_per_acceptance": _ratio(self.chars_deleted, self.accepted),
            "share": _ratio(self.final_suggestion_chars, self.final_written),
            "latency_ms": statistics.median(self.latencies) if self.latencies else None,
        }


@dataclass(frozen=True)
class ArmResult:
    label: str
    assistant: str  # MODEL@POLICY
    blocks: int
    active_min: float
    shown: int
    accepted: int
    chars_accepted: int
    chars_deleted: int
    measures: dict[str, float | None]


@dataclass(frozen=True)
class PairedDiff:
    measure: str
    n_pairs: int        # pairs where both blocks define it
    diff: float | None  # mean of X − Y over those pairs
    low: float | None   # bootstrap 95% interval (None with fewer than 2 pairs)
    high: float | None


@dataclass(frozen=True)
class Preference:
    choice: str   # X, Y or same
    at: float
    blocks: int   # blocks begun when it was said


@dataclass(frozen=True)
class AbReport:
    study: int
    started_at: float
    arms: list[ArmResult]
    pairs: int          # complete pairs of blocks
    paired: list[PairedDiff]
    preferences: list[Preference]  # in order; the last one is the person's answer
    skipped: list[str]  # sessions whose replay failed, and why

    @property
    def preference(self) -> Preference | None:
        return self.preferences[-1] if self.preferences else None


def studies(db: sqlite_utils.Database) -> list[int]:
    return [r[0] for r in db.execute("SELECT id FROM ab_studies ORDER BY id").fetchall()]


def compute(db: sqlite_utils.Database, study: int | None = None, n_boot: int = 10_000) -> AbReport:
    """The report of `study` (default: the latest). LookupError when there is none."""
    ids = studies(db) if "ab_studies" in db.table_names() else []
    if not ids:
        raise LookupError("no A/B study in this log: empower-tui DIR --ab A B starts one")
    if study is None:
        study = ids[-1]
    elif study not in ids:
        raise LookupError(f"no A/B study {study} (the log has {', '.join(map(str, ids))})")
    started_at, = db.execute("SELECT started_at FROM ab_studies WHERE id = ?", [study]).fetchone()
    arms = {label: Arm(model, policy, eta, fmt) for label, model, policy, eta, fmt in db.execute(
        "SELECT label, model, policy, eta, format FROM ab_arms WHERE study = ?", [study]).fetchall()}
    segments = db.execute("SELECT n, label, started_at, ended_at, active_s FROM ab_blocks WHERE study = ? "
                          "ORDER BY started_at", [study]).fetchall()
    blocks: dict[int, _Block] = {}
    label_of: dict[int, str] = {}
    for n, label, _, _, active in segments:
        blocks.setdefault(n, _Block()).active_s += active or 0.0
        label_of[n] = label
    starts = [s[2] for s in segments]

    def block_at(t: float) -> int | None:
        """The block running at `t`: the last segment begun by then, if it had not ended."""
        i = bisect.bisect_right(starts, t) - 1
        if i < 0:
            return None
        n, _, _, ended, _ = segments[i]
        return n if ended is None or t <= ended else None

    skipped = []
    for (sid,) in db.execute("SELECT id FROM sessions WHERE ab_study = ? ORDER BY id", [study]).fetchall():
        try:
            r = replay(db, sid)
        except ReplayError as e:
            skipped.append(str(e))
            continue
        for s in r.suggestions.values():
            t = blocks.get(s.block)
            if t is None:
                continue
            t.count(s)
        written = Counter(block_at(when) for when in r.inserted_at if when is not None)
        for n, count in written.items():
            if n in blocks:
                blocks[n].final_written += count

    arm_results = []
    for label in LABELS:
        total, mine = _Block(), [n for n in blocks if label_of[n] == label]
        for n in mine:
            total.add(blocks[n])
        arm_results.append(ArmResult(label, arms[label].name, len(mine), total.active_s / 60, total.shown,
                                     total.accepted, total.chars_accepted, total.chars_deleted, total.measures()))
    pairs = [(blocks[2 * k], blocks[2 * k + 1], label_of[2 * k]) for k in range(max(blocks, default=-1) // 2 + 1)
             if 2 * k in blocks and 2 * k + 1 in blocks]
    paired = []
    for m in MEASURES:
        diffs = []
        for first, second, first_label in pairs:
            x, y = (first, second) if first_label == "X" else (second, first)
            vx, vy = x.measures()[m], y.measures()[m]
            if vx is not None and vy is not None:
                diffs.append(vx - vy)
        if not diffs:
            paired.append(PairedDiff(m, 0, None, None, None))
            continue
        d = np.asarray(diffs)
        low, high = bootstrap_interval(d, n_boot) if d.size > 1 else (None, None)
        paired.append(PairedDiff(m, d.size, float(d.mean()), low, high))
    prefs = [Preference(c, at, b) for c, at, b in db.execute(
        "SELECT choice, at, blocks FROM ab_preferences WHERE study = ? ORDER BY at, id", [study]).fetchall()]
    return AbReport(study, started_at, arm_results, len(pairs), paired, prefs, skipped)


def said(p: Preference | None) -> str:
    return "not asked yet (F8 in the editor)" if p is None else (
        "no difference" if p.choice == "same" else f"{p.choice} felt more helpful")


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


