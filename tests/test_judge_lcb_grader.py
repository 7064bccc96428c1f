"""The judge against LiveCodeBench's own grader: the same verdict on every program of a table.

LiveCodeBench grades with `run_test` of `livecodebench/evaluation/testing_util.py`, shipped in the
nvidia-livecodebench package (`make setup` installs 26.3 without its dependencies, which are API
clients). Only that file is loaded, by path, and never in this process: it runs programs inside
its own interpreter (exec, SIGALRM time-outs, and `reliability_guard()`, which switches off
os.kill, shutil.rmtree, subprocess.Popen, quit and more). A separate interpreter loads it and
grades each program in a child of its own, as lcb_runner's `check_correctness` does: stdin on
/dev/null, killed after (timeout + 1) s a test + 5 s, and no result then is -1 on every test.

Both sides read each problem from the same code_generation_lite row: Empower through the
`livecodebench` loader of problems/livecodebench.py (its prelude, its functional calls), LiveCodeBench
through the sample its `get_evaluation_sample` builds; both with 1 s a test instead of 6. A
verdict is pass, or how the program failed (wrong answer, runtime error, compile error, time
limit) and on which test; both stop at the first failure.

Every case requires the same verdict of both, except
- deviations, named, which assert the difference instead. Empower differs on purpose where a
  problem uses the `float` comparison mode (looser: numbers within 1e-6), and where a program
  behaves differently inside LiveCodeBench's in-process harness than in a fresh interpreter,
  which is how Empower runs every test (problems/judge.py, problems/_worker.py);
- bugs: disagreements for Empower's judge to fix, xfail(strict=True) with what differs.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from problems.datasets import load
from problems.livecodebench import decode_tests
from problems.compare import Comparison
from problems.judge import Report, Verdict
from tests import lcb_fixture as fixture

TIMEOUT = 1  # s a test on both sides (LiveCodeBench's signal.alarm takes whole seconds)


def _grader() -> Path | None:
    spec = importlib.util.find_spec("livecodebench")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "evaluation" / "testing_util.py"
    return path if path.is_file() else None


GRADER = _grader()
pytestmark = pytest.mark.skipif(
    GRADER is None, reason="LiveCodeBench's grader is not installed: `make setup` installs "
                           "nvidia-livecodebench (--no-deps)")

# LiveCodeBench's side, in a separate interpreter: load testing_util.py by path once, then grade
# each program in a child forked from it (as lcb_runner's check_correctness forks a
# multiprocessing.Process per program, stdin on /dev/null), two at a time; a child with no result
# by its global time-out is killed, and its results are None (lcb_runner: -1 on every test).
GRADE = """
import importlib.util, json, os, select, signal, sys, time, traceback
grader, jobs_file, out_file = sys.argv[1:]
spec = importlib.util.spec_from_file_location("lcb_testing_util", grader)
lcb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lcb)
with open(jobs_file) as f:
    jobs = json.load(f)

def start(job):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        try:
            results, meta = lcb.run_test(job["sample"], job["program"], False, job["timeout"])
            out = {"results": [x if type(x) in (bool, int) else repr(x) for x in results],
                   "message": str(meta.get("error_message", ""))}
        except BaseException as exc:  # escaped run_test: lcb_runner's process ends with no result
            out = {"escaped": repr(exc), "traceback": traceback.format_exc()}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    return pid, r, time.monotonic() + job["global_timeout"]

results, running, todo = [None] * len(jobs), {}, list(range(len(jobs)))
while todo or running:
    while todo and len(running) < 2:
        i = todo.pop(0)
        pid, r, deadline = start(jobs[i])
        running[r] = (i, pid, deadline, bytearray())
    wait = min(deadline for _, _, deadline, _ in running.values()) - time.monotonic()
    ready, _, _ = select.select(list(running), [], [], max(0, wait))
    for r in list(running):
        i, pid, deadline, buf = running[r]
        chunk = os.read(r, 1 << 16) if r in ready else None
        if chunk:
            buf += chunk
        elif chunk == b"" or time.monotonic() > deadline:
            if chunk is None:  # past its global time-out
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(r)
            del running[r]
            results[i] = json.loads(buf) if chunk == b"" and buf else None
with open(out_file, "w") as f:
    json.dump(results, f)
