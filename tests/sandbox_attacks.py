"""Hostile programs against the judge's sandbox, run as whoever runs this script.

    python -m tests.sandbox_attacks            # prints one JSON object: attack -> {held, detail}

tests/test_sandbox_attacks.py runs it as root and, through setpriv, as an unprivileged user
(with /usr/bin/python3: the virtual environment's interpreter lives under /root, closed to
others). Only the standard library and `problems` are imported, so it runs as that user.

Everything an attack aims at is made here, on the host side, before the program runs: a file
in a directory the user may write, a listening unix socket at a path and an abstract one, a
secret in the judge's own environment. Each program prints SAFE when every attempt of its
attack failed, else what it got; some attacks are checked from outside afterwards too
(survivor processes, IPC objects, the victim file).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from problems import builtin
from problems.problem import Problem, TestCase
from problems.judge import Verdict, judge
from problems.sandbox import Limits

ROOT = Path(__file__).resolve().parent.parent
SECRET = "sk-attack-" + "0123abcd" * 2  # never a real key: what the program must not find
MARKER = "4321.25"  # `sleep 4321.25`: a survivor's command line
SHM_KEY = 0x5EC7E7


def _problem() -> Problem:
    return Problem("attack", "Attack", "", (TestCase("t1", "", "SAFE\n"),))


# Each program reports on stdout. `attempts` is a list of (what, callable source) evaluated in the
# program; an attempt that raises counts as held.
def _program(attempts: list[tuple[str, str]], *, after: str = "") -> str:
    lines = ["import ctypes, os, signal, socket, subprocess, sys, time", "breaches = []"]
    for what, expr in attempts:
        lines += ["try:", f"    got = {expr}", f"    breaches.append({what!r} + ': ' + repr(got)[:80])",
                  "except BaseException:", "    pass"]
    lines += [after, "print('SAFE' if not breaches else 'BREACH ' + '; '.join(breaches))"]
    return "\n".join(lines) + "\n"


def attacks(host: dict) -> dict[str, dict]:
    """name -> {program, limits?, expect (a verdict), check (host-side, returns a breach or '')}."""
    victim, data_dir = host["victim"], host["data_dir"]
    libc = "ctypes.CDLL(None, use_errno=True)"
    return {
        "write outside its directory": dict(program=_program([
            ("overwrote the victim", f"open({str(victim)!r}, 'w').write('pwned')"),
            ("deleted the victim", f"os.remove({str(victim)!r})"),
            ("wrote into the repository", f"open({str(ROOT / 'pwned')!r}, 'w').write('x')"),
            ("wrote into /usr", "open('/usr/pwned', 'w').write('x')"),
            ("wrote into /etc", "open('/etc/pwned', 'w').write('x')"),
            ("wrote into /root", "open('/root/pwned', 'w').write('x')"),
        ], after="open('mine.txt', 'w').write('its own directory is writable')\n"
                 "breaches += [] if open('mine.txt').read() else ['own directory not writable']"),
            check=lambda: "" if victim.is_file() and victim.read_text() == "precious" else "the victim changed or went"),
        "read the repository and the tests": dict(program=_program([
            ("read the README", f"open({str(ROOT / 'README.md')!r}).read(10)"),
            ("read git's objects", f"os.listdir({str(ROOT / '.git' / 'objects')!r})"),
            # (a virtual environment inside it is the interpreter, and is mounted: nothing else)
            ("listed the repository", f"[e for e in os.listdir({str(ROOT)!r}) if e != '.venv'] or 1/0"),
            ("read the expected outputs", f"os.listdir({str(data_dir)!r})"),
            ("read the judge's own files", f"os.listdir({str(ROOT / 'problems')!r})"),
            ("read /etc/passwd", "open('/etc/passwd').read(10)"),
            ("listed /home", "os.listdir('/home')"),
        ])),
        "undo the mounts": dict(program=_program([
            ("remounted / read-write", f"{libc}.mount(None, b'/', None, 32, None) == 0 or 1/0"),
            ("unmounted /proc", f"{libc}.umount2(b'/proc', 2) == 0 or 1/0"),
            ("unmounted its directory", f"{libc}.umount2(b'/sandbox', 2) == 0 or 1/0"),
            ("made a user namespace", f"{libc}.unshare(0x10000000) == 0 or 1/0"),
            ("became root", "os.setuid(0)"),
            ("has capabilities", "[l for l in open('/proc/self/status') if l.startswith('CapEff') "
                                 "and l.split()[1] != '0000000000000000'][0]"),
            ("may gain privileges", "[l for l in open('/proc/self/status') if l.startswith('NoNewPrivs') "
                                    "and l.split()[1] != '1'][0]"),
            ("runs as root", "os.getuid() == 0 or 1/0"),
        ])),
        "reach host sockets": dict(program=_program([
            ("connected to a socket at a path",
             f"socket.socket(socket.AF_UNIX).connect({str(host['socket'])!r})"),
            ("connected to an abstract socket",
             f"socket.socket(socket.AF_UNIX).connect({host['abstract']!r})"),
            ("reached the host's loopback", f"socket.create_connection(('127.0.0.1', {host['port']}), timeout=2)"),
            ("resolved a name", "socket.getaddrinfo('example.com', 80)"),
        ])),
        "leave processes and IPC objects": dict(program=_program([], after=(
            f"subprocess.Popen(['sleep', '{MARKER}'], start_new_session=True)\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            f"        os.execvp('sleep', ['sleep', '{MARKER}'])\n"
            "    os._exit(0)\n"
            f"shm = {libc}.shmget({SHM_KEY}, 1 << 20, 0o1000 | 0o666)\n"
            "breaches += [] if shm >= 0 else ['(could not even make a segment)']\n"
            "time.sleep(0.2)")),
            check=lambda: _survivors() or _shm_left()),
        "memory of all its processes": dict(program=(
            "import os, time\n"
            "for _ in range(8):\n"
            "    if os.fork() == 0:\n"
            "        x = bytearray(150 << 20)\n"
            "        time.sleep(30)\n"
            "        os._exit(0)\n"
            "time.sleep(30)\nprint('SAFE')\n"),
            limits=Limits(time_s=10.0, memory_mb=512), expect=Verdict.MEMORY_LIMIT),
        "processes": dict(program=(
            "import os, time\n"
            "for _ in range(200):\n"
            "    if os.fork() == 0:\n"
            "        time.sleep(30)\n"
            "        os._exit(0)\n"
            "print('SAFE')\n"),
            limits=Limits(time_s=10.0), expect=Verdict.RUNTIME_ERROR),
        "open files": dict(program=(
            "fs = []\n"
            "try:\n"
            "    for i in range(5000):\n"
            "        fs.append(open('/dev/null'))\n"
            "    print('BREACH opened', len(fs))\n"
            "except OSError:\n"
            "    print('SAFE' if len(fs) < 1000 else f'BREACH opened {len(fs)}')\n")),
        "signal the judge": dict(program=_program([
            ("stopped the worker with SIGINT", "os.kill(os.getppid(), signal.SIGINT) or 1/0"),
            ("stopped the worker with SIGTERM", "os.kill(os.getppid(), signal.SIGTERM) or 1/0"),
            ("stopped the worker with SIGKILL", "os.kill(os.getppid(), signal.SIGKILL) or 1/0"),
            ("traced the worker", f"{libc}.ptrace(16, os.getppid(), None, None) == 0 or 1/0"),
        ], after="time.sleep(0.3)")),  # the worker is PID 1: signals it does not handle never arrive
        "read secrets from the environment": dict(program=_program([
            ("found it in its environment", f"[v for v in os.environ.values() if {SECRET!r} in v][0]"),
            ("found it in PID 1's environment", f"{SECRET!r} in open('/proc/1/environ', 'rb').read().decode() or 1/0"),
            ("read PID 1's memory", "open('/proc/1/mem', 'rb').read(1)"),
            ("found the judge's process", "[p for p in os.listdir('/proc') if p.isdigit() and int(p) > 2 "
                                          "and os.getpid() != int(p) and 'python' in open(f'/proc/{p}/cmdline').read() "
                                          "and 'pytest' in open(f'/proc/{p}/cmdline').read()][0]"),
        ])),
    }


def _survivors() -> str:
    """The program's sleeps, if any outlived the run (and then killed)."""
    time.sleep(0.3)
    left = []
    for pid in os.listdir("/proc"):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if MARKER.encode() in cmd:
            left.append(pid)
            try:
                os.kill(int(pid), 9)
            except OSError:
                pass
    return f"processes left running: {left}" if left else ""


