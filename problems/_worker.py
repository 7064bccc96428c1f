"""The judge's worker: runs one untrusted program on many tests, inside the sandbox.

Started by `problems.sandbox` as `python -I -S -c <this file>` inside bubblewrap, where it is
PID 1 of a fresh PID namespace (or, where the person accepted no sandbox, as their own
process). It reads frames on fd 0 and answers on fd 1:

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


# ---------------------------------------------------------------- protection and budget
PR_SET_DUMPABLE = 4
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _set_dumpable(on: bool) -> None:
    """Not dumpable: a process of the same uid cannot ptrace us or read /proc/1/mem or environ."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, int(on), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def protect() -> None:
    """As PID 1 of the sandbox, signals from inside reach us only where we handle them: handle
    none (Python's own SIGINT handler would let a program's `kill(1, SIGINT)` end the judge)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
                signal.SIGALRM):
        signal.signal(sig, signal.SIG_IGN)
    _set_dumpable(False)


def over_budget(memory_limit: int, task_limit: int) -> str:
    """"processes" or "memory" when everything in this PID namespace but us is over its budget,
    else "". A fork bomb outruns any count: more processes than the budget ends it at once.
    Memory: the resident sizes (atomic counters in /proc/PID/stat), and only where they add up
    to more than the budget, the proportional set sizes (smaps_rollup waits on each process's
    memory map lock, slow while it forks): forked children share their parent's pages until
    they write them, and resident sizes count those pages once per child."""
    pids = [name for name in os.listdir("/proc") if name.isdigit() and name != "1"]
    if len(pids) > task_limit:
        return "processes"
    rss: dict[str, int] = {}
    tasks = 0
    for name in pids:
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()  # fields[0] is stat's 3rd (state)
            tasks += int(fields[17])  # num_threads
            rss[name] = int(fields[21]) * _PAGE
        except (OSError, ValueError, IndexError):  # gone meanwhile
            continue
    if tasks > task_limit:
        return "processes"
    if sum(rss.values()) <= memory_limit:
        return ""
    return "memory" if sum(_pss(name, size) for name, size in rss.items()) > memory_limit else ""


def _pss(pid: str, rss: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) << 10
    except (OSError, ValueError):
        pass
    return rss  # no smaps_rollup (before Linux 4.14): the resident size, an overcount


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
    _limit(resource.RLIMIT_NOFILE, lim["open_files"])
    _limit(resource.RLIMIT_CORE, 0)
    # A hard bound on forks where the kernel applies it: in the sandbox's user namespace it counts
    # the sandbox's own processes (Linux 5.14+), and a uid of the machine when outside one. Root
    # outside is exempt: there the worker's count of the namespace's processes (budget) holds.
    _limit(resource.RLIMIT_NPROC, lim["processes"])
    for sig in (signal.SIGXFSZ, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
                signal.SIGUSR2, signal.SIGALRM):
        signal.signal(sig, signal.SIG_DFL)
    _set_dumpable(True)  # the program is an ordinary process (the worker, its parent, stays closed)
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
    lim = cfg["limits"]
    watch = (lim["memory_mb"] << 20, lim["processes"]) if os.getpid() == 1 else None
    header, out = _communicate(pid, pipes, data, req["timeout"], lim["output_mb"] << 20, watch)
    header["wall"] = time.perf_counter() - start
    return header, out


WATCH_S = 0.02  # how often the whole program's memory and processes are counted


def _communicate(pid: int, pipes, data: bytes, timeout: float, cap: int, watch: tuple[int, int] | None):
    """Feed stdin and drain the outputs until the child exits, the deadline passes, or (watch:
    bytes, tasks) the program's processes together go over their budget."""
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
    budget_over = ""
    exited = False
    while not exited:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        if watch is not None and (budget_over := over_budget(*watch)):
            break
        wlist = [stdin_w] if stdin_w is not None else []
        r, w, _ = select.select(list(readers) + [pidfd], wlist, [], min(left, WATCH_S) if watch else left)
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
    if watch is not None and not budget_over:  # what it left behind counts too (a fork burst, then exit)
        budget_over = over_budget(*watch)
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
              "timed_out": timed_out, "output_limit": over, "over": budget_over,
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
    """As PID 1, every process left is our child (orphans come to init): kill and reap them
    until none is left (one forked while a kill went round gets the next)."""
    if os.getpid() != 1:
        return
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            while os.waitpid(-1, os.WNOHANG) != (0, 0):
                pass
        except ChildProcessError:
            return
        time.sleep(0.001)


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
    if os.getpid() == 1:
        protect()
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
        write_frame(out, {"ok": False, "error": err})
        return 0
    write_frame(out, {"ok": True})
    while (frame := read_frame(inp)) is not None:
        req, blobs = frame
        header, outputs = run_test(code, path, cfg, req, blobs.get("input", b""))
        write_frame(out, header, outputs)
        _clean(cfg["workdir"], keep=path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
