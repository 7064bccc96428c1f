"""The run directory of a training: checkpoints, the metrics and their plot, the adapter, the
versions and the dataset it was trained from, and the trainer callback that records and shows
the steps (finetune/train.py lists the files).

Every file is written to a temporary name and renamed: a crash leaves no half file under a final
name. Nothing here imports torch or transformers at import time (see finetune/train_data.py).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

from coach.atomic import replace_dir, save_figure, write_atomic


def rank_and_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def last_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete checkpoint (the Trainer writes trainer_state.json last)."""
    found = []
    for d in (out_dir / "checkpoints").glob("checkpoint-*"):
        step = d.name.removeprefix("checkpoint-")
        if step.isdigit() and (d / "trainer_state.json").is_file() and (d / "optimizer.pt").is_file() \
                and any(d.glob("adapter_model.*")):
            found.append((int(step), d))
    return max(found)[1] if found else None


def read_metrics(path: Path, upto: int) -> dict[int, dict]:
    rows = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row["step"] <= upto:
                rows[row["step"]] = row
    return rows


def write_metrics(out_dir: Path, rows: dict[int, dict]) -> None:
    write_atomic(out_dir / "metrics.jsonl", "".join(json.dumps(rows[s]) + "\n" for s in sorted(rows)))


def plot_loss(out_dir: Path, rows: dict[int, dict], title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for key, label in (("train_loss", "train"), ("eval_loss", "eval (held-out files)")):
        points = [(s, rows[s][key]) for s in sorted(rows) if rows[s].get(key) is not None]
        if points:
            ax.plot(*zip(*points), marker="o" if len(points) < 30 else None, markersize=3, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per completion token)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if ax.lines:  # a run stopped before its first step has no curve to label
        ax.legend()
    fig.tight_layout()
    save_figure(fig, out_dir / "loss.png")


def save_adapter(model, out_dir: Path) -> Path:
    """The final adapter, written beside and renamed into place."""
    final, tmp = out_dir / "adapter", out_dir / f".adapter.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    # LoRA never adapts the embeddings here: saying so spares PEFT looking the base up on the Hub
    # (a built-in base's name is not a Hub id) to decide whether to save them
    model.save_pretrained(tmp, save_embedding_layers=False)
    replace_dir(tmp, final)
    return final


def versions(backend: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for lib in ("torch", "transformers", "peft", "accelerate", "trl") + (("unsloth",) if backend == "unsloth" else ()):
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            pass
    return out


def base_name(spec: str, path: Path) -> str:
    """How the adapter names its base: an absolute path for a local directory (the adapter is
    served from anywhere), the spec itself for a Hub id or a configured name."""
    return str(path.resolve()) if Path(spec).expanduser().exists() else spec


def step_of(checkpoint: Path | None) -> int:
    return int(checkpoint.name.removeprefix("checkpoint-")) if checkpoint else 0


def dataset_manifest(dataset_dir: Path) -> dict | None:
    path = (dataset_dir if dataset_dir.is_dir() else dataset_dir.parent) / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def make_recorder(out_dir: Path, total_steps: int, console):
    """A TrainerCallback that keeps a row per logged step (train loss, lr, tokens/s, gradient
    norm; eval loss), writes metrics.jsonl at every log and loss.png at every checkpoint (rank
    0 only), and draws a rich progress bar with the latest losses (where `console` is given)."""
    from contextlib import contextmanager

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from transformers import TrainerCallback

    from coach.progress import Milestones

    class Recorder(TrainerCallback):
        def __init__(self):
            self.rows: dict[int, dict] = {}
            self.progress = self.task = self.milestones = None
            self.seconds = 0.0  # training time this session (not eval, not saving)
            self.tokens = 0  # training tokens this session
            self._tokens_at_start = None
            self._last_tokens, self._last_seconds = 0, 0.0
            self._t = None

        @contextmanager
        def live(self):
            if console is None:
                yield
                return
            if not console.is_terminal:
                self.milestones = Milestones(console, "training")
            self.progress = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                     TimeRemainingColumn(), TextColumn("{task.description}"), console=console)
            with self.progress:
                self.task = self.progress.add_task("", total=total_steps)
                try:
                    yield
                finally:
                    self.progress = None

        def on_train_begin(self, args, state, control, **kw):
            self._tokens_at_start = state.num_input_tokens_seen
            self._last_tokens = state.num_input_tokens_seen
            if self.progress:
                self.progress.update(self.task, completed=state.global_step)

        def on_step_begin(self, args, state, control, **kw):
            self._t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if self._t is not None:
                self.seconds += time.perf_counter() - self._t
            if self.progress:
                self.progress.update(self.task, completed=state.global_step)
            if self.milestones:  # a file: lines, where a terminal has the bar
                self.milestones.update(state.global_step, state.max_steps, self.losses(), " steps")

        def on_log(self, args, state, control, logs=None, **kw):
            logs = logs or {}
            if "loss" not in logs and "eval_loss" not in logs:
                return
            row = self.rows.setdefault(state.global_step, {"step": state.global_step})
            if "loss" in logs:
                tokens = state.num_input_tokens_seen
                if self._tokens_at_start is not None:
                    self.tokens = tokens - self._tokens_at_start
                dt = self.seconds - self._last_seconds
                row.update(train_loss=logs["loss"], lr=logs.get("learning_rate"),
                           tokens_per_s=round((tokens - self._last_tokens) / dt, 1) if dt > 0 else None,
                           grad_norm=logs.get("grad_norm"), epoch=round(state.epoch or 0.0, 4))
                self._last_tokens, self._last_seconds = tokens, self.seconds
            if "eval_loss" in logs:
                row["eval_loss"] = logs["eval_loss"]
            if self.progress:
                self.progress.update(self.task, description=self.losses())
            self.flush()

        def losses(self) -> str:
            last = {k: v for s in sorted(self.rows) for k, v in self.rows[s].items() if k.endswith("loss")}
            return "  ".join(f"{k.removesuffix('_loss')} loss {v:.3f}" for k, v in sorted(last.items(), reverse=True))

        def on_save(self, args, state, control, **kw):
            self.flush(plot=True)

        def flush(self, plot: bool = False):
            if rank_and_world()[0] == 0:  # only rank 0 writes
                write_metrics(out_dir, self.rows)
                if plot:
                    plot_loss(out_dir, self.rows, str(out_dir))

        def tokens_per_s(self) -> float | None:
            return round(self.tokens / self.seconds, 1) if self.seconds > 0 and self.tokens else None

    return Recorder()
