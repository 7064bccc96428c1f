"""The data of a training run: the examples it reads, and the files it writes.

A labelled dataset (finetune/label.py) in, token ids and labels out.

What is trained is what coach serves: each row's state goes through `coach.prompts.build` (the
window of code before the cursor; in the chat format the model's own chat template and the
prefilled assistant turn) and is tokenized by the transformers backend's own
`tokenize_prompt`; the target is the completion followed by the model's EOS token, so the model
learns to write the completion and then stop (an empty completion: EOS alone). Prompt positions
get the label -100: the loss is on the completion and the EOS only.

Held-out files, not held-out rows: states of one file share most of their text, so a split by
row would measure memorized text, not learning.

The run directory's files (finetune/train.py lists them) are written to a temporary name and
renamed: a crash leaves no half file under a final name.

Nothing here imports torch or transformers at import time: finetune/train.py must import
unsloth before transformers when it trains with unsloth.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from coach import prompts
from coach.atomic import replace_dir, save_figure, write_atomic
from coach.specs import ModelSpec
from coach.types import Context, Prompt, Request

IGNORE = -100  # the label of a position that is not trained (prompt and padding)


class TrainError(Exception):
    """Training cannot start or go on: one line that says why."""


def read_rows(dataset_dir: Path) -> list[dict]:
    """The rows of DATASET_DIR/data.jsonl (or a data.jsonl given directly)."""
    path = dataset_dir / "data.jsonl" if dataset_dir.is_dir() else dataset_dir
    if not path.is_file():
        inside = sorted(p.parent.name for p in dataset_dir.glob("*/data.jsonl")) if dataset_dir.is_dir() else []
        if inside:  # the --out of `label`, which holds a dataset per rule and η
            raise TrainError(f"{dataset_dir}: holds several datasets; name one: {', '.join(inside)}")
        raise TrainError(f"{dataset_dir}: no data.jsonl (make one with `empower-finetune label`)")
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise TrainError(f"{path}:{n}: not a JSON line") from None
            missing = {"source", "state", "completion", "format"} - set(row)
            if missing:
                raise TrainError(f"{path}:{n}: a row without {', '.join(sorted(missing))}")
            rows.append(row)
    if not rows:
        raise TrainError(f"{path}: the dataset is empty: nothing to train on")
    formats = {row["format"] for row in rows}
    if len(formats) > 1:
        raise TrainError(f"{path}: rows in several prompt formats ({', '.join(sorted(formats))}); train one at a time")
    return rows


def split_by_source(rows: list[dict], eval_share: float, seed: int) -> tuple[list[dict], list[dict], list[str]]:
    """(training rows, held-out rows, held-out files): whole files are held out, chosen by the
    seed; at least one when there are two files or more (and eval_share > 0), never all."""
    sources = sorted({row["source"] for row in rows})
    n = 0
    if eval_share > 0 and len(sources) >= 2:
        n = min(len(sources) - 1, max(1, round(eval_share * len(sources))))
    held = sorted(random.Random(seed).sample(sources, n))
    held_set = set(held)
    return ([r for r in rows if r["source"] not in held_set], [r for r in rows if r["source"] in held_set], held)


class ServedPrompts:
    """The prompts the transformers backend would serve for a state, without loading a model:
    coach.prompts.build with this object as the backend, and HFBackend's own chat rendering
    and tokenization (its methods, called on this tokenizer)."""

    def __init__(self, tokenizer, spec: ModelSpec):
        from coach.backends.hf import HFBackend

        self._hf = HFBackend
        self.tokenizer, self.spec = tokenizer, spec
        self.n_ctx = None  # no cut by the backend: the trainer cuts to max_length itself

    def has_chat_template(self) -> bool:
        return self._hf.has_chat_template(self)

    def render_chat(self, messages: list[dict]) -> str:
        return self._hf.render_chat(self, messages)

    def tokenize_prompt(self, request: Request) -> list[int]:
        return self._hf.tokenize_prompt(self, request)

    def fim_tokens(self):
        return None  # a dataset row holds no code after the cursor: never fill-in-the-middle

    def prompt(self, state: str, fmt: str, max_chars: int):
        return prompts.build(Context(state), fmt, self, max_chars)

    def ids(self, prompt) -> list[int]:
        return self.tokenize_prompt(Request(prompt, max_tokens=0))


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]  # IGNORE on the prompt; the completion's ids and EOS after it
    source: str
    prompt: str  # the prompt's text as served (its window of the state), before tokenization


@dataclass
class Encoding:
    """A dataset's examples as ids, and what had to be bent to fit."""
    examples: list[Encoded] = field(default_factory=list)
    windowed: int = 0  # prompts cut to a shorter window to fit max_length
    retokenized: int = 0  # completions tokenized on their own (the joint tokenization moved the prompt's end)
    dropped: int = 0  # completions (+ EOS) that alone do not fit max_length, or no room for any prompt

    def summary(self) -> dict:
        return {"examples": len(self.examples), "windowed": self.windowed,
                "retokenized": self.retokenized, "dropped": self.dropped,
                "tokens": sum(len(e.input_ids) for e in self.examples),
                "target_tokens": sum(sum(t != IGNORE for t in e.labels) for e in self.examples)}