"""

PASS = "pass"
WA, RE, CE, TLE = "wrong answer", "runtime error", "compile error", "time limit"


def on(kind: str, test: int = 1) -> str:
    """A failing verdict: how, and on which test (1-based)."""
    return f"{kind} on test {test}"


# ---------------------------------------------------------------- problems
def _row(qid: str, title: str, tests: list[tuple[str, str]], func_name: str | None = None) -> dict:
    kind = "functional" if func_name else "stdin"
    cases = [{"input": i, "output": o, "testtype": kind} for i, o in tests]
    return {"question_title": title, "question_content": title, "question_id": qid,
            "platform": "leetcode" if func_name else "atcoder", "contest_id": qid,
            "contest_date": "2024-06-01T00:00:00", "starter_code": "", "difficulty": "easy",
            "public_test_cases": json.dumps(cases[:1]), "private_test_cases": json.dumps(cases[1:]),
            "metadata": json.dumps({"func_name": func_name} if func_name else {})}


def _fn(cases: list[tuple[tuple, object]]) -> list[tuple[str, str]]:
    return [("\n".join(json.dumps(a) for a in args), json.dumps(out)) for args, out in cases]


ROWS = [
    _row("sum", "Sum: n, then n integers; print their sum",
         [("3\n1 2 3\n", "6\n"), ("1\n-5\n", "-5\n"), ("4\n10 20 30 40\n", "100\n")]),
    _row("squares", "Squares: for i = 1..n print i and i*i",
         [("3\n", "1 1\n2 4\n3 9\n"), ("1\n", "1 1\n"), ("5\n", "1 1\n2 4\n3 9\n4 16\n5 25\n")]),
    _row("palindrome", "Palindrome: print Yes or No",
         [("abba\n", "Yes\n"), ("abc\n", "No\n"), ("a\n", "Yes\n")]),
    _row("words", "Reverse the words", [("hello world\n", "world hello\n"), ("a b c\n", "c b a\n")]),
    _row("ratio", "Ratio: print a / b with 10 decimals",
         [("1 3\n", "0.3333333333\n"), ("4 2\n", "2.0000000000\n"), ("1 8\n", "0.1250000000\n")]),
    _row("echo", "Echo a line", [("hi\n", "hi\n")]),
    _row("two-sum", "twoSum: the indices of the two numbers adding up to target", _fn([
        (([2, 7, 11, 15], 9), [0, 1]), (([3, 2, 4], 6), [1, 2]), (([3, 3], 6), [0, 1])]), "twoSum"),
    _row("all-pairs", "allPairs: every [i, j] with i < j < n, in order", _fn([
        ((2,), [[0, 1]]), ((3,), [[0, 1], [0, 2], [1, 2]]), ((1,), [])]), "allPairs"),
    _row("is-even", "isEven", _fn([((4,), True), ((7,), False), ((0,), True)]), "isEven"),
    _row("average", "average of a list", _fn([
        (([1, 2],), 1.5), (([0.1, 0.2, 0.3],), (0.1 + 0.2 + 0.3) / 3), (([2, 4],), 3.0)]), "average"),
    _row("first-negative", "firstNegative: the first negative number, or null", _fn([
        (([1, -2, 3],), -2), (([1, 2],), None), (([],), None)]), "firstNegative"),
]
# From the loader's fixture: a pickled stdin row (abc337_e) and a functional one (9001).
ROWS += [r for f in ("test.jsonl", "test3.jsonl") for r in fixture.rows(f)
         if r["question_id"] in (fixture.ERRATA_ID, fixture.FUNC_ID)]


def sample(row: dict) -> dict:
    """What LiveCodeBench's CodeGenerationProblem.get_evaluation_sample makes of a row."""
    tests = decode_tests(row["public_test_cases"]) + decode_tests(row["private_test_cases"])
    return {"input_output": json.dumps({"inputs": [t["input"] for t in tests],
                                        "outputs": [t["output"] for t in tests],
                                        "fn_name": json.loads(row["metadata"]).get("func_name")})}


# ---------------------------------------------------------------- programs
@dataclass(frozen=True)
class Case:
    id: str
    problem: str  # a question_id of ROWS
    program: str
    want: str = PASS  # LiveCodeBench's verdict, and Empower's unless `empower` says otherwise
    empower: str | None = None  # a deviation or a bug: Empower's verdict
    why: str = ""  # for a deviation or a bug: what differs, and which way
    bug: bool = False  # a disagreement Empower should fix (xfail)
    float_mode: bool = False  # judge Empower with Comparison(mode="float")


