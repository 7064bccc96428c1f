"""Benchmark episodes end to end with real parts: the oracle human, the memorizer and random
GGUFs as assistants, the sandboxed judge, and the run store (resume, kill -9, errors).

    .venv/bin/python -m pytest tests/test_evals_episode.py -q -s
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlite_utils

from evals import migrations
from evals.episode import Episode, Round, continues, run_all, run_episode
from evals.humans import make_human
from evals.metrics import summarize
from problems.datasets import load
from evals.store import Store
from tests.package import PEOPLE, UNITS

ROOT = Path(__file__).resolve().parent.parent
IDS = ["checkout", "keyboard", "lava"]  # short references: even unaided, the oracle ends in 50 rounds


@pytest.fixture(scope="module")
def problems():
    return load("builtin", ids=IDS)


@pytest.fixture(scope="module")
def run(test_models, problems, tmp_path_factory):
    """One run: the oracle with each test assistant on the problems; (store, assistants, result)."""
    store = Store.open(tmp_path_factory.mktemp("run"))
    assistants = [(str(test_models.memorizer_gguf), "base", None), (str(test_models.random_gguf), "base", None)]
    t = time.perf_counter()
    result = asyncio.run(run_all(problems, assistants, make_human("oracle"), store, concurrency=4))
    print(f"\nrun_all: {result} in {time.perf_counter() - t:.1f} s")
    return store, assistants, result


def by_assistant(store, spec):
    return [e for e in store.episodes() if e.assistant == spec]


def test_the_oracle_solves_every_problem_and_the_memorizer_helps_far_more(run, problems):
    store, assistants, (n_run, n_skipped) = run
    assert (n_run, n_skipped) == (len(problems) * 2, 0)
    (mem, _, _), (rnd, _, _) = assistants
    sm, sr = summarize(by_assistant(store, mem)), summarize(by_assistant(store, rnd))
    print(f"memorizer: {sm}\nrandom:    {sr}")
    for e in store.episodes():
        assert not e.errored and e.correct and e.verdict == "passed", (e.problem_id, e.assistant, e.error)
    assert sm.n == sr.n == len(problems)
    assert sm.accept_ratio > 0.6 and sr.accept_ratio < 0.1
    assert sm.dpr > sr.dpr + 0.1
    mem_written = sum(e.tokens_written for e in by_assistant(store, mem))
    assert mem_written < 0.5 * sum(e.tokens_written for e in by_assistant(store, rnd))


def test_the_transcript_replays_to_the_final_code_and_counts_add_up(run):
    store, _, _ = run
    for e in store.episodes():
        assert e.replay() == e.code
        shown = [r for r in e.rounds if r.suggestion]
        assert e.suggested == len(shown) and e.accepted == sum(r.action == "accept" for r in shown)
        assert e.tokens_read == sum(r.suggestion_tokens for r in shown)
        assert e.tokens_accepted == sum(r.suggestion_tokens for r in shown if r.action == "accept")
        assert e.tokens_written == sum(r.written_tokens for r in e.rounds)
        assert all(r.written_tokens <= 10 for r in e.rounds) and len(e.rounds) <= 50
        assert all(r.action == "none" for r in e.rounds if not r.suggestion)


def test_a_second_run_resumes_with_nothing_left(run, problems):
    store, assistants, _ = run
    before = {e.key: e for e in store.episodes()}
    assert asyncio.run(run_all(problems, assistants, make_human("oracle"), store)) == (0, len(before))
    assert {e.key: e for e in store.episodes()} == before  # nothing rewritten


def test_episodes_of_one_assistant_at_once_each_get_a_coach_of_their_own(test_models, problems, tmp_path, monkeypatch):
    """Two conversations on one llama.cpp model would evict each other's KV cache every round
    (and wait on one lock): run_all gives each episode in flight a replica of the coach, and the
    transcripts are those of one episode at a time."""
    import evals.episode as episode

    spec = [(str(test_models.memorizer_gguf), "base", None)]
    one = Store.open(tmp_path / "one")
    asyncio.run(run_all(problems, spec, make_human("oracle"), one, concurrency=1))
    spans, real = [], episode.run_episode

    async def recorded(problem, assistant, *a, **kw):
        began = time.perf_counter()
        ep = await real(problem, assistant, *a, **kw)
        spans.append((assistant, began, time.perf_counter()))
        return ep

    monkeypatch.setattr(episode, "run_episode", recorded)
    many = Store.open(tmp_path / "many")
    assert asyncio.run(run_all(problems, spec, make_human("oracle"), many, concurrency=3)) == (3, 0)
    assert len({id(c) for c, _, _ in spans}) == 3  # three coaches: the first and two replicas
    for i, (c, b, e) in enumerate(spans):
        assert not any(c is c2 and b < e2 and b2 < e for c2, b2, e2 in spans[i + 1:])
    strip = lambda ep: (ep.problem_id, ep.code, ep.correct, [(r.suggestion, r.action, r.written) for r in ep.rounds])
    assert sorted(map(strip, many.episodes())) == sorted(map(strip, one.episodes()))


def test_episodes_round_trip_through_the_store(tmp_path):
    ep = Episode("p", "a.gguf", "base", "oracle", 3, "x", (Round(0, "s", 1, "accept", written="y", written_tokens=1),),
                 code="xsy", correct=True, verdict="passed", tokens_read=1, tokens_written=1, accepted=1, suggested=1)
    store = Store.open(tmp_path)
    store.add(ep)
    store.close()
    again = Store.open(tmp_path / "run.sqlite")
    assert again.episodes() == [ep] and again.done_keys() == {("p", "a.gguf", "base", "oracle", 3, "none")}
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrations_give_the_columns_of_a_fresh_in_memory_db(tmp_path):
    fresh = sqlite_utils.Database(memory=True)
    steps = len(migrations.SCHEMA.names())
    assert migrations.SCHEMA.migrate(fresh) == steps >= 1
    assert migrations.SCHEMA.migrate(fresh) == steps  # a no-op the second time
    assert list(fresh["episodes"].columns_dict) == [
        "problem_id", "assistant", "policy", "human", "seed", "correct", "accepted", "suggested",
        "tokens_read", "tokens_written", "errored", "error", "verdict", "n_rounds", "seconds",
        "transcript", "created", "context"]
    assert fresh["episodes"].pks == ["problem_id", "assistant", "policy", "human", "seed", "context"]
    assert list(fresh["runs"].columns_dict) == ["id", "created", "config"]
    on_disk = Store.open(tmp_path).db
    for table in ("episodes", "runs", "_sqlite_migrations"):
        assert on_disk[table].columns_dict == fresh[table].columns_dict
    assert on_disk.execute("PRAGMA user_version").fetchone()[0] == steps


async def test_an_unreachable_assistant_errors_its_episodes_and_the_run_goes_on(test_models, problems, tmp_path):
    store = Store.open(tmp_path)
    down = "openai:http://127.0.0.1:1/v1#x"
    n = await run_all(problems[:1], [(down, "base", None), (str(test_models.memorizer_gguf), "base", None)],
                      make_human("oracle"), store)
    assert n == (2, 0)
    eps = {e.assistant: e for e in store.episodes()}
    bad = eps[down]
    assert bad.errored and not bad.correct and bad.rounds == () and "\n" not in bad.error
    print("\nerror:", bad.error)
    assert not eps[str(test_models.memorizer_gguf)].errored and eps[str(test_models.memorizer_gguf)].correct
    assert summarize(store.episodes()).n_errored == 1
    again = [(down, "base", None), (str(test_models.memorizer_gguf), "base", None)]
    assert await run_all(problems[:1], again, make_human("oracle"), store) == (0, 2)
    assert await run_all(problems[:1], again, make_human("oracle"), store, retry_errored=True) == (1, 1)
    assert len(store.episodes()) == 2
    # run_episode itself never raises for it either
    from coach.engine import Coach
    ep = await run_episode(problems[0], Coach.from_spec(down), make_human("oracle"))
    assert ep.errored and ep.error


KILLED = """
import asyncio, sys
from evals.episode import run_all
from evals.humans import make_human
from problems.datasets import load
from evals.store import Store
asyncio.run(run_all(load("builtin", ids=sys.argv[3].split(",")), [(sys.argv[2], "base", None)],
                    make_human("oracle"), Store.open(sys.argv[1]), concurrency=1))
