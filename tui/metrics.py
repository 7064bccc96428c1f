"""How people used the suggestions, per (model, policy): what `empower-tui stats` prints.

Everything comes from replaying sessions (tui/log.py), so "accepted text later deleted" and
"share of the final file" are counted per character, not guessed from event counts.

Definitions (an "acceptance" is a shown suggestion taken whole or in part, however many
word/line steps that took, so the acceptance rate cannot pass 1):
- acceptance rate: acceptances / suggestions shown;
- chars accepted per acceptance: characters taken from accepted suggestions / acceptances;
- chars deleted per acceptance: of those characters, how many were deleted later / acceptances;
- share of the final file: characters of the final buffers that came from suggestions / all
  characters of those buffers (the starter text included), over the sessions of the group;
- median latency: over the suggestions shown (cache hits included: the person saw them).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import sqlite_utils

from tui.log import sessions
from tui.replay import Replay, ReplayError, Shown, replay


@dataclass(frozen=True)
class GroupMetrics:
    model: str | None
    policy: str | None
    sessions: int
    shown: int
    accepted: int
    chars_accepted: int
    chars_deleted: int
    final_chars: int
    final_suggestion_chars: int
    acceptance_rate: float | None
    chars_accepted_per_acceptance: float | None
    chars_deleted_per_acceptance: float | None
    final_share: float | None
    median_latency_ms: float | None


@dataclass(frozen=True)
class Skipped:
    session: int
    reason: str


@dataclass(frozen=True)
class Stats:
    sessions: list[int]            # the sessions counted
    groups: list[GroupMetrics]
    skipped: list[Skipped] = field(default_factory=list)  # sessions whose replay failed


@dataclass
class Totals:
    """Sums over suggestions shown (also the A/B's per block: tui/ab_report.py)."""
    sessions: set = field(default_factory=set)
    shown: int = 0
    accepted: int = 0
    chars_accepted: int = 0
    chars_deleted: int = 0
    final_chars: int = 0
    final_suggestion_chars: int = 0
    latencies: list = field(default_factory=list)

    def count(self, s: Shown) -> None:
        """One suggestion shown, and what became of it."""
        self.shown += 1
        self.accepted += s.accepts > 0
        self.chars_accepted += s.chars_accepted
        self.chars_deleted += s.chars_deleted
        self.final_suggestion_chars += s.chars_final
        if s.latency_ms is not None:
            self.latencies.append(s.latency_ms)


def compute(db: sqlite_utils.Database, session: int | None = None) -> Stats:
    """Metrics over one session or all of them. A session that does not replay is skipped
    and reported, so one damaged session does not hide the others."""
    found = sessions(db, session)
    if session is not None and not found:
        raise LookupError(f"no session {session}")
    replays, skipped = [], []
    for s in found:
        try:
            replays.append(replay(db, s.id))
        except ReplayError as e:
            skipped.append(Skipped(s.id, str(e)))
    return Stats([r.session.id for r in replays], summarize(replays), skipped)


def summarize(replays: list[Replay]) -> list[GroupMetrics]:
    totals: dict[tuple, Totals] = {}
    for r in replays:
        # A session belongs to its own (model, policy) and to that of every suggestion it
        # showed (the person may switch models mid-session).
        # An A/B session (tui/ab.py) has no assistant of its own: only its suggestions' two.
        keys = {(r.session.model, r.session.policy)} if r.session.ab_study is None else set()
        keys |= {(s.model, s.policy) for s in r.suggestions.values()}
        for key in keys:
            t = totals.setdefault(key, Totals())
            t.sessions.add(r.session.id)
            t.final_chars += len(r.text)
        for s in r.suggestions.values():
            totals[(s.model, s.policy)].count(s)
    return [_group(model, policy, t) for (model, policy), t in
            sorted(totals.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1])))]


def _group(model, policy, t: Totals) -> GroupMetrics:
    return GroupMetrics(
        model, policy, len(t.sessions), t.shown, t.accepted, t.chars_accepted, t.chars_deleted,
        t.final_chars, t.final_suggestion_chars,
        acceptance_rate=_ratio(t.accepted, t.shown),
        chars_accepted_per_acceptance=_ratio(t.chars_accepted, t.accepted),
        chars_deleted_per_acceptance=_ratio(t.chars_deleted, t.accepted),
        final_share=_ratio(t.final_suggestion_chars, t.final_chars),
        median_latency_ms=statistics.median(t.latencies) if t.latencies else None,
    )


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None  # None, not 0: "no suggestions shown" is not "none accepted"