def prog(*lines: str) -> str:
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def indent(block: str) -> str:
    return textwrap.indent(block, "    ")


READ = "input()\na = list(map(int, input().split()))\n"  # the sum problem's input
RATIO = "a, b = map(int, input().split())\n"
SQ = "n = int(input())\n"
TWO = "class Solution:\n    def twoSum(self, nums: List[int], target: int) -> List[int]:\n"
SEARCH = prog(  # twoSum's search, returning {}
    "for i in range(len(nums)):",
    "    for j in range(i + 1, len(nums)):",
    "        if nums[i] + nums[j] == target:",
    "            return {}")
FIND = indent(indent(SEARCH))  # as the body of the method
PAIRS = "class Solution:\n    def allPairs(self, n: int) -> List[List[int]]:\n"
EVEN = "class Solution:\n    def isEven(self, n: int) -> bool:\n"
AVG = "class Solution:\n    def average(self, nums: List[float]) -> float:\n"
NEG = "class Solution:\n    def firstNegative(self, nums: List[int]) -> Optional[int]:\n"
RECURSE = "def f(k):\n    return f(k + 1)\nprint(f(0))\n"
DEPTH = "def depth(k):\n    return 0 if k == 0 else 1 + depth(k - 1)\n"  # the prelude allows 50000

