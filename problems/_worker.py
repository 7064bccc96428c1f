"""The judge's worker: runs one untrusted program on many tests, inside the sandbox.

Started by `problems.sandbox` as `python -I _worker.py` (possibly under `unshare`, where it is
PID 1 of a fresh PID namespace). It reads frames on fd 0 and answers on fd 1:

    {"op": "init", "source": ..., "workdir": ..., ...}   -> {"ok": true, "isolation": {...}}
    {"op": "run", "timeout": s, "lens": {"input": n}} + input bytes
                                                          -> {"exit": ..., "lens": {...}} + bytes

A run is one of three kinds of test: the program reads stdin (the request has no more); it
defines `Solution` and `func_name` is called on `args`; or HumanEval's: after the program, the
request's `check` code runs in the program's namespace and `check(<func_name>)` is called.
What a functional or check test returns comes back on fd 3 as JSON.

Each test runs in a child forked from this already-started interpreter, so a test costs a fork
instead of an interpreter start-up; the child is as fresh as a new interpreter (nothing the
program did in an earlier test survives), with stdin/stdout/stderr as real pipes.

Only the standard library may be imported here: this file runs in the sandbox with `-I`.
"""

from __future__ import annotations

import atexit
import ctypes
import io
import json
import linecache
import os
import resource
import select
import shutil
import signal
import sys
import threading
import time
import traceback
import types

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 32, 1024, 2048, 4096
MS_REC, MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 16384, 1 << 18, 1 << 21, 1 << 24
# Flags a user namespace may not clear on a mount it inherited: keep them when remounting.
LOCKED_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC,
                "noatime": MS_NOATIME, "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}
CHUNK = 1 << 16
CHECK = "<check>"  # the file name of a HumanEval test's code in tracebacks


# ---------------------------------------------------------------- framing
def read_frame(stream) -> tuple[dict, dict[str, bytes]] | None:
    line = stream.readline()
    if not line:
        return None
    header = json.loads(line)
    blobs = {name: _read_exact(stream, n) for name, n in header.get("lens", {}).items()}
    return header, blobs


def _read_exact(stream, n: int) -> bytes:
    parts, left = [], n
    while left:
        part = stream.read(left)
        if not part:
            raise EOFError("control channel closed mid-frame")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def write_frame(stream, header: dict, blobs: dict[str, bytes] | None = None) -> None:
    blobs = blobs or {}
    header = dict(header, lens={k: len(v) for k, v in blobs.items()})
    stream.write(json.dumps(header).encode() + b"\n")
    for blob in blobs.values():
        stream.write(blob)
    stream.flush()


# ---------------------------------------------------------------- isolation
class Mounts:
    """mount(2) through ctypes: the `mount` binary is not always there, and this runs as PID 1."""

    def __init__(self) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)

    def mount(self, src, target, fstype, flags, data=None) -> bool:
        enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
        return self.libc.mount(enc(src), enc(target), enc(fstype), flags, enc(data)) == 0

    def detach(self, target: str) -> None:
        self.libc.umount2(os.fsencode(target), 2)  # MNT_DETACH

    @staticmethod
    def table() -> list[tuple[str, list[str]]]:
        with open("/proc/self/mountinfo") as f:
            rows = [line.split() for line in f]
        # mountinfo escapes spaces and the like as octal (\040)
        return [(r[4].encode().decode("unicode_escape"), r[5].split(",")) for r in rows]


def _others_can_enter(path: str) -> bool:
    return bool(os.stat(path).st_mode & 0o001)


def _needed_paths() -> list[str]:
    """Directories a program needs to import the standard library and installed packages."""
    paths = {sys.base_prefix, sys.prefix, sys.exec_prefix}
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    return sorted(paths)


