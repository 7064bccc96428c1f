"""The editor's smaller screens: help, the questions it asks (quit unsaved? restore?) and the
problem picker that `empower-tui` with no file opens."""

from __future__ import annotations

import time

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from tui.keys import KEYS


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 86; max-height: 90%; border: round $accent; padding: 0 1;
                                  background: $surface; }
    """

    def compose(self) -> ComposeResult:
        # A rich Table in a Static: it wraps a long description instead of cutting it.
        table = Table(box=None, expand=True, show_header=False, pad_edge=False)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("what it does", ratio=1)
        group = None
        for key in KEYS:
            if key.group != group:
                group = key.group
                table.add_row(Text(group, style="underline"), "")
            table.add_row(key.keys, key.action)
        with VerticalScroll():
            yield Static("[b]Empower[/b]: grey text is a suggestion; take it, part of it, or keep typing.\n")
            yield Static(table)

    def action_dismiss(self) -> None:
        self.dismiss(None)


class Question(ModalScreen[str]):
    """A question with buttons; dismisses with the id of the button pressed (Esc: "cancel")."""
    BINDINGS = [Binding("escape", "answer('cancel')", "Cancel")]
    DEFAULT_CSS = """
    Question { align: center middle; }
    Question > Vertical { width: 72; height: auto; border: thick $warning; padding: 1 2;
                          background: $surface; }
    Question Horizontal { height: auto; margin-top: 1; }
    Question Button { margin-right: 2; }
    """

    def __init__(self, text: str, answers: list[tuple[str, str]]) -> None:
        super().__init__()
        self.text, self.answers = text, answers

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.text)
            with Horizontal():
                for i, (answer, label) in enumerate(self.answers):
                    yield Button(label, id=answer, variant="primary" if i == 0 else "default")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id)

    def action_answer(self, answer: str) -> None:
        self.dismiss(answer)


def quit_question(name: str) -> Question:
    return Question(f"{name} has unsaved changes.",
                    [("save", "Save and quit"), ("discard", "Quit without saving"), ("cancel", "Cancel")])


def changed_question(message: str) -> Question:
    return Question(f"{message}.\nYour text would replace the other program's changes.",
                    [("overwrite", "Overwrite it"), ("reload", "Reload it (drop your changes)"), ("cancel", "Cancel")])


def restore_question(name: str, saved_at: float) -> Question:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(saved_at))
    return Question(f"Unsaved text of {name} from {when} was kept after Empower stopped.\n"
                    "Restore it? (Keeping the file as it is on disk discards that text.)",
                    [("restore", "Restore"), ("discard", "Keep the file on disk")])


class PickerScreen(Screen[str]):
    """`empower-tui` with no file: pick a built-in problem; dismisses with its name."""
    BINDINGS = [Binding("escape,ctrl+q", "app.quit", "Quit")]
    DEFAULT_CSS = """
    PickerScreen OptionList { height: 1fr; }
    PickerScreen Static { padding: 1 2 0 2; }
    """

    def __init__(self, problems: list) -> None:
        super().__init__()
        self.problems = problems

    def compose(self) -> ComposeResult:
        yield Static("[b]Empower[/b]: pick a problem to work on (Enter opens its file)")
        yield OptionList(*[Option(f"[b]{p.id:<10}[/b] {p.title}\n           [dim]{p.summary}[/dim]",
                                  id=p.id) for p in self.problems])
        yield Footer()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


def preference_question(blocks: int) -> Question:
    """The A/B's one question (tui/ab.py): the assistants are named only by their labels."""
    return Question(f"Two assistants, X and Y, have taken turns ({blocks} blocks so far).\n"
                    "Which felt more helpful?",
                    [("X", "X"), ("Y", "Y"), ("same", "No difference"), ("cancel", "Not now")])