def _shm_left() -> str:
    """The program's shared-memory segment, if it outlived the run (and then removed)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    shmid = libc.shmget(SHM_KEY, 0, 0)
    if shmid < 0:
        return ""
    libc.shmctl(shmid, 0, None)  # IPC_RMID: not left on this machine either
    return "a shared-memory segment outlived the run"


def main() -> int:
    from problems.sandbox import check_sandbox

    # Without the sandbox these programs run as this user on this machine: as root, one of them
    # unmounts the host's /proc. Never run them there.
    if check_sandbox().sandbox != "bubblewrap":
        print("sandbox_attacks: refusing to run: the judge has no sandbox here", file=sys.stderr)
        return 2
    os.environ["EMPOWER_TEST_SECRET"] = SECRET  # the judge's own environment holds a secret
    work = Path(tempfile.mkdtemp(prefix="empower-attack-"))
    work.chmod(0o755)
    victim = work / "victim.txt"
    victim.write_text("precious")
    victim.chmod(0o666)
    (work / "socks").mkdir(mode=0o777)
    path_socket = work / "socks" / "agent.sock"
    servers = [socket.socket(socket.AF_UNIX), socket.socket(socket.AF_UNIX), socket.create_server(("127.0.0.1", 0))]
    abstract = f"\0empower-attack-{os.getpid()}"
    servers[0].bind(str(path_socket))
    os.chmod(path_socket, 0o777)
    servers[1].bind(abstract)
    for s in servers[:2]:
        s.listen()
    reached = []
    for s in servers:
        s.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            for s in servers:
                try:
                    s.accept()[0].close()
                    reached.append(s.getsockname())
                except OSError:
                    pass
    threading.Thread(target=accept, daemon=True).start()
    host = {"victim": victim, "socket": path_socket, "abstract": abstract, "port": servers[2].getsockname()[1],
            "data_dir": builtin.load("lava").data_dir}
    results = {}
    for name, a in attacks(host).items():
        report = judge(a["program"], _problem(), limits=a.get("limits", Limits(time_s=5.0)))
        r = report.results[0]
        expect = a.get("expect", Verdict.PASSED)
        after = a.get("check", lambda: "")()
        held = r.verdict is expect and not after
        results[name] = {"held": held, "verdict": r.verdict.value, "message": r.message,
                         "detail": (after or r.detail or "")[-300:], "sandbox": report.isolation.sandbox}
    stop.set()
    for s in servers:
        s.close()
    shutil.rmtree(work, ignore_errors=True)
    if reached:
        results["reach host sockets"].update(held=False, detail=f"the host's servers were reached: {reached}")
    print(json.dumps({"uid": os.getuid(), "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
