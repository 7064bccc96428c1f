"""The data of a training run: the examples it reads (the files it writes: finetune/run_dir.py).

A labelled dataset (finetune/label.py) in, token ids and labels out.

What is trained is what coach serves: each row's state goes through `coach.prompts.build` (the
window of code before the cursor; in the chat format the model's own chat template and the
prefilled assistant turn) and is tokenized by the transformers backend's own
`tokenize_prompt`; the target is the completion followed by the model's EOS token, so the model
learns to write the completion and then stop (an empty completion: EOS alone). Prompt positions
get the label -100: the loss is on the completion and the EOS only.

Held-out files, not held-out rows: states of one file share most of their text, so a split by
row would measure memorized text, not learning.

Nothing here imports torch or transformers at import time: finetune/train.py must import
unsloth before transformers when it trains with unsloth.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from coach import prompts
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
