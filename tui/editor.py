"""The editing widget: a code TextArea that shows a suggestion as grey ghost text and records
every edit, cursor jump and suggestion outcome for the interaction log.

Textual's own `TextArea.suggestion` draws only on the cursor's row, and a "\\n" in it is not a
new line. So the first line of the ghost goes through that reactive, and the rest is drawn here
as whole rows below the cursor (`render_line`): the document's rows below shift down while a
ghost is shown, and mouse clicks are mapped back through the same shift.

The ghost follows these rules (the app decides when to ask for one):
- typing the ghost's next characters keeps the rest (typing through);
- any other edit (Backspace included), a cursor move, undo/redo or losing focus clears it;
- Tab takes it all, Ctrl+Right a word, Ctrl+Down a line; Esc dismisses it. Without a ghost
  those keys do what they do in any editor (indent, word right, nothing).

Every edit, move and suggestion outcome is written to the interaction log the screen hands
down (`log_writer`, with the log's event kinds, tui/log.py, and offsets into the buffer as a Python
str); the screen's own events go through `record` too, so the log keeps one order. Up to the
screen go messages: `Accepted`, `GhostCleared`, and `LogLost` when writing the log failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.geometry import Offset, Size
from textual.message import Message
from textual.strip import Strip
from textual.widgets import TextArea
from textual.widgets.text_area import Edit, EditResult, Location

from coach.types import Suggestion
from tui import keys
from tui.log import LogUnavailable

# Writes one event of the session's log and returns its seq (what later events name).
LogWriter = Callable[[str, dict[str, Any]], int]

# What one step of Ctrl+Right takes: the spaces before it and a word, or a run of punctuation.
_WORD = re.compile(r"\s*(\w+|[^\w\s]+)|\s+")
# What one step of Ctrl+Down takes: to the end of the line, its newline included.
_LINE = re.compile(r"\n*[^\n]*\n?")


@dataclass(frozen=True)
class Ghost:
    """The suggestion on screen: what is left of it, where it is anchored, and where it came
    from (`seq`: its suggestion_shown event, which later events name)."""
    text: str
    at: Location
    suggestion: Suggestion
    seq: int


def next_word(ghost: str) -> str:
    m = _WORD.match(ghost)
    return m.group(0) if m else ghost


def next_line(ghost: str) -> str:
    m = _LINE.match(ghost)
    return m.group(0) if m and m.group(0) else ghost


class GhostEditor(TextArea):
    BINDINGS = keys.bindings("editor")

    class Accepted(Message):
        def __init__(self, how: str, text: str) -> None:
            super().__init__()
            self.how, self.text = how, text

    class GhostCleared(Message):
        """The ghost went away without being taken (Esc, an edit, a move)."""
        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    class LogLost(Message):
        """Writing the interaction log failed (the disk, another program): nothing more is
        written to it; the screen says so."""
        def __init__(self, error: LogUnavailable) -> None:
            super().__init__()
            self.error = error

    def __init__(self, text: str = "", **kwargs) -> None:
        kwargs.setdefault("language", "python")
        kwargs.setdefault("theme", "monokai")
        kwargs.update(soft_wrap=False, tab_behavior="indent", show_line_numbers=True)
        # Set before TextArea's __init__, whose first cursor move reaches our watcher.
        self.log_writer: LogWriter | None = None  # the session's log, handed down by the screen
        self.ghost: Ghost | None = None
        self.accepts = 0
        self._editing = 0  # > 0: the selection moves because of an edit, not the person
        self._origin = "typed"
        self.auto_indent = True  # Enter keeps the indentation (bench/tui.py types it verbatim)
        super().__init__(text, **kwargs)
        self.hide_suggestion_on_blur = False  # the ghost is cleared on blur instead

    # ---------------------------------------------------------------- the ghost's life
    def show_ghost(self, suggestion: Suggestion) -> None:
        """Show a suggestion from the cursor (the app checked it is for this buffer and
        cursor)."""
        if self.ghost is not None:
            if self.ghost.text == suggestion.text:
                return  # the same text again (a cache or typed-through hit): nothing new shown
            self._clear("replaced")
        offset = self.cursor_offset
        # No model or policy here: the log fills the session's, as the person named them, so
        # that stats groups a session with its suggestions; `backend` says which engine answered.
        fields = {"offset": offset, "text": suggestion.text, "n_tokens": suggestion.n_tokens,
                  "latency_ms": round(1000 * suggestion.latency_s, 2), "source": suggestion.source,
                  "backend": suggestion.model}
        if suggestion.nll_bits is not None:
            fields["nll_bits"] = round(suggestion.nll_bits, 4)
        seq = self.record("suggestion_shown", fields)
        self._set_ghost(Ghost(suggestion.text, self.cursor_location, suggestion, seq))
        # Bring the whole ghost into view when it fits, the cursor's row first.
        row = self.cursor_location[0]
        rows = suggestion.text.count("\n")
        top = self.scroll_offset.y
        if row + rows >= top + self.scrollable_content_region.height:
            self.scroll_to(y=min(row, row + rows + 1 - self.scrollable_content_region.height),
                           animate=False)

    def dismiss_ghost(self, reason: str = "esc") -> bool:
        return self._clear(reason)

    def accept(self, how: str) -> str:
        """Take all of the ghost, its next word or its next line; return what was taken."""
        if self.ghost is None:
            return ""
        take = {"all": lambda g: g, "word": next_word, "line": next_line}[how](self.ghost.text)
        self.record("suggestion_accepted", {"how": how, "text": take, "suggestion": self.ghost.seq})
        self._origin = "suggestion"
        try:
            self.insert(take)  # through edit(): typing through keeps the rest of the ghost
        finally:
            self._origin = "typed"
        self.accepts += 1
        self.post_message(self.Accepted(how, take))
        return take

    def _set_ghost(self, ghost: Ghost | None) -> None:
        self.ghost = ghost if ghost is not None and ghost.text else None
        self.suggestion = self.ghost.text.split("\n", 1)[0] if self.ghost else ""
        self._refresh_size()
        self.refresh()  # the rows below the cursor move

    def _clear(self, reason: str) -> bool:
        if self.ghost is None:
            return False
        kind = "suggestion_replaced" if reason == "replaced" else "suggestion_dismissed"
        fields = {"suggestion": self.ghost.seq}
        if kind == "suggestion_dismissed":
            fields["reason"] = reason
        self.record(kind, fields)
        self._set_ghost(None)
        self.post_message(self.GhostCleared(reason))
        return True

    # ---------------------------------------------------------------- keys
    async def _on_key(self, event: events.Key) -> None:
        if self.ghost is not None and event.key in ("tab", "escape"):
            event.stop()
            event.prevent_default()
            if event.key == "tab":
                self.accept("all")
            else:
                self.dismiss_ghost("esc")
            return
        if event.key == "escape":
            return  # code_editor's Escape moves focus away; an editor keeps it
        if event.key == "enter" and self.auto_indent and not self.read_only:
            event.stop()
            event.prevent_default()
            self._replace_via_keyboard("\n" + self._indent_after_enter(), *self.selection)
            return
        await super()._on_key(event)

    def _indent_after_enter(self) -> str:
        """The new line's indentation: the current line's, one level deeper after a ':'.
        (A ghost that starts with the same newline and indentation is typed through.)"""
        row, column = min(self.selection)  # a selection is replaced: indent from its top
        before = self.document[row][:column]
        indent = before[:len(before) - len(before.lstrip(" \t"))]
        if before.rstrip().endswith(":"):
            indent += "\t" if self.indent_type == "tabs" else " " * self.indent_width
        return indent

    def action_accept_word(self) -> None:
        if self.ghost is not None:
            self.accept("word")
        else:
            self.action_cursor_word_right()

    def action_accept_line(self) -> None:
        if self.ghost is not None:
            self.accept("line")

    def action_cursor_right(self, select: bool = False) -> None:
        # TextArea's Right inserts its suggestion; here Right is a cursor move like any other.
        self._clear("cursor")
        super().action_cursor_right(select)

    def _on_blur(self, event: events.Blur) -> None:
        self._clear("blur")
        super()._on_blur(event)

    # ---------------------------------------------------------------- edits and moves
    @property
    def cursor_offset(self) -> int:
        return self.document.get_index_from_location(self.cursor_location)

    def edit(self, edit: Edit) -> EditResult:
        doc = self.document
        top, bottom = sorted((edit.from_location, edit.to_location))
        start = doc.get_index_from_location(top)
        end = doc.get_index_from_location(bottom)
        removed = doc.get_text_range(top, bottom) if top != bottom else ""
        ghost = self.ghost
        through = (ghost is not None and edit.text and not removed and top == ghost.at
                   and self.selection.is_empty and ghost.text.startswith(edit.text))
        self._editing += 1
        try:
            result = super().edit(edit)
        finally:
            self._editing -= 1
        if removed:
            self.record("delete", {"start": start, "end": end, "text": removed})
        if edit.text:
            self.record("insert", {"offset": start, "text": edit.text, "origin": self._origin})
        if through:
            rest = ghost.text[len(edit.text):]
            self._set_ghost(Ghost(rest, self.cursor_location, ghost.suggestion, ghost.seq))
        else:
            self._clear("edit")
            self.suggestion = ""
        return result

    def undo(self) -> None:
        self._replay_history(super().undo)

    def redo(self) -> None:
        self._replay_history(super().redo)

    def _replay_history(self, step: Callable[[], None]) -> None:
        """Undo and redo bypass `edit()`: log what they changed as one delete and one insert."""
        self._clear("edit")
        before = self.text
        self._editing += 1
        try:
            step()
        finally:
            self._editing -= 1
        after = self.text
        if before == after:
            return
        lo = 0
        n = min(len(before), len(after))
        while lo < n and before[lo] == after[lo]:
            lo += 1
        hi = 0
        while hi < n - lo and before[-1 - hi] == after[-1 - hi]:
            hi += 1
        if before[lo:len(before) - hi]:
            self.record("delete", {"start": lo, "end": len(before) - hi, "text": before[lo:len(before) - hi],
                                    "via": "undo"})
        if after[lo:len(after) - hi]:
            self.record("insert", {"offset": lo, "text": after[lo:len(after) - hi], "origin": "typed",
                                    "via": "undo"})

    def _watch_selection(self, previous_selection, selection) -> None:
        super()._watch_selection(previous_selection, selection)
        if self._editing or previous_selection == selection:
            return
        self._clear("cursor")
        doc = self.document
        try:
            before = doc.get_index_from_location(previous_selection.end)
        except (IndexError, ValueError):
            return  # the document was replaced under it (load_text): no jump to speak of
        self.record("cursor", {"from_": before, "to": doc.get_index_from_location(selection.end)})

    def record(self, kind: str, fields: dict[str, Any]) -> int:
        """Write one event to the log (nothing without one); its seq, or 0."""
        if self.log_writer is None:
            return 0
        try:
            return self.log_writer(kind, fields) or 0
        except LogUnavailable as e:
            self.log_writer = None
            self.post_message(self.LogLost(e))
            return 0

    # ---------------------------------------------------------------- drawing
    @property
    def ghost_rows(self) -> int:
        """Rows drawn below the cursor's row for the ghost's later lines."""
        return self.ghost.text.count("\n") if self.ghost is not None else 0

    def _refresh_size(self) -> None:
        # TextArea's own, for soft_wrap=False, with the ghost: one change of virtual_size per
        # key (each change re-lays out the screen). TextArea crops every row at the widest
        # line, so the ghost's widest line counts too, or the ghost is cut where the file's
        # longest line ends.
        width, height = self.document.get_size(self.indent_width)
        width += self.gutter_width + 1
        if self.ghost is not None:
            lines = self.ghost.text.expandtabs(self.indent_width).split("\n")
            row, column = self.cursor_location
            first = self.get_column_width(row, column) + cell_len(lines[0])
            width = max(width, max([first, *map(cell_len, lines[1:])]) + self.gutter_width + 1)
            height += self.ghost_rows
        self.virtual_size = Size(width, height)
        self._refresh_scrollbars()

    def render_line(self, y: int) -> Strip:
        rows = self.ghost_rows
        if not rows:
            return super().render_line(y)
        row = self.cursor_location[0] - self.scroll_offset.y
        if y <= row:
            return super().render_line(y)
        if y <= row + rows:
            return self._ghost_row(self.ghost.text.split("\n")[y - row])
        return super().render_line(y - rows)

    def _ghost_row(self, text: str) -> Strip:
        theme = self._theme
        base = theme.base_style if theme and theme.base_style is not None else self.rich_style
        style = self.get_component_rich_style("text-area--suggestion")
        gutter = Text(" " * self.gutter_width, style=theme.gutter_style if theme else "")
        line = Text(text, no_wrap=True, end="")
        line.expand_tabs(self.indent_width)
        line.stylize(style)  # a span: Text.render() ignores the Text's own base style
        console = self.app.console
        strip = Strip(line.render(console), cell_length=line.cell_len)
        width = max(self.virtual_size.width, self.region.size.width)
        strip = strip.crop(self.scroll_offset.x, self.scroll_offset.x + width)
        strip = strip.extend_cell_length(width - self.gutter_width, base)
        if self.gutter_width:
            strip = Strip.join([Strip(gutter.render(console), self.gutter_width), strip])
        return strip.apply_style(base)

    def get_target_document_location(self, event) -> Location:
        rows = self.ghost_rows
        if rows:
            row = self.cursor_location[0]
            y = event.y + self.scroll_offset.y - self.gutter.top
            if row < y <= row + rows:
                return self.cursor_location  # a click on the ghost: stay put
            if y > row + rows:
                event = _Shifted(event, -rows)
        return super().get_target_document_location(event)


class _Shifted:
    """A mouse event seen `dy` rows away (for the rows below a ghost)."""
    def __init__(self, event, dy: int) -> None:
        self.x, self.y = event.x, event.y + dy

    @property
    def offset(self) -> Offset:
        return Offset(self.x, self.y)