def expose_interpreter(m: Mounts, staging: str) -> None:
    """Let an unprivileged uid reach this interpreter's files even where they sit under a
    directory closed to others (e.g. a pyenv Python under /root, mode 0700): cover that
    directory, in our mount namespace only, with an empty tmpfs and bind back just the
    interpreter's own directories. The rest of it stays out of sight."""
    covers: dict[str, list[str]] = {}
    for path in _needed_paths():
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            ancestor = "/" + "/".join(parts[:i])
            if ancestor != path and not _others_can_enter(ancestor):
                covers.setdefault(ancestor, []).append(path)
                break
    if not covers:
        return
    m.mount("tmpfs", staging, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0700")
    for n, (top, paths) in enumerate(sorted(covers.items())):
        keep = []
        for k, path in enumerate(sorted(set(paths))):
            stage = os.path.join(staging, f"{n}-{k}")
            os.mkdir(stage)
            if m.mount(path, stage, None, MS_BIND | MS_REC):
                keep.append((path, stage))
        m.mount("tmpfs", top, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
        for path, stage in keep:
            os.makedirs(path, mode=0o755, exist_ok=True)
            m.mount(stage, path, None, MS_BIND | MS_REC)
            m.detach(stage)
    m.detach(staging)


def isolate(cfg: dict) -> dict:
    """Make the filesystem read-only but for a private tmpfs workdir, hide the test data,
    and drop root. Each step is best effort; the result says what took effect."""
    done = {"namespaces": cfg["namespaces"], "network": not cfg["namespaces"],
            "read_only_root": False, "workdir_tmpfs": False, "privileged": False}
    workdir, drop = cfg["workdir"], cfg.get("drop_to_uid")
    if cfg["namespaces"]:
        m = Mounts()
        m.mount(None, "/", None, MS_REC | MS_PRIVATE)
        if drop is not None:
            expose_interpreter(m, workdir)
        for point, opts in m.table():
            flags = MS_REMOUNT | MS_BIND | MS_RDONLY
            for opt in opts:
                flags |= LOCKED_FLAGS.get(opt, 0)
            if m.mount(None, point, None, flags) and point == "/":
                done["read_only_root"] = True
        size = f"size={cfg['workdir_mb']}m,mode=0777"
        done["workdir_tmpfs"] = m.mount("tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV, size)
        for hidden in cfg.get("hide", []):
            if os.path.isdir(hidden):
                m.mount("tmpfs", hidden, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k")
        if os.getpid() == 1:  # a /proc that shows only the sandbox's own processes
            m.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if drop is not None and os.getuid() == 0:
        if all(_others_can_enter(p) for p in _needed_paths()):
            os.chown(workdir, drop, drop)
            os.setgroups([])
            os.setgid(drop)
            os.setuid(drop)
        else:  # the program could not even import the standard library as another user
            done["privileged"] = True
    return done


# ---------------------------------------------------------------- one test
def _limit(kind: int, value: int) -> None:
    try:
        resource.setrlimit(kind, (value, value))
    except (ValueError, OSError):
        pass


def child(code, path: str, cfg: dict, req: dict, fds: dict[str, int]) -> None:
    """Runs in the forked child: become a fresh `python -I solution.py` and run the program."""
    os.setsid()  # its own process group: the worker kills the whole group on timeout
    os.dup2(fds["stdin"], 0)
    os.dup2(fds["stdout"], 1)
    os.dup2(fds["stderr"], 2)
    os.dup2(fds["result"], 3)
    os.closerange(4, 1 << 16)
    lim = cfg["limits"]
    cpu = max(1, int(req["timeout"] + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    _limit(resource.RLIMIT_AS, lim["memory_mb"] << 20)
    _limit(resource.RLIMIT_FSIZE, lim["file_mb"] << 20)
    _limit(resource.RLIMIT_NPROC, lim["processes"])
    _limit(resource.RLIMIT_CORE, 0)
    for sig in (signal.SIGXFSZ, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), "utf-8")
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), "utf-8")
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), "utf-8",
                                  errors="backslashreplace", line_buffering=True)
    sys.argv = [path]
    # A program under a HumanEval check is a module, not a script: as in HumanEval's own runs,
    # its `if __name__ == "__main__":` block does not run.
    main = types.ModuleType("solution" if "check" in req else "__main__")
    main.__file__ = path
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = sys.modules[main.__name__] = main
    status = 0
    try:
        exec(code, main.__dict__)
        func = req.get("func_name")
        if "check" in req:  # HumanEval's order: program, test code, check(entry point)
            test = f"{req['check']}\ncheck({func})\n"
            linecache.cache[CHECK] = (len(test), None, test.splitlines(True), CHECK)  # for tracebacks
            exec(compile(test, CHECK, "exec", dont_inherit=True), main.__dict__)
            _result({"passed": True})
        elif func:
            args = [json.loads(line) for line in req["args"]]
            # LiveCodeBench's rule: Solution().func, or a module-level func where there is no class
            solution = main.__dict__.get("Solution")
            _result((getattr(solution(), func) if solution is not None else main.__dict__[func])(*args))
        _finish_threads()
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except BaseException as exc:  # the program's own error: report it as the interpreter would
        # Drop this function's frame, so the traceback starts in the program like a fresh one.
        # The interpreter's own printer (C): traceback.print_exception walks every frame in
        # Python, seconds for a 100,000-deep recursion, which the time limit would then charge.
        exc = exc.with_traceback(exc.__traceback__.tb_next)  # the C printer reads this one
        sys.__excepthook__(type(exc), exc, exc.__traceback__)
        if failed := _failed_check(exc):  # the check's own assert: a wrong answer, not an error
            _result({"passed": False, "message": failed})
        else:
            status = 1
    try:
        sys.stdout.flush()
    except BaseException:
        status = status or 1
    os._exit(status)


def _result(value) -> None:
    # A value JSON cannot hold (a set, an object) is written as its repr in a marker object:
    # it then differs from every expected answer, a wrong answer as LiveCodeBench judges it.
    text = json.dumps(value, default=lambda o: {"<not JSON>": repr(o)[:200]})
    with open(3, "w", closefd=False) as out:
        out.write(text)


def _failed_check(exc: BaseException) -> str:
    """'line N: <the assert>' when `exc` is an assert of the check code failing, else ''."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if not isinstance(exc, AssertionError) or tb is None or tb.tb_frame.f_code.co_filename != CHECK:
        return ""
    line = linecache.getline(CHECK, tb.tb_lineno).strip()
    return f"line {tb.tb_lineno}: {line if len(line) <= 120 else line[:119] + '…'}"


def _finish_threads() -> None:
    # A fresh interpreter waits for non-daemon threads (competitive code often runs main()
    # in a thread with a bigger stack) and runs atexit handlers before exiting.
    for t in threading.enumerate():
        if t is not threading.main_thread() and not t.daemon:
            t.join()
    atexit._run_exitfuncs()


def _exit_status(code) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def run_test(code, path: str, cfg: dict, req: dict, data: bytes) -> tuple[dict, dict[str, bytes]]:
    pipes = {name: os.pipe() for name in ("stdin", "stdout", "stderr", "result")}
    sys.stdout.flush()
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        try:
            child(code, path, cfg, req, {"stdin": pipes["stdin"][0], "stdout": pipes["stdout"][1],
                                         "stderr": pipes["stderr"][1], "result": pipes["result"][1]})
        except BaseException as exc:  # our own failure before the program started
            os.write(2, f"judge: could not start the program: {exc!r}\n".encode())
        finally:
            os._exit(70)
    os.close(pipes["stdin"][0])
    for name in ("stdout", "stderr", "result"):
        os.close(pipes[name][1])
    header, out = _communicate(pid, pipes, data, req["timeout"], cfg["limits"]["output_mb"] << 20)
    header["wall"] = time.perf_counter() - start
    return header, out


def _communicate(pid: int, pipes, data: bytes, timeout: float, cap: int):
    """Feed stdin and drain the outputs until the child exits or the deadline passes."""
    deadline = time.monotonic() + timeout
    pidfd = os.pidfd_open(pid)
    readers = {pipes[n][0]: n for n in ("stdout", "stderr", "result")}
    bufs = {n: bytearray() for n in readers.values()}
    stdin_w, view = pipes["stdin"][1], memoryview(data)
    os.set_blocking(stdin_w, False)
    if not view:
        os.close(stdin_w)
        stdin_w = None
    timed_out = over = False
    exited = False
    while not exited:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        wlist = [stdin_w] if stdin_w is not None else []
        r, w, _ = select.select(list(readers) + [pidfd], wlist, [], left)
        if w:
            try:
                n = os.write(stdin_w, view[:CHUNK])
                view = view[n:]
            except (BrokenPipeError, BlockingIOError) as exc:
                if isinstance(exc, BrokenPipeError):
                    view = view[:0]
            if not view:
                os.close(stdin_w)
                stdin_w = None
        for fd in r:
            if fd == pidfd:
                exited = True
                continue
            chunk = os.read(fd, CHUNK)
            if chunk:
                bufs[readers[fd]] += chunk
            else:
                readers.pop(fd)
                os.close(fd)
        if sum(len(b) for b in bufs.values()) > cap:
            over = True
            break
    _kill_all(pid)
    _, status, usage = os.wait4(pid, 0)
    _reap_orphans()
    # Writers are dead now: take what is left in the pipes.
    for fd, name in readers.items():
        os.set_blocking(fd, False)
        try:
            while chunk := os.read(fd, CHUNK):
                bufs[name] += chunk
        except BlockingIOError:
            pass
        os.close(fd)
    if stdin_w is not None:
        os.close(stdin_w)
    os.close(pidfd)
    header = {"cpu": usage.ru_utime + usage.ru_stime, "max_rss_kb": usage.ru_maxrss,
              "timed_out": timed_out, "output_limit": over,
              "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
              "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None}
    return header, {k: bytes(v) for k, v in bufs.items()}


def _kill_all(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if os.getpid() == 1:
        # PID 1 of our own namespace: this reaches every process the program left behind,
        # even those that left its process group. Never done outside a namespace.
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _reap_orphans() -> None:
    if os.getpid() != 1:
        return
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG) == (0, 0):
                return
        except ChildProcessError:
            return


def _as_if_site(dirs: list[str]) -> None:
    """What `site` would have done for a program, minus the .pth files (we run with -S)."""
    import site
    site.setquit()  # exit() and quit(), which programs do call
    site.setcopyright()
    site.sethelper()
    sys.path.extend(d for d in dirs if d not in sys.path)


def _clean(workdir: str, keep: str) -> None:
    """Leave the next test the directory a fresh run would find."""
    for entry in os.scandir(workdir):
        if entry.path == keep:
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


# ---------------------------------------------------------------- main loop
def main() -> int:
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    frame = read_frame(inp)
    if frame is None:
        return 0
    cfg, blobs = frame
    _as_if_site(cfg.get("site_packages", []))
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    isolation = isolate(cfg)
    os.chdir(cfg["workdir"])
    os.environ.clear()
    os.environ.update(cfg["env"], HOME=cfg["workdir"], TMPDIR=cfg["workdir"])
    source = blobs["source"].decode("utf-8", errors="replace")
    path = os.path.join(cfg["workdir"], cfg.get("filename", "solution.py"))
    try:
        with open(path, "w") as f:  # so tracebacks can show the program's lines
            f.write(source)
    except OSError:
        pass
    try:
        code = compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        err = "".join(traceback.format_exception_only(type(exc), exc))
        write_frame(out, {"ok": False, "error": err, "isolation": isolation})
        return 0
    write_frame(out, {"ok": True, "isolation": isolation})
    while (frame := read_frame(inp)) is not None:
        req, blobs = frame
        header, outputs = run_test(code, path, cfg, req, blobs.get("input", b""))
        write_frame(out, header, outputs)
        _clean(cfg["workdir"], keep=path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
