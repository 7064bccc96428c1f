"""The editor screen's small pieces: its status bar, and a problem's statement as Markdown."""

from __future__ import annotations

from textual.widgets import Static

from problems.problem import Problem


class StatusBar(Static):
    # nowrap + ellipsis: Static ignores a rich Text's no_wrap, and a wrapped status bar of one
    # row loses its end without a mark.
    DEFAULT_CSS = """StatusBar { height: 1; background: $panel; color: $text; padding: 0 1;
                                 text-wrap: nowrap; text-overflow: ellipsis; }"""


def statement_of(problem: Problem) -> str:
    """The statement as Markdown under its title (a built-in problem's is Markdown with it). A
    docstring's examples (`>>> f(1)` and the answer under it) go in a code block: as Markdown,
    each `>` would open a quote."""
    text = problem.statement.strip()
    if text.startswith("#"):
        return text
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.lstrip().startswith(">>>")), len(lines))
    prose, examples = "\n".join(lines[:first]).strip(), "\n".join(lines[first:]).strip()
    return f"# {problem.title}\n\n{prose}" + (f"\n\n```python\n{examples}\n```" if examples else "")