CASES = [
    # -- stdin, right: every way of reading the input
    Case("sum-input", "sum", READ + "print(sum(a))\n"),
    Case("sum-stdin-read", "sum", prog("import sys", "n, *a = map(int, sys.stdin.read().split())", "print(sum(a))")),
    Case("sum-for-line-in-stdin", "sum", prog("import sys", "lines = [s for s in sys.stdin]",
                                              "print(sum(map(int, lines[1].split())))")),
    Case("sum-readline-as-input", "sum", prog("import sys", "input = sys.stdin.readline", "n = int(input())",
                                              "print(sum(map(int, input().split())))")),
    Case("sum-from-sys-import-stdin", "sum", prog("from sys import stdin", "stdin.readline()",
                                                  "print(sum(map(int, stdin.readline().split())))")),
    Case("sum-main-guard-last", "sum", prog("def main():", "    input()", "    print(sum(map(int, input().split())))",
                                            "", 'if __name__ == "__main__":', "    main()")),
    Case("sum-prelude-names", "sum", READ + "print(reduce(add, a, 0))\n"),  # functools, operator: the prelude's
    Case("sum-deep-recursion", "sum", prog(READ, DEPTH, "print(sum(a) + depth(20000) - 20000)")),
    Case("sum-thread-joined", "sum", prog("import threading", "def main():", indent(READ), "    print(sum(a))",
                                          "threading.stack_size(1 << 26)", "t = threading.Thread(target=main)",
                                          "t.start()", "t.join()")),
    Case("sum-exit-print", "sum", READ + "exit(print(sum(a)))\n"),
    Case("sum-sys-exit-0", "sum", prog("import sys", READ, "print(sum(a))", "sys.exit(0)", "print(1)")),
    Case("sum-debug-on-stderr", "sum", prog("import sys", READ, "print('a =', a, file=sys.stderr)", "print(sum(a))")),
    # -- stdin, right: layouts both accept
    Case("sum-trailing-spaces", "sum", READ + "print(sum(a), end='   \\n')\n"),
    Case("sum-trailing-blank-lines", "sum", READ + "print(sum(a))\nprint()\nprint()\n"),
    Case("sum-leading-blank-line", "sum", READ + "print()\nprint(sum(a))\n"),
    Case("sum-no-final-newline", "sum", prog("import sys", READ, "sys.stdout.write(str(sum(a)))")),
    Case("sum-crlf", "sum", READ + "print(sum(a), end='\\r\\n')\n"),
    Case("sum-as-float", "sum", READ + "print(float(sum(a)))\n"),  # 6.0 = 6 as Decimals
    Case("sum-plus-sign", "sum", READ + "print(f'{sum(a):+d}')\n"),  # +6 = 6 as Decimals
    # -- stdin, wrong
    Case("sum-wrong", "sum", READ + "print(sum(a) + 1)\n", on(WA)),
    Case("sum-off-by-one", "sum", READ + "print(sum(a[:3]))\n", on(WA, 3)),
    Case("sum-extra-line", "sum", READ + "print(sum(a))\nprint(len(a))\n", on(WA)),
    Case("sum-no-output", "sum", READ, on(WA)),
    Case("sum-extra-token", "sum", READ + "print(sum(a), 0)\n", on(WA)),
    Case("sum-as-text", "sum", READ + "print(f'sum = {sum(a)}')\n", on(WA)),
    # -- stdin, errors and limits
    Case("sum-zero-division", "sum", READ + "print(sum(a) // 0)\n", on(RE)),
    Case("sum-error-after-right-output", "sum", READ + "print(sum(a))\nraise ValueError('late')\n", on(RE)),
    Case("sum-error-on-test-3", "sum", READ + "assert len(a) < 4\nprint(sum(a))\n", on(RE, 3)),
    Case("sum-name-error", "sum", READ + "print(total)\n", on(RE)),
    Case("sum-reads-too-much-input", "sum", READ + "input()\nprint(sum(a))\n", on(RE)),
    Case("sum-readline-past-the-end", "sum", prog("import sys", "sys.stdin.readline()", "sys.stdin.readline()",
                                                  "print(int(sys.stdin.readline()))"), on(RE)),
    Case("sum-unbounded-recursion", "sum", prog(READ, "sys.setrecursionlimit(2000)", RECURSE), on(RE)),
    Case("sum-syntax-error", "sum", READ + "print(sum(a)\n", on(CE)),
    Case("sum-indentation-error", "sum", "if True:\nprint(1)\n", on(CE)),
    # Both put their header first, and a __future__ import must come first.
    Case("sum-future-import", "sum", prog("from __future__ import annotations", READ, "print(sum(a))"), on(CE)),
    Case("sum-endless-loop", "sum", "while True:\n    pass\n", on(TLE)),
    Case("sum-sleeps", "sum", "import time\ntime.sleep(30)\n", on(TLE)),
    # It catches LiveCodeBench's TimeoutException; the global time-out ends it.
    Case("echo-swallows-the-alarm", "echo", prog("while True:", "    try:", "        pass",
                                                 "    except BaseException:", "        pass"), on(TLE)),
    # -- stdin, several lines and tokens (numbers compared as Decimals, words as strings)
    Case("squares", "squares", SQ + "for i in range(1, n + 1):\n    print(i, i * i)\n"),
    Case("squares-double-spaces", "squares", SQ + "for i in range(1, n + 1):\n    print(i, '', i * i)\n"),
    Case("squares-tabs", "squares", SQ + "for i in range(1, n + 1):\n    print(i, i * i, sep='\\t')\n"),
    Case("squares-trailing-spaces", "squares", SQ + "for i in range(1, n + 1):\n    print(i, i * i, '')\n"),
    Case("squares-blank-line-between", "squares",
         SQ + "print('\\n\\n'.join(f'{i} {i * i}' for i in range(1, n + 1)))\n", on(WA)),
    Case("squares-on-one-line", "squares", SQ + "print(*(f'{i} {i * i}' for i in range(1, n + 1)))\n", on(WA)),
    Case("squares-reversed", "squares", SQ + "for i in range(n, 0, -1):\n    print(i, i * i)\n", on(WA)),
    Case("squares-missing-last-line", "squares", SQ + "for i in range(1, n):\n    print(i, i * i)\n", on(WA)),
    Case("palindrome", "palindrome", "s = input()\nprint('Yes' if s == s[::-1] else 'No')\n"),
    Case("palindrome-upper-case", "palindrome", "s = input()\nprint('YES' if s == s[::-1] else 'NO')\n", on(WA)),
    Case("palindrome-always-yes", "palindrome", "input()\nprint('Yes')\n", on(WA, 2)),
    Case("words", "words", "print(*input().split()[::-1])\n"),
    Case("words-double-space", "words", "print('  '.join(input().split()[::-1]))\n", on(WA)),
    # -- stdin, real numbers (LiveCodeBench: equal as exact Decimals)
    Case("ratio", "ratio", RATIO + "print(f'{a / b:.10f}')\n"),
    Case("ratio-scientific", "ratio", RATIO + "print(f'{a / b:.9e}')\n"),
    Case("ratio-whole-as-integer", "ratio", RATIO + "print(a // b if a % b == 0 else f'{a / b:.10f}')\n"),
    Case("ratio-repr", "ratio", RATIO + "print(a / b)\n", on(WA)),
    Case("ratio-12-digits", "ratio", RATIO + "print(f'{a / b:.12f}')\n", on(WA)),
    Case("ratio-3-digits", "ratio", RATIO + "print(f'{a / b:.3f}')\n", on(WA)),
    Case("ratio-3-digits-float-mode", "ratio", RATIO + "print(f'{a / b:.3f}')\n", on(WA), float_mode=True),
    Case("add-two-fixture", fixture.ERRATA_ID, fixture.ERRATA_REFERENCE),
    # -- functional, right
    Case("two-sum", "two-sum", TWO + FIND.format("[i, j]")),
    Case("two-sum-tuple", "two-sum", TWO + FIND.format("i, j")),  # a tuple becomes a list on both sides
    Case("two-sum-prints", "two-sum", TWO + "        print('looking', nums)\n" + FIND.format("[i, j]")),
    Case("two-sum-helper-and-imports", "two-sum", prog(
        "from itertools import combinations", TWO,
        "        return next([i, j] for i, j in combinations(range(len(nums)), 2) if nums[i] + nums[j] == target)")),
    Case("count-pairs-fixture", fixture.FUNC_ID, fixture.FUNC_REFERENCE),
    Case("all-pairs", "all-pairs", PAIRS + "        return [[i, j] for i in range(n) for j in range(i + 1, n)]\n"),
    Case("all-pairs-tuple-of-lists", "all-pairs",
         PAIRS + "        return tuple([i, j] for i in range(n) for j in range(i + 1, n))\n"),
    Case("all-pairs-deep-recursion", "all-pairs", prog(
        PAIRS, indent(indent(DEPTH)), "        assert depth(20000) == 20000",
        "        return [[i, j] for i in range(n) for j in range(i + 1, n)]")),
    Case("is-even", "is-even", EVEN + "        return n % 2 == 0\n"),
    Case("is-even-as-int", "is-even", EVEN + "        return int(n % 2 == 0)\n"),  # True == 1, on both sides
    Case("is-even-as-float", "is-even", EVEN + "        return float(n % 2 == 0)\n"),
    Case("average", "average", AVG + "        return sum(nums) / len(nums)\n"),
    Case("average-whole-as-int", "average", prog(  # 3 == 3.0
        AVG, "        s = sum(nums)", "        return s // len(nums) if s % len(nums) == 0 else s / len(nums)")),
    Case("first-negative", "first-negative", prog(
        NEG, "        for x in nums:", "            if x < 0:", "                return x", "        return None")),
    Case("first-negative-implicit-none", "first-negative", prog(
        NEG, "        for x in nums:", "            if x < 0:", "                return x")),
    # -- functional, wrong
    Case("two-sum-reversed", "two-sum", TWO + FIND.format("[j, i]"), on(WA)),
    Case("two-sum-no-return", "two-sum", TWO + FIND.format("None").replace("return None", "pass"), on(WA)),
    Case("two-sum-as-string", "two-sum", TWO + FIND.format("str([i, j])"), on(WA)),
    Case("count-pairs-fixture-wrong", fixture.FUNC_ID, fixture.FUNC_WRONG, on(WA)),
    Case("all-pairs-wrong-order", "all-pairs",
         PAIRS + "        return [[i, j] for i in range(n) for j in range(n - 1, i, -1)]\n", on(WA, 2)),
    Case("all-pairs-none-for-empty", "all-pairs",
         PAIRS + "        return [[i, j] for i in range(n) for j in range(i + 1, n)] or None\n", on(WA, 3)),
    Case("is-even-as-text", "is-even", EVEN + "        return 'true' if n % 2 == 0 else 'false'\n", on(WA)),
    Case("is-even-inverted", "is-even", EVEN + "        return n % 2\n", on(WA)),
    Case("average-floor", "average", AVG + "        return sum(nums) // len(nums)\n", on(WA)),
    # 0.2 != 0.20000000000000004
    Case("average-statistics-mean", "average", AVG + "        return statistics.mean(nums)\n", on(WA, 2)),
    Case("first-negative-minus-one", "first-negative",
         NEG + "        return next((x for x in nums if x < 0), -1)\n", on(WA, 2)),
    # -- functional, errors and limits
    Case("two-sum-raises", "two-sum", TWO + "        raise ValueError('no pair')\n", on(RE)),
    Case("two-sum-error-on-test-3", "two-sum", prog(TWO, "        assert len(nums) > 2", FIND.format("[i, j]")),
         on(RE, 3)),
    Case("two-sum-wrong-method-name", "two-sum", TWO.replace("twoSum", "two_sum") + FIND.format("[i, j]"), on(RE)),
    Case("two-sum-wrong-arity", "two-sum",
         TWO.replace("target: int", "target: int, k: int") + FIND.format("[i, j]"), on(RE)),
    Case("two-sum-init-needs-an-argument", "two-sum", prog(
        "class Solution:", "    def __init__(self, k):", "        self.k = k", TWO.split("\n")[1],
        FIND.format("[i, j]")),
         on(RE)),
    Case("two-sum-missing-module", "two-sum", "import not_a_module\n" + TWO + FIND.format("[i, j]"), on(RE)),
    Case("two-sum-syntax-error", "two-sum", TWO + "        return [0, 1\n", on(CE)),
    Case("two-sum-endless-loop", "two-sum", TWO + "        while True:\n            pass\n", on(TLE)),
    Case("first-negative-stop-iteration", "first-negative",
         NEG + "        return next(x for x in nums if x < 0)\n", on(RE, 2)),
    Case("first-negative-index-error", "first-negative", prog(
        NEG, "        if nums[0] < 0:", "            return nums[0]",
        "        return next((x for x in nums if x < 0), None)"), on(RE, 3)),

    # -- deviations: the float comparison mode (Empower looser on purpose)
    Case("ratio-repr-float-mode", "ratio", RATIO + "print(a / b)\n", on(WA), PASS, float_mode=True,
         why="0.3333333333333333 for 0.3333333333: float mode accepts it (within 1e-6), LiveCodeBench "
             "wants the exact Decimal"),
    Case("ratio-12-digits-float-mode", "ratio", RATIO + "print(f'{a / b:.12f}')\n", on(WA), PASS, float_mode=True,
         why="more digits than the expected output: float mode accepts them, LiveCodeBench does not"),
    Case("words-double-space-float-mode", "words", "print('  '.join(input().split()[::-1]))\n", on(WA), PASS,
         float_mode=True, why="float mode compares a line token by token, so two spaces between words pass; "
                              "LiveCodeBench compares a line with words as one string"),
    Case("average-statistics-mean-float-mode", "average", AVG + "        return statistics.mean(nums)\n",
         on(WA, 2), PASS, float_mode=True,
         why="a returned 0.2 for 0.20000000000000004: float mode accepts it, LiveCodeBench compares with =="),

    # -- deviations: Empower runs a program as a fresh interpreter does, LiveCodeBench inside its
    #    own process (a stdin program wrapped in one function, sys.stdin a StringIO, open and quit
    #    replaced, SystemExit swallowed, one Solution() for all the tests)
    Case("sum-global-in-function", "sum", prog("total = 0", "def add(x):", "    global total", "    total += x",
                                               READ, "for x in a:", "    add(x)", "print(total)"),
         on(RE), PASS, why="Empower looser: LiveCodeBench wraps the program in a function, so `total` "
                          "is a local of it and `global total` a NameError"),
    Case("sum-main-guard-not-last", "sum", prog("def main():", indent(READ), "    print(sum(a))", "",
                                                "if __name__ == '__main__':", "    main()", "DONE = True"),
         on(WA), PASS, why="Empower looser: LiveCodeBench unwraps `if __name__ == '__main__'` only as the "
                          "last statement; elsewhere __name__ is its module's name and nothing is printed"),
    Case("sum-stdin-buffer", "sum", prog("import sys", "n, *a = map(int, sys.stdin.buffer.read().split())",
                                         "print(sum(a))"),
         on(RE), PASS, why="Empower looser: LiveCodeBench's sys.stdin is a StringIO, with no .buffer"),
    Case("sum-open-0", "sum", "n, *a = map(int, open(0).read().split())\nprint(sum(a))\n",
         on(RE), PASS, why="Empower looser: LiveCodeBench's header `from io import *` binds open to io.open, "
                          "past its mock of builtins.open, so open(0) reads the grader's own stdin (empty)"),
    Case("sum-quit", "sum", READ + "print(sum(a))\nquit()\n",
         on(RE), PASS, why="Empower looser: LiveCodeBench's reliability_guard sets builtins.quit = None"),
    Case("sum-os-write", "sum", prog("import os", READ, "os.write(1, f'{sum(a)}\\n'.encode())"),
         on(WA), PASS, why="Empower looser: LiveCodeBench captures sys.stdout only, not file descriptor 1"),
    Case("sum-return-at-top-level", "sum", READ + "print(sum(a))\nreturn\n",
         PASS, on(CE), why="Empower stricter: `return` outside a function is a SyntaxError in Python; "
                           "inside LiveCodeBench's wrapper function it is not"),
    Case("sum-exit-status-1", "sum", prog("import sys", READ, "print(sum(a))", "sys.exit(1)"),
         PASS, on(RE), why="Empower stricter: a non-zero exit status is a runtime error; LiveCodeBench "
                           "swallows SystemExit and grades the output"),
    Case("two-sum-state-between-tests", "two-sum", prog(
        "class Solution:", "    calls = 0", TWO.split("\n")[1], "        self.calls += 1",
        "        assert self.calls == 1", FIND.format("[i, j]")),
         on(RE, 2), PASS, why="Empower looser: LiveCodeBench makes one Solution() for all the tests, so "
                              "state from test 1 is still there on test 2; Empower starts each test afresh"),
    Case("two-sum-exits", "two-sum", TWO + "        exit()\n",
         on(TLE), on(WA), why="a different failure: SystemExit escapes LiveCodeBench's run_test, so "
                              "lcb_runner gets no result (-1 on every test, as for its global time-out); "
                              "Empower reads no return value, a wrong answer"),
    Case("two-sum-endless-loop-at-load", "two-sum", "while True:\n    pass\n" + TWO + FIND.format("[i, j]"),
         on(RE), on(TLE), why="a different failure: LiveCodeBench's alarm while it loads a functional "
                              "program ends as 'Error during testing' (-4), Empower calls it a time limit"),

    Case("all-pairs-list-of-tuples", "all-pairs",
         PAIRS + "        return [(i, j) for i in range(n) for j in range(i + 1, n)]\n", on(WA), PASS,
         why="Empower looser on purpose: a return value is compared as JSON, as LeetCode itself "
             "serializes it (a tuple is an array at any depth); LiveCodeBench turns only a top-level "
             "tuple into a list, so [(0, 1)] != [[0, 1]] there"),

    # -- three disagreements this table found, fixed in the worker (problems/_worker.py)
    Case("two-sum-returns-a-set", "two-sum", TWO + FIND.format("{i, j}"), on(WA)),  # was a runtime error
    Case("sum-deep-unbounded-recursion", "sum", prog(READ, "sys.setrecursionlimit(100000)", RECURSE),
         on(RE)),  # was a time limit: printing 100,000 frames in Python took seconds
    Case("two-sum-without-class", "two-sum", "def twoSum(nums, target):\n" + indent(SEARCH.format("[i, j]"))),
]


