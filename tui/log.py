"""The interaction log: one SQLite file of sessions and events (replaying one: tui/replay.py).

The editor opens it once (`open_log()`), calls `start_session`, then `event(...)` from its
handlers, and `end_session` on quit. Every call is one short INSERT committed on one kept-open
connection: WAL with synchronous=NORMAL makes a commit a write without fsync, so a crash of the
editor loses nothing and an event costs about 60-100 us (tests/test_tui_log.py prints it);
`batch()` groups a burst into one commit (about 15 us an event). A DB that cannot be used
raises `LogUnavailable` (one line); `NullLog` then stands in so the editor runs with logging
off and says why.

Offsets are indices into the buffer as a Python str. The schema lives in tui/migrations.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, NoReturn

import sqlite_utils

from coach.schema import SchemaError
from tui import migrations
from coach.config import data_dir


class LogUnavailable(Exception):
    """The log cannot be used (locked, corrupt, not writable): one line for the status bar."""


def default_path() -> Path:
    """`$EMPOWER_LOG_DB`, else `interactions.db` in the XDG data dir (read at call time)."""
    if os.environ.get("EMPOWER_LOG_DB"):
        return Path(os.environ["EMPOWER_LOG_DB"]).expanduser()
    return data_dir() / "interactions.db"


# --- the records ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Session:
    id: int
    file: str
    model: str | None
    policy: str | None
    eta: float | None
    started_at: float
    ended_at: float | None
    start_text: str
    end_text: str | None
    app_version: str | None = None
    ab_study: int | None = None  # the A/B study it was edited under (tui/ab.py)

    @classmethod
    def from_row(cls, row: dict) -> "Session":
        # Later migrations may add columns this Empower does not know: leave them out.
        return cls(**{f.name: row[f.name] for f in dataclasses.fields(cls) if f.name in row})


@dataclass(frozen=True)
class Event:
    id: int
    session: int
    seq: int
    time: float
    kind: str
    offset: int | None
    start: int | None
    end: int | None
    text: str | None
    data: dict = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: dict) -> "Event":
        row = {f.name: row[f.name] for f in dataclasses.fields(cls) if f.name in row}
        return cls(**{**row, "data": json.loads(row["data"]) if row.get("data") else {}})


@dataclass(frozen=True)
class Kind:
    """How an event kind's fields are stored: some in columns, the rest in `data`."""
    columns: dict[str, str]   # API field -> column
    required: tuple[str, ...]


KINDS = {
    "insert": Kind({"offset": "offset", "text": "text"}, ("offset", "text", "origin")),
    "delete": Kind({"start": "start", "end": "end", "text": "text"}, ("start", "end", "text")),
    # `from` is a Python keyword: the editor writes from_=..., to=...
    "cursor": Kind({"from_": "start", "to": "end"}, ("from_", "to")),
    "suggestion_requested": Kind({"offset": "offset"}, ()),
    "suggestion_shown": Kind({"offset": "offset", "text": "text"}, ("text",)),
    "suggestion_accepted": Kind({"text": "text"}, ("how", "text")),
    "suggestion_dismissed": Kind({}, ()),
    "suggestion_replaced": Kind({}, ()),
    "test_run": Kind({}, ("passed", "n_passed", "n_tests")),
    "save": Kind({}, ("path", "bytes")),
}
ORIGINS = ("typed", "suggestion")
HOWS = ("all", "word", "line")
# Events about a suggestion carry its `suggestion` (the seq of its suggestion_shown); the log
# fills it from the last one shown when the editor does not say.
ABOUT_A_SUGGESTION = {"suggestion_accepted", "suggestion_dismissed", "suggestion_replaced"}


# --- writing -------------------------------------------------------------------------------

@dataclass
class _Open:
    """What the log remembers about a session it writes, so an event costs no query."""
    seq: int
    model: str | None
    policy: str | None
    shown: int | None = None  # seq of the last suggestion_shown


