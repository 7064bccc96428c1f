"""The built-in problems: complete, judged right by their own tests, and regenerable."""

from __future__ import annotations

import ast
import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from problems import builtin
from problems.judge import Verdict, judge

SOLUTIONS = Path(__file__).parent / "solutions"
NAMES = builtin.names()


def test_there_are_at_least_six_problems_including_the_papers_two():
    assert len(NAMES) >= 6
    assert {"lava", "keyboard"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_each_problem_is_complete(name):
    p = builtin.load(name)
    assert p.title and p.summary and len(p.statement) > 300
    assert len(p.tests) >= 8
    assert p.tests[-1].name.endswith("large"), "the large test comes last"
    assert len(p.tests[-1].input) > 5 * max(len(t.input) for t in p.tests[:-1])
    # The starter is a file a person opens: it runs, states the task, and is not the answer.
    starter = p.starter
    assert p.starter_file.read_text() == starter and ast.get_docstring(ast.parse(starter))
    assert "def main" in starter and p.reference != starter
    assert p.starter_file.parent != p.data_dir  # the answer is not beside the file a person opens


@pytest.mark.parametrize("name", NAMES)
def test_the_reference_passes_and_the_starter_fails(name):
    p = builtin.load(name)
    report = judge(p.reference, p, all_tests=True)
    assert report.passed, [(r.name, r.verdict, r.message) for r in report.results if not r.passed]
    assert not judge(p.starter, p).passed


@pytest.mark.parametrize("name", NAMES)
def test_a_plausible_wrong_solution_gets_a_wrong_answer(name):
    report = judge((SOLUTIONS / name / "wrong.py").read_text(), builtin.load(name), all_tests=True)
    assert report.first_failure.verdict is Verdict.WRONG_ANSWER


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_a_quadratic_solution_passes_the_small_tests_and_times_out_on_the_large_one(name):
    report = judge((SOLUTIONS / name / "slow.py").read_text(), builtin.load(name), all_tests=True)
    *small, large = report.results
    assert all(r.passed for r in small), [(r.name, r.message) for r in small if not r.passed]
    assert large.verdict is Verdict.TIME_LIMIT


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_gen_py_regenerates_the_large_test_byte_for_byte(name, tmp_path):
    src = builtin.CATALOG / name
    copy = tmp_path / name
    shutil.copytree(src, copy)
    for f in (copy / "tests").glob("*.gz"):
        f.unlink()
    subprocess.run([sys.executable, str(copy / "gen.py")], check=True, capture_output=True, timeout=120)
    made = sorted(f.name for f in (copy / "tests").glob("*.gz"))
    assert made and made == sorted(f.name for f in (src / "tests").glob("*.gz"))
    for f in made:
        assert gzip.decompress((copy / "tests" / f).read_bytes()) == gzip.decompress((src / "tests" / f).read_bytes())
