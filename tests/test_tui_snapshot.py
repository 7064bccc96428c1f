"""A snapshot of the editor's main screen: a problem's file with a multi-line ghost, the
statement beside it, the status bar and the keys. `pytest --snapshot-update` redraws it after a
deliberate change of the layout (look at the SVG before committing it)."""

from __future__ import annotations

from pathlib import Path

from coach.types import Suggestion
from problems import builtin
from tests.models import split_probe
from tui.app import EmpowerApp, Settings
from tui.screen import EditorScreen
from tui.files import open_file

SOLUTION = (Path(__file__).resolve().parent.parent / "problems/catalog/lava/solution.py").read_text()


def test_the_main_screen_with_a_multi_line_ghost(snap_compare, tmp_path, monkeypatch):
    monkeypatch.setenv("EMPOWER_RECOVERY_DIR", str(tmp_path / "recovery"))
    monkeypatch.setenv("EMPOWER_CONFIG", str(tmp_path / "config.toml"))
    probe, _ = split_probe(SOLUTION)
    path = tmp_path / "lava.py"
    path.write_text(probe)
    rest = SOLUTION[len(probe):]
    ghost = "\n".join(rest.split("\n")[:6])
    app = EmpowerApp(open_file(path), Settings(log_db=str(tmp_path / "log.db")), builtin.load("lava"))

    async def show_a_ghost(pilot):
        screen = app.screen
        assert isinstance(screen, EditorScreen)
        # The statement's Markdown renders asynchronously: wait for it, or a busy machine
        # takes the picture before the panel is drawn.
        markdown = screen.query_one("Markdown")
        for _ in range(200):
            if markdown.children:
                break
            await pilot.pause(0.02)
        screen.editor.cursor_blink = False  # or the picture depends on when it is taken
        screen.editor.move_cursor(screen.editor.document.end)
        await pilot.pause()
        # A fixed suggestion, as a model would give it: the picture must not depend on timing.
        screen.editor.show_ghost(Suggestion(ghost, n_tokens=40, model="snapshot", policy="base"))
        await pilot.wait_for_scheduled_animations()
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=(110, 30), run_before=show_a_ghost)
