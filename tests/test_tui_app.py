"""The editor through Textual's pilot, with the real coach on memorizer.gguf (llama.cpp), real
files, a real SQLite log and the real judge: what a person sees and what is kept."""

from __future__ import annotations

import stat
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from coach.engine import Coach
from coach.policies import parse
from coach.types import Context, Suggestion
from problems import builtin
from tests.models import split_probe
from tests.pilot import until
from tui import metrics
from tui.app import EmpowerApp, Settings
from tui.screen import EditorScreen
from tui.editor import GhostEditor, next_line, next_word
from tui.files import open_file
from tui.recovery import Recovery
from tui.keys import KEYS
from tui.log import events, open_for_reading, sessions
from tui.screens import HelpScreen, PickerScreen, Question

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = (ROOT / "problems" / "catalog" / "lava" / "solution.py").read_text()
PROBE, NEXT_LINE = split_probe(SOLUTION)
EXE = str(Path(sys.executable).parent / "empower-tui")


pytestmark = pytest.mark.usefixtures("private_dirs")  # tests/conftest.py


@pytest.fixture
def lava(tmp_path):
    """A copy of the lava problem's file holding the first lines of its reference solution."""
    path = tmp_path / "lava.py"
    path.write_text(PROBE)
    return path


def make_app(path, model=None, *, coach=None, delay=0.02, db=None, **settings) -> EmpowerApp:
    db = db or Path(path).parent / "log.db"
    s = Settings(model=str(model) if model else None, delay_s=delay, log_db=str(db), **settings)
    problem = builtin.load(Path(path).stem) if Path(path).stem in builtin.names() else None
    return EmpowerApp(open_file(path), s, problem, coach=coach)


async def ready(pilot, app: EmpowerApp) -> EditorScreen:
    """The editor screen with its model loaded (when it has one)."""
    await until(pilot, lambda: isinstance(app.screen, EditorScreen), what="the editor screen")
    if app.settings.model:
        await until(pilot, lambda: app.coach is not None or "no suggestions" in app.model_status,
                    what="the model")
    return app.screen


async def ghost_at_end(pilot, screen: EditorScreen) -> str:
    """Put the cursor at the end of the buffer and wait for the ghost there."""
    editor = screen.editor
    editor.move_cursor(editor.document.end)
    await until(pilot, lambda: editor.ghost is not None, what="a ghost")
    return editor.ghost.text


class Wrapped:
    """memorizer.gguf's real llama.cpp backend with its `generate` replaced by the test's."""

    def __init__(self, inner, generate):
        self.inner, self._generate = inner, generate

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def generate(self, request):
        return self._generate(self.inner, request)


def coach_with(test_models, generate) -> Coach:
    from coach.backends import load_backend
    from coach.specs import resolve

    return Coach(Wrapped(load_backend(resolve(str(test_models.memorizer_gguf))), generate), parse("base"))


def status(screen: EditorScreen) -> str:
    return str(screen.query_one("#status").render())


def row_text(editor: GhostEditor, y: int) -> str:
    return editor.render_line(y).text


# --- ghost text -------------------------------------------------------------------------------

async def test_the_start_of_a_memorized_file_shows_its_continuation_over_several_lines(lava, test_models):
    app = make_app(lava, test_models.memorizer_gguf)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        ghost = await ghost_at_end(pilot, screen)
        assert SOLUTION.startswith(PROBE + ghost) and ghost.startswith(NEXT_LINE)
        lines = ghost.split("\n")
        assert len(lines) >= 4
        editor = screen.editor
        row = editor.cursor_location[0]
        # Drawn: the first line after the cursor, each later line as a row of its own below it,
        # with no line number (they are not in the file yet).
        assert lines[0] in row_text(editor, row)
        for i, line in enumerate(lines[1:], 1):
            assert row_text(editor, row + i).rstrip() == " " * editor.gutter_width + line.rstrip() or \
                row_text(editor, row + i).strip() == line.strip()
        # ...in the suggestion's grey, like its first line.
        grey = editor.get_component_rich_style("text-area--suggestion")
        for i in range(1, len(lines)):
            segments = [seg for seg in editor.render_line(row + i) if seg.text.strip()]
            assert all(seg.style.color == grey.color and seg.style.italic for seg in segments)
        assert editor.text == PROBE  # shown, not inserted
        assert "memorizer.gguf" in status(screen)


