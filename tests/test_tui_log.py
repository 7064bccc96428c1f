"""The interaction log on real SQLite files: schema, privacy, a scripted session replayed into
metrics by hand, `empower-tui stats` as a real subprocess, and DBs that cannot be used."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlite_utils

from tui import metrics, migrations
from tui.log import InteractionLog, LogUnavailable, NullLog, default_path, events, open_for_reading, open_log
from tui.replay import ReplayError, replay

EXE = str(Path(sys.executable).parent / "empower-tui")


@pytest.fixture(autouse=True)
def private_data_dir(tmp_path, monkeypatch):
    """No test writes to the real user's data dir."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("EMPOWER_LOG_DB", raising=False)


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "logs" / "interactions.db"


# --- schema --------------------------------------------------------------------------------

EXPECTED = {
    "_sqlite_migrations": {"id": "INTEGER", "migration_set": "TEXT", "name": "TEXT", "applied_at": "TEXT"},
    "sessions": {"id": "INTEGER", "file": "TEXT", "model": "TEXT", "policy": "TEXT", "eta": "REAL",
                 "started_at": "REAL", "ended_at": "REAL", "start_text": "TEXT",
                 "end_text": "TEXT", "app_version": "TEXT", "ab_study": "INTEGER"},
    "events": {"id": "INTEGER", "session": "INTEGER", "seq": "INTEGER", "time": "REAL",
               "kind": "TEXT", "offset": "INTEGER", "start": "INTEGER", "end": "INTEGER",
               "text": "TEXT", "data": "TEXT"},
    # the A/B (tui/ab.py)
    "ab_studies": {"id": "INTEGER", "started_at": "REAL", "seed": "INTEGER"},
    "ab_arms": {"study": "INTEGER", "label": "TEXT", "model": "TEXT", "policy": "TEXT", "eta": "REAL",
                "format": "TEXT"},
    "ab_blocks": {"id": "INTEGER", "study": "INTEGER", "n": "INTEGER", "label": "TEXT", "started_at": "REAL",
                  "ended_at": "REAL", "active_s": "REAL", "block_s": "REAL"},
    "ab_preferences": {"id": "INTEGER", "study": "INTEGER", "at": "REAL", "choice": "TEXT", "blocks": "INTEGER"},
}


def columns(db):
    return {t: {c.name: c.type for c in db[t].columns} for t in db.table_names()}


def test_migrations_create_the_schema_once(db_path):
    memory = sqlite_utils.Database(memory=True)
    steps = len(migrations.SCHEMA.names())
    assert migrations.SCHEMA.migrate(memory) == steps == migrations.SCHEMA.version(memory) >= 1
    assert columns(memory) == EXPECTED
    assert memory["events"].foreign_keys[0].other_table == "sessions"
    assert any(i.unique and i.columns == ["session", "seq"] for i in memory["events"].indexes)

    with InteractionLog(db_path) as log:
        assert columns(log.db) == EXPECTED  # the file gets exactly what memory got
        before = list(log.db["_sqlite_migrations"].rows)
    with InteractionLog(db_path) as log:  # opening again applies nothing
        assert list(log.db["_sqlite_migrations"].rows) == before
        assert migrations.SCHEMA.migrate(log.db) == steps
        assert list(log.db["_sqlite_migrations"].rows) == before
        assert log.db.execute("PRAGMA user_version").fetchone()[0] == steps


def test_the_file_is_private_and_in_wal_mode(db_path):
    with InteractionLog(db_path) as log:
        s = log.start_session("a.py", "m", "p", 0.5, "")
        log.event(s, "insert", offset=0, text="x", origin="typed")
        files = sorted(p.name for p in db_path.parent.iterdir())
        assert files == ["interactions.db", "interactions.db-shm", "interactions.db-wal"]
        for name in files:  # SQLite gives -wal and -shm the mode of the DB file
            assert (db_path.parent / name).stat().st_mode & 0o777 == 0o600, name
        other = sqlite3.connect(db_path)
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("SELECT count(*) FROM events").fetchone()[0] == 1  # committed
        other.close()


def test_where_the_log_lives(tmp_path, monkeypatch):
    assert default_path() == tmp_path / "xdg" / "empower" / "interactions.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_path() == Path.home() / ".local" / "share" / "empower" / "interactions.db"
    monkeypatch.setenv("EMPOWER_LOG_DB", str(tmp_path / "env.db"))
    assert default_path() == tmp_path / "env.db"
    with InteractionLog() as log:
        assert log.path == tmp_path / "env.db"
    with InteractionLog(tmp_path / "explicit.db") as log:  # an explicit path wins
        assert log.path == tmp_path / "explicit.db"


# --- a scripted session --------------------------------------------------------------------