class InteractionLog:
    """The log, open for writing. Thread-safe: a worker (e.g. the test runner) may log too.

    Any call may still raise LogUnavailable later (the disk fills up, another program holds
    the write lock past 200 ms): the editor then swaps in `NullLog(str(error))` and goes on.
    A wrong kind or missing field is a bug in the caller: ValueError.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, timeout: float = 1.0):
        self.path = Path(path) if path is not None else default_path()
        self.reason = ""  # the same attribute as NullLog's: empty means logging is on
        self._lock = threading.Lock()
        self._sessions: dict[int, _Open] = {}
        self._batching = 0  # > 0: inside batch(), commit at its end
        self.db = _open_rw(self.path, timeout)

    # The editor's calls -------------------------------------------------------------------
    def start_session(self, file: str | os.PathLike, model: str | None = None,
                      policy: str | None = None, eta: float | None = None,
                      text: str = "", ab_study: int | None = None) -> int:
        row = {"file": str(file), "model": model, "policy": policy, "eta": eta,
               "started_at": time.time(), "start_text": text, "app_version": _app_version(),
               "ab_study": ab_study}
        with self._lock:
            cur = self._write("INSERT INTO sessions (file, model, policy, eta, started_at, "
                              "start_text, app_version, ab_study) VALUES (:file, :model, :policy, "
                              ":eta, :started_at, :start_text, :app_version, :ab_study)", row)
            self._sessions[cur.lastrowid] = _Open(0, model, policy)
        return cur.lastrowid

    def end_session(self, session: int, text: str | None = None) -> None:
        with self._lock:
            self._write("UPDATE sessions SET ended_at = ?, end_text = ? WHERE id = ?",
                        (time.time(), text, session))
            self._sessions.pop(session, None)

    def event(self, session: int, kind: str, **fields: Any) -> int:
        """Log one event; return its seq (what later events name as `suggestion`)."""
        spec = KINDS.get(kind)
        if spec is None:
            raise ValueError(f"unknown event kind {kind!r}; known: {', '.join(KINDS)}")
        missing = [f for f in spec.required if fields.get(f) is None]
        if missing:
            raise ValueError(f"{kind} event needs {', '.join(missing)}")
        with self._lock:
            state = self._sessions.get(session) or self._resume(session)
            _fill(kind, fields, state)
            row = {"offset": None, "start": None, "end": None, "text": None}
            for name, column in spec.columns.items():
                row[column] = fields.pop(name, None)
            state.seq += 1
            row.update(session=session, seq=state.seq, time=time.time(), kind=kind,
                       data=json.dumps(fields, separators=(",", ":"), default=str) if fields else None)
            self._write('INSERT INTO events (session, seq, time, kind, "offset", start, "end", '
                        'text, data) VALUES (:session, :seq, :time, :kind, :offset, :start, '
                        ':end, :text, :data)', row)
            if kind == "suggestion_shown":
                state.shown = state.seq
        return row["seq"]

    def execute(self, sql: str, params=()) -> sqlite3.Cursor:
        """One statement for another table of the log (the A/B's: tui/ab.py), committed as an
        event is, under the same lock and with the same LogUnavailable."""
        with self._lock:
            return self._write(sql, params)

    def query(self, sql: str, params=()) -> list[tuple]:
        with self._lock:
            try:
                return self.db.conn.execute(sql, params).fetchall()
            except sqlite3.Error as e:
                self._fail(e)

    @contextlib.contextmanager
    def batch(self):
        """Log a burst (a paste split in edits, a reformat) in one commit: a commit is most of
        an event's cost, so this is several times cheaper per event."""
        with self._lock:
            self._batching += 1
        try:
            yield self
        finally:
            with self._lock:
                self._batching -= 1
                if not self._batching:
                    self._commit()

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # Inside ---------------------------------------------------------------------------------
    def _write(self, sql: str, params) -> sqlite3.Cursor:
        try:
            cur = self.db.conn.execute(sql, params)
        except sqlite3.Error as e:  # a lock held past the timeout, a full disk, a file gone
            self._fail(e)
        if not self._batching:
            self._commit()
        return cur

    def _commit(self) -> None:
        try:
            self.db.conn.commit()
        except sqlite3.Error as e:
            self._fail(e)

    def _fail(self, e: sqlite3.Error) -> NoReturn:
        if self.db.conn.in_transaction:
            self.db.conn.rollback()
        raise LogUnavailable(f"interaction log {self.path}: {_why(e)}") from e

    def _resume(self, session: int) -> _Open:
        """A session this object did not start (or one already ended): pick up its numbering."""
        row = self.db.execute("SELECT model, policy, (SELECT max(seq) FROM events WHERE "
                              "session = :id) FROM sessions WHERE id = :id",
                              {"id": session}).fetchone()
        if row is None:
            raise ValueError(f"no session {session} in {self.path}")
        state = self._sessions[session] = _Open(row[2] or 0, row[0], row[1])
        return state


def _fill(kind: str, fields: dict, state: _Open) -> None:
    """Check a kind's values and fill what the log knows better than the editor."""
    if kind == "insert":
        if fields["origin"] not in ORIGINS:
            raise ValueError(f"insert origin must be one of {ORIGINS}, not {fields['origin']!r}")
        if fields["origin"] == "suggestion":
            fields.setdefault("suggestion", state.shown)
            if fields["suggestion"] is None:
                raise ValueError("an insert from a suggestion needs a suggestion shown before it")
    elif kind == "suggestion_shown":
        fields.setdefault("model", state.model)
        fields.setdefault("policy", state.policy)
    elif kind in ABOUT_A_SUGGESTION:
        fields.setdefault("suggestion", state.shown)
        if kind == "suggestion_accepted":
            if fields["how"] not in HOWS:
                raise ValueError(f"accepted how must be one of {HOWS}, not {fields['how']!r}")
            fields.setdefault("chars", len(fields["text"]))


class NullLog:
    """Logging off: the same calls, nothing written. `reason` says why, for the status bar."""

    path = None
    db = None

    def __init__(self, reason: str = "logging is off"):
        self.reason = reason

    def start_session(self, *args, **kwargs) -> int:
        return 0

    def end_session(self, *args, **kwargs) -> None:
        pass

    def event(self, session: int, kind: str, **fields) -> int:
        return 0

    def batch(self):
        return contextlib.nullcontext(self)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def open_log(path: str | os.PathLike | None = None, **kwargs) -> InteractionLog | NullLog:
    """The editor's one call: the log, or a NullLog whose `reason` says why not."""
    try:
        return InteractionLog(path, **kwargs)
    except LogUnavailable as e:
        return NullLog(f"logging off: {e}")


# --- opening -------------------------------------------------------------------------------

def _open_rw(path: Path, timeout: float) -> sqlite_utils.Database:
    conn = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:  # create it private before SQLite does; its -wal and -shm copy this mode
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:  # a log made before, or by hand: it holds what a person typed
            with contextlib.suppress(OSError):
                if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
                    path.chmod(0o600)
        # check_same_thread off: the lock in InteractionLog serializes the threads instead.
        conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False)
        # Garbage fails here, before anything is written.
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        db = sqlite_utils.Database(conn, execute_plugins=False)
        _check_schema(db, path)
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable across a crash of the app
        conn.execute("PRAGMA foreign_keys = ON")
        # A read succeeds under another writer's lock; only taking the write lock tells.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        migrations.SCHEMA.migrate(db)
        # Once open, a write waits at most this long for another editor's commit: a keystroke
        # must never hang on the log.
        conn.execute("PRAGMA busy_timeout = 200")
        return db
    except (sqlite3.Error, OSError) as e:
        if conn is not None:
            conn.close()
        raise LogUnavailable(f"interaction log {path}: {_why(e)}") from e