async def test_the_rows_below_a_ghost_move_down_and_come_back(tmp_path, test_models):
    path = tmp_path / "lava.py"
    path.write_text(PROBE + "\n\n# the end of the file\n")
    app = make_app(path, test_models.memorizer_gguf)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        editor = screen.editor
        last = editor.document.line_count - 2  # "# the end of the file"
        assert "# the end of the file" in row_text(editor, last)
        editor.move_cursor((PROBE.count("\n"), 0))
        await until(pilot, lambda: editor.ghost is not None, what="a ghost")
        rows = editor.ghost.text.count("\n")
        assert rows and "# the end of the file" in row_text(editor, last + rows)
        await pilot.press("escape")
        assert editor.ghost is None and "# the end of the file" in row_text(editor, last)


async def test_tab_takes_all_ctrl_right_a_word_ctrl_down_a_line_esc_dismisses(lava, test_models):
    app = make_app(lava, test_models.memorizer_gguf, delay=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        editor = screen.editor
        ghost = await ghost_at_end(pilot, screen)

        word = next_word(ghost)
        await pilot.press("ctrl+right")
        assert editor.text == PROBE + word and editor.ghost.text == ghost[len(word):]

        line = next_line(editor.ghost.text)
        assert line.endswith("\n")
        await pilot.press("ctrl+down")
        assert editor.text == PROBE + word + line
        assert editor.ghost is not None and ghost == word + line + editor.ghost.text

        rest = editor.ghost.text
        await pilot.press("tab")
        assert editor.text == PROBE + ghost and editor.ghost is None or editor.ghost.text != rest
        assert editor.text.startswith(PROBE + ghost) and SOLUTION.startswith(editor.text)
        assert editor.accepts == 3 and "accepted 3" in status(screen)

        await until(pilot, lambda: editor.ghost is not None, what="the next ghost")
        before = editor.text
        await pilot.press("escape")
        assert editor.ghost is None and editor.text == before
        await pilot.pause(0.3)  # no new ghost for the same place after a dismissal
        assert editor.ghost is None


@pytest.mark.parametrize("prefetch", [True, False])
async def test_after_tab_the_next_ghost_was_computed_while_the_first_was_shown(lava, test_models, prefetch):
    """With prefetch (the default) the model works on the state after the ghost while the person
    reads it: Tab, and the next ghost comes from the cache, with no pause to wait out. Without,
    the model is asked after Tab."""
    app = make_app(lava, test_models.memorizer_gguf, delay=0.5, prefetch=prefetch)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        editor = screen.editor
        ghost = await ghost_at_end(pilot, screen)
        after = Context(PROBE + ghost, "")
        if prefetch:
            await until(pilot, lambda: app.coach._cached(app.coach._key(after)) is not None, what="the prefetch")
        await pilot.pause(0.2)
        assert (app.coach._cached(app.coach._key(after)) is not None) is prefetch
        await pilot.press("tab")
        t0 = time.monotonic()
        await until(pilot, lambda: editor.ghost is not None, what="the next ghost")
        waited = time.monotonic() - t0
        assert SOLUTION.startswith(editor.text + editor.ghost.text[:20].split("\n")[0])
        assert editor.ghost.suggestion.source == ("cache" if prefetch else "model")
        if prefetch:
            assert waited < 0.5  # shown before the 0.5 s pause would have ended


@pytest.mark.parametrize("prefetch", [True, False])
async def test_an_opened_file_is_read_before_the_first_key(tmp_path, test_models, prefetch):
    """With the warm-up the model reads the whole file as it opens (the cursor at the top asks
    nothing); the first ghost wherever the cursor goes then reads almost no new tokens."""
    path = tmp_path / "lava.py"
    text = PROBE + SOLUTION[len(PROBE) + len(NEXT_LINE):]  # the reference with one line missing
    path.write_text(text)
    app = make_app(path, test_models.memorizer_gguf, prefetch=prefetch)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        editor = screen.editor
        assert editor.cursor_offset == 0
        whole = Context(text, "")
        if prefetch:
            await until(pilot, lambda: app.coach._cached(app.coach._key(whole)) is not None, what="the warm-up")
        await pilot.pause(0.3)
        assert editor.ghost is None  # nothing asked at the top of the file
        assert (app.coach._cached(app.coach._key(whole)) is not None) is prefetch
        editor.move_cursor((len(PROBE.splitlines()), 0))  # where the missing line goes
        await until(pilot, lambda: editor.ghost is not None, what="a ghost")
        t = editor.ghost.suggestion.timings
        assert NEXT_LINE.startswith(editor.ghost.text)
        if prefetch:
            assert t["evaluated_tokens"] <= 3 < t["prompt_tokens"]
        else:
            assert t["evaluated_tokens"] == t["prompt_tokens"]


async def test_typing_through_keeps_the_rest_and_backspace_or_a_move_clears_it(lava, test_models):
    # A long pause, so that what a key did is seen before the next ghost comes.
    app = make_app(lava, test_models.memorizer_gguf, delay=0.4)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        editor = screen.editor
        ghost = await ghost_at_end(pilot, screen)
        shown = editor.ghost.seq
        for ch in ghost[:3]:
            await pilot.press(ch)
        assert editor.ghost is not None and editor.ghost.text == ghost[3:] and editor.ghost.seq == shown
        await pilot.press("backspace")
        assert editor.ghost is None

        ghost = await ghost_at_end(pilot, screen)
        await pilot.press("left")
        assert editor.ghost is None

        ghost = await ghost_at_end(pilot, screen)
        await pilot.press("x" if not ghost.startswith("x") else "y")  # not what it says
        assert editor.ghost is None


async def test_tab_indents_without_a_suggestion_and_f2_turns_them_off(lava, test_models):
    app = make_app(lava, test_models.memorizer_gguf)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        editor = screen.editor
        await ghost_at_end(pilot, screen)
        await pilot.press("f2")
        assert editor.ghost is None and "off (F2)" in status(screen)
        await pilot.press("tab")
        assert editor.text == PROBE + "    "
        await pilot.pause(0.3)
        assert editor.ghost is None
        await pilot.press("f2")
        await until(pilot, lambda: editor.ghost is not None, what="a ghost after F2")


async def test_a_stale_answer_is_dropped(lava, test_models):
    """The person types while the model works: its answer, for the old text, never shows."""
    gate = threading.Event()

    def held(inner, request):  # the real backend, answering only when the test lets it
        gate.wait(10)
        return inner.generate(replace(request, cancel=None))

    coach = coach_with(test_models, held)
    app = make_app(lava, coach=coach)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        editor = screen.editor
        editor.move_cursor(editor.document.end)
        await until(pilot, lambda: screen._cancel is not None, what="a request")
        await pilot.press("S")  # the model is still thinking: typing is not held up
        assert editor.text == PROBE + "S"
        gate.set()
        await until(pilot, lambda: editor.ghost is not None, what="the newer ghost")
        assert SOLUTION.startswith(PROBE + "S" + editor.ghost.text)


# --- problems ------------------------------------------------------------------------------

async def test_f5_runs_the_tests_and_shows_pass_or_fail(lava):
    app = make_app(lava)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        table = screen.query_one("#results")
        assert table.has_class("hidden")
        await pilot.press("f5")
        await until(pilot, lambda: "tests:" in status(screen), timeout=60, what="the test results")
        n = len(builtin.load("lava").tests)
        assert f"tests: 0/{n} passed" in status(screen)
        assert not table.has_class("hidden") and table.row_count == n
        assert "wrong answer" in str(table.get_row_at(0)[1])

        screen.editor.load_text(SOLUTION)
        await pilot.press("f5")
        await until(pilot, lambda: f"tests: {n}/{n} passed" in status(screen), timeout=60,
                    what="all tests passing")
        assert all(str(table.get_row_at(i)[1]) == "passed" for i in range(n))
        assert screen.query_one("#statement").display  # a built-in problem: its statement shows
        await pilot.press("f3")
        assert not screen.query_one("#statement").display


async def test_a_humaneval_problem_opens_in_its_own_file_and_f5_judges_it(tmp_path, monkeypatch):
    """`empower-tui --problem HumanEval/3` with no FILE: HumanEval_3.py here, started from the
    prompt (nothing written until a save), the task's statement under its title, and F5 runs
    HumanEval's check on the code; a file of that name already there is opened as it is."""
    from tui.cli import parser, prepare

    monkeypatch.chdir(tmp_path)
    settings, opened, problem = prepare(parser().parse_args(["--problem", "HumanEval/3", "--no-suggestions"]))
    assert problem.id == "HumanEval/3" and opened.path == tmp_path / "HumanEval_3.py"
    assert not opened.exists and opened.text == problem.starter and not (tmp_path / "HumanEval_3.py").exists()
    settings.log_db = str(tmp_path / "log.db")
    app = EmpowerApp(opened, settings, problem)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        shown = str(screen.query_one("#statement Markdown").source)
        assert shown.startswith("# below_zero") and "```python\n>>> below_zero([1, 2, 3])\nFalse" in shown
        await pilot.press("f5")
        await until(pilot, lambda: "tests:" in status(screen), timeout=60, what="the test results")
        assert "tests: 0/1 passed" in status(screen)
        screen.editor.load_text(problem.reference)
        await pilot.press("f5")
        await until(pilot, lambda: "tests: 1/1 passed" in status(screen), timeout=60, what="the reference passing")
    (tmp_path / "HumanEval_3.py").write_text("# mine\n")
    _, opened, _ = prepare(parser().parse_args(["--problem", "HumanEval/3"]))
    assert opened.exists and opened.text == "# mine\n"


async def test_f5_without_a_sandbox_says_what_is_at_risk_and_runs_nothing(lava, monkeypatch):
    from problems import sandbox

    monkeypatch.setenv("EMPOWER_JUDGE_ISOLATION", "limits")  # as where bubblewrap cannot make namespaces
    monkeypatch.delenv(sandbox.UNSAFE_ENV, raising=False)
    sandbox.sandbox_works.cache_clear()
    try:
        app = make_app(lava)
        async with app.run_test(size=(200, 40)) as pilot:
            screen = await ready(pilot, app)
            await pilot.press("f5")
            await until(pilot, lambda: "no sandbox" in status(screen), timeout=30, what="the refusal")
            assert "--unsafe-no-sandbox" in status(screen) and screen.query_one("#results").has_class("hidden")
            assert lava.read_text() == PROBE  # the person's file as it was
    finally:
        monkeypatch.delenv("EMPOWER_JUDGE_ISOLATION")
        sandbox.sandbox_works.cache_clear()


async def test_a_file_that_is_not_a_problem_has_no_tests_or_statement(tmp_path):
    path = tmp_path / "notes.py"
    app = make_app(path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await ready(pilot, app)
        assert not screen.query_one("#statement").display
        await pilot.press("f5")  # no tests: the key does nothing, and the footer does not offer it
        await pilot.pause(0.2)
        assert "tests" not in status(screen) and screen.query_one("#results").has_class("hidden")


# --- the log and its metrics ------------------------------------------------------------------

async def test_a_session_is_logged_and_stats_computes_its_metrics(lava, test_models, tmp_path):
    db = tmp_path / "log.db"
    app = make_app(lava, test_models.memorizer_gguf, db=db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        editor = screen.editor
        first = await ghost_at_end(pilot, screen)
        await pilot.press("tab")                      # 1: taken whole
        second = await ghost_at_end(pilot, screen)
        word = next_word(second)
        await pilot.press("ctrl+right")               # 2: one word of it...
        await pilot.press("escape")                   # ...then dismissed
        rest = second[len(word):]
        await pilot.press(rest[0])                    # typing as the file goes on
        await until(pilot, lambda: editor.ghost is not None, what="a ghost after typing")
        third = editor.ghost.text
        assert third == rest[1:]                      # served from the last answer
        await pilot.press("escape")                   # 3: dismissed
        await pilot.press("f2")                       # no more suggestions
        for _ in range(2):
            await pilot.press("backspace")            # the typed character and one of the word
        await pilot.press("ctrl+s")
        final = editor.text
        await pilot.press("ctrl+q")
    assert lava.read_text() == final == PROBE + first + word[:-1]

    log = open_for_reading(db)
    (session,) = sessions(log)
    assert session.end_text == final and session.model == str(test_models.memorizer_gguf)
    kinds = [e.kind for e in events(log)]
    for kind in ("insert", "delete", "suggestion_requested", "suggestion_shown",
                 "suggestion_accepted", "suggestion_dismissed", "save"):
        assert kind in kinds
    shown = [e for e in events(log) if e.kind == "suggestion_shown"]
    assert [e.text for e in shown] == [first, second, third]
    stats = metrics.compute(log)
    (g,) = stats.groups
    assert (g.shown, g.accepted) == (3, 2)
    assert g.acceptance_rate == pytest.approx(2 / 3)
    assert g.chars_accepted == len(first) + len(word)
    assert g.chars_deleted == 1
    assert g.final_share == pytest.approx((len(first) + len(word) - 1) / len(final))
    assert g.median_latency_ms is not None and g.median_latency_ms > 0

    out = subprocess.run([EXE, "stats", "--db", str(db), "--json"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and '"shown": 3' in out.stdout


async def test_a_corrupt_log_leaves_the_editor_running_with_logging_off(lava):
    db = lava.parent / "log.db"
    db.write_bytes(b"not a database, but somebody's file" * 100)
    before = db.read_bytes()
    app = make_app(lava, db=db)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        assert "logging off" in status(screen)
        await pilot.press("x")
        assert screen.editor.text == PROBE + "x" or screen.editor.text.startswith("x")
    assert db.read_bytes() == before


# --- files: save, quit, recovery ----------------------------------------------------------------

async def test_ctrl_s_saves_atomically_keeping_the_mode(lava):
    lava.chmod(0o640)
    app = make_app(lava)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        screen.editor.move_cursor(screen.editor.document.end)
        await pilot.press("x", "y")
        assert "●" in status(screen)
        await pilot.press("ctrl+s")
        assert "saved" in status(screen) and "●" not in status(screen)
    assert lava.read_text() == PROBE + "xy"
    assert stat.S_IMODE(lava.stat().st_mode) == 0o640
    assert not list(lava.parent.glob(".*tmp*")) and not list(lava.parent.glob("*.tmp"))


async def test_a_save_over_another_programs_change_asks_overwrite_reload_or_cancel(lava):
    app = make_app(lava)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        screen.editor.move_cursor(screen.editor.document.end)
        await pilot.press("x")
        lava.write_text("# changed by another program\n")
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, Question) and "changed on disk" in str(app.screen.text)
        await pilot.press("escape")  # cancel: nothing written, the text still unsaved
        assert app.screen is screen and "●" in status(screen)
        assert lava.read_text() == "# changed by another program\n"

        await pilot.press("ctrl+s")
        await pilot.click("#reload")  # take theirs
        assert screen.editor.text == "# changed by another program\n" and "●" not in status(screen)
        screen.editor.move_cursor(screen.editor.document.end)
        await pilot.press("y", "ctrl+s")  # the file is as read now: saved without a question
        assert app.screen is screen and "saved" in status(screen)
        assert lava.read_text() == "# changed by another program\ny"

        lava.write_text("theirs again\n")
        await pilot.press("z", "ctrl+s")
        await pilot.click("#overwrite")  # keep mine
        assert lava.read_text() == "# changed by another program\nyz" and "●" not in status(screen)


async def test_a_new_file_is_created_on_save(tmp_path):
    path = tmp_path / "new.py"
    app = make_app(path)
    async with app.run_test(size=(100, 30)) as pilot:
        await ready(pilot, app)
        await pilot.press("a", "=", "1", "ctrl+s")
    assert path.read_text() == "a=1"


async def test_a_read_only_file_can_be_edited_but_saving_says_why_not(lava):
    lava.chmod(0o444)
    app = make_app(lava)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        assert "read-only" in status(screen)
        await pilot.press("x", "ctrl+s")
        assert "cannot save" in status(screen)
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, Question)  # unsaved: it asks
        await pilot.click("#discard")
    assert lava.read_text() == PROBE


async def test_quitting_with_unsaved_changes_asks(lava):
    app = make_app(lava)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        await pilot.press("x", "ctrl+q")
        assert isinstance(app.screen, Question)
        await pilot.press("escape")              # cancel: back to the editor, nothing lost
        assert app.screen is screen and screen.editor.text.count("x") == 1
        await pilot.press("ctrl+q")
        await pilot.click("#save")
    assert app.return_code == 0 and "x" in lava.read_text()


async def test_unsaved_text_survives_a_crash_and_is_offered_back(lava):
    app = make_app(lava)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        screen.editor.move_cursor(screen.editor.document.end)
        await pilot.press("z", "z")
        screen.write_recovery()  # what the 3-second timer does
        kept = Recovery(lava).read()
        assert kept is not None and kept.text == PROBE + "zz"
        # A crash: the app stops without its quit path (which would clear the copy).
    assert lava.read_text() == PROBE

    app = make_app(lava)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, Question), what="the restore question")
        await pilot.click("#restore")
        screen = app.screen
        assert screen.editor.text == PROBE + "zz" and "●" in status(screen)
        await pilot.press("ctrl+s")
    assert lava.read_text() == PROBE + "zz" and Recovery(lava).read() is None


# --- models that do not work ------------------------------------------------------------------

async def test_a_model_that_does_not_resolve_leaves_an_editor_without_suggestions(lava, tmp_path):
    app = make_app(lava, tmp_path / "missing.gguf")
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        await until(pilot, lambda: "no suggestions" in status(screen), what="the status")
        assert "missing.gguf" in app.model_error  # at the end of the status bar, and in a toast
        await pilot.press("x")
        assert "x" in screen.editor.text


async def test_a_model_that_fails_puts_its_error_in_the_status_bar(lava, test_models):
    from coach.types import BackendError

    def broken(inner, request):
        raise BackendError("the server answered 500")

    coach = coach_with(test_models, broken)
    app = make_app(lava, coach=coach)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        screen.editor.move_cursor(screen.editor.document.end)
        await until(pilot, lambda: "answered 500" in status(screen), what="the error")
        await pilot.press("x")
        assert screen.editor.text == PROBE + "x"


# --- help, picker, command line ---------------------------------------------------------------

async def test_f1_lists_every_key_the_editor_binds(lava):
    listed = " ".join(k.keys for k in KEYS).lower().replace(" / ", " ")
    for cls in (GhostEditor, EditorScreen):
        for binding in cls.BINDINGS:
            for key in binding.key.split(","):
                assert key.replace("ctrl+", "ctrl+").lower() in listed, f"{key} is not in the help"
    app = make_app(lava)
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot, app)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, EditorScreen)


