"""The interaction log's schema, and the only place it is written down.

Append-only, as simonw/llm does it: each `mNNN_...` function changes the schema once and is
recorded by name in `_migrations`; `migrate(db)` applies the missing ones in order. Never edit
a migration that has shipped: add the next one. The schema version is the number of applied
migrations, mirrored into `PRAGMA user_version` so any SQLite tool can read it.
"""

from __future__ import annotations

import time
from typing import Callable

import sqlite_utils

MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = []


def migration(fn: Callable[[sqlite_utils.Database], None]):
    MIGRATIONS.append(fn)
    return fn


@migration
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


def applied(db: sqlite_utils.Database) -> list[str]:
    if "_migrations" not in db.table_names():
        return []
    return [r["name"] for r in db.query("select name from _migrations order by rowid")]


def pending(db: sqlite_utils.Database) -> list[Callable[[sqlite_utils.Database], None]]:
    done = set(applied(db))
    return [fn for fn in MIGRATIONS if fn.__name__ not in done]


def schema_version(db: sqlite_utils.Database) -> int:
    """How many migrations this DB has had (0: not an interaction log yet)."""
    return len(applied(db))


def migrate(db: sqlite_utils.Database) -> int:
    """Apply the missing migrations in order, each in its own transaction; return the version.

    Re-running is a no-op. The caller holds no transaction open (each migration commits).
    """
    if "_migrations" not in db.table_names():
        with db.atomic():
            db["_migrations"].create({"name": str, "applied_at": float}, pk="name")
    for fn in pending(db):
        with db.atomic():  # a migration and its record land together or not at all
            fn(db)
            db["_migrations"].insert({"name": fn.__name__, "applied_at": time.time()})
    version = schema_version(db)
    if db.execute("PRAGMA user_version").fetchone()[0] != version:  # a write only when it moved
        db.execute(f"PRAGMA user_version = {version}")
    return version
