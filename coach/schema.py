"""How Empower's SQLite files get and check their schema: sqlite-utils' `Migrations`, one named set
per kind of file (the interaction log: tui/migrations.py; a benchmark's run store:
evals/migrations.py). Each set records its steps by name in `_sqlite_migrations`; the number of
steps applied is mirrored into `PRAGMA user_version`, so any SQLite tool can read it.

What sqlite-utils leaves to its caller, and this module does once for both files:
- refusing a file of another kind (the set's name tells them apart, where the hand-written runners
  before it recorded both first steps as `m001_initial` in one `_migrations` table and each took
  the other's file for its own);
- refusing a file written by a newer Empower (a step this one does not know);
- adopting a file from before sqlite-utils' migrations (a `_migrations` table, with the tables of
  this kind): its steps are recorded under the set, nothing else is touched.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

import sqlite_utils
from sqlite_utils import Migrations

LEGACY = "_migrations"  # the table of Empower's own runner, until December 2026


class SchemaError(Exception):
    """A file that is not of this kind, or is newer than this Empower: one line for a person."""


@dataclass(frozen=True)
class Schema:
    migrations: Migrations
    what: str                  # for messages: "an Empower interaction log"
    tables: tuple[str, ...]    # the tables its first step makes: how a pre-sqlite-utils file is recognized

    def names(self) -> list[str]:
        """Every step of the set, in order (what an empty file has pending)."""
        return [m.name for m in self.migrations.pending(sqlite_utils.Database(memory=True))]

    def applied(self, db: sqlite_utils.Database) -> list[str]:
        return [m.name for m in self.migrations.applied(db)]

    def version(self, db: sqlite_utils.Database) -> int:
        """How many steps this file has had (0: not of this kind yet)."""
        return len(self.applied(db))

    def _legacy(self, db: sqlite_utils.Database) -> list[str]:
        """The steps a pre-sqlite-utils file of this kind recorded; [] for any other file."""
        tables = set(db.table_names())
        if LEGACY not in tables or not set(self.tables) <= tables or self.applied(db):
            return []
        return [r["name"] for r in db.query(f"select name from {LEGACY} order by rowid")]

    def check(self, db: sqlite_utils.Database) -> None:
        """Raise SchemaError unless `db` is empty, of this kind, or of this kind from before."""
        applied = self.applied(db) or self._legacy(db)
        known = set(self.names())  # once: each call builds an empty in-memory database
        unknown = [n for n in applied if n not in known]
        if unknown:
            raise SchemaError(f"written by a newer Empower (schema step {unknown[0]}); upgrade Empower")
        if applied:
            return
        tables = [t for t in db.table_names() if not t.startswith("sqlite_")]
        if tables:
            others = sorted({r["migration_set"] for r in db.query(
                f"select migration_set from {Migrations.migrations_table}")}) if Migrations.migrations_table in tables else []
            kind = f" (its schema is {others[0]})" if others else ""
            raise SchemaError(f"not {self.what}{kind}")

    def holds(self, db: sqlite_utils.Database) -> bool:
        """Whether `db` is a file of this kind already (of this schema, or from before it)."""
        return bool(self.applied(db) or self._legacy(db))

    def needs_migrating(self, db: sqlite_utils.Database) -> bool:
        return bool(self._legacy(db)) or bool(self.migrations.pending(db))

    def migrate(self, db: sqlite_utils.Database) -> int:
        """Check, adopt a pre-sqlite-utils file, apply the missing steps (each in its own
        transaction, with its record); return the version. Re-running is a no-op. The caller
        holds no transaction open."""
        self.check(db)
        legacy = self._legacy(db)
        if legacy:
            with db.atomic():  # the adoption lands whole or not at all
                self.migrations.ensure_migrations_table(db)
                stamp = str(datetime.datetime.now(datetime.timezone.utc))  # as sqlite-utils writes it
                db[Migrations.migrations_table].insert_all(
                    {"migration_set": self.migrations.name, "name": name, "applied_at": stamp} for name in legacy)
                db[LEGACY].drop()
        self.migrations.apply(db)
        version = self.version(db)
        if db.execute("PRAGMA user_version").fetchone()[0] != version:  # a write only when it moved
            db.execute(f"PRAGMA user_version = {version}")
        return version