# ---------------------------------------------------------------- both graders
_SYNTAX = re.compile(r"\(<string>, line \d+\)$")


def lcb_verdict(results: list, message: str, n_tests: int) -> str:
    """LiveCodeBench's results: True, False or -2 wrong answer, -3 time limit, -4 runtime error
    (also a program that does not load: 'Error during testing: <the exception>'), -1 no result
    within the global time-out."""
    for i, r in enumerate(results, 1):
        if r is True:
            continue
        if r is False or r == -2:
            return on(WA, i)
        if r in (-1, -3):
            return on(TLE, i)
        if r == -4 and message.startswith("Error during testing") and _SYNTAX.search(message):
            return on(CE, i)  # a SyntaxError while exec-ing the program
        if r == -4:
            return on(RE, i)
        raise AssertionError(f"unknown LiveCodeBench result {r!r} ({message})")
    assert len(results) == n_tests, (results, message)
    return PASS


def run_lcb(programs: list[tuple[dict, str]]) -> list[str]:
    """LiveCodeBench's verdict on each (row, program)."""
    jobs = []
    for row, program in programs:
        s = sample(row)
        n = len(json.loads(s["input_output"])["inputs"])
        jobs.append({"sample": s, "program": program, "timeout": TIMEOUT, "global_timeout": (TIMEOUT + 1) * n + 5})
    with tempfile.TemporaryDirectory(prefix="lcb-grader-") as d:
        job_file, out_file = Path(d, "jobs.json"), Path(d, "results.json")
        job_file.write_text(json.dumps(jobs))
        proc = subprocess.run([sys.executable, "-I", "-c", GRADE, str(GRADER), str(job_file), str(out_file)],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=d, timeout=600)
        assert proc.returncode == 0 and out_file.exists(), f"LiveCodeBench's grader failed:\n{proc.stderr[-3000:]}"
        got = json.loads(out_file.read_text())
    verdicts = []
    for job, res in zip(jobs, got):
        n = len(json.loads(job["sample"]["input_output"])["inputs"])
        if res is None or "escaped" in res:  # lcb_runner's check_correctness: no result is -1 on every test
            res = {"results": [-1] * n, "message": "no result" + (f": {res['escaped']}" if res else "")}
        verdicts.append(lcb_verdict(res["results"], res["message"], n))
    return verdicts