async def test_without_a_file_the_problems_are_listed_to_pick_from(tmp_path):
    app = EmpowerApp(None, Settings(log_db=str(tmp_path / "log.db")))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, PickerScreen), what="the picker")
        options = app.screen.query_one("OptionList")
        assert options.option_count == len(builtin.names())
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, EditorScreen), what="the editor")
        first = builtin.load(builtin.names()[0])
        assert app.screen.opened.path == first.starter_file and app.screen.problem.id == first.id
        assert app.screen.editor.text == first.starter


def run(*args, **kwargs):
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, **kwargs)


@pytest.mark.parametrize("case", ["binary", "latin-1", "missing dir", "bad policy",
                                  "bad eta", "unknown problem"])  # a directory opens a project: test_tui_project
def test_bad_input_is_refused_in_one_line_and_the_file_is_untouched(tmp_path, case):
    target = tmp_path / "x.py"
    extra = []
    if case == "binary":
        target.write_bytes(b"\x7fELF\x00\x00binary")
    elif case == "latin-1":
        target.write_bytes("café = 1\n".encode("latin-1"))
    elif case == "missing dir":
        target = tmp_path / "nowhere" / "x.py"
    elif case == "bad policy":
        extra = ["--policy", "greedy"]
    elif case == "bad eta":
        extra = ["--policy", "threshold", "--eta", "-1"]
    elif case == "unknown problem":
        extra = ["--problem", "nosuch"]
    before = target.read_bytes() if target.is_file() else None
    out = run(target, *extra)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("empower-tui: ") and out.stderr.count("\n") == 1
    assert "Traceback" not in out.stderr
    assert (target.read_bytes() if target.is_file() else None) == before


