"""Replaying a session of the interaction log: its buffer, and where every character came from.

From the start text and the inserts and deletes, rebuild the buffer, tracking for every
character which accepted suggestion (if any) put it there: that is what "accepted text later
deleted" and "share of the final file from suggestions" are computed from (tui/metrics.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import sqlite_utils

from tui.log import ABOUT_A_SUGGESTION, Session, events, sessions


class ReplayError(ValueError):
    """A session's events do not rebuild its buffer (events missing, or edited by hand)."""


@dataclass
class Shown:
    """One suggestion shown, and what became of its text."""
    seq: int
    text: str
    model: str | None
    policy: str | None
    latency_ms: float | None
    source: str | None = None
    time: float | None = None
    arm: str | None = None    # in an A/B study (tui/ab.py): its label and block
    block: int | None = None
    accepts: int = 0          # suggestion_accepted events (whole, or a word/line at a time)
    chars_accepted: int = 0   # as the accepted events count them
    chars_deleted: int = 0    # of the text its accepts inserted, how much was deleted later
    chars_final: int = 0      # of that text, how much is in the final buffer
    outcome: str | None = None  # the last of accepted / dismissed / replaced


@dataclass
class Replay:
    session: Session
    text: str                       # the buffer after the last event
    origin: list[int | None]        # per character: the seq of the suggestion it came from
    inserted_at: list[float | None]  # per character: when it was inserted (None: the start text)
    suggestions: dict[int, Shown]   # by the seq of their suggestion_shown
    n_events: int

    @property
    def suggestion_chars(self) -> int:
        return sum(s.chars_final for s in self.suggestions.values())

    @property
    def final_share(self) -> float | None:
        return self.suggestion_chars / len(self.text) if self.text else None


def replay(db: sqlite_utils.Database, session_id: int) -> Replay:
    """Rebuild a session's buffer from its start text and its inserts and deletes, tracking
    which suggestion every character came from. Raises ReplayError when a delete does not
    match the buffer or the result differs from the stored end text."""
    found = sessions(db, session_id)
    if not found:
        raise LookupError(f"no session {session_id}")
    session = found[0]
    text, origin = session.start_text, [None] * len(session.start_text)
    inserted_at: list[float | None] = [None] * len(text)
    shown: dict[int, Shown] = {}
    last_shown = None
    n = 0
    for n, ev in enumerate(events(db, session_id), 1):
        d = ev.data
        if ev.kind == "insert":
            if not 0 <= ev.offset <= len(text):
                raise ReplayError(f"session {session_id}: event {ev.seq} inserts at {ev.offset}, "
                                  f"past the end of the buffer ({len(text)})")
            by = d.get("suggestion", last_shown) if d.get("origin") == "suggestion" else None
            text = text[:ev.offset] + ev.text + text[ev.offset:]
            origin[ev.offset:ev.offset] = [by] * len(ev.text)
            inserted_at[ev.offset:ev.offset] = [ev.time] * len(ev.text)
        elif ev.kind == "delete":
            if text[ev.start:ev.end] != ev.text:
                raise ReplayError(f"session {session_id}: event {ev.seq} deletes {ev.text!r} but "
                                  f"the buffer holds {text[ev.start:ev.end]!r} there")
            for by in origin[ev.start:ev.end]:
                if by in shown:
                    shown[by].chars_deleted += 1
            text = text[:ev.start] + text[ev.end:]
            del origin[ev.start:ev.end]
            del inserted_at[ev.start:ev.end]
        elif ev.kind == "suggestion_shown":
            shown[ev.seq] = Shown(ev.seq, ev.text, d.get("model", session.model),
                                  d.get("policy", session.policy), d.get("latency_ms"),
                                  d.get("source"), ev.time, d.get("ab_arm"), d.get("ab_block"))
            last_shown = ev.seq
        elif ev.kind in ABOUT_A_SUGGESTION:
            s = shown.get(d.get("suggestion", last_shown))
            if s is not None:
                s.outcome = ev.kind.removeprefix("suggestion_")
                if ev.kind == "suggestion_accepted":
                    s.accepts += 1
                    s.chars_accepted += d.get("chars", len(ev.text or ""))
    if session.end_text is not None and text != session.end_text:
        at = next((i for i, (a, b) in enumerate(zip(text, session.end_text)) if a != b),
                  min(len(text), len(session.end_text)))
        raise ReplayError(f"session {session_id}: the replayed buffer differs from the saved "
                          f"end text at character {at}")
    for by, count in Counter(origin).items():
        if by in shown:
            shown[by].chars_final = count
    return Replay(session, text, origin, inserted_at, shown, n)
