"""A project, not a file: `empower-tui DIR` (or a file in a git repository), Ctrl+P's fuzzy
picker over the project's files, several buffers each with its own undo, save, recovery copy and
log session, non-Python files, and a quit that asks about every unsaved buffer. The real app
through its pilot, real files, real git."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from textual.command import CommandPalette

from tests.pilot import until
from tui.app import EmpowerApp, Settings
from tui.cli import parser, prepare, project_of
from tui.files import open_file
from tui.project import MAX_FILES, Project, language_of
from tui.screen import EditorScreen
from tui.screens import Question


pytestmark = pytest.mark.usefixtures("private_dirs")  # tests/conftest.py


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "shapes.py").write_text("def area(w, h):\n    return w * h\n")
    (root / "main.py").write_text("from pkg.shapes import area\n\nprint(area(2, 3))\n")
    (root / "settings.json").write_text('{"size": 3}\n')
    (root / "pyproject.toml").write_text('[project]\nname = "proj"\n')
    (root / "notes.txt").write_text("plain text\n")
    (root / ".gitignore").write_text("build/\n")
    (root / "build").mkdir()
    (root / "build" / "out.py").write_text("x = 1\n")
    git(root, "init", "-q")
    git(root, "add", "main.py", "pkg/shapes.py")
    return root


def test_a_project_lists_what_git_lists_and_a_hostile_config_runs_nothing(repo, tmp_path):
    pwned = tmp_path / "pwned"
    git(repo, "config", "core.fsmonitor", f"touch {pwned}; false")
    project = Project.around(repo / "pkg" / "shapes.py")
    assert project.root == repo.resolve() or project.root == repo
    files = project.files()
    assert files == sorted(files) and {"main.py", "pkg/shapes.py", "settings.json", "notes.txt", ".gitignore"} <= set(files)
    assert "build/out.py" not in files  # ignored
    assert not pwned.exists()


def test_outside_git_a_walk_skips_hidden_and_tool_directories(tmp_path):
    root = tmp_path / "plain"
    for rel in ("a.py", "sub/b.py", ".hidden/c.py", "node_modules/d.js", "__pycache__/e.pyc", "venv/f.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x\n")
    assert Project(root).files() == ["a.py", "sub/b.py"]
    assert MAX_FILES >= 10_000


def test_languages_follow_the_suffix_and_unknown_is_plain_text():
    assert (language_of("a.py"), language_of("x.TOML"), language_of("notes.txt"), language_of("Makefile")) == \
        ("python", "toml", None, None)


HIGHLIGHT = """
import asyncio, sys
from textual.app import App
from textual.widgets import TextArea
class A(App):
    def compose(self):
        yield TextArea("x = 1\\n", language=sys.argv[1])
async def main():
    async with A().run_test() as pilot:
        await pilot.pause(0.1)