def empower_verdict(report: Report) -> str:
    if report.compile_error:
        return on(CE)
    failed = report.first_failure
    if failed is None:
        assert report.passed, report
        return PASS
    kind = {Verdict.WRONG_ANSWER: WA, Verdict.RUNTIME_ERROR: RE, Verdict.TIME_LIMIT: TLE}[failed.verdict]
    return on(kind, report.results.index(failed) + 1)


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory) -> dict[str, tuple[str, str]]:
    """case id -> (LiveCodeBench's verdict, Empower's)."""
    d = tmp_path_factory.mktemp("lcb-rows")
    (d / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    problems = {p.id: replace(p, time_limit_s=float(TIMEOUT))
                for p in load("livecodebench", path=d, include_errata=True)}
    rows = {r["question_id"]: r for r in ROWS}

    def empower(case: Case) -> str:
        p = problems[case.problem]
        if case.float_mode:
            p = replace(p, comparison=Comparison(mode="float"))
        return empower_verdict(p.judge(case.program))

    # A program graded in two comparison modes is run once by LiveCodeBench's grader.
    first = {(c.problem, c.program) for c in CASES if slow(c)}
    keys = sorted({(c.problem, c.program) for c in CASES}, key=lambda k: k not in first)
    with ThreadPoolExecutor(3) as pool:  # LiveCodeBench's grader (two children at a time), and two judges
        lcb = pool.submit(run_lcb, [(rows[problem], program) for problem, program in keys])
        emp = {c.id: pool.submit(empower, c) for c in sorted(CASES, key=lambda c: not slow(c))}
        by_program = dict(zip(keys, lcb.result()))
        return {c.id: (by_program[c.problem, c.program], emp[c.id].result()) for c in CASES}


def slow(case: Case) -> bool:
    """A time limit on one side: graded first, so that the threads finish together."""
    return TLE in case.want or TLE in (case.empower or "")


class Disagreement(AssertionError):
    pass


def test_the_table_is_large_and_names_are_unique():
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)
    assert all(c.why for c in CASES if c.empower) and all(c.empower for c in CASES if c.bug)


def _params():
    for c in CASES:
        marks = [pytest.mark.xfail(strict=True, raises=Disagreement, reason=c.why)] if c.bug else []
        yield pytest.param(c, id=c.id, marks=marks)


@pytest.mark.parametrize("case", _params())
def test_the_judge_agrees_with_livecodebench(case: Case, verdicts):
    lcb, emp = verdicts[case.id]
    assert lcb == case.want, f"LiveCodeBench's grader: {lcb}, the table says {case.want}"
    if case.bug:  # Empower still gives what the table records, which is not LiveCodeBench's verdict
        assert emp in (case.want, case.empower), f"Empower: {emp}, the table says {case.empower}"
    want = case.empower if case.empower and not case.bug else case.want
    if emp != want:
        raise Disagreement(f"Empower: {emp}; LiveCodeBench: {lcb}" + (f" ({case.why})" if case.why else ""))
