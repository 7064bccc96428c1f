"""A benchmark run's episodes at rest: one SQLite file per run directory (RUN/run.sqlite).

    store = Store.open("runs/2026-11-22")       # a directory (run.sqlite inside) or a .sqlite path
    store.add(episode)                          # committed at once: a kill -9 after it loses nothing
    store.done_keys()                           # {(problem_id, assistant, policy, human, seed, context)}
    store.episodes()                            # the Episode records back, transcripts included

The schema lives in evals/migrations.py. WAL with synchronous=FULL: each add is one committed
transaction, durable even across a power cut.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import sqlite_utils

from coach.schema import SchemaError
from evals import migrations
from evals.episode import Episode

FILENAME = "run.sqlite"


class StoreError(Exception):
    """The run store could not be opened or written: one line for a person."""


class Store:
    def __init__(self, db: sqlite_utils.Database, path: Path | None = None) -> None:
        self.db = db
        self.path = path
        self._lock = threading.Lock()  # one connection, shared by threads

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Store":
        """A run directory (created if missing, run.sqlite inside), a *.sqlite file, or ":memory:"."""
        if str(path) == ":memory:":
            conn = sqlite3.connect(":memory:", check_same_thread=False)
            db = sqlite_utils.Database(conn, execute_plugins=False)
            migrations.SCHEMA.migrate(db)
            return cls(db)
        p = Path(path)
        if p.suffix not in (".sqlite", ".db"):
            p.mkdir(parents=True, exist_ok=True)
            p = p / FILENAME
        try:
            conn = sqlite3.connect(p, timeout=10, check_same_thread=False)
            db = sqlite_utils.Database(conn, execute_plugins=False)
            migrations.SCHEMA.check(db)  # before anything is written: another kind of file stays as it was
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            migrations.SCHEMA.migrate(db)
        except SchemaError as exc:
            conn.close()
            raise StoreError(f"run store {p}: {exc}") from None
        except sqlite3.Error as exc:
            raise StoreError(f"run store {p}: {exc}") from exc
        return cls(db, p)

    def close(self) -> None:
        self.db.conn.close()

    def add_run(self, config: dict) -> int:
        """Record a run invocation's resolved config; returns its id."""
        with self._lock, self.db.atomic():
            return self.db["runs"].insert({"created": time.time(), "config": json.dumps(config, sort_keys=True,
                                                                                        default=str)}).last_pk

    def add(self, ep: Episode) -> None:
        """Store a finished episode, committed before returning (an existing key is replaced)."""
        row = {"problem_id": ep.problem_id, "assistant": ep.assistant, "policy": ep.policy,
               "human": ep.human, "seed": ep.seed, "correct": int(ep.correct), "accepted": ep.accepted,
               "suggested": ep.suggested, "tokens_read": ep.tokens_read, "tokens_written": ep.tokens_written,
               "errored": int(ep.errored), "error": ep.error, "verdict": ep.verdict,
               "n_rounds": len(ep.rounds), "seconds": ep.seconds,
               "transcript": json.dumps(ep.to_dict()), "created": time.time(), "context": ep.context}
        with self._lock, self.db.atomic():
            self.db["episodes"].insert(row, replace=True)

    def done_keys(self, include_errored: bool = True) -> set[tuple[str, str, str, str, int, str]]:
        """Keys of the stored episodes (include_errored=False: a rerun retries errored ones)."""
        where = "" if include_errored else " where errored = 0"
        with self._lock:
            return {tuple(r) for r in self.db.execute(
                f"select problem_id, assistant, policy, human, seed, context from episodes{where}").fetchall()}

    def episodes(self) -> list[Episode]:
        with self._lock:
            rows = self.db.execute("select transcript from episodes order by created").fetchall()
        return [Episode.from_dict(json.loads(r[0])) for r in rows]