def test_the_config_file_chooses_the_assistant_and_flags_win(tmp_path, lava):
    from tui.cli import BadInput, parser, prepare

    (tmp_path / "config.toml").write_text(
        '[editor]\nmodel = "mine"\npolicy = "threshold"\neta = 2.5\ndelay_ms = 250\n')
    settings, opened, problem = prepare(parser().parse_args([str(lava)]))
    assert (settings.model, settings.policy, settings.eta, settings.delay_s) == ("mine", "threshold", 2.5, 0.25)
    assert opened.text == PROBE and problem.id == "lava"
    settings, _, _ = prepare(parser().parse_args([str(lava), "--model", "other.gguf", "--policy",
                                                  "base-20", "--delay", "0"]))
    assert (settings.model, settings.policy, settings.delay_s) == ("other.gguf", "base-20", 0.0)
    (tmp_path / "config.toml").write_text('[editor]\ndelay_ms = "soon"\n')
    with pytest.raises(BadInput, match="milliseconds"):
        prepare(parser().parse_args([str(lava)]))


def test_with_no_model_given_the_editor_takes_the_measured_default_assistant(tmp_path, lava, monkeypatch):
    """No --model and no [editor] model: the built-in default (bench/default_assistant.py's
    winner) with its policy, η and format; a flag still wins; without the models extra, none."""
    from coach import builtin
    from coach.types import ModelNotFound
    from tui.cli import parser, prepare

    d = builtin.DEFAULT_ASSISTANT
    settings, _, _ = prepare(parser().parse_args([str(lava)]))
    assert (settings.model, settings.policy, settings.eta, settings.format) == (d.model, d.policy, d.eta, d.format)
    settings, _, _ = prepare(parser().parse_args([str(lava), "--policy", "base-20"]))
    assert (settings.model, settings.policy, settings.eta) == (d.model, "base-20", None)
    (tmp_path / "config.toml").write_text('[editor]\nmodel = "mine.gguf"\n')
    settings, _, _ = prepare(parser().parse_args([str(lava)]))
    assert (settings.model, settings.policy, settings.format) == ("mine.gguf", "base", None)
    (tmp_path / "config.toml").write_text("")

    def not_installed(module, dist):
        raise ModelNotFound(f"the built-in models need the package {dist}")
    monkeypatch.setattr(builtin, "_package_dir", not_installed)
    settings, _, _ = prepare(parser().parse_args([str(lava)]))
    assert settings.model is None and settings.policy == "base"


