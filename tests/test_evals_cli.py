"""empower-evals end to end: the real command on the built-in problems and on a LiveCodeBench-
format fixture, with the oracle human and an LLM human served by llama.cpp on loopback; runs
killed (kill -9, Ctrl+C) and resumed; reports read back from the run's SQLite file."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")

from evals.cli import main  # noqa: E402
from evals.metrics import summarize  # noqa: E402
from evals.store import Store  # noqa: E402
from tests import lcb_fixture as lcb  # noqa: E402
from tests.package import PEOPLE, TALLEST, UNITS  # noqa: E402
from tests.servers import free_port, human_server  # noqa: E402,F401  (a fixture)

EXE = str(Path(sys.executable).parent / "empower-evals")


def stored(run: Path) -> dict[tuple, tuple]:
    """Each stored episode's key -> (created, correct, errored), read straight from the file."""
    with sqlite3.connect(run / "run.sqlite") as db:
        return {tuple(r[:5]): tuple(r[5:]) for r in db.execute(
            "select problem_id, assistant, policy, human, seed, created, correct, errored from episodes")}


def episodes(run: Path):
    store = Store.open(run)
    try:
        return store.episodes()
    finally:
        store.close()


def test_the_oracle_run_then_its_report(test_models, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # the tables' names whole
    run = tmp_path / "run"
    mem, rnd = str(test_models.memorizer_gguf), str(test_models.random_gguf)
    argv = ["--human", "oracle", "--assistant", mem, "--assistant", rnd, "--dataset", "builtin",
            "--limit", "3", "--max-rounds", "30", "--out", str(run)]
    assert main(argv) == 0
    eps = episodes(run)
    assert len(eps) == 6 and not any(e.errored for e in eps)
    assert all(e.replay() == e.code for e in eps)  # the transcript is the whole story
    by = {a: summarize([e for e in eps if e.assistant == a]) for a in (mem, rnd)}
    assert by[mem].accept_ratio > 0.5 and by[rnd].accept_ratio < 0.1
    assert by[mem].dpr > by[rnd].dpr + 0.1
    config = json.loads((run / "config.json").read_text())
    assert config["k_h"] == 10 and config["max_rounds"] == 30 and config["human"] == "oracle"
    err = capsys.readouterr().err
    assert "Pass@1" in err and "accept" in err  # the live figures

    # The same command again: everything is finished, nothing is played again.
    before = stored(run)
    assert main(argv) == 0
    assert stored(run) == before
    assert "ran 0 episodes" in capsys.readouterr().err

    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    assert "Pass@1" in out and "memorizer.gguf" in out and "random.gguf" in out and "Paired" in out
    report = json.loads((run / "report.json").read_text())
    rows = {g["assistant"]: g for g in report["groups"]}
    for a in (mem, rnd):
        mine = [e for e in eps if e.assistant == a]
        assert rows[a]["problems"] == 3 and rows[a]["errored"] == 0
        assert rows[a]["pass_at_1"] == pytest.approx(sum(e.correct for e in mine) / 3)
        assert rows[a]["dpr"] == pytest.approx(by[a].dpr)
    (dpr,) = [p for p in report["paired"] if p["metric"] == "dpr"]
    assert dpr["assistant"] == rnd and dpr["baseline_assistant"] == mem and dpr["diff"] < 0
    png = (run / "report.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_an_llm_human_served_by_llama_cpp_plays_whole_episodes(test_models, human_server, tmp_path, capsys,
                                                               monkeypatch):
    """The memorizer as the human: its answers are nonsense, which is what the parsing is for.
    A second URL where nothing listens is warned about, and its share goes to the live one."""
    monkeypatch.setenv("COLUMNS", "200")
    run = tmp_path / "run"
    dead = f"http://127.0.0.1:{free_port()}/v1"
    argv = ["--human", "memorizer", "--human-url", human_server[0], "--human-url", dead,
            "--assistant", str(test_models.memorizer_gguf), "--dataset", "builtin", "--limit", "2",
            "--max-rounds", "3", "--think-tokens", "32", "--out", str(run)]
    assert main(argv) == 0
    assert f"warning: {dead}" in capsys.readouterr().err
    eps = episodes(run)
    assert len(eps) == 2 and not any(e.errored for e in eps), [e.error for e in eps]
    for e in eps:
        assert e.human == "memorizer" and 1 <= len(e.rounds) <= 3
        assert e.tokens_written == sum(r.written_tokens for r in e.rounds) > 0
        assert all(r.action in ("accept", "reject", "finish", "none") for r in e.rounds)
        assert e.verdict  # judged
    assert main(["report", str(run)]) == 0
    assert "memorizer" in capsys.readouterr().out and (run / "report.png").is_file()


def test_livecodebench_rows_with_the_oracle_and_given_solutions(test_models, tmp_path, capsys):
    fx = lcb.build(tmp_path / "lcb")
    with (fx.dir / "test3.jsonl").open("a") as f:
        f.write(json.dumps({"question_id": "broken", "question_title": "no tests"}) + "\n")
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    for pid, code in fx.references.items():
        (solutions / f"{pid}.py").write_text(code)
    ids = tmp_path / "ids.txt"
    ids.write_text("9001\nsnake\n")
    run = tmp_path / "run"
    argv = ["--human", "oracle", "--assistant", str(test_models.memorizer_gguf), "--dataset", "livecodebench",
            "--data", str(fx.dir), "--problems", str(ids), "--out", str(run)]
    assert main(argv) == 2  # the oracle has nothing to replay without --solutions
    assert "--solutions" in capsys.readouterr().err
    assert main([*argv, "--solutions", str(solutions)]) == 0
    assert "skipped" in capsys.readouterr().err  # the broken row, with its reason
    eps = {e.problem_id: e for e in episodes(run)}
    assert set(eps) == {"9001", "snake"}
    assert all(e.correct and e.code == fx.references[pid] for pid, e in eps.items())


def wait_for(run: Path, n: int, proc, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        if (run / "run.sqlite").exists():
            try:
                if len(stored(run)) >= n:
                    return
            except sqlite3.OperationalError:  # the table is being made
                pass
        time.sleep(0.05)
    pytest.fail(f"fewer than {n} episodes after {timeout} s")


@pytest.mark.parametrize("how", ["kill -9", "Ctrl+C"])
def test_a_run_stopped_midway_keeps_its_episodes_and_resumes(test_models, tmp_path, how):
    run = tmp_path / "run"
    cmd = [EXE, "--human", "oracle", "--assistant", str(test_models.memorizer_gguf), "--dataset", "builtin",
           "--concurrency", "1", "--out", str(run)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(run, 2, proc)
        proc.send_signal(signal.SIGKILL if how == "kill -9" else signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    if how == "Ctrl+C":
        assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    kept = stored(run)
    assert 2 <= len(kept) < 6 and not any(errored for _, _, errored in kept.values())
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"ran {6 - len(kept)} episodes" in again.stderr and f"{len(kept)} were already finished" in again.stderr
    # its output is a pipe, not a terminal: progress comes as lines, of the episodes left to play
    assert f"episodes: {6 - len(kept)}/{6 - len(kept)} 100%" in again.stderr, again.stderr
    after = stored(run)
    assert len(after) == 6 and all(after[k] == v for k, v in kept.items())  # not one redone


def test_bad_input_is_refused_in_one_line_before_anything_runs(test_models, tmp_path, capsys):
    mem = str(test_models.memorizer_gguf)
    run = tmp_path / "run"
    base = ["--assistant", mem, "--dataset", "builtin", "--out", str(run)]
    cases = {
        "no model 'nope.gguf'": ["--human", "oracle", "--assistant", "nope.gguf", "--dataset", "builtin",
                                 "--out", str(run)],
        "does not answer": ["--human", "gemma-3-27b", "--human-url", f"http://127.0.0.1:{free_port()}/v1", *base],
        "cannot read the id file": ["--human", "oracle", "--problems", str(tmp_path / "none.txt"), *base],
        "--eta is for --policy threshold": ["--human", "oracle", "--eta", "2", *base],
        "unknown policy": ["--human", "oracle", "--policy", "greedy", *base],
        "--human-url is for an LLM human": ["--human", "oracle", "--human-url", "http://x/v1", *base],
        "--dataset files needs one directory": ["--human", "oracle", "--assistant", mem, "--dataset", "files",
                                                "--out", str(run)],
        "not a directory": ["--human", "oracle", "--assistant", mem, "--dataset", "files", str(tmp_path / "none"),
                            "--out", str(run)],
        "--per-file is for --dataset files DIR": ["--human", "oracle", "--per-file", "2", *base],
        "--dataset builtin takes no directory": ["--human", "oracle", "--assistant", mem, "--dataset", "builtin",
                                                 str(tmp_path), "--out", str(run)],
    }
    for expected, argv in cases.items():
        assert main(argv) == 2, expected
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert not run.exists(), expected  # refused before a run directory was made

    assert main(["--human", "oracle", *base, "--limit", "1", "--max-rounds", "2"]) == 0
    capsys.readouterr()
    assert main(["--human", "oracle", *base, "--limit", "1", "--k-h", "5"]) == 2  # the protocol changed
    assert "--k-h 10" in capsys.readouterr().err
    assert main(["--human", "oracle", *base, "--limit", "1", "--max-rounds", "2", "--format", "chat"]) == 2
    assert "--format (none: the default)" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "elsewhere")]) == 2
    assert "not a benchmark run" in capsys.readouterr().err


def test_without_a_sandbox_the_run_is_refused_unless_the_risk_is_accepted(test_models, tmp_path, capsys, monkeypatch):
    from problems import sandbox

    monkeypatch.setenv("EMPOWER_JUDGE_ISOLATION", "limits")  # as where bubblewrap cannot make namespaces
    monkeypatch.setenv(sandbox.UNSAFE_ENV, "0")  # restored after: --unsafe-no-sandbox sets it
    sandbox.sandbox_works.cache_clear()
    try:
        run = tmp_path / "run"
        argv = ["--human", "oracle", "--assistant", str(test_models.memorizer_gguf), "--dataset", "builtin",
                "--limit", "1", "--max-rounds", "2", "--out", str(run)]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "no sandbox for the judge" in err and "--unsafe-no-sandbox" in err and len(err.strip().splitlines()) == 1
        assert not run.exists()
        assert main([*argv, "--unsafe-no-sandbox"]) == 0
        [ep] = episodes(run)
        assert not ep.errored
    finally:
        monkeypatch.delenv("EMPOWER_JUDGE_ISOLATION")
        sandbox.sandbox_works.cache_clear()


CODE = '''"""A person's module."""


def clamp(x, lo, hi):
    """x kept within [lo, hi]."""
    if x < lo:
        return lo
    return min(x, hi)


class Stack:
    def __init__(self):
        self.items = []
        self.size = 0

    def push(self, x):
        self.items.append(x)
        self.size += 1
        return x
'''


def test_the_functions_of_a_directory_are_episodes_of_finishing_them(test_models, tmp_path, capsys):
    """`--dataset files DIR`: each episode starts at a function's body; with the oracle it is
    correct exactly when the author's body was finished within the rounds."""
    code = tmp_path / "code"
    (code / "pkg").mkdir(parents=True)
    (code / "pkg" / "mod.py").write_text(CODE)
    (code / ".hidden.py").write_text(CODE)  # hidden: not read
    run = tmp_path / "run"
    base = ["--human", "oracle", "--assistant", str(test_models.random_gguf), "--dataset", "files", str(code),
            "--out", str(run)]
    assert main([*base, "--max-rounds", "50"]) == 0
    eps = {e.problem_id: e for e in episodes(run)}
    assert set(eps) == {"pkg/mod.py::clamp", "pkg/mod.py::Stack.__init__", "pkg/mod.py::Stack.push"}
    clamp = eps["pkg/mod.py::clamp"]
    assert clamp.start.endswith('"""x kept within [lo, hi]."""\n') and clamp.code == CODE[:CODE.index("\n\n\nclass")] + "\n"
    assert all(e.correct and not e.errored for e in eps.values())
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"] == "files" and config["files"] == str(code.resolve())
    capsys.readouterr()

    short = tmp_path / "short"  # two rounds cannot finish a body: not correct
    assert main([*base[:-1], str(short), "--max-rounds", "1"]) == 0
    assert not any(e.correct for e in episodes(short))




def test_both_contexts_land_in_one_run_and_the_report_pairs_them(test_models, tmp_path, capsys, monkeypatch):
    """`--context files --context none`: the arms with and without the package's other files in
    one run directory, told apart by the store's key, resumed arm by arm, and paired by the
    report on the same problems (DPR and accept ratio)."""
    monkeypatch.setenv("COLUMNS", "220")
    code = tmp_path / "pkg"
    code.mkdir()
    (code / "units.py").write_text(UNITS)
    (code / "people.py").write_text(PEOPLE + TALLEST)
    run = tmp_path / "run"
    base = ["--human", "oracle", "--assistant", str(test_models.memorizer_gguf), "--policy", "base-8",
            "--dataset", "files", str(code), "--out", str(run)]
    assert main([*base, "--context", "none"]) == 0  # one arm first, as a run stopped after it
    assert {e.context for e in episodes(run)} == {"none"}
    capsys.readouterr()
    assert main([*base, "--context", "files", "--context", "none"]) == 0
    err = capsys.readouterr().err
    assert "ran 2 episodes" in err and "2 were already finished" in err and "context files" in err
    eps = episodes(run)
    assert sorted((e.problem_id, e.context) for e in eps) == [
        (p, c) for p in ("people.py::height_in_metres", "people.py::tallest") for c in ("files", "none")]
    assert all(e.correct and not e.errored for e in eps)
    with sqlite3.connect(run / "run.sqlite") as db:
        assert sorted(db.execute("select context, count(*) from episodes group by context")) == [("files", 2), ("none", 2)]
    assert json.loads((run / "config.json").read_text())["contexts"] == ["files", "none"]
    assert main(base) == 0  # the default, as the editor: files, already finished
    assert "ran 0 episodes" in capsys.readouterr().err

    assert main(["report", str(run)]) == 0
    assert "context none" in capsys.readouterr().out
    report = json.loads((run / "report.json").read_text())
    assert sorted(g["context"] for g in report["groups"]) == ["files", "none"]
    pairs = {p["metric"]: p for p in report["paired"]}
    assert set(pairs) == {"pass@1", "accept_ratio", "dpr"}
    for p in pairs.values():
        assert (p["context"], p["baseline_context"], p["n"]) == ("files", "none", 2)
        assert p["assistant"] == p["baseline_assistant"] and p["policy"] == p["baseline_policy"]
    by = {c: summarize([e for e in eps if e.context == c]) for c in ("files", "none")}
    assert pairs["dpr"]["diff"] == pytest.approx(by["files"].dpr - by["none"].dpr)

    # --context is for the files dataset: refused before a run directory is made
    elsewhere = tmp_path / "elsewhere"
    assert main(["--human", "oracle", "--assistant", str(test_models.memorizer_gguf), "--dataset", "builtin",
                 "--context", "files", "--out", str(elsewhere)]) == 2
    assert "--context files is for --dataset files DIR" in capsys.readouterr().err and not elsewhere.exists()


def test_a_files_run_started_before_context_goes_on_with_the_code_alone(test_models, tmp_path, capsys):
    """A run directory whose episodes were played before --context existed (no `contexts` in its
    first run's config) keeps them as they were: the same command resumes with context none
    instead of starting the files arm; --context files adds it."""
    code = tmp_path / "pkg"
    code.mkdir()
    (code / "units.py").write_text(UNITS)
    (code / "people.py").write_text(PEOPLE + TALLEST)
    run = tmp_path / "run"
    store = Store.open(run)
    store.add_run({"dataset": "files", "k_h": 10, "max_rounds": 50, "start": "auto", "tokenizer": "regex",
                   "format": None})  # as an Empower before --context wrote it
    store.close()
    base = ["--human", "oracle", "--assistant", str(test_models.memorizer_gguf), "--policy", "base-8",
            "--dataset", "files", str(code), "--out", str(run)]
    assert main(base) == 0
    assert "started before --context" in capsys.readouterr().err
    assert {e.context for e in episodes(run)} == {"none"}
    assert main([*base, "--context", "files"]) == 0
    assert sorted(e.context for e in episodes(run)) == ["files", "files", "none", "none"]
