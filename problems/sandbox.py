"""Starting and talking to the sandboxed worker that runs an untrusted program.

Every program runs in a fresh `python -I` process (`_worker.py`) in its own temporary
directory and session, with CPU-time, address-space, file-size and process-count limits.
Where Linux lets us (`unshare` from util-linux, as root or with unprivileged user
namespaces), the worker also gets no network, a read-only view of the filesystem with a
private size-limited tmpfs as its directory, the test data hidden, and its own PID
namespace, so that nothing it starts outlives it. Where it does not, the weaker limits still
apply and `isolation_warning()` says so.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from problems._worker import read_frame, write_frame

WORKER = Path(__file__).with_name("_worker.py")
NOBODY = 65534  # the uid programs run as when the judge itself runs as root
# Time for the worker to start, and for a test's reply on top of its own limit.
GRACE_S = 10.0


class JudgeError(RuntimeError):
    """The judge itself could not run (not the program's fault): one line for a person."""


@dataclass(frozen=True)
class Limits:
    time_s: float = 2.0  # wall clock per test
    program_s: float = 120.0  # wall clock for all the tests of one program
    memory_mb: int = 1024  # address space of the program
    file_mb: int = 16  # largest file it may write
    workdir_mb: int = 64  # size of its private directory (a tmpfs where namespaces work)
    output_mb: int = 64  # stdout + stderr it may produce per test
    processes: int = 64  # processes of the sandbox user (fork bombs stop here)


@dataclass
class RawRun:
    """What happened when the program ran once; the judge turns it into a verdict."""
    exit: int | None
    signal: int | None
    timed_out: bool
    output_limit: bool
    wall: float
    cpu: float
    stdout: bytes = b""
    stderr: bytes = b""
    result: bytes = b""
    lost: str = ""  # the worker itself died or hung: why


@dataclass(frozen=True)
class Isolation:
    namespaces: bool = False
    network: bool = True  # True: the program could reach the network
    read_only_root: bool = False
    workdir_tmpfs: bool = False
    privileged: bool = False  # True: the program ran as root (it could undo the rest)

    @property
    def strong(self) -> bool:
        return self.namespaces and not self.network and self.read_only_root and not self.privileged


@lru_cache(maxsize=1)
def namespace_prefix() -> tuple[str, ...] | None:
    """The `unshare` command line that gives a worker its namespaces, or None where it fails.

    Probed once per process; EMPOWER_JUDGE_ISOLATION=limits turns namespaces off.
    """
    if os.environ.get("EMPOWER_JUDGE_ISOLATION") == "limits" or sys.platform != "linux":
        return None
    exe = shutil.which("unshare")
    if exe is None:
        return None
    prefix = [exe, "--net", "--mount", "--pid", "--fork", "--kill-child"]
    if os.geteuid() != 0:
        prefix[1:1] = ["--user", "--map-root-user"]
    try:
        ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return tuple(prefix) if ok else None


def isolation_warning(iso: Isolation) -> str | None:
    if iso.strong:
        return None
    if iso.privileged:
        return ("judge: programs run as root, because this Python's files are closed to other "
                "users; the sandbox cannot hold a program that runs as root.")
    return ("judge: Linux namespaces are not available here (no working `unshare`), so programs "
            "run with time, memory, file-size and process limits only: they can reach the "
            "network and write wherever your user can.")


def _site_packages() -> list[str]:
    import site
    return [p for p in site.getsitepackages() if os.path.isdir(p)]


def _env() -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    # One thread per numeric library: the process-count limit counts threads too.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    return env


@dataclass
class Worker:
    """One program loaded in one sandboxed interpreter; `run` it on as many inputs as needed."""
    source: str
    limits: Limits = field(default_factory=Limits)
    hide: tuple[str, ...] = ()  # directories the program must not see (the expected outputs)
    isolation: Isolation = field(default_factory=Isolation)
    compile_error: str = ""

    def __post_init__(self) -> None:
        prefix = namespace_prefix()
        self._dir = tempfile.mkdtemp(prefix="empower-judge-")
        self._proc = subprocess.Popen(
            # -S: site's .pth processing (editable installs' finders) costs more than the rest
            # of the start-up; the worker puts the site-packages directories back itself.
            [*(prefix or ()), sys.executable, "-I", "-S", str(WORKER)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True, env=_env(), cwd=self._dir)
        lim = self.limits
        cfg = {"op": "init", "workdir": self._dir, "namespaces": prefix is not None,
               "hide": list(self.hide), "env": _env(), "workdir_mb": lim.workdir_mb,
               "site_packages": _site_packages(),
               "drop_to_uid": NOBODY if os.geteuid() == 0 else None,
               "limits": {"memory_mb": lim.memory_mb, "file_mb": lim.file_mb,
                          "output_mb": lim.output_mb, "processes": lim.processes}}
        reply = self._exchange(cfg, {"source": self.source.encode()}, GRACE_S)
        if reply is None:
            self.close()
            raise JudgeError(f"the judge's sandbox worker did not start ({sys.executable} -I {WORKER})")
        header, _ = reply
        iso = header.get("isolation", {})
        self.isolation = Isolation(**{k: iso[k] for k in Isolation.__dataclass_fields__ if k in iso})
        self.compile_error = header.get("error", "")

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def run(self, stdin: str, timeout: float, func_name: str | None = None, kind: str = "stdin") -> RawRun:
        """Run the program once. `stdin` is its input; for a functional test, the arguments of
        `func_name` (one JSON value a line); for a check test, the code that defines check()."""
        req = {"op": "run", "timeout": timeout}
        if kind == "functional":
            req.update(func_name=func_name, args=stdin.splitlines())
            stdin = ""
        elif kind == "check":
            req.update(func_name=func_name, check=stdin)
            stdin = ""
        reply = self._exchange(req, {"input": stdin.encode()}, timeout + GRACE_S)
        if reply is None:
            return RawRun(None, None, True, False, timeout, 0.0, lost="the sandbox worker stopped answering")
        h, out = reply
        return RawRun(h["exit"], h["signal"], h["timed_out"], h["output_limit"], h["wall"], h["cpu"],
                      out.get("stdout", b""), out.get("stderr", b""), out.get("result", b""))

    def _exchange(self, header: dict, blobs: dict, timeout: float):
        # A watchdog instead of non-blocking reads: if the worker hangs, killing it ends the read.
        timer = threading.Timer(timeout, self._kill)
        timer.start()
        try:
            write_frame(self._proc.stdin, header, blobs)
            return read_frame(self._proc.stdout)
        except (OSError, ValueError, EOFError):
            return None
        finally:
            timer.cancel()

    def _kill(self) -> None:
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        try:
            self._proc.stdin.close()
            self._proc.wait(timeout=GRACE_S)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self._kill()
        self._proc.wait()
        self._proc.stdout.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