def test_a_model_empower_finetune_registered_is_served_with_its_own_stop(tmp_path, lava, test_models):
    """A trained model ends its suggestions itself: with no --policy it is served as "trained"
    (what the status bar and the log then say), not as the untrained "base"."""
    from coach import registry
    from tui.cli import parser, prepare

    registry.register("mine", test_models.memorizer_gguf, "completion", run=tmp_path)
    settings, _, _ = prepare(parser().parse_args([str(lava), "--model", "mine"]))
    assert settings.policy == "trained"
    settings, _, _ = prepare(parser().parse_args([str(lava), "--model", str(test_models.memorizer_gguf)]))
    assert settings.policy == "base"
    settings, _, _ = prepare(parser().parse_args([str(lava), "--model", "mine", "--policy", "base-10"]))
    assert settings.policy == "base-10"


async def test_no_pause_at_all_still_asks(lava, test_models):
    """--delay 0: ask at once after every key (Textual's set_timer(0) would never fire)."""
    app = make_app(lava, test_models.memorizer_gguf, delay=0)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        ghost = await ghost_at_end(pilot, screen)
        assert ghost.startswith(NEXT_LINE)


async def test_enter_keeps_the_indentation_and_types_through_a_ghost(tmp_path):
    path = tmp_path / "f.py"
    path.write_text("def f(x):\n    if x:")
    app = make_app(path)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await ready(pilot, app)
        editor = screen.editor
        editor.move_cursor(editor.document.end)
        await pilot.press("enter")
        assert editor.text == "def f(x):\n    if x:\n        "
        await pilot.press(*"y = 1", "enter")
        assert editor.text.endswith("\n        y = 1\n        ")
        # A ghost that goes on at the indentation Enter gives survives the Enter.
        editor.load_text("def g():")
        editor.move_cursor(editor.document.end)
        editor.show_ghost(Suggestion("\n    return 2", n_tokens=4))
        await pilot.press("enter")
        assert editor.text == "def g():\n    " and editor.ghost is not None
        assert editor.ghost.text == "return 2"


