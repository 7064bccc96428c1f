"""Every key the editor knows, in one table: the help screen is drawn from it, so it cannot
fall out of date with the bindings (tests/test_tui_app.py checks each binding is listed)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    keys: str     # as shown to the person
    action: str   # what it does
    group: str


KEYS = [
    Key("Tab", "take the whole suggestion (indent when there is none)", "Suggestions"),
    Key("Ctrl+Right", "take the suggestion's next word (word right when there is none)", "Suggestions"),
    Key("Ctrl+Down", "take the suggestion's next line", "Suggestions"),
    Key("Esc", "dismiss the suggestion", "Suggestions"),
    Key("(type it)", "typing what the suggestion says keeps the rest of it", "Suggestions"),
    Key("F2", "suggestions on / off", "Suggestions"),
    Key("F5", "run the problem's tests", "Problems"),
    Key("F3", "show / hide the problem statement", "Problems"),
    Key("F6", "show / hide the test results", "Problems"),
    Key("Ctrl+S", "save", "File"),
    Key("Ctrl+Q", "quit (asks when there are unsaved changes)", "File"),
    Key("Enter", "new line, keeping the indentation (one level deeper after ':')", "Editing"),
    Key("Ctrl+Z / Ctrl+Y", "undo / redo", "Editing"),
    Key("Ctrl+A / Ctrl+E", "start / end of line", "Editing"),
    Key("Shift+arrows", "select", "Editing"),
    Key("Ctrl+X / Ctrl+C / Ctrl+V", "cut / copy / paste", "Editing"),
    Key("Ctrl+K", "delete to the end of the line", "Editing"),
    Key("Ctrl+W", "delete the word before the cursor", "Editing"),
    Key("F1", "this help (Esc or F1 closes it)", "Help"),
]