START = "# lava\n"
A = "    return x + 1\n"   # accepted whole, then " + 1" deleted
B = "    return y * 2\n"   # accepted one word ("    return"), the rest typed differently
C = "def h():\n"           # dismissed
FINAL = "# lava\ndef f(x):\n    return x\ndef g(y):\n    return y\n"


def type_text(log, s, offset, text):
    for i, ch in enumerate(text):
        log.event(s, "insert", offset=offset + i, text=ch, origin="typed")
    return offset + len(text)


def scripted_session(log, model="tiny", policy="threshold"):
    s = log.start_session("problems/lava.py", model, policy, 0.5, START)
    at = type_text(log, s, len(START), "def f(x):\n")
    log.event(s, "suggestion_requested", offset=at)
    a = log.event(s, "suggestion_shown", offset=at, text=A, n_tokens=6, latency_ms=100.0,
                  source="model")
    log.event(s, "suggestion_accepted", how="all", text=A)
    log.event(s, "insert", offset=at, text=A, origin="suggestion")
    at = type_text(log, s, at + len(A), "def g(y):\n")
    log.event(s, "suggestion_requested", offset=at)
    log.event(s, "suggestion_shown", offset=at, text=B, n_tokens=6, latency_ms=300.0, source="model")
    log.event(s, "suggestion_accepted", how="word", text="    return")
    log.event(s, "insert", offset=at, text="    return", origin="suggestion")
    log.event(s, "suggestion_dismissed")  # the person types " y" instead of " y * 2"
    at = type_text(log, s, at + len("    return"), " y\n")
    log.event(s, "suggestion_shown", offset=at, text=C, n_tokens=4, latency_ms=200.0, source="cache")
    log.event(s, "suggestion_dismissed")
    cut = len(START) + len("def f(x):\n") + len("    return x")
    log.event(s, "cursor", from_=at, to=cut + 4)
    for i in range(4):  # four Backspaces over " + 1" of the accepted suggestion
        pos = cut + 3 - i
        log.event(s, "delete", start=pos, end=pos + 1, text=" + 1"[3 - i])
    log.event(s, "test_run", passed=False, n_passed=3, n_tests=5,
              verdicts=["passed"] * 3 + ["wrong answer"] * 2)
    log.event(s, "save", path="problems/lava.py", bytes=len(FINAL.encode()))
    log.end_session(s, FINAL)
    return s, a


def test_a_scripted_session_replays_and_gives_the_metrics_by_hand(db_path):
    with InteractionLog(db_path) as log:
        s, a = scripted_session(log)
        r = replay(log.db, s)
    assert r.text == FINAL
    # Which suggestion every character came from: A's "    return x\n", B's "    return".
    from_a = [i for i, o in enumerate(r.origin) if o == a]
    assert "".join(FINAL[i] for i in from_a) == "    return x\n"
    assert r.suggestion_chars == 13 + 10
    shown = list(r.suggestions.values())
    assert [(x.accepts, x.chars_accepted, x.chars_deleted, x.outcome) for x in shown] == [
        (1, 17, 4, "accepted"), (1, 10, 0, "dismissed"), (0, 0, 0, "dismissed")]

    [g] = metrics.compute(open_for_reading(db_path)).groups
    assert (g.model, g.policy, g.sessions, g.shown, g.accepted) == ("tiny", "threshold", 1, 3, 2)
    assert g.acceptance_rate == pytest.approx(2 / 3)
    assert g.chars_accepted_per_acceptance == (17 + 10) / 2
    assert g.chars_deleted_per_acceptance == 4 / 2
    assert g.final_share == pytest.approx(23 / len(FINAL)) and len(FINAL) == 53
    assert g.median_latency_ms == 200.0


def test_events_keep_their_columns_and_data(db_path):
    with InteractionLog(db_path) as log:
        s, a = scripted_session(log)
        evs = list(events(log.db, s))
    assert [e.seq for e in evs] == list(range(1, len(evs) + 1))
    accepted = [e for e in evs if e.kind == "suggestion_accepted"]
    assert accepted[0].data == {"how": "all", "suggestion": a, "chars": 17}
    cursor = next(e for e in evs if e.kind == "cursor")
    assert cursor.start > cursor.end  # from, to
    shown = next(e for e in evs if e.kind == "suggestion_shown")
    assert shown.data["model"] == "tiny" and shown.offset == 17  # filled from the session
    run = next(e for e in evs if e.kind == "test_run")
    assert run.data["verdicts"][-1] == "wrong answer"