"""


def test_a_run_killed_mid_way_keeps_its_episodes_and_the_rerun_finishes(test_models, problems, tmp_path):
    spec = str(test_models.random_gguf)  # about a second per episode: time to kill between two
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(tmp_path), spec, ",".join(IDS)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = tmp_path / "run.sqlite"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    with sqlite3.connect(db, timeout=1) as conn:
                        if conn.execute("select count(*) from episodes").fetchone()[0] >= 1:
                            break
                except sqlite3.OperationalError:  # the table is not there yet
                    pass
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    store = Store.open(tmp_path)
    kept = {e.key: e for e in store.episodes()}
    assert 1 <= len(kept) < len(IDS)
    n_run, n_skipped = asyncio.run(run_all(problems, [(spec, "base", None)], make_human("oracle"), store))
    assert (n_run, n_skipped) == (len(IDS) - len(kept), len(kept))
    after = {e.key: e for e in store.episodes()}
    assert len(after) == len(IDS) and all(after[k] == e for k, e in kept.items())
    assert all(e.correct for e in after.values())


def _module(name: str, n: int) -> str:
    """A module with a long docstring (a head well past what `continues` compares) and n
    functions of a few lines each."""
    head = f'"""{name}: ' + "a module of helpers whose head is long enough to tell files apart. " * 6 + '"""\n\n'
    return head + "".join(f"def {name}_{i}(x):\n    y = x + {i}\n    z = y * 2\n    return z - {i}\n\n\n"
                          for i in range(n))


def test_continues_holds_for_the_same_files_later_start_only():
    a, b = _module("alpha", 3), _module("beta", 3)
    start = lambda text, i: text[:text.index(f"_{i}(x):") + len(f"_{i}(x):\n")]  # noqa: E731
    assert continues(start(a, 0) + "    y = x + 0\n", start(a, 2))
    assert not continues(start(a, 0), start(b, 1))
    assert not continues(None, start(a, 1)) and not continues("", start(a, 1))
    assert not continues("def f():\n", "def f():\n    return 1\n")  # short starts (HumanEval's prompts) never match


def test_a_coach_keeps_to_the_file_its_cache_holds(test_models, tmp_path, monkeypatch):
    """The files dataset's episodes are a file's functions in order: played on the coach whose
    KV cache holds the file, each reads only the code since the last one. Two coaches start on
    two different files (in order, the second would read the first file again), and each goes
    on with its own file's functions."""
    import evals.episode as episode

    for name in ("alpha", "beta"):
        (tmp_path / "code" / f"{name}.py").parent.mkdir(exist_ok=True)
        (tmp_path / "code" / f"{name}.py").write_text(_module(name, 3))
    problems = load("files", path=tmp_path / "code")
    assert [p.id for p in problems][:2] == ["alpha.py::alpha_0", "alpha.py::alpha_1"]
    played, real = [], episode.run_episode

    async def recorded(problem, assistant, *a, **kw):
        played.append((assistant, problem.id.split("::")[0]))
        return await real(problem, assistant, *a, **kw)

    monkeypatch.setattr(episode, "run_episode", recorded)
    spec = [(str(test_models.memorizer_gguf), "base-8", None)]
    store = Store.open(tmp_path / "run")
    assert asyncio.run(run_all(problems, spec, make_human("oracle"), store, concurrency=2,
                               start=lambda p: p.starter)) == (6, 0)
    coaches = list(dict.fromkeys(c for c, _ in played))
    files = {c: [f for c2, f in played if c2 is c] for c in coaches}
    assert len(coaches) == 2 and files[coaches[0]][0] != files[coaches[1]][0]
    switches = sum(a != b for fs in files.values() for a, b in zip(fs, fs[1:]))
    assert switches <= 1  # at most one: a coach done with its file takes the other's last function
    assert all(e.correct for e in store.episodes())


