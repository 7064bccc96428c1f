"""Empower's two SQLite files on sqlite-utils' Migrations (coach/schema.py), on real files: each
refuses the other's file, both today's and one from before; a file written by the hand-written
runners before (a `_migrations` table) upgrades in place with every row kept; a newer run store
is refused."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
import sqlite_utils

from evals import migrations as store_schema
from evals.episode import Episode, Round
from evals.store import Store, StoreError
from tui import migrations as log_schema
from tui.log import InteractionLog, LogUnavailable, open_for_reading


def before_sqlite_utils(path, first_step) -> sqlite_utils.Database:
    """A file as Empower's own runner left it (what tui/migrations.py and evals/migrations.py did
    until December 2026): the step's tables, its name in `_migrations`, user_version 1."""
    db = sqlite_utils.Database(path)
    with db.atomic():
        db["_migrations"].create({"name": str, "applied_at": float}, pk="name")
        first_step(db)
        db["_migrations"].insert({"name": "m001_initial", "applied_at": time.time()})
    db.execute("PRAGMA user_version = 1")
    return db


EPISODE = Episode("HumanEval/3", "smollm2-135m", "threshold@2", "oracle", 0, "def f():\n",
                  (Round(0, "    ret", 2, "accept", written="urn 1", written_tokens=2),),
                  code="def f():\n    return 1", correct=True, verdict="passed", tokens_read=2, tokens_written=2,
                  accepted=1, suggested=1)


def a_log(path):
    with InteractionLog(path) as log:
        s = log.start_session("a.py", "smollm2-135m", "threshold", 2.0, "x = 1\n")
        log.event(s, "insert", offset=6, text="y = 2\n", origin="typed")


def a_store(path):
    store = Store.open(path)
    store.add(EPISODE)
    store.close()


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("era", ["today", "before"])
def test_each_store_refuses_the_others_file_and_leaves_it_as_it_was(era, tmp_path):
    log_path, store_path = tmp_path / "interactions.db", tmp_path / "run.sqlite"
    if era == "today":
        a_log(log_path)
        a_store(store_path)
    else:
        before_sqlite_utils(log_path, log_schema.m001_initial).conn.close()
        before_sqlite_utils(store_path, store_schema.m001_initial).conn.close()
    kept = digest(log_path), digest(store_path)

    with pytest.raises(LogUnavailable, match=r"run\.sqlite: not an Empower interaction log"):
        InteractionLog(store_path)
    with pytest.raises(LogUnavailable, match="not an Empower interaction log"):
        open_for_reading(store_path)
    with pytest.raises(StoreError, match=r"interactions\.db: not an Empower run store"):
        Store.open(log_path)
    if era == "today":  # sqlite-utils' table says which kind it is
        with pytest.raises(StoreError, match="its schema is empower-interaction-log"):
            Store.open(log_path)
    assert (digest(log_path), digest(store_path)) == kept


def test_a_log_from_before_upgrades_in_place_with_nothing_lost(tmp_path):
    path = tmp_path / "interactions.db"
    old = before_sqlite_utils(path, log_schema.m001_initial)
    session = old["sessions"].insert({"file": "a.py", "model": "m", "policy": "threshold η=2", "eta": 2.0,
                                      "started_at": 1.0, "ended_at": 2.0, "start_text": "x", "end_text": "xy",
                                      "app_version": "0.1"}).last_pk
    old["events"].insert_all([{"session": session, "seq": i + 1, "time": 1.5, "kind": "insert", "offset": i + 1,
                               "text": "y", "data": "{}"} for i in range(3)])
    old["events"].insert({"session": session, "seq": 4, "time": 1.6, "kind": "suggestion_shown", "offset": 4,
                          "text": "z", "data": json.dumps({"model": "m", "policy": "threshold η=2", "n_tokens": 1})})
    rows = {t: list(old[t].rows) for t in ("sessions", "events")}
    old.conn.close()

    reader = open_for_reading(path)  # `empower-tui stats` on it: upgraded first, then read
    after = {t: list(reader[t].rows) for t in ("sessions", "events")}
    # every row kept; the editor's old spelling of the policy is now the run store's (m002); no A/B then (m003)
    assert after["sessions"] == [{**rows["sessions"][0], "policy": "threshold@2", "ab_study": None}]
    assert after["events"][:3] == rows["events"][:3]
    assert json.loads(after["events"][3]["data"]) == {"model": "m", "policy": "threshold@2", "n_tokens": 1}
    assert "_migrations" not in reader.table_names()
    assert log_schema.SCHEMA.applied(reader) == log_schema.SCHEMA.names()
    assert reader.execute("PRAGMA user_version").fetchone()[0] == len(log_schema.SCHEMA.names()) >= 2
    reader.conn.close()
    with InteractionLog(path) as log:  # and written to as any log
        s = log.start_session("b.py", "m", "base", None, "")
        log.event(s, "insert", offset=0, text="z", origin="typed")
        assert [r["file"] for r in log.db["sessions"].rows] == ["a.py", "b.py"]
        assert log_schema.SCHEMA.applied(log.db) == log_schema.SCHEMA.names()  # adopted once, not twice


def test_a_run_store_from_before_upgrades_in_place_with_its_episodes(tmp_path):
    path = tmp_path / "run.sqlite"
    old = before_sqlite_utils(path, store_schema.m001_initial)
    then = EPISODE.to_dict()
    del then["context"]  # the episode as that Empower wrote it: before --context
    old["episodes"].insert({"problem_id": EPISODE.problem_id, "assistant": EPISODE.assistant, "policy": EPISODE.policy,
                            "human": EPISODE.human, "seed": EPISODE.seed, "correct": 1, "transcript": json.dumps(then),
                            "created": time.time()})
    old.conn.close()
    store = Store.open(path)  # a resumed benchmark finds its finished episode
    assert store.episodes() == [EPISODE] and EPISODE.context == "none"  # played with the code alone
    assert store.done_keys() == {EPISODE.key} and next(iter(store.done_keys()))[-1] == "none"
    assert "_migrations" not in store.db.table_names()
    assert store_schema.SCHEMA.applied(store.db) == store_schema.SCHEMA.names() == ["m001_initial", "m002_context"]
    store.close()


def test_a_run_store_from_a_newer_empower_is_refused(tmp_path):
    a_store(tmp_path)
    db = sqlite_utils.Database(tmp_path / "run.sqlite")
    db["_sqlite_migrations"].insert({"migration_set": store_schema.MIGRATIONS.name, "name": "m999_future",
                                     "applied_at": "2027-01-01"})
    db.conn.close()
    with pytest.raises(StoreError, match="newer Empower"):
        Store.open(tmp_path)
