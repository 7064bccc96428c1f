"""The problem's tests under the editor: F5 runs them in a thread worker (the judge's sandbox
takes seconds), the table shows a verdict per test, and `TestResults.Finished` tells the screen
(its status bar, the interaction log) how it went."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.message import Message
from textual.widgets import DataTable

from problems.problem import Problem


class TestResults(DataTable):
    __test__ = False  # not a pytest class

    class Finished(Message):
        """The judge's report (None when it could not judge, `error` saying why)."""

        def __init__(self, report, error: str = "") -> None:
            super().__init__()
            self.report, self.error = report, error

    def __init__(self, **kwargs) -> None:
        super().__init__(zebra_stripes=True, cursor_type="row", **kwargs)
        self.running = False

    def on_mount(self) -> None:
        self.add_columns("test", "verdict", "time", "why")

    def run(self, source: str, problem: Problem) -> bool:
        """Judge `source` in a worker; False when a run is already going."""
        if self.running:
            return False
        self.running = True
        self._judge(source, problem)
        return True

    @work(thread=True, group="judge", exit_on_error=False)
    def _judge(self, source: str, problem: Problem) -> None:
        from problems.sandbox import JudgeError
        try:
            report, error = problem.judge(source, all_tests=True), ""
        except JudgeError as e:
            report, error = None, str(e)
        except Exception as e:
            report, error = None, f"the judge failed: {type(e).__name__}: {e}"
        self.app.call_from_thread(self._show, report, error)

    def _show(self, report, error: str) -> None:
        self.running = False
        if report is not None:
            self.clear()
            if report.compile_error:
                self.add_row("-", Text("does not compile", style="bold red"), "", report.compile_error)
            for r in report.results:
                style = "green" if r.passed else "bold red"
                self.add_row(r.name, Text(r.verdict.value, style=style), f"{r.time_s * 1000:.0f} ms", r.message)
            self.remove_class("hidden")
        self.post_message(self.Finished(report, error))