def open_for_reading(path: str | os.PathLike | None = None, *,
                     timeout: float = 1.0) -> sqlite_utils.Database:
    """An existing log, read-only (for stats and replays): never creates or changes a file,
    except to bring an older schema up to date."""
    path = Path(path) if path is not None else default_path()
    if not path.is_file():
        raise LogUnavailable(f"no interaction log at {path}")
    conn = None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        db = sqlite_utils.Database(conn, execute_plugins=False)
        _check_schema(db, path)
        if not migrations.SCHEMA.holds(db):  # an empty SQLite file
            raise LogUnavailable(f"{path} is not an Empower interaction log")
        if migrations.SCHEMA.needs_migrating(db):  # an older Empower wrote it: upgrade, then read
            conn.close()
            conn = None
            InteractionLog(path).close()
            return open_for_reading(path)
        return db
    except (sqlite3.Error, LogUnavailable) as e:
        if conn is not None:
            conn.close()
        if isinstance(e, LogUnavailable):
            raise
        raise LogUnavailable(f"interaction log {path}: {_why(e)}") from e


def _check_schema(db: sqlite_utils.Database, path: Path) -> None:
    try:
        migrations.SCHEMA.check(db)
    except SchemaError as e:
        raise LogUnavailable(f"interaction log {path}: {e}") from None


def _why(e: Exception) -> str:
    name = getattr(e, "sqlite_errorname", "")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return "locked by another program (database is locked)"
    if name == "SQLITE_NOTADB":
        return "not an SQLite database (corrupt or another kind of file)"
    if name.startswith("SQLITE_CORRUPT"):
        return "corrupt (database disk image is malformed)"
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")) or isinstance(e, OSError):
        return f"not writable ({getattr(e, 'strerror', None) or e})"
    return str(e)


@functools.cache
def _app_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("empower")
    except PackageNotFoundError:
        return None


# --- reading and replaying -----------------------------------------------------------------

def sessions(db: sqlite_utils.Database, session: int | None = None) -> list[Session]:
    where, args = ("id = ?", [session]) if session is not None else (None, None)
    return [Session.from_row(row) for row in db["sessions"].rows_where(where, args, order_by="id")]


def events(db: sqlite_utils.Database, session: int | None = None) -> Iterator[Event]:
    where, args = ("session = ?", [session]) if session is not None else (None, None)
    for row in db["events"].rows_where(where, args, order_by="session, seq"):
        yield Event.from_row(row)
