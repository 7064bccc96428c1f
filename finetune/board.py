"""What `empower-finetune DIR` shows while it runs, apart from the work (finetune/pipeline.py):
a row per stage, drawn live by rich in a terminal, or lines with the time left when the output
goes to a file; what finetune/train.py prints, above the rows; and the training row's moves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Row:
    status: str = "pending"  # pending, running, done, kept, skipped, failed, interrupted
    detail: str = ""
    done: int | None = None
    total: int | None = None
    started: float | None = None
    ended: float | None = None


class Board:
    """The stage rows, drawn live by rich in a terminal (mark, stage, bar, time, time left, what
    happened); written to a file, a line as each stage starts and ends and milestones between
    (coach/progress.py). Time left: from the pace so far, or the plan's estimate before that."""

    MARKS = {"pending": "[dim]·[/]", "done": "[green]✓[/]", "kept": "[green]✓[/]", "skipped": "[yellow]–[/]",
             "failed": "[red]✗[/]", "interrupted": "[yellow]■[/]"}

    def __init__(self, console, stages: tuple[str, ...]):
        from rich.live import Live
        from rich.spinner import Spinner

        self.console = console
        self.rows = {name: Row() for name in stages}
        self.planned: dict[str, float] = {}  # stage -> estimated seconds (the plan's)
        self.milestones = {}  # stage -> its Milestones (and their Pace: the time left in both displays)
        self.spinner = Spinner("dots", style="cyan")
        # transient: the live drawing is erased at the end and the board printed once, where it
        # says something (not after a bad DIR: the error alone says it)
        self.live = Live(self, console=console, refresh_per_second=8, transient=True)

    @property
    def lines(self) -> bool:
        """Whether progress goes out as lines (a file, a pipe) rather than a live drawing."""
        return not self.console.is_terminal

    def __rich__(self):
        from rich.markup import escape
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        from coach.progress import clock

        table = Table.grid(padding=(0, 1))
        for _ in range(5):
            table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
        now = time.perf_counter()
        running = any(r.status == "running" for r in self.rows.values())
        for name, row in self.rows.items():
            mark = self.spinner if row.status == "running" else self.MARKS[row.status]
            if row.status == "running" and row.total:
                bar = ProgressBar(total=row.total, completed=row.done or 0, width=20)
            else:  # the column is there while a stage runs, not in the final drawing
                bar = " " * 20 if running else ""
            took = left = ""
            if row.started is not None:
                took = f"{(row.ended or now) - row.started:5.1f}s"
                if row.status == "running" and name in self.milestones:
                    seconds = self.milestones[name].pace.remaining(row.done or 0, row.total)
                    left = f"~{clock(seconds)} left" if seconds is not None else ""
            detail = escape(row.detail)
            if row.status == "kept":
                detail = f"[dim]kept: {detail}[/]"
            table.add_row(mark, f"[bold]{name:<8}[/]", bar, f"[dim]{took:>7}[/]", f"[dim]{left}[/]", detail)
        return table

    def say(self, text: str) -> None:
        if self.lines:
            self.console.print(text, highlight=False, soft_wrap=True, markup=False)

    def start(self, name: str, detail: str = "") -> None:
        from coach.progress import Milestones, clock

        self.milestones[name] = Milestones(self.console, name, planned=self.planned.get(name))
        self.rows[name] = Row("running", detail, started=time.perf_counter())
        planned = f" (about {clock(self.planned[name])})" if name in self.planned else ""
        if detail and name in self.planned:  # the long stages; a kept one ends at once, and its end says it
            self.say(f"{name}: started{planned}: {detail}")

    def update(self, name: str, detail: str | None = None, done: int | None = None, total: int | None = None) -> None:
        row = self.rows[name]
        if detail is not None:
            row.detail = detail
        if done is not None:
            row.done = done
        if total is not None:
            row.total = total
        if self.lines and row.total and done is not None:
            self.milestones[name].update(row.done, row.total, row.detail)

    def finish(self, name: str, status: str, detail: str | None = None) -> None:
        from coach.progress import clock

        row = self.rows[name]
        row.status = status
        row.ended = time.perf_counter() if row.started is not None else None
        if detail is not None:
            row.detail = detail
        took = f" in {clock(row.ended - row.started)}" if row.started is not None and status != "kept" else ""
        if status != "failed":  # a failure's one line comes at the end, from the command
            self.say(f"{name}: {status}{took}" + (f": {row.detail}" if row.detail else ""))

    def stop_running(self, status: str) -> None:
        for name, row in self.rows.items():
            if row.status == "running":
                self.finish(name, status)


class LineSink:
    """A file for a rich Console whose lines are printed above the live display: what
    finetune/train.py says about its run shows up as it says it."""

    def __init__(self, console):
        self.console, self.buffer = console, ""

    def write(self, text: str) -> int:
        from rich.text import Text

        self.buffer += text
        while "\n" in self.buffer:
            line, self.buffer = self.buffer.split("\n", 1)
            # train's own progress (its bar, or its lines in a file): the row shows it
            if line.strip() and not line.lstrip().startswith(("training ━", "training: ")):
                self.console.print(Text(line), highlight=False, soft_wrap=True)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def train_callback(board: Board):
    """A TrainerCallback that moves the train row: the step, and the latest losses."""
    from transformers import TrainerCallback

    class Moves(TrainerCallback):
        def __init__(self):
            self.losses: dict[str, float] = {}

        def on_step_end(self, args, state, control, **kw):
            board.update("train", done=state.global_step, total=state.max_steps, detail=self.text(state))

        def on_log(self, args, state, control, logs=None, **kw):
            for key in ("loss", "eval_loss"):
                if logs and key in logs:
                    self.losses[key] = logs[key]
            board.update("train", detail=self.text(state))

        def text(self, state) -> str:
            losses = "  ".join(f"{'eval' if k == 'eval_loss' else 'train'} loss {v:.3f}"
                               for k, v in sorted(self.losses.items(), reverse=True))
            return f"step {state.global_step}/{state.max_steps}  {losses}".rstrip()

    return Moves()
