"""The editor: `empower-tui FILE` (the command is tui/cli.py).

Who does what:
- `GhostEditor` (tui/editor.py) edits, draws the ghost, takes keys and reports every edit;
- `EditorScreen` (tui/screen.py) owns one open file: asks for suggestions after a pause, saves,
  keeps the recovery copy, runs the problem's tests (tui/results.py), writes the interaction log;
- `EmpowerApp` owns what outlives a file: the settings, the model (loaded in a thread at start:
  the editor is usable before it is ready), the log, and the project: every open buffer is an
  installed EditorScreen (its own undo, save, recovery copy and log session), Ctrl+P picks a
  file of the project (tui/project.py) and switches to it, and quitting asks about each unsaved one.

Nothing slow runs on the event loop: the model and the judge run in thread workers, and their
results come back through `call_from_thread`. A result for a buffer or cursor that has changed
since it was asked for is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.command import SimpleCommand
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from coach.policies import policy_name
from coach.types import CoachError
from problems import builtin
from problems.problem import Problem
from tui.ab import DEFAULT_BLOCK_MIN, Arm, Study
from tui.files import FileRefused, Opened, open_file
from tui.log import InteractionLog, LogUnavailable, NullLog, open_log
from tui.heap import freeze_heap
from tui.project import Project
from tui.screen import EditorScreen
from tui.screens import PickerScreen, preference_question


@dataclass
class Settings:
    """What chooses the assistant and how the editor behaves (flags over the config file)."""
    model: str | None = None
    policy: str = "base"
    eta: float | None = None
    format: str | None = None
    delay_s: float = 0.1
    suggestions: bool = True
    # the model works ahead (coach.Coach.prefetch): on a file it opens, and on the state after
    # the ghost on screen is taken
    prefetch: bool = True
    context: bool = True  # chunks of the other open files ahead of the code (coach/related.py)
    log_db: str | None = None      # None: the default data dir (tui/log.py)
    problem: str | None = None     # the built-in problem, when the file name does not say
    backend_options: dict = field(default_factory=dict)
    ab: tuple[Arm, Arm] | None = None  # a blind A/B of these two instead of one model (tui/ab.py)
    ab_block_s: float = 60 * DEFAULT_BLOCK_MIN

    @property
    def policy_label(self) -> str:
        return policy_name(self.policy, self.eta)


class EmpowerApp(App):
    TITLE = "Empower"
    # Ctrl+P is the project's file picker (keys.py), not Textual's command palette.
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False), Binding("ctrl+p", "pick_file", "Open", show=False)]

    def __init__(self, opened: Opened | None, settings: Settings | None = None,
                 problem: Problem | None = None, coach=None, project: Project | None = None) -> None:
        """`coach`: an already loaded Coach (benchmarks, embedding); otherwise the model of
        `settings.model` is loaded in a thread once the app is up. `project`: the directory
        Ctrl+P picks from; with no `opened` file the picker opens at once."""
        super().__init__()
        self.opened = opened
        self.project = project
        self.buffers: dict[Path, EditorScreen] = {}  # open files, in the order opened
        self.settings = settings or Settings()
        self.problem = problem
        self.coach = coach
        self.model_status = "no model (--model, [editor] model in the config, or the built-in ones: pip install 'empower[models]')"
        self.model_error = ""  # why the model did not load: at the end of the status bar
        self.interactions: InteractionLog | NullLog = NullLog()
        self.study: Study | None = None  # the A/B, when there is one
        self.coaches: dict[str, object] = {}  # its assistants by label
        self._asked_preference = False
        self._study_error = ""

    def on_mount(self) -> None:
        self.interactions = open_log(self.settings.log_db)
        if self.settings.ab is not None:
            if not self._begin_study():
                return
        elif self.coach is None and self.settings.model:
            self.model_status = f"loading {self.settings.model}…"
            self._load_model()
        freeze_heap(collect=True)
        if self.opened is not None:
            self.show_buffer(self.opened, self.problem)
        elif self.project is not None:
            self.pick_file()
        else:
            self.push_screen(PickerScreen([builtin.load(n) for n in builtin.names()]), self._picked)

    def compose(self):  # the screen under the buffers: seen in a project before a file is open
        yield Static("Ctrl+P: open a file of the project · Ctrl+Q: quit", id="hint")

    def action_pick_file(self) -> None:
        self.pick_file()

    def _picked(self, name: str | None) -> None:
        if name is None:
            self.exit()
            return
        problem = builtin.load(name)
        self.opened = open_file(problem.starter_file)
        self.show_buffer(self.opened, problem)

    # ------------------------------------------------------------------ buffers
    def show_buffer(self, opened: Opened, problem: Problem | None = None) -> EditorScreen:
        """Switch to `opened`'s buffer, making it when it is not open yet."""
        screen = self.buffers.get(opened.path.resolve())
        if screen is None:
            if problem is None and opened.path.stem in builtin.names() and opened.path.suffix == ".py":
                problem = builtin.load(opened.path.stem)
            # keyed by the real path: a file reached through a symlink and through git's toplevel is one buffer
            screen = self.buffers[opened.path.resolve()] = EditorScreen(opened, problem)
            self.install_screen(screen, name=f"buffer:{opened.path}")
        if isinstance(self.screen, EditorScreen):
            self.switch_screen(screen)
        else:
            self.push_screen(screen)
        return screen

    def open_path(self, path: Path) -> None:
        screen = self.buffers.get(path.resolve())
        if screen is not None:
            self.show_buffer(screen.opened)
            return
        try:
            opened = open_file(path)
        except FileRefused as e:
            self.notify(str(e), title="not opened", severity="error", timeout=8)
            return
        self.show_buffer(opened)

    def pick_file(self) -> None:
        """Ctrl+P: every file of the project, fuzzy-matched as you type (Textual's palette);
        open buffers first, marked when unsaved."""
        if self.project is None:
            self.notify("no project: open a directory (empower-tui DIR) or a file inside a git repository",
                        severity="warning")
            return
        opened = [p for p in self.buffers]
        rest = [self.project.root / f for f in self.project.files()]
        rest = [p for p in rest if p.resolve() not in self.buffers]

        def command(path: Path) -> SimpleCommand:
            screen = self.buffers.get(path.resolve())
            help_ = "open, unsaved" if screen is not None and screen.dirty else "open" if screen else ""
            return SimpleCommand(self.project.relative(path), lambda: self.open_path(path), help_ or None)

        self.search_commands([command(p) for p in opened + rest], placeholder="Open a file of "
                             f"{self.project.root.name or self.project.root} (fuzzy)…")

    def buffer_closed(self, screen: EditorScreen) -> None:
        """A buffer said quit (saved, or its changes discarded): go on to the next unsaved one, or end
        (in an A/B that has shown both assistants this sitting, after asking which helped more)."""
        self.buffers.pop(screen.opened.path.resolve(), None)
        dirty = next((b for b in self.buffers.values() if b.dirty), None)
        if dirty is not None:
            self.switch_screen(dirty)
            self.call_later(dirty.action_quit)
            return
        for rest in self.buffers.values():
            rest.close()
        self.buffers.clear()
        if self.study is not None and self.study.seen_both and not self._asked_preference:
            self.ask_preference(then=self.exit)
            return
        self.exit()

    # ------------------------------------------------------------------ the A/B
    def _begin_study(self) -> bool:
        """Start (or go on with) the study of the two assistants, and load both."""
        if not isinstance(self.interactions, InteractionLog):
            self.exit(return_code=2, message=f"empower-tui: the A/B needs the interaction log: {self.interactions.reason}")
            return False
        try:
            self.study = Study(self.interactions, self.settings.ab, self.settings.ab_block_s)
        except LogUnavailable as e:
            self.exit(return_code=2, message=f"empower-tui: {e}")
            return False
        self.model_status = "loading assistants X and Y…"
        self._load_model()
        return True

    def activity(self) -> None:
        """The person edited: in an A/B, the clock of the block runs, and may hand over."""
        if self.study is None or self._study_error:
            return
        try:
            if not self.study.activity():
                return
        except LogUnavailable as e:  # the turns cannot be kept: stay with this assistant, say so once
            self._study_error = str(e)
            self.notify(f"the A/B stopped taking turns: {e}", title="A/B", severity="error", timeout=10)
            return
        label = self.study.label
        if label in self.coaches:
            self.coach = self.coaches[label]
        self.notify(f"block {self.study.n + 1}: assistant {label}", title="A/B", timeout=4)
        # A ghost on screen stays, and counts for the assistant that showed it: taking it a word
        # at a time across the handover must not have it vanish under the keys.
        if isinstance(self.screen, EditorScreen):
            self.screen.warm_up()
            self.screen.refresh_status()

    def ask_preference(self, then=None) -> None:
        def answered(choice: str | None) -> None:
            if choice in ("X", "Y", "same"):
                self._asked_preference = True
                try:
                    self.study.prefer(choice)
                except LogUnavailable as e:
                    self.notify(str(e), severity="error")
                else:
                    self.notify("kept: empower-tui stats --ab shows the study", title="A/B")
            if then is not None:
                then()

        self.push_screen(preference_question(self.study.n + 1), answered)

    @work(thread=True, group="model", exit_on_error=False)
    def _load_model(self) -> None:
        """The model, or in an A/B both assistants (a failure is told by label, X or Y)."""
        import warnings

        from coach.engine import Coach
        s = self.settings
        wanted = {"": Arm(s.model, s.policy, s.eta, s.format)} if s.ab is None else self.study.arms
        loaded, failed = {}, None
        # A warning printed now would land in the middle of the screen (Textual draws on
        # stderr): a backend's warnings (an API key over plain http) become notices.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            for label, arm in wanted.items():
                try:
                    loaded[label] = Coach.from_spec(arm.model, arm.policy, arm.eta, arm.format or s.format,
                                                    backend_options=s.backend_options)
                except Exception as e:  # CoachError, or a library's error on a broken file
                    failed = (f"assistant {label}: " if label else "") + (
                        str(e) if isinstance(e, CoachError) else f"{type(e).__name__}: {e}")
                    break
        if failed is not None:
            for coach in loaded.values():
                coach.close()
            self.call_from_thread(self._model_failed, failed)
            return
        for w in caught:
            if issubclass(w.category, UserWarning):
                self.call_from_thread(self.notify, str(w.message), title="warning", severity="warning", timeout=15)
        if s.ab is None:
            self.call_from_thread(self._model_ready, loaded[""])
        else:
            self.call_from_thread(self._arms_ready, loaded)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A model worker that died of an error no handler caught (exit_on_error=False keeps the
        editor up) must still say so, not leave "loading…" on the status bar for ever."""
        w = event.worker
        if w.group == "model" and event.state == WorkerState.ERROR and self.coach is None:
            self._model_failed(f"{type(w.error).__name__}: {w.error}")

    def _arms_ready(self, coaches: dict) -> None:
        self.coaches = coaches
        self._model_ready(coaches[self.study.label])

    def _model_failed(self, message: str) -> None:
        self.model_status, self.model_error = "no suggestions", message
        self.notify(message, title="no suggestions", severity="error", timeout=10)
        self._model_ready(None)

    def _model_ready(self, coach) -> None:
        self.coach = coach
        freeze_heap()  # the model's objects too
        if isinstance(self.screen, EditorScreen):
            self.screen.warm_up()
            self.screen.schedule_suggestion()
            self.screen.refresh_status()

    async def action_quit(self) -> None:
        if isinstance(self.screen, EditorScreen):
            await self.screen.action_quit()
        else:
            self.exit()

    def on_unmount(self) -> None:
        for coach in {id(c): c for c in [self.coach, *self.coaches.values()] if c is not None}.values():
            coach.close()
        if self.study is not None:
            try:
                self.study.end()
            except LogUnavailable:
                pass
        self.interactions.close()
