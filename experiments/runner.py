"""How the experiment runs Empower's own commands (as a person runs them: their progress on
ours, stopped with us) and keeps its small files (written whole) and its clock per stage.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

from coach import atomic

ROOT = Path(__file__).resolve().parent.parent


class ExperimentError(Exception):
    """The experiment cannot go on: one line for a person."""


def command(name: str) -> list[str]:
    """A console script of this environment (the same interpreter's bin directory)."""
    script = Path(sys.executable).parent / name
    if script.is_file():
        return [str(script)]
    module = {"empower-finetune": "finetune.cli", "empower-evals": "evals.cli"}[name]
    return [sys.executable, "-c", f"import sys; from {module} import main; sys.exit(main())"]


def run(name: str, *args: str, log=None) -> None:
    """Run one of Empower's commands, its output on ours (its own progress shows), and stop
    the experiment with its last line if it fails. It is our child: it ends when we end."""
    cmd = [*command(name), *map(str, args)]
    print(f"$ {name} {' '.join(map(str, args))}", flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT if log else None)
    try:
        rc = proc.wait()
    except BaseException:  # Ctrl+C reaches it too (one process group); a SIGTERM to us is passed on
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    if rc != 0:
        raise ExperimentError(f"{name} {' '.join(map(str, args[:2]))} … failed (exit {rc}); its output is above")


# ---------------------------------------------------------------------------- small files
def write_json(path: Path, data) -> None:
    atomic.write_json(path, data, indent=1)


def read_json(path: Path, default=None):
    return json.loads(path.read_text()) if path.is_file() else default


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Clock:
    """Seconds per stage, summed over the invocations that worked on it (RESULTS/stages.json)."""

    def __init__(self, path: Path):
        self.path = path
        self.data = read_json(path, {"stages": {}, "runs": []})

    def add(self, stage: str, seconds: float) -> None:
        self.data["stages"][stage] = round(self.data["stages"].get(stage, 0.0) + seconds, 1)
        write_json(self.path, self.data)