asyncio.run(main())
"""


def test_every_highlighted_language_opens_without_crashing_the_process():
    """Some tree-sitter grammars crash the interpreter outright (javascript and json with today's
    wheels): each language the editor highlights, opened in a process of its own."""
    import sys

    from tui.project import LANGUAGES

    for language in sorted(set(LANGUAGES.values())):
        run = subprocess.run([sys.executable, "-c", HIGHLIGHT, language], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, f"{language}: exit {run.returncode} {run.stderr[-500:]}"


def test_the_command_line_opens_a_directory_as_a_project_and_a_file_with_its_repository(repo, tmp_path):
    settings, opened, problem = prepare(parser().parse_args([str(repo), "--no-suggestions"]))
    assert opened is None and problem is None
    assert project_of(str(repo)).root in (repo, repo.resolve())
    assert project_of(str(repo / "main.py")).root in (repo, repo.resolve())
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "x.py").write_text("")
    assert project_of(str(lone / "x.py")) is None  # a file outside git is just a file


async def pick(pilot, app: EmpowerApp, query: str, expect: str) -> EditorScreen:
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(app.screen, CommandPalette), what="the picker")
    await pilot.press(*query)
    await until(pilot, lambda: isinstance(app.screen, EditorScreen) or _first_hit(app) is not None, what="hits")
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, EditorScreen) and app.screen.opened.path.name == expect,
                what=f"{expect}'s buffer")
    return app.screen


def _first_hit(app):
    from textual.command import CommandList

    try:
        options = app.screen.query_one(CommandList)
    except Exception:
        return None
    return options.highlighted if options.option_count else None


async def test_ctrl_p_switches_buffers_each_keeping_its_own_text_undo_and_save(repo):
    app = EmpowerApp(open_file(repo / "main.py"), Settings(suggestions=False, log_db=str(repo.parent / "log.db")),
                     project=Project(repo))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, EditorScreen), what="the editor")
        main = app.screen
        main.editor.move_cursor(main.editor.document.end)
        await pilot.press(*"# main", "enter")
        shapes = await pick(pilot, app, "shapes", "shapes.py")
        assert shapes is not main and shapes.editor.text.startswith("def area")
        shapes.editor.move_cursor(shapes.editor.document.end)
        await pilot.press(*"# two", "enter")
        await pilot.press("ctrl+z")  # undo in this buffer only
        await pilot.press("ctrl+s")
        back = await pick(pilot, app, "main", "main.py")
        assert back is main and main.editor.text.endswith("# main\n") and main.dirty
        await pilot.press("ctrl+s")
        assert (repo / "main.py").read_text().endswith("# main\n")
        saved = (repo / "pkg" / "shapes.py").read_text()
        assert saved.startswith("def area") and saved == shapes.editor.text
        # a TOML file opens highlighted as TOML, a .txt (and JSON, see tui/project.py) as plain text
        toml = await pick(pilot, app, "pyproject", "pyproject.toml")
        assert toml.editor.language == "toml"
        js = await pick(pilot, app, "settings.json", "settings.json")
        assert js.editor.language is None
        txt = await pick(pilot, app, "notes", "notes.txt")
        assert txt.editor.language is None
        assert set(app.buffers) == {repo / f for f in ("main.py", "pkg/shapes.py", "pyproject.toml",
                                                       "settings.json", "notes.txt")}


async def test_quit_asks_about_every_unsaved_buffer(repo):
    app = EmpowerApp(open_file(repo / "main.py"), Settings(suggestions=False, log_db=str(repo.parent / "log.db")),
                     project=Project(repo))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, EditorScreen), what="the editor")
        await pilot.press(*"#1 ")
        await pick(pilot, app, "shapes", "shapes.py")
        await pilot.press(*"#2 ")
        await pick(pilot, app, "notes", "notes.txt")  # clean
        await pilot.press("ctrl+q")
        asked = []
        for _ in range(2):  # main and shapes, each in its own buffer
            await until(pilot, lambda: isinstance(app.screen, Question), what="the question")
            asked.append(app.screen_stack[-2].opened.path.name)
            app.screen.action_answer("save")
            await pilot.pause(0.1)
        await until(pilot, lambda: not app.is_running, what="the exit")
    assert sorted(asked) == ["main.py", "shapes.py"]
    assert (repo / "main.py").read_text().startswith("#1 ") and (repo / "pkg" / "shapes.py").read_text().startswith("#2 ")


async def test_a_project_with_no_file_opens_the_picker_first(repo):
    app = EmpowerApp(None, Settings(suggestions=False, log_db=str(repo.parent / "log.db")), project=Project(repo))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), what="the picker")
        await pilot.press(*"main.py")
        await until(pilot, lambda: _first_hit(app) is not None, what="hits")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, EditorScreen), what="the editor")
        assert app.screen.opened.path == repo / "main.py"


# ---------------------------------------------------------------- context from the other files
def test_the_chunks_chosen_share_names_with_the_code_at_the_cursor_in_a_stable_order():
    from coach import related

    shapes = "import math\n\n\ndef circle_area(radius):\n    return math.pi * radius ** 2\n" + "\n" * 30 + \
        "def unrelated_thing(payload):\n    return payload.upper()\n"
    units = "METRES_PER_FOOT = 0.3048\n\n\ndef feet_to_metres(feet):\n    return feet * METRES_PER_FOOT\n"
    around = "from shapes import circle_area\n\nradius = 2\ntotal = circle_area(radius) + "
    chosen = related.choose({"units.py": units, "shapes.py": shapes}, around)
    assert chosen and chosen[0].startswith("# shapes.py\n") and "def circle_area(radius)" in chosen[0]
    assert not any("unrelated_thing" in c for c in chosen) and not any("units.py" in c for c in chosen)
    assert related.choose({"units.py": units}, "x = 1\n") == ()  # no shared name: nothing
    # the same code at the cursor gives the same chunks in the same order (the KV cache's start)
    assert related.choose({"shapes.py": shapes, "units.py": units}, around) == chosen
    assert sum(map(len, chosen)) <= related.MAX_CHARS


def test_the_completion_prompt_puts_the_chunks_ahead_of_the_code_and_chat_leaves_them_out(test_models):
    from coach import prompts
    from coach.backends import load_backend
    from coach.specs import resolve
    from coach.types import Context

    backend = load_backend(resolve(str(test_models.memorizer_gguf)))
    try:
        chunk = "# shapes.py\ndef circle_area(radius):\n    return 3.14 * radius ** 2\n\n"
        ctx = Context("total = circle_", "", (chunk,))
        assert prompts.build(ctx, "completion", backend, 4000).text == chunk + "total = circle_"
        assert prompts.build(ctx, "completion", backend, 100).text == "total = circle_"  # over a quarter: left out
        # the chat framing, as an OpenAI-compatible server gets it (messages; no template here)
        server = SimpleNamespace(spec=SimpleNamespace(kind="openai"))
        chat = prompts.build(ctx, "chat", server, 4000)
        assert "circle_area(radius)" not in "".join(m["content"] for m in chat.messages)
    finally:
        backend.close()


async def test_the_model_is_shown_a_name_defined_only_in_another_open_buffer(repo, test_models):
    from coach.backends import load_backend
    from coach.engine import Coach
    from coach.policies import parse
    from coach.specs import resolve

    seen: list[str] = []
    backend = load_backend(resolve(str(test_models.memorizer_gguf)))
    real = backend.generate
    backend.generate = lambda request: (seen.append(request.prompt.text), real(request))[1]
    (repo / "pkg" / "shapes.py").write_text("def rectangle_area(width, height):\n    return width * height\n")
    (repo / "main.py").write_text("from pkg.shapes import rectangle_area\n\nwidth, height = 2, 3\n")
    for context in (True, False):
        seen.clear()
        shutil.rmtree(os.environ["EMPOWER_RECOVERY_DIR"], ignore_errors=True)  # the first run's unsaved text
        app = EmpowerApp(open_file(repo / "main.py"), Settings(log_db=str(repo.parent / "log.db"), delay_s=0.02,
                                                                context=context),
                         coach=Coach(backend, parse("base-8")), project=Project(repo))
        app.coach.close = lambda: None  # the backend serves both runs
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, EditorScreen), what="the editor")
            await pick(pilot, app, "shapes", "shapes.py")
            main = await pick(pilot, app, "main", "main.py")
            main.editor.move_cursor(main.editor.document.end)
            await pilot.press(*"print(rectangle_area(width, height)")
            await until(pilot, lambda: any(t.endswith("print(rectangle_area(width, height)") for t in seen),
                        what="a request at the cursor")
        asked = next(t for t in seen if t.endswith("print(rectangle_area(width, height)"))
        assert ("def rectangle_area(width, height):" in asked) is context
        if context:
            assert asked.index("# pkg/shapes.py") < asked.index("from pkg.shapes import")  # ahead of the code
    backend.close()


async def test_a_file_reached_through_a_symlink_and_through_the_project_is_one_buffer(repo, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(repo)
    app = EmpowerApp(open_file(link / "main.py"), Settings(suggestions=False, log_db=str(tmp_path / "log.db")),
                     project=Project.around(link / "main.py"))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, EditorScreen), what="the editor")
        first = app.screen
        back = await pick(pilot, app, "main", "main.py")
        assert back is first and len(app.buffers) == 1