def test_sessions_group_by_model_and_policy(db_path):
    with InteractionLog(db_path) as log:
        scripted_session(log)
        s2 = log.start_session("b.py", "other", "base-4", None, "")
        log.event(s2, "suggestion_shown", offset=0, text="x", latency_ms=50.0)
        log.event(s2, "suggestion_accepted", how="all", text="x")
        log.event(s2, "insert", offset=0, text="x", origin="suggestion")
        log.end_session(s2, "x")
    stats = metrics.compute(open_for_reading(db_path))
    assert [(g.model, g.shown, g.final_share) for g in stats.groups] == [
        ("other", 1, 1.0), ("tiny", 3, pytest.approx(23 / 53))]
    only = metrics.compute(open_for_reading(db_path), session=s2)
    assert only.sessions == [s2] and len(only.groups) == 1


def test_a_replay_that_does_not_match_is_reported_not_counted(db_path):
    with InteractionLog(db_path) as log:
        s = log.start_session("a.py", "m", "p", None, "abc")
        log.event(s, "delete", start=0, end=1, text="a")
        log.end_session(s, "abc")  # an event went missing
        bad = log.start_session("b.py", "m", "p", None, "abc")
        log.event(bad, "delete", start=0, end=1, text="z")
    with pytest.raises(ReplayError, match="differs from the saved end text at character 0"):
        replay(open_for_reading(db_path), s)
    with pytest.raises(ReplayError, match="deletes 'z'"):
        replay(open_for_reading(db_path), bad)
    stats = metrics.compute(open_for_reading(db_path))
    assert stats.sessions == [] and [x.session for x in stats.skipped] == [s, bad]


def test_an_unended_session_replays_to_its_last_event(db_path):
    with InteractionLog(db_path) as log:
        s = log.start_session("a.py", "m", "p", None, "")
        type_text(log, s, 0, "hi")
    r = replay(open_for_reading(db_path), s)
    assert r.text == "hi" and r.session.end_text is None and r.final_share == 0


def test_events_are_checked(db_path):
    with InteractionLog(db_path) as log:
        s = log.start_session("a.py")
        with pytest.raises(ValueError, match="unknown event kind"):
            log.event(s, "keypress")
        with pytest.raises(ValueError, match="delete event needs end"):
            log.event(s, "delete", start=0, text="")
        with pytest.raises(ValueError, match="origin"):
            log.event(s, "insert", offset=0, text="x", origin="pasted")
        with pytest.raises(ValueError, match="suggestion shown before"):
            log.event(s, "insert", offset=0, text="x", origin="suggestion")
        with pytest.raises(ValueError, match="no session 99"):
            log.event(99, "save", path="a.py", bytes=0)
        assert log.event(s, "save", path="a.py", bytes=0) == 1


def test_a_second_log_continues_a_session_and_threads_may_log(db_path):
    with InteractionLog(db_path) as log:
        s = log.start_session("a.py")
        type_text(log, s, 0, "ab")
    with InteractionLog(db_path) as log:
        assert log.event(s, "insert", offset=2, text="c", origin="typed") == 3
        worker = threading.Thread(target=type_text, args=(log, s, 3, "def"))
        worker.start()
        worker.join()
        log.end_session(s, "abcdef")
        assert replay(log.db, s).text == "abcdef"


def test_logging_is_cheap(db_path, capsys):
    with InteractionLog(db_path) as log:
        s = log.start_session("a.py")
        t = time.perf_counter()
        type_text(log, s, 0, "x" * 1000)  # a commit per event
        each = time.perf_counter() - t
        t = time.perf_counter()
        with log.batch():
            type_text(log, s, 1000, "x" * 1000)  # one commit
        batched = time.perf_counter() - t
        assert log.db.execute("SELECT count(*) FROM events").fetchone()[0] == 2000
    with capsys.disabled():
        print(f"\n1,000 events: {each * 1e3:.0f} ms one commit each, {batched * 1e3:.0f} ms batched")
    assert each < 2.0  # generous: a slow shared CI disk, not a benchmark


# --- DBs that cannot be used ---------------------------------------------------------------

def test_a_corrupt_db_is_refused_untouched(db_path):
    db_path.parent.mkdir(parents=True)
    garbage = os.urandom(8192)
    db_path.write_bytes(garbage)
    with pytest.raises(LogUnavailable) as e:
        InteractionLog(db_path)
    assert str(e.value) == f"interaction log {db_path}: not an SQLite database (corrupt or another kind of file)"
    assert db_path.read_bytes() == garbage
    assert sorted(p.name for p in db_path.parent.iterdir()) == ["interactions.db"]
    log = open_log(db_path)
    assert isinstance(log, NullLog) and log.reason.startswith("logging off: interaction log")
    s = log.start_session("a.py", "m", "p", 0.5, "")
    with log.batch():
        assert log.event(s, "insert", offset=0, text="x", origin="typed") == 0
    log.end_session(s, "x")
    log.close()


