"""The judge on small in-memory problems: verdicts, comparison rules, and its sandbox."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from problems import sandbox
from problems.problem import Problem, TestCase
from problems.compare import Comparison
from problems.judge import Verdict, judge
from problems.sandbox import Limits

ADD = Problem("add", "Add", "Print a+b.", tuple(TestCase(f"t{i}", f"{i} {i + 1}\n", f"{2 * i + 1}\n") for i in range(5)))
ADD_OK = "a, b = map(int, input().split())\nprint(a + b)\n"
FAST = Limits(time_s=1.0, program_s=30.0)


def verdicts(report):
    return [r.verdict for r in report.results]


def test_a_correct_program_passes_every_test():
    report = judge(ADD_OK, ADD)
    assert report.passed and report.n_passed == 5
    assert all(r.time_s > 0 for r in report.results)


def test_wrong_answer_names_the_line_and_stops_at_the_first_failure():
    report = judge("a, b = map(int, input().split())\nprint(a + b if a < 2 else a - b)\n", ADD)
    assert verdicts(report) == [Verdict.PASSED] * 2 + [Verdict.WRONG_ANSWER] + [Verdict.NOT_RUN] * 2
    failed = report.first_failure
    assert failed.name == "t2" and failed.message == "line 1: expected '5', got '-1'"
    assert "want '5'" in failed.detail


def test_all_tests_runs_past_failures():
    report = judge("a, b = map(int, input().split())\nprint(a + b if a % 2 else 0)\n", ADD, all_tests=True)
    assert verdicts(report) == [Verdict.WRONG_ANSWER, Verdict.PASSED] * 2 + [Verdict.WRONG_ANSWER]


def test_runtime_error_shows_the_programs_own_traceback():
    report = judge("def f(x):\n    return 1 // x\nprint(f(0))\n", ADD)
    r = report.results[0]
    assert r.verdict is Verdict.RUNTIME_ERROR
    assert r.message == "ZeroDivisionError: integer division or modulo by zero"
    assert "line 2, in f" in r.detail and "_worker" not in r.detail


def test_syntax_error_is_a_runtime_error_on_every_test():
    report = judge("def f(:\n", ADD)
    assert set(verdicts(report)) == {Verdict.RUNTIME_ERROR}
    assert "SyntaxError" in report.compile_error


def test_exit_status_and_sys_exit_are_honoured():
    assert judge("import sys\nprint(1)\nsys.exit(3)\n", ADD).results[0].message == "exit status 3"
    assert judge(ADD_OK + "raise SystemExit(0)\n", ADD).passed
    assert judge(ADD_OK + "exit()\nprint('unreachable')\n", ADD).passed  # site's exit() exists


def test_installed_packages_can_be_imported():
    assert judge("import numpy\n" + ADD_OK, ADD).passed


def test_stdin_and_stdout_are_real_pipes():
    src = "import sys\na, b = map(int, sys.stdin.buffer.read().split())\nsys.stdout.buffer.write(b'%d\\n' % (a + b))\n"
    assert judge(src, ADD).passed
    src = "import os, sys\nassert not os.isatty(0) and os.fstat(0).st_mode & 0o010000\n" + ADD_OK
    assert judge(src, ADD).passed


def test_main_in_a_thread_with_a_bigger_stack_is_waited_for():
    # A common competitive-programming idiom: the interpreter must wait for the thread.
    src = ("import sys, threading\nthreading.stack_size(1 << 26)\nsys.setrecursionlimit(10**6)\n"
           "def main():\n    a, b = map(int, input().split())\n    print(a + b)\n"
           "threading.Thread(target=main).start()\n")
    assert judge(src, ADD).passed


def test_every_test_starts_fresh():
    # Module state and files in the working directory must not leak from one test to the next.
    src = ("import os\nseen = os.path.exists('mark')\nopen('mark', 'w').close()\n"
           "a, b = map(int, input().split())\nprint(a + b + seen)\n")
    assert judge(src, ADD).passed


@pytest.mark.parametrize("fresh", [False, True])
def test_fresh_process_mode_gives_the_same_verdicts(fresh):
    wrong = "a, b = map(int, input().split())\nprint(a + b + (a == 3))\n"
    report = judge(wrong, ADD, fresh_process=fresh, all_tests=True)
    assert verdicts(report) == [Verdict.PASSED] * 3 + [Verdict.WRONG_ANSWER, Verdict.PASSED]


def test_the_judge_compares_like_livecodebench():
    exact = Comparison()
    assert exact.stdout("1 2\n3  \n\n", "1 2\n3") is None  # stripped lines
    assert exact.stdout("0.50 2\n", "0.5 2.0\n") is None  # equal Decimals
    assert exact.stdout("0.5000001\n", "0.5\n") is not None
    assert exact.stdout("a  b\n", "a b\n") is not None  # not numbers: strings must match
    assert "2 lines, expected 3" in exact.stdout("1\n2\n", "1\n2\n3\n").message
    assert "extra line 2" in exact.stdout("1\n2\n", "1\n").message
    loose = Comparison("float", 1e-6)
    assert loose.stdout("0.5000001\n", "0.5\n") is None
    assert loose.stdout("0.51\n", "0.5\n") is not None
    assert exact.value("[1, 2]", "[1, 2]") is None
    assert exact.value("[1, 2]", "[2, 1]") is not None
    assert loose.value("[0.30000000000000004]", "[0.3]") is None


FUNC = Problem("twosum", "Two sum", "", kind="functional", func_name="twoSum", tests=(
    TestCase("a", "[2, 7, 11, 15]\n9", "[0, 1]"),
    TestCase("b", "[3, 2, 4]\n6", "[1, 2]"),
))


def test_functional_problems_call_solution_and_turn_tuples_into_lists():
    src = ("from typing import List\nclass Solution:\n    def twoSum(self, nums: List[int], target: int):\n"
           "        seen = {}\n        for i, x in enumerate(nums):\n            if target - x in seen:\n"
           "                return (seen[target - x], i)\n            seen[x] = i\n")
    assert judge(src, FUNC).passed
    wrong = "class Solution:\n    def twoSum(self, nums, target):\n        print('debug output is ignored')\n        return [0, 1]\n"
    report = judge(wrong, FUNC)
    assert verdicts(report) == [Verdict.PASSED, Verdict.WRONG_ANSWER]
    assert report.results[1].message == "returned '[0, 1]', expected '[1, 2]'"


# ---------------------------------------------------------------- hostile programs
def test_an_endless_loop_and_a_sleep_hit_the_time_limit_quickly():
    for src in ("while True:\n    pass\n", "import time\ntime.sleep(1000)\n"):
        start = time.monotonic()
        report = judge(src, ADD, limits=FAST)
        assert report.results[0].verdict is Verdict.TIME_LIMIT
        assert time.monotonic() - start < 5


def test_allocating_50_gb_is_a_memory_limit():
    report = judge("x = bytearray(50 * 2**30)\n", ADD, limits=FAST)
    assert report.results[0].verdict is Verdict.MEMORY_LIMIT
    report = judge("x = []\nwhile True:\n    x.append(bytearray(2**24))\n", ADD,
                   limits=Limits(time_s=5.0, memory_mb=256))
    assert report.results[0].verdict is Verdict.MEMORY_LIMIT


def _processes() -> set[int]:
    return {int(p) for p in os.listdir("/proc") if p.isdigit()}


def test_a_fork_bomb_is_contained_and_leaves_nothing_behind():
    before = _processes()
    src = ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n")
    report = judge(src, ADD, limits=FAST)
    # the sandbox counts the program's processes and stops it at the budget, long before its time
    assert report.results[0].verdict is Verdict.RUNTIME_ERROR and "over 64 processes" in report.results[0].message
    assert report.results[0].time_s < FAST.time_s
    time.sleep(0.5)
    assert len(_processes() - before) < 5


def test_processes_that_leave_the_group_are_killed_too():
    before = _processes()
    src = ("import os, subprocess, time\nsubprocess.Popen(['sleep', '1234'], start_new_session=True)\n"
           "if os.fork() == 0:\n    os.setsid()\n    time.sleep(1234)\n" + ADD_OK)
    assert judge(src, ADD).passed
    time.sleep(0.3)
    leftovers = [p for p in _processes() - before if _cmdline(p).startswith("sleep")]
    if sandbox.sandbox_works() is not None:
        pytest.skip("only a PID namespace can reach processes that left the process group")
    assert leftovers == []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_writing_10_gb_stops_at_the_file_size_limit(tmp_path):
    free = os.statvfs(tmp_path).f_bavail
    src = "b = b'x' * 2**20\nwith open('big', 'wb') as f:\n    for _ in range(10240):\n        f.write(b)\n"
    report = judge(src, ADD, limits=FAST)
    assert report.results[0].verdict is Verdict.RUNTIME_ERROR
    assert "file size limit" in report.results[0].message or "No space" in report.results[0].message
    assert abs(os.statvfs(tmp_path).f_bavail - free) * os.statvfs(tmp_path).f_frsize < 100 * 2**20


needs_namespaces = pytest.mark.skipif(sandbox.sandbox_works() is not None, reason="no Linux namespaces here")


@needs_namespaces
def test_files_outside_its_directory_cannot_be_deleted_or_written(tmp_path):
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    victim.chmod(0o666)
    src = (f"import os, shutil\nfor f in [lambda: os.remove({str(victim)!r}),\n"
           f"          lambda: open({str(tmp_path / 'new.txt')!r}, 'w'),\n"
           f"          lambda: shutil.rmtree({str(Path.cwd() / 'problems')!r})]:\n"
           "    try:\n        f()\n        print('escaped')\n    except OSError as e:\n        print(type(e).__name__)\n")
    report = judge(src, ADD)
    assert report.results[0].verdict is Verdict.WRONG_ANSWER
    assert "escaped" not in report.results[0].detail
    assert victim.read_text() == "precious" and not (tmp_path / "new.txt").exists()
    assert (Path.cwd() / "problems" / "judge.py").exists()


@needs_namespaces
def test_the_expected_outputs_are_hidden_from_the_program():
    # Readable by anyone on the real filesystem: only the sandbox's own view hides it.
    data = Path(tempfile.mkdtemp(prefix="empower-hidden-"))
    data.chmod(0o755)
    (data / "tests").mkdir(mode=0o755)
    (data / "tests" / "01.out").write_text("3\n")
    (data / "tests" / "01.out").chmod(0o644)
    problem = Problem("p", "P", "", (TestCase("01", "1 2\n", "3\n"),), data_dir=data)
    src = f"print(open({str(data / 'tests' / '01.out')!r}).read())\n"
    report = judge(src, problem)
    shutil.rmtree(data)
    assert report.results[0].verdict is Verdict.RUNTIME_ERROR
    assert "FileNotFoundError" in report.results[0].message


@needs_namespaces
def test_no_network_not_even_loopback():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted = []
    server.settimeout(3)
    t = threading.Thread(target=lambda: accepted.append(_accept(server)))
    t.start()
    src = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
    report = judge(src, ADD)
    t.join()
    server.close()
    assert report.results[0].verdict is Verdict.RUNTIME_ERROR
    assert accepted == [False]
    assert report.isolation.strong and report.warning is None


def _accept(server) -> bool:
    try:
        server.accept()[0].close()
        return True
    except OSError:
        return False


def test_without_a_sandbox_nothing_runs_unless_the_person_accepts_the_risk(monkeypatch):
    monkeypatch.setenv("EMPOWER_JUDGE_ISOLATION", "limits")
    monkeypatch.delenv(sandbox.UNSAFE_ENV, raising=False)
    sandbox.sandbox_works.cache_clear()
    try:
        with pytest.raises(sandbox.JudgeError) as refused:
            judge(ADD_OK, ADD)
        message = str(refused.value)
        assert "\n" not in message and "--unsafe-no-sandbox" in message
        assert "read your files and keys" in message and "network" in message and "processes" in message
        monkeypatch.setenv(sandbox.UNSAFE_ENV, "1")
        report = judge(ADD_OK, ADD)
        assert report.passed and not report.isolation.namespaces and report.isolation.sandbox == "none"
        assert "no sandbox" in report.warning and "read your files" in report.warning
        assert judge("while True:\n    pass\n", ADD, limits=FAST).results[0].verdict is Verdict.TIME_LIMIT
        assert judge("x = bytearray(50 * 2**30)\n", ADD, limits=FAST).results[0].verdict is Verdict.MEMORY_LIMIT
    finally:
        monkeypatch.delenv("EMPOWER_JUDGE_ISOLATION")
        sandbox.sandbox_works.cache_clear()


def test_the_program_budget_stops_the_rest():
    src = "import time\ntime.sleep(0.4)\n" + ADD_OK
    report = judge(src, ADD, limits=Limits(time_s=1.0, program_s=1.0), all_tests=True)
    assert Verdict.NOT_RUN in verdicts(report)
    assert report.results[-1].message == "the program's time budget ran out"


def test_unicode_output_and_large_io_round_trip():
    big = Problem("echo", "Echo", "", (TestCase("big", "é\n" + "7\n" * 300_000, "é\n" + "7\n" * 300_000),))
    assert judge("import sys\nsys.stdout.write(sys.stdin.read())\n", big).passed


def _descendants_running(pattern: str) -> list[int]:
    """This process's descendants whose command line holds `pattern` (another judge running on
    the machine at the same time, a benchmark's, is not this test's leftover)."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile

    def mine(pid: int) -> bool:
        while pid > 1:
            pid = parent.get(pid, 0)
            if pid == os.getpid():
                return True
        return False
    found = []
    for pid in parent:
        try:
            cmd = (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if pattern in cmd and mine(pid):
            found.append(pid)
    return found


def test_no_sandbox_processes_are_left():
    judge(ADD_OK, ADD)
    judge("while True: pass\n", ADD, limits=Limits(time_s=0.5, program_s=1.0))  # killed on its limit
    assert _descendants_running("problems/_worker.py") == []
