"""How the editor screen asks the model: after a pause (a thread worker; an answer for a buffer
or cursor that has changed since is dropped), with chunks of the other open buffers
(coach/related.py), and ahead of time: the state after the ghost on screen is taken, and a file
as it opens (coach.Coach.prefetch). A mixin of EditorScreen (tui/screen.py), which owns the rest.
"""

from __future__ import annotations

import threading

from textual import work

from coach import related
from coach.types import CoachError, Context, Suggestion


class Asking:
    """EditorScreen's suggestion requests. Needs: editor, app, _debounce, _request, _cancel,
    _related_at, latency_ms, errors, _record, refresh_status (the screen's)."""

    def schedule_suggestion(self) -> None:
        """(Re)start the pause timer; a request in flight for an older state is now stale."""
        if self._debounce is not None:
            self._debounce.stop()
        self._request += 1
        if self._cancel is not None:
            self._cancel.set()
            self._cancel = None
        if self.app.coach is not None and self.app.settings.suggestions:
            delay = self.app.settings.delay_s
            if delay > 0:
                self._debounce = self.set_timer(delay, self._ask)
            else:  # set_timer(0) never fires in Textual 8 (its timer divides by the interval)
                request = self._request
                self.call_later(lambda: request == self._request and self._ask())

    def _ask_now(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
            self._debounce = None
        request = self._request
        self.call_later(lambda: request == self._request and self._ask())

    def _ask(self) -> None:
        editor = self.editor
        coach = self.app.coach
        if coach is None or not self.app.settings.suggestions or editor.ghost is not None:
            return
        if not editor.selection.is_empty or not editor.has_focus:
            return
        text, offset = editor.text, editor.cursor_offset
        if offset == 0 and text:
            return  # a file just opened, the cursor at its top: nothing before it to go on
        ctx = Context(text[:offset], text[offset:], self._related(text[:offset]))
        self._request += 1
        self._cancel = threading.Event()
        self._record("suggestion_requested", {"offset": offset})
        self._suggest(coach, ctx, self._request, self._cancel)

    @work(thread=True, group="suggest", exit_on_error=False)
    def _suggest(self, coach, ctx: Context, request: int, cancel: threading.Event) -> None:
        try:
            suggestion = coach.suggest(ctx, cancel)
        except CoachError as e:
            self.app.call_from_thread(self._failed, request, str(e))
        except Exception as e:  # a model must never take the editor down
            self.app.call_from_thread(self._failed, request, f"{type(e).__name__}: {e}")
        else:
            self.app.call_from_thread(self._arrived, request, ctx, suggestion, coach)

    def _arrived(self, request: int, ctx: Context, suggestion: Suggestion, coach) -> None:
        if request != self._request or not self.app.settings.suggestions:
            return  # the person typed or moved since: this answer is for another state
        if coach is not self.app.coach:
            return  # an A/B handed over to the other assistant since it was asked
        editor = self.editor
        self.latency_ms = 1000 * suggestion.latency_s
        if editor.text != ctx.prefix + ctx.suffix or editor.cursor_offset != len(ctx.prefix):
            return
        self.errors = ""
        if suggestion.text:
            editor.show_ghost(suggestion)
            if self.app.settings.prefetch:
                after = ctx.prefix + suggestion.text  # the state once it is taken, with its own chunks
                self._prefetch(self.app.coach, Context(after, ctx.suffix, self._related(after)))
        self.refresh_status()

    def _related(self, prefix: str) -> tuple[str, ...]:
        """Chunks of the other open buffers for the prompt (coach/related.py): chosen again only
        when the cursor's line changes, so that typing on a line keeps the prompt's start."""
        if not self.app.settings.context:
            return ()
        row = prefix.count("\n")
        if self._related_at is None or self._related_at[0] != row:
            others = {self.app.project.relative(b.opened.path) if self.app.project else b.opened.path.name: b.editor.text
                      for b in self.app.buffers.values() if b is not self}
            self._related_at = (row, related.choose(others, prefix) if others else ())
        return self._related_at[1]

    def warm_up(self) -> None:
        """Have the model read the file while the person looks at it: a prefetch at the end of
        the file, whose prompt begins every earlier position's, so the KV cache serves wherever
        the cursor goes next instead of the whole file being read at the first pause."""
        coach, text = self.app.coach, self.editor.text
        if coach is not None and text and self.app.settings.suggestions and self.app.settings.prefetch:
            self._prefetch(coach, Context(text, "", self._related(text)))

    @work(thread=True, group="prefetch", exit_on_error=False)
    def _prefetch(self, coach, ctx: Context) -> None:
        try:
            coach.prefetch(ctx)
        except Exception:  # noqa: BLE001 - a guess that failed costs nothing: the request will say why
            pass

    def _failed(self, request: int, message: str) -> None:
        self.errors = message
        self.refresh_status()
