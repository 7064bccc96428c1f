"""`python -m problems` as a person runs it: real subprocesses, real files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from problems import builtin

SOLUTIONS = Path(__file__).parent / "solutions"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "problems", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_list_shows_every_problem():
    out = run("list")
    assert out.returncode == 0
    for name in builtin.names():
        assert name in out.stdout and builtin.load(name).title in out.stdout


def test_show_prints_the_statement():
    out = run("show", "lava")
    assert out.returncode == 0 and "lava" in out.stdout.lower()


def test_check_passes_the_reference_under_the_starters_name(tmp_path):
    program = tmp_path / "lava.py"
    program.write_text(builtin.load("lava").reference)
    out = run("check", str(program))
    assert out.returncode == 0, out.stdout + out.stderr
    n = len(builtin.load("lava").tests)
    assert f"{n}/{n} passed" in out.stdout


def test_check_fails_a_wrong_program_with_a_table_and_a_diff(tmp_path):
    program = tmp_path / "mine.py"
    shutil.copy(SOLUTIONS / "keyboard" / "wrong.py", program)
    out = run("check", str(program), "--problem", "keyboard")
    assert out.returncode == 1
    assert "wrong answer" in out.stdout and "not run" in out.stdout


def test_check_json_has_every_test(tmp_path):
    program = tmp_path / "lava.py"
    shutil.copy(SOLUTIONS / "lava" / "wrong.py", program)
    out = run("check", str(program), "--all", "--json")
    report = json.loads(out.stdout)
    assert out.returncode == 1 and report["passed"] is False
    assert len(report["results"]) == len(builtin.load("lava").tests)
    assert {r["verdict"] for r in report["results"]} <= {"passed", "wrong answer"}


@pytest.mark.parametrize("setup, args, message", [
    (None, ["missing.py"], "missing.py: no such file"),
    ("notes.txt", ["notes.txt", "--problem", "lava"], "not a Python file"),
    ("lava.py:def f(:\n", ["lava.py"], "lava.py:1: syntax error"),
    ("x.py:print(1)\n", ["x.py", "--problem", "nope"], "unknown problem 'nope'; the problems are: "),
    ("mystery.py:print(1)\n", ["mystery.py"], "cannot tell the problem from the file name"),
    ("lava.py:\udcff", ["lava.py"], "not UTF-8"),
])
def test_bad_input_gets_one_line_and_exit_2(tmp_path, setup, args, message):
    if setup:
        name, _, text = setup.partition(":")
        (tmp_path / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    out = run("check", *args, cwd=tmp_path)
    assert out.returncode == 2
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
