"""The records that flow through coach: a context, a prompt, a generation, a suggestion."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Context:
    """The code around the cursor: what the person has written before it and after it, and
    chunks of the project's other files to put ahead of it (coach/related.py renders them)."""
    prefix: str
    suffix: str = ""
    related: tuple[str, ...] = ()

    @property
    def mid_line(self) -> bool:
        """The cursor has code after it on its own line: suggest to the end of the line only."""
        return bool(self.suffix.split("\n", 1)[0].strip())


@dataclass(frozen=True)
class Prompt:
    """What a backend is asked. `text` for completion endpoints and local models (chat already
    rendered through the model's template, with the assistant turn prefilled); `messages` for
    chat endpoints (the last one is the prefilled assistant turn)."""
    format: str  # "completion", "fim" or "chat"
    text: str
    messages: tuple[dict, ...] = ()
    prefill: str = ""  # the code the assistant turn starts with, in the chat format
    suffix: str = ""  # the code after the cursor, for FIM


@dataclass(frozen=True)
class Request:
    prompt: Prompt
    max_tokens: int
    stop: tuple[str, ...] = ()
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int = 0
    cancel: threading.Event | None = None
    # Called after each generated token with the tokens' texts and natural-log probabilities so
    # far; True ends the generation there (finish_reason "enough"). A backend that cannot stop
    # mid-way may ignore it: it only saves time.
    enough: "Callable[[list[str], list[float]], bool] | None" = None


@dataclass(frozen=True)
class Generation:
    """A backend's raw answer, before extraction and policies."""
    text: str
    tokens: tuple[str, ...] = ()  # the text of each generated token
    logprobs: tuple[float, ...] | None = None  # natural-log probability of each token, if known
    token_ids: tuple[int, ...] = ()  # where the backend knows them (local models)
    finish_reason: str = "stop"  # "stop" (EOS or a stop string), "length", "cancelled"
    prompt_tokens: int = 0
    evaluated_tokens: int = 0  # prompt tokens actually computed (the rest came from the KV cache)
    prompt_s: float = 0.0
    generate_s: float = 0.0


@dataclass(frozen=True)
class Suggestion:
    """What the editor shows and the benchmark measures."""
    text: str
    n_tokens: int
    tokens: tuple[str, ...] = ()
    logprobs: tuple[float, ...] | None = None
    model: str = ""
    policy: str = ""
    source: str = "model"  # "model", "cache" or "typed-through"
    finish_reason: str = "stop"
    latency_s: float = 0.0
    timings: dict = field(default_factory=dict)
    dropped: str = ""  # when text is empty: why nothing is shown

    @property
    def nll_bits(self) -> float | None:
        """Cumulative negative log-likelihood of the suggestion, in bits."""
        if self.logprobs is None:
            return None
        from math import log
        return -sum(self.logprobs) / log(2)


class CoachError(Exception):
    """A problem the editor shows to the person: one clear line, never a crash."""


class ModelNotFound(CoachError):
    pass


class BackendError(CoachError):
    pass


def first_line(exc: BaseException) -> str:
    """An exception as the one line a person reads inside an error of ours: its type and the
    first line of its message (library errors often run to a page)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
