"""The judge: run a program on a problem's tests in the sandbox and give a verdict per test.

Used by the editor (F5), the benchmark and `python -m problems check`. By default all the
tests of a program run in one sandboxed worker (a fork per test, see `_worker.py`) and
judging stops at the first failure; `all_tests=True` runs every test, and
`fresh_process=True` starts a new sandboxed interpreter for every test (slower, for
comparison and for programs that must not share even a parent).

A problem's tests are of one kind: `stdin` (the program reads stdin, its stdout is compared),
`functional` (LeetCode's: `Solution().func_name(*args)` returns the value compared) or `check`
(HumanEval's: after the program, the test's code runs and `check(func_name)` asserts; a failed
assert of that code is a wrong answer, any other exception a runtime error).

We wrote the judge ourselves rather than use LiveCodeBench's `testing_util`: that one runs
programs inside the judging process, with no memory limit and "not a security sandbox" by
its own account. We keep its comparison rules (problems/compare.py).

Against LiveCodeBench's grader (tests/test_judge_lcb_grader.py runs 115 programs through both)
the verdicts agree except where we differ on purpose, each case named there: a program runs as
a fresh interpreter runs it (a `global` statement, an `if __name__ == "__main__":` block before
other code, `sys.stdin.buffer`, `open(0)`, `quit()` and `os.write(1, ...)` work; a top-level
`return` is a syntax error; exit status 1 is a runtime error; each test gets its own
`Solution()`); a functional answer is compared as JSON, as LeetCode serializes it (a nested
tuple equals a list); and the float mode accepts answers within its tolerance.
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING

from problems.sandbox import Isolation, Limits, RawRun, Worker, isolation_warning

if TYPE_CHECKING:  # a Problem judges itself through this module (Problem.judge)
    from problems.problem import Problem, TestCase


class Verdict(str, Enum):
    PASSED = "passed"
    WRONG_ANSWER = "wrong answer"
    TIME_LIMIT = "time limit"
    RUNTIME_ERROR = "runtime error"
    MEMORY_LIMIT = "memory limit"
    NOT_RUN = "not run"


@dataclass(frozen=True)
class TestResult:
    name: str
    verdict: Verdict
    time_s: float = 0.0  # wall clock of the run
    cpu_s: float = 0.0
    message: str = ""  # one line: why it failed
    detail: str = ""  # a short diff, or the last lines of stderr

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASSED


@dataclass
class Report:
    problem: str
    results: list[TestResult] = field(default_factory=list)
    isolation: Isolation = field(default_factory=Isolation)
    compile_error: str = ""
    wall_s: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def n_passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def first_failure(self) -> TestResult | None:
        return next((r for r in self.results if not r.passed and r.verdict is not Verdict.NOT_RUN), None)

    @property
    def warning(self) -> str | None:
        return isolation_warning(self.isolation)


def limits_for(problem: Problem, base: Limits | None = None) -> Limits:
    base = base or Limits()
    return replace(base, time_s=problem.time_limit_s, memory_mb=problem.memory_mb)


def judge(source: str, problem: Problem, *, all_tests: bool = False, fresh_process: bool = False,
          limits: Limits | None = None, tests: tuple[TestCase, ...] | None = None) -> Report:
    limits = limits or limits_for(problem)
    tests = problem.tests if tests is None else tests
    hide = (str(problem.data_dir),) if problem.data_dir else ()
    report = Report(problem.id)
    start = time.monotonic()
    worker: Worker | None = None
    try:
        for i, test in enumerate(tests):
            left = limits.program_s - (time.monotonic() - start)
            if left <= 0:
                report.results += [TestResult(t.name, Verdict.NOT_RUN, message="the program's time budget ran out")
                                   for t in tests[i:]]
                break
            if worker is None or not worker.alive or fresh_process and i:
                if worker:
                    worker.close()
                worker = Worker(source, limits, hide)
                report.isolation = worker.isolation
                if worker.compile_error:
                    report.compile_error = worker.compile_error.strip()
                    msg = report.compile_error.splitlines()[-1]
                    report.results = [TestResult(t.name, Verdict.RUNTIME_ERROR, message=msg, detail=report.compile_error)
                                      for t in tests]
                    break
            raw = worker.run(test.input, min(limits.time_s, left), problem.func_name, problem.kind)
            result = verdict(test, raw, problem, limits)
            report.results.append(result)
            if not result.passed and not all_tests:
                report.results += [TestResult(t.name, Verdict.NOT_RUN) for t in tests[i + 1:]]
                break
    finally:
        if worker:
            worker.close()
    report.wall_s = time.monotonic() - start
    return report


def verdict(test: TestCase, raw: RawRun, problem: Problem, limits: Limits) -> TestResult:
    stderr = raw.stderr.decode("utf-8", errors="replace").rstrip()
    tail = "\n".join(stderr.splitlines()[-5:])
    last = tail.splitlines()[-1] if tail else ""
    made = lambda v, msg="", detail=tail: TestResult(test.name, v, raw.wall, raw.cpu, msg, detail)  # noqa: E731
    if raw.lost:
        return made(Verdict.TIME_LIMIT, raw.lost)
    if raw.over == "memory":
        return made(Verdict.MEMORY_LIMIT, f"over {limits.memory_mb} MB, its processes together")
    if raw.over == "processes":
        return made(Verdict.RUNTIME_ERROR, f"over {limits.processes} processes and threads")
    if raw.timed_out or raw.signal == signal.SIGXCPU:
        return made(Verdict.TIME_LIMIT, f"over {limits.time_s:g} s")
    if raw.output_limit:
        return made(Verdict.RUNTIME_ERROR, f"output limit exceeded ({limits.output_mb} MB)")
    if "MemoryError" in last or "Cannot allocate memory" in last:
        return made(Verdict.MEMORY_LIMIT, f"over {limits.memory_mb} MB")
    if raw.signal == signal.SIGXFSZ:
        return made(Verdict.RUNTIME_ERROR, f"file size limit exceeded ({limits.file_mb} MB)")
    if raw.signal is not None:
        return made(Verdict.RUNTIME_ERROR, f"killed by {signal.Signals(raw.signal).name}")
    if raw.exit:
        return made(Verdict.RUNTIME_ERROR, last or f"exit status {raw.exit}")
    if problem.kind == "check":
        return checked(raw.result, made)
    if problem.kind == "functional":
        mismatch = problem.comparison.value(raw.result.decode("utf-8", errors="replace"), test.output)
    else:
        mismatch = problem.comparison.stdout(raw.stdout.decode("utf-8", errors="replace"), test.output)
    if mismatch:
        return made(Verdict.WRONG_ANSWER, mismatch.message, mismatch.diff)
    return made(Verdict.PASSED, "", "")


def checked(result: bytes, made) -> TestResult:
    """The verdict of a check test that exited normally, from what the worker told on fd 3."""
    try:
        told = json.loads(result)
    except ValueError:
        told = None
    if not isinstance(told, dict):  # e.g. sys.exit(0) in the program: check() never ran
        return made(Verdict.RUNTIME_ERROR, "the program exited before check() ran")
    if told.get("passed") is True:
        return made(Verdict.PASSED, "", "")
    return made(Verdict.WRONG_ANSWER, f"check failed on {told.get('message', '?')}")
