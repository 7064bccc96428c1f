"""The interaction log's schema, and the only place it is written down.

Append-only, as simonw/llm does it: each `mNNN_...` function changes the schema once; sqlite-utils'
Migrations records it by name under this file's own set, and coach/schema.py applies the missing
ones in order, refuses another kind of file, and adopts a log from before. Never edit a migration
that has shipped: add the next one.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils import Migrations

from coach.schema import Schema

MIGRATIONS = Migrations("empower-interaction-log")


@MIGRATIONS()
def m001_initial(db: sqlite_utils.Database) -> None:
    # One row per editing session: enough to say what served the suggestions and to replay
    # the buffer from `start_text` (end_text checks the replay).
    db["sessions"].create({
        "id": int,
        "file": str,          # the path as given to the editor
        "model": str,         # the model spec, as typed (the same string everywhere)
        "policy": str,
        "eta": float,         # the threshold η, when the policy has one
        "started_at": float,  # unix seconds
        "ended_at": float,
        "start_text": str,
        "end_text": str,      # NULL until the session ends (a crash leaves it NULL)
        "app_version": str,   # the Empower that wrote the session, so data explains itself
    }, pk="id", not_null={"file", "started_at", "start_text"})
    # One row per thing the person or the assistant did. Offsets index the buffer as a Python
    # str (code points). `offset` is where an insert lands; `start`/`end` a deleted range or a
    # cursor move (from, to). The kind-specific rest is JSON in `data`.
    db["events"].create({
        "id": int,
        "session": int,
        "seq": int,           # 1, 2, ... within the session: the order to replay in
        "time": float,        # unix seconds
        "kind": str,
        "offset": int,
        "start": int,
        "end": int,
        "text": str,
        "data": str,
    }, pk="id", foreign_keys=[("session", "sessions", "id")],
        not_null={"session", "seq", "time", "kind"})
    db["events"].create_index(["session", "seq"], unique=True)



@MIGRATIONS()
def m002_one_policy_name(db: sqlite_utils.Database) -> None:
    # The editor logged the threshold policy as "threshold η=2" while the benchmark's run store
    # says "threshold@2" (coach.policies.policy_name): one spelling, so the two can be joined.
    old, new = "'threshold η=' || '%'", "'threshold@' || substr({col}, {n})"
    n = len("threshold η=") + 1
    db.execute(f"UPDATE sessions SET policy = {new.format(col='policy', n=n)} WHERE policy LIKE {old}")
    value = "json_extract(data, '$.policy')"
    db.execute(f"UPDATE events SET data = json_set(data, '$.policy', {new.format(col=value, n=n)}) "
               f"WHERE kind = 'suggestion_shown' AND json_valid(data) AND {value} LIKE {old}")


@MIGRATIONS()
def m003_ab(db: sqlite_utils.Database) -> None:
    # A blind A/B of two assistants on one person (tui/ab.py). A study is one pair of assistants,
    # known to the person only by their labels; its blocks are the turns they take (a block can
    # be several segments, one per sitting it spans), and the person says which felt more
    # helpful as often as they like. A session edited under a study names it: its suggestions
    # carry their arm and block in `data`.
    db["sessions"].add_column("ab_study", int)
    db["ab_studies"].create({"id": int, "started_at": float, "seed": int}, pk="id")
    db["ab_arms"].create({"study": int, "label": str, "model": str, "policy": str, "eta": float,
                          "format": str}, pk=("study", "label"),
                         foreign_keys=[("study", "ab_studies", "id")])
    db["ab_blocks"].create({"id": int, "study": int, "n": int, "label": str, "started_at": float,
                            "ended_at": float,     # NULL while it runs (or after a crash)
                            "active_s": float,     # editing time in it (pauses capped)
                            "block_s": float},     # the length it was to have
                           pk="id", foreign_keys=[("study", "ab_studies", "id")],
                           not_null={"study", "n", "label", "started_at"})
    db["ab_preferences"].create({"id": int, "study": int, "at": float,
                                 "choice": str,    # a label, or "same"
                                 "blocks": int},   # blocks begun when it was said
                                pk="id", foreign_keys=[("study", "ab_studies", "id")])


SCHEMA = Schema(MIGRATIONS, "an Empower interaction log", ("sessions", "events"))