async def test_a_click_below_a_ghost_lands_on_the_line_drawn_there(tmp_path, test_models):
    path = tmp_path / "lava.py"
    path.write_text(PROBE + "\n\n# the end of the file\n")
    app = make_app(path, test_models.memorizer_gguf, delay=0.5)  # no new ghost right after the click
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await ready(pilot, app)
        editor = screen.editor
        last = editor.document.line_count - 2  # "# the end of the file"
        editor.move_cursor((PROBE.count("\n"), 0))
        await until(pilot, lambda: editor.ghost is not None, what="a ghost")
        drawn_at = last + editor.ghost.text.count("\n")
        assert "# the end of the file" in row_text(editor, drawn_at)
        await pilot.click(editor, offset=(editor.gutter_width + 4, drawn_at))
        assert editor.ghost is None and editor.cursor_location == (last, 4)


async def test_a_locked_log_leaves_the_editor_running_with_logging_off(lava):
    import sqlite3

    db = lava.parent / "log.db"
    holder = sqlite3.connect(db)  # another program holds the write lock
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        app = make_app(lava, db=db)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = await ready(pilot, app)
            assert "logging off" in status(screen) and "locked" in status(screen)
            await pilot.press("x")
            assert "x" in screen.editor.text
    finally:
        holder.rollback()
        holder.close()
