"""Every key the editor knows, in one table: the help screen is drawn from it and the screen's
and the editor's Textual bindings are made from it, so the help cannot fall out of date with
what the keys do (tests/test_tui_app.py checks each binding's key is the one the help shows)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    keys: str     # as shown to the person
    action: str   # what it does
    group: str
    # A key that is a Textual binding (the rest are handled where the text is edited):
    bind: str = ""       # Textual's key name
    does: str = ""       # the action method it calls
    where: str = ""      # "screen" (EditorScreen) or "editor" (GhostEditor)
    label: str = ""      # in the footer; none: not shown there
    priority: bool = False


def bindings(where: str) -> list[Binding]:
    """Textual's bindings for `where`, in the footer's order: save first, quit last, F-keys by number."""
    chosen = sorted((k for k in KEYS if k.where == where), key=lambda k: (k.bind != "ctrl+s", k.bind == "ctrl+q", k.bind))
    return [Binding(k.bind, k.does, k.label or k.action, show=bool(k.label), priority=k.priority) for k in chosen]


KEYS = [
    Key("Tab", "take the whole suggestion (indent when there is none)", "Suggestions"),
    Key("Ctrl+Right", "take the suggestion's next word (word right when there is none)", "Suggestions",
        "ctrl+right", "accept_word", "editor"),
    Key("Ctrl+Down", "take the suggestion's next line", "Suggestions", "ctrl+down", "accept_line", "editor"),
    Key("Esc", "dismiss the suggestion", "Suggestions"),
    Key("(type it)", "typing what the suggestion says keeps the rest of it", "Suggestions"),
    Key("F2", "suggestions on / off", "Suggestions", "f2", "toggle_suggestions", "screen", "Suggestions"),
    Key("F5", "run the problem's tests", "Problems", "f5", "run_tests", "screen", "Run tests"),
    Key("F3", "show / hide the problem statement", "Problems", "f3", "toggle_statement", "screen", "Statement"),
    Key("F6", "show / hide the test results", "Problems", "f6", "toggle_results", "screen", "Results"),
    Key("F8", "say which assistant felt more helpful (in an A/B: --ab)", "Suggestions", "f8", "prefer", "screen",
        "Which helped?"),
    Key("Ctrl+S", "save", "File", "ctrl+s", "save", "screen", "Save"),
    Key("Ctrl+P", "open a file of the project (fuzzy; open ones first)", "File", "ctrl+p", "open_file", "screen",
        "Open", priority=True),
    Key("Ctrl+Q", "quit (asks when there are unsaved changes)", "File", "ctrl+q", "quit", "screen", "Quit",
        priority=True),
    Key("Enter", "new line, keeping the indentation (one level deeper after ':')", "Editing"),
    Key("Ctrl+Z / Ctrl+Y", "undo / redo", "Editing"),
    Key("Ctrl+A / Ctrl+E", "start / end of line", "Editing"),
    Key("Shift+arrows", "select", "Editing"),
    Key("Ctrl+X / Ctrl+C / Ctrl+V", "cut / copy / paste", "Editing"),
    Key("Ctrl+K", "delete to the end of the line", "Editing"),
    Key("Ctrl+W", "delete the word before the cursor", "Editing"),
    Key("F1", "this help (Esc or F1 closes it)", "Help", "f1", "help", "screen", "Help"),
]
