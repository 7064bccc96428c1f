"""The editor's screen: one open file (a buffer of the project). It asks for suggestions
(tui/asking.py), saves, keeps the recovery copy, runs the problem's tests (tui/results.py) and
writes the interaction log. The app around it (tui/app.py) owns what outlives a file: the
settings, the model, the log, the other buffers.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Markdown

from coach.policies import policy_name
from problems.problem import Problem
from tui import keys
from tui.asking import Asking
from tui.editor import GhostEditor
from tui.heap import freeze_heap
from tui.project import language_of
from tui.files import ANY, ChangedOnDisk, FileRefused, Opened, SaveFailed, encoded, open_file, save_atomic
from tui.recovery import Recovery
from tui.log import LogUnavailable, NullLog
from tui.results import TestResults
from tui.screens import HelpScreen, changed_question, quit_question, restore_question
from tui.widgets import StatusBar, statement_of

RECOVERY_EVERY_S = 3.0
NARROW = 100  # columns: below this the statement starts hidden


class EditorScreen(Asking, Screen):
    BINDINGS = keys.bindings("screen")
    DEFAULT_CSS = """
    EditorScreen #main { height: 1fr; }
    EditorScreen GhostEditor, EditorScreen GhostEditor:focus { width: 1fr; border: none; padding: 0; }
    EditorScreen #statement { width: 44%; max-width: 72; border-left: solid $primary; padding: 0 1; }
    EditorScreen #results { height: 40%; border-top: solid $primary; }
    EditorScreen .hidden { display: none; }
    EditorScreen GhostEditor .text-area--suggestion { color: $text-muted; text-style: italic; }
    """

    def __init__(self, opened: Opened, problem: Problem | None) -> None:
        super().__init__()
        self.opened = opened
        self.problem = problem
        self.saved_text = opened.text
        self._disk = opened.disk  # what the file was when read: a save checks it still is
        self.recovery = Recovery(opened.path)
        self._recovered_text: str | None = None  # what the recovery copy holds now
        self.session = 0
        self.errors = ""      # the last error, for the status bar
        self.notice = ""      # the last thing done (saved, tests), for the status bar
        self.latency_ms: float | None = None
        self._debounce: Timer | None = None
        self._request = 0     # the id of the latest suggestion request; older answers are stale
        self._cancel: threading.Event | None = None
        self._related_at: tuple[int, tuple[str, ...]] | None = None  # (line, chunks of other buffers)

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield GhostEditor(self.opened.text, id="editor", language=language_of(self.opened.path))
            with VerticalScroll(id="statement", classes="" if self.problem else "hidden"):
                if self.problem:
                    yield Markdown(statement_of(self.problem))
        yield TestResults(id="results", classes="hidden")
        yield StatusBar(id="status")
        yield Footer()

    @property
    def editor(self) -> GhostEditor:
        return self.query_one(GhostEditor)

    @property
    def dirty(self) -> bool:
        return self.editor.text != self.saved_text

    def on_mount(self) -> None:
        self.editor.focus()
        if self.app.size.width < NARROW:  # the code first; F3 shows the statement
            self.query_one("#statement").add_class("hidden")
        # What the screen built (the statement's Markdown mounts in the background): out of
        # the collector's sight too, once it is there. Cheap without a collection.
        self.set_timer(0.5, freeze_heap)
        self.set_interval(RECOVERY_EVERY_S, self.write_recovery)
        if self.opened.read_only:
            self.notice = "read-only file: you can edit, but saving will fail"
        found = self.recovery.read()
        if found is not None and found.text != self.opened.text:
            self.app.push_screen(restore_question(self.opened.path.name, found.saved_at), self._restored)
        else:
            self.recovery.clear()  # nothing new in it
            self._start_session()
        self.call_after_refresh(self.refresh_status)
        if self.app.coach is not None:  # given ready-made (a benchmark, an embedding app)
            self.warm_up()

    def _restored(self, answer: str | None) -> None:
        if answer == "restore":
            found = self.recovery.read()
            if found is not None:
                # Loaded before the session starts: the session's start text is the restored
                # text, so the log replays from it. Unsaved, so dirty, and kept in recovery.
                self.editor.load_text(found.text)
                self._recovered_text = found.text
                self.notice = "restored the unsaved text (not saved yet: Ctrl+S)"
        else:
            self.recovery.clear()
        self._start_session()
        self.refresh_status()

    def _start_session(self) -> None:
        s, study = self.app.settings, self.app.study
        log = self.app.interactions
        try:
            if study is None:
                self.session = log.start_session(self.opened.path, s.model, s.policy_label, s.eta,
                                                 self.editor.text)
            else:  # the assistant changes by block: each suggestion says whose it is
                self.session = log.start_session(self.opened.path, text=self.editor.text, ab_study=study.id)
        except LogUnavailable as e:
            self._log_off(e)
            return
        session = self.session

        def write(kind: str, fields: dict[str, Any]) -> int:
            if study is not None and kind == "suggestion_shown":
                arm = study.arm
                fields = {**fields, "model": arm.model, "policy": policy_name(arm.policy, arm.eta),
                          "ab_arm": study.label, "ab_block": study.n}
            return log.event(session, kind, **fields)

        self.editor.log_writer = write

    # ------------------------------------------------------------------ the log
    def _record(self, kind: str, fields: dict[str, Any]) -> int:
        # Through the editor, with its edits: one writer, one order. Before the session starts
        # (a restore being loaded) there is no log to write to.
        return self.editor.record(kind, fields)

    def on_ghost_editor_log_lost(self, message: GhostEditor.LogLost) -> None:
        self._log_off(message.error)

    def _log_off(self, e: Exception) -> None:
        self.editor.log_writer = None
        self.app.interactions = NullLog(f"logging off: {e}")
        self.refresh_status()

    # ------------------------------------------------------------------ suggestions
    def on_text_area_changed(self, event: GhostEditor.Changed) -> None:
        self.app.activity()  # an A/B's clock (the block may hand over to the other assistant)
        self.schedule_suggestion()
        self.refresh_status()

    def on_text_area_selection_changed(self, event: GhostEditor.SelectionChanged) -> None:
        self.schedule_suggestion()
        self.refresh_status()

    def on_ghost_editor_accepted(self, event: GhostEditor.Accepted) -> None:
        if event.how == "all" and self.app.settings.prefetch:
            self._ask_now()  # its answer is prefetched (or on its way): no pause to wait out
        self.refresh_status()

    def action_toggle_suggestions(self) -> None:
        s = self.app.settings
        s.suggestions = not s.suggestions
        if not s.suggestions:
            self.editor.dismiss_ghost("off")
        self.schedule_suggestion()
        self.refresh_status()

    # ------------------------------------------------------------------ files
    def action_save(self, overwrite: bool = False) -> None:
        text = self.editor.text
        o = self.opened
        try:
            n = save_atomic(o.path, text, newline=o.newline, bom=o.bom, mode=o.mode,
                            expect=ANY if overwrite else self._disk)
        except ChangedOnDisk as e:
            self.app.push_screen(changed_question(str(e)), self._changed_answer)
            return
        except SaveFailed as e:
            self.errors = str(e)
            self.refresh_status()
            return
        self._disk = hashlib.sha256(encoded(text, o.newline, o.bom)).hexdigest()
        self.saved_text = text
        self.errors = ""
        self.notice = f"saved {n} bytes"
        self.recovery.clear()
        self._recovered_text = None
        self._record("save", {"path": str(o.path), "bytes": n})
        self.refresh_status()

    def _changed_answer(self, answer: str | None) -> None:
        if answer == "overwrite":
            self.action_save(overwrite=True)
        elif answer == "reload":
            try:
                opened = open_file(self.opened.path)
            except FileRefused as e:
                self.errors = str(e)
            else:
                # The log replays a session from its start text: a reload ends one and starts
                # the next from the text on disk.
                self.close()
                self.session, self.editor.log_writer = 0, None  # loading the disk's text is no edit
                self.opened, self.saved_text, self._disk = opened, opened.text, opened.disk
                self.editor.load_text(opened.text)
                self._start_session()
                self.errors, self.notice = "", "reloaded from disk"
                self.recovery.clear()
        self.refresh_status()

    def write_recovery(self) -> None:
        """Keep the unsaved text where a crash cannot take it (every few seconds)."""
        text = self.editor.text
        if not self.dirty or text == self._recovered_text:
            return
        try:
            self.recovery.write(text)
            self._recovered_text = text
        except SaveFailed as e:
            self.errors = f"recovery copy: {e}"
            self.refresh_status()

    async def action_quit(self) -> None:
        if not self.dirty:
            self.close()
            self.app.buffer_closed(self)
            return
        self.app.push_screen(quit_question(self.opened.path.name), self._quit_answer)

    def _quit_answer(self, answer: str | None) -> None:
        if answer == "save":
            self.action_save()
            if self.dirty:
                return  # the save failed: the status bar says why; stay
        elif answer != "discard":
            return
        self.recovery.clear()
        self.close()
        self.app.buffer_closed(self)

    def close(self) -> None:
        """End the session (the log keeps the final buffer, saved or not)."""
        if self._cancel is not None:
            self._cancel.set()
        try:
            self.app.interactions.end_session(self.session, self.editor.text)
        except LogUnavailable:
            pass

    # ------------------------------------------------------------------ problems
    def action_toggle_statement(self) -> None:  # only for a problem: check_action
        self.query_one("#statement").toggle_class("hidden")

    def action_toggle_results(self) -> None:
        self.query_one("#results").toggle_class("hidden")

    def action_run_tests(self) -> None:  # only for a problem: check_action
        if self.query_one(TestResults).run(self.editor.text, self.problem):
            self.notice = f"running {len(self.problem.tests)} tests…"
        else:
            self.notice = "the tests are already running"
        self.refresh_status()

    def on_test_results_finished(self, event: TestResults.Finished) -> None:
        report = event.report
        if report is None:
            self.errors = event.error
            self.notice = ""
            self.refresh_status()
            return
        n, total = report.n_passed, len(report.results)
        self.notice = f"tests: {n}/{total} passed" + (" ✔" if report.passed else "")
        self._record("test_run", {"passed": report.passed, "n_passed": n, "n_tests": total,
                                  "verdicts": [r.verdict.value for r in report.results],
                                  "wall_s": round(report.wall_s, 3)})
        self.refresh_status()

    # ------------------------------------------------------------------ status
    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def refresh_status(self) -> None:
        try:
            bar, editor = self.query_one(StatusBar), self.editor
        except NoMatches:  # called before the screen is composed: on_mount draws it
            return
        app, s = self.app, self.app.settings
        row, col = editor.cursor_location
        name = self.opened.path.name + (" ●" if self.dirty else "")
        parts: list[Any] = [(name, "bold"), f"  {row + 1}:{col + 1}  "]
        if app.coach is not None and app.study is not None:  # blind: the label, never the model
            parts.append((f"assistant {app.study.label}", "cyan"))
            parts.append(f" · A/B block {app.study.n + 1}")
            if not s.suggestions:
                parts.append((" · off (F2)", "yellow"))
        elif app.coach is not None:
            parts.append((app.coach.model, "cyan"))
            parts.append(f" · {s.policy_label}")
            if not s.suggestions:
                parts.append((" · off (F2)", "yellow"))
        else:
            parts.append((app.model_status, "yellow"))
        if self.latency_ms is not None:
            parts.append(f"  {self.latency_ms:.0f} ms")
        parts.append(f"  accepted {editor.accepts}")
        # The long messages last, so that a long path cuts only itself.
        if self.errors:
            parts.append(("  " + self.errors, "bold red"))
        elif self.notice:
            parts.append(("  " + self.notice, "green"))
        if app.interactions.reason:
            parts.append(("  " + app.interactions.reason, "yellow"))
        if app.coach is None and app.model_error:
            parts.append(("  " + app.model_error, "yellow"))
        bar.update(Text.assemble(*parts), layout=False)  # one row, fixed by CSS: no re-layout per key

    def action_open_file(self) -> None:
        self.app.pick_file()

    def action_prefer(self) -> None:  # only in an A/B: check_action
        self.app.ask_preference()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """The problem keys exist only for a built-in problem, F8 only in an A/B (and leave the
        footer otherwise)."""
        if action in ("toggle_statement", "run_tests", "toggle_results") and self.problem is None:
            return False
        if action == "prefer" and self.app.study is None:
            return False
        return True