def test_a_locked_db_is_refused_untouched(db_path):
    with InteractionLog(db_path) as log:
        scripted_session(log)
    before = db_path.read_bytes()
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        t = time.perf_counter()
        with pytest.raises(LogUnavailable, match="locked by another program"):
            InteractionLog(db_path, timeout=0.1)
        assert time.perf_counter() - t < 5
        assert isinstance(open_log(db_path, timeout=0.1), NullLog)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert db_path.read_bytes() == before


def test_a_fresh_db_locked_in_rollback_mode_is_refused(db_path):
    db_path.parent.mkdir(parents=True)
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(LogUnavailable, match="locked"):
            InteractionLog(db_path, timeout=0.1)
    finally:
        holder.close()


def test_an_unwritable_place_is_refused(tmp_path):
    (tmp_path / "a-dir.db").mkdir()
    with pytest.raises(LogUnavailable, match="not writable"):
        InteractionLog(tmp_path / "a-dir.db")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(LogUnavailable, match="not writable"):
        InteractionLog(tmp_path / "a-file" / "interactions.db")


def test_a_log_from_a_newer_empower_is_refused(db_path):
    with InteractionLog(db_path) as log:
        log.db["_sqlite_migrations"].insert({"migration_set": migrations.MIGRATIONS.name, "name": "m999_future",
                                             "applied_at": "2027-01-01"})
    with pytest.raises(LogUnavailable, match="newer Empower"):
        InteractionLog(db_path)
    with pytest.raises(LogUnavailable, match="newer Empower"):
        open_for_reading(db_path)


# --- empower-tui stats, the real command ---------------------------------------------------

def run(*args, env=None):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_stats_prints_the_metrics(db_path, tmp_path):
    with InteractionLog(db_path) as log:
        s, _ = scripted_session(log)
        n_events = len(list(events(log.db, s)))
    out = run("stats", "--db", str(db_path), "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    [g] = result["groups"]
    assert result["sessions"] == [s] and result["db"] == str(db_path)
    assert (g["shown"], g["accepted"]) == (3, 2)
    assert g["acceptance_rate"] == pytest.approx(2 / 3)
    assert g["chars_accepted_per_acceptance"] == 13.5 and g["chars_deleted_per_acceptance"] == 2.0
    assert g["final_share"] == pytest.approx(23 / 53) and g["median_latency_ms"] == 200.0

    table = run("stats", env={"EMPOWER_LOG_DB": str(db_path), "COLUMNS": "200"})
    assert table.returncode == 0, table.stderr
    assert "tiny" in table.stdout and "66.7%" in table.stdout and "43.4%" in table.stdout

    exported = tmp_path / "events.csv"
    out = run("stats", "--db", str(db_path), "--session", str(s), "--csv", str(exported))
    assert out.returncode == 0 and f"wrote {n_events} events" in out.stderr
    rows = list(csv.DictReader(exported.open()))
    assert len(rows) == n_events and list(rows[0]) == ["session", "seq", "time", "kind", "offset",
                                                      "start", "end", "text", "data"]
    accepted = next(r for r in rows if r["kind"] == "suggestion_accepted")
    assert accepted["text"] == A and json.loads(accepted["data"])["how"] == "all"


def test_stats_on_an_empty_log(db_path):
    InteractionLog(db_path).close()
    out = run("stats", "--db", str(db_path))
    assert out.returncode == 0 and "no sessions" in out.stdout


@pytest.mark.parametrize("case", ["missing", "corrupt", "not ours", "no session", "locked"])
def test_stats_refuses_bad_input_in_one_line(case, db_path, tmp_path):
    args = ["--db", str(db_path)]
    holder = None
    if case == "missing":
        expected = "no interaction log at"
    elif case == "corrupt":
        db_path.parent.mkdir(parents=True)
        db_path.write_bytes(b"\x00garbage" * 1000)
        expected = "not an SQLite database"
    elif case == "not ours":
        db_path.parent.mkdir(parents=True)
        sqlite_utils.Database(db_path)["t"].insert({"x": 1})
        expected = "not an Empower interaction log"
    elif case == "no session":
        InteractionLog(db_path).close()
        args += ["--session", "42"]
        expected = "no session 42"
    else:
        db_path.parent.mkdir(parents=True)
        holder = sqlite3.connect(db_path, isolation_level=None)
        holder.execute("CREATE TABLE other (x)")
        holder.execute("BEGIN EXCLUSIVE")
        expected = "locked"
    try:
        out = run("stats", *args)
    finally:
        if holder:
            holder.close()
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.splitlines()) == 1 and expected in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_the_help_names_the_stats_command(tmp_path):
    help_ = run("--help")
    assert help_.returncode == 0 and "empower-tui stats" in help_.stdout
    help_ = run("stats", "--help")
    assert help_.returncode == 0 and "--csv FILE" in help_.stdout