def encode_rows(rows: list[dict], served: ServedPrompts, fmt: str, max_length: int,
                prompt_chars: int = prompts.WINDOW_CHARS) -> Encoding:
    eos = served.tokenizer.eos_token_id
    if eos is None:
        raise TrainError(f"{served.spec.label}: the tokenizer has no EOS token: the model could not learn to stop")
    out = Encoding()
    for row in rows:
        example = encode_row(row, served, fmt, max_length, prompt_chars, eos, out)
        if example is None:
            out.dropped += 1
        else:
            out.examples.append(example)
    return out


def encode_row(row: dict, served: ServedPrompts, fmt: str, max_length: int, prompt_chars: int, eos: int,
               stats: Encoding | None = None) -> Encoded | None:
    """One row as (prompt ids + completion ids + EOS, labels). A prompt too long for
    max_length is served from a shorter window of the state (its end kept, cut at a line
    start, as the editor's window is). The completion is never cut: a row whose completion +
    EOS alone does not fit is dropped (None), and so is a chat row whose template alone does
    not fit."""
    state = row["state"]
    chars = min(prompt_chars, len(state))
    while True:
        prompt = served.prompt(state, fmt, chars)
        prompt_ids = served.ids(prompt)
        full = served.ids(Prompt(prompt.format, prompt.text + row["completion"]))
        if full[:len(prompt_ids)] == prompt_ids:
            completion, retokenized = full[len(prompt_ids):], False
        else:  # the completion's first token merged with the prompt's last: tokenize it alone
            completion = served.tokenizer(row["completion"], add_special_tokens=False, verbose=False)["input_ids"]
            retokenized = True
        target = list(completion) + [eos]
        room = max_length - len(target)
        if room < 1:
            return None
        if len(prompt_ids) <= room:
            break
        code = len(prompts.window(state, chars))
        if code == 0:  # the chat template and its few-shot turns alone do not fit
            return None
        per_token = len(prompt.text) / max(1, len(prompt_ids))
        chars = max(0, min(code - 1, code - int((len(prompt_ids) - room) * per_token)))
    if stats is not None:
        stats.windowed += len(prompts.window(state, chars)) < len(state)
        stats.retokenized += retokenized
    return Encoded(list(prompt_ids) + target, [IGNORE] * len(prompt_ids) + target, row["source"], prompt.text)


class Rows:
    """A map-style dataset of encoded examples for the Trainer."""

    def __init__(self, examples: list[Encoded]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        e = self.examples[i]
        return {"input_ids": e.input_ids, "labels": e.labels}


@dataclass
class Collator:
    """Right padding to the longest example of the batch; padding is masked out of attention
    and loss (its id does not matter)."""
    pad_id: int
    multiple_of: int = 1  # pad lengths up to a multiple (tensor cores like multiples of 8)

    def __call__(self, features: list[dict]) -> dict:
        import torch

        longest = max(len(f["input_ids"]) for f in features)
        longest = math.ceil(longest / self.multiple_of) * self.multiple_of
        ids = torch.full((len(features), longest), self.pad_id, dtype=torch.long)
        labels = torch.full((len(features), longest), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(features), longest), dtype=torch.long)
        for i, f in enumerate(features):
            n = len(f["input_ids"])
            ids[i, :n] = torch.tensor(f["input_ids"])
            labels[i, :n] = torch.tensor(f["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


# ------------------------------------------------------------------ the run directory


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