# ---------------------------------------------------------------- the package's other files


def test_a_files_episode_shows_the_assistant_the_packages_other_files_only_with_context(test_models, tmp_path):
    """With context "files" each prompt carries chunks of the package's other files, chosen by
    coach/related.py as the editor chooses them: a name defined only in units.py reaches the model
    while it finishes a function of people.py; with context "none" the prompt is people.py alone.
    Both arms land in one store, told apart by their context, and a second run has nothing left."""
    from coach.backends import load_backend
    from coach.engine import Coach
    from coach.policies import parse
    from coach.specs import resolve

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "units.py").write_text(UNITS)
    (tmp_path / "pkg" / "people.py").write_text(PEOPLE)
    problems = load("files", path=tmp_path / "pkg")
    assert [p.id for p in problems] == ["people.py::height_in_metres"]  # units.py's body is one line
    spec = str(test_models.memorizer_gguf)
    backend = load_backend(resolve(spec))
    seen: list[str] = []
    real = backend.generate
    backend.generate = lambda request: (seen.append(request.prompt.text), real(request))[1]
    coach = Coach(backend, parse("base-8"))
    store = Store.open(tmp_path / "run")
    prompts = {}
    try:
        for ctx in ("files", "none"):
            seen.clear()
            assert asyncio.run(run_all(problems, [(spec, "base-8", None)], make_human("oracle"), store,
                                       concurrency=1, start=lambda p: p.starter, coaches={(spec, "base-8", None): coach},
                                       contexts=(ctx,))) == (1, 0)
            prompts[ctx] = list(seen)
    finally:
        coach.close()
    assert prompts["files"] and prompts["none"]
    assert all("METRES_PER_FOOT" in t and t.startswith("# units.py\n") for t in prompts["files"])
    assert not any("METRES_PER_FOOT" in t or "units.py" in t for t in prompts["none"])
    eps = {e.context: e for e in store.episodes()}
    assert sorted(eps) == ["files", "none"] and all(e.correct and not e.errored for e in eps.values())
    assert store.done_keys() == {("people.py::height_in_metres", spec, "base-8", "oracle", 0, c) for c in ("files", "none")}
    # both arms in one call: everything is finished, nothing is played again
    assert asyncio.run(run_all(problems, [(spec, "base-8", None)], make_human("oracle"), store,
                               contexts=("files", "none"))) == (0, 2)
