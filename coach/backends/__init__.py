"""Backends: one class per engine behind one protocol, registered by the spec kind they serve.

A backend turns a `Request` (a rendered prompt, a token budget, stop strings, a cancel flag)
into a `Generation` (text, per-token text and log-probabilities where the engine has them,
timings). Everything else (prompt formats, extraction, policies, caches) is shared, in coach.
"""

from __future__ import annotations

import importlib
from typing import Protocol, runtime_checkable

from coach.prompts import grid_cut
from coach.specs import ModelSpec
from coach.types import BackendError, Generation, Request


@runtime_checkable
class Backend(Protocol):
    spec: ModelSpec

    def has_chat_template(self) -> bool: ...

    def render_chat(self, messages: list[dict]) -> str:
        """The model's chat template applied to messages, ending with an open assistant turn."""

    def fim_tokens(self) -> tuple[str, str, str] | None:
        """(prefix, suffix, middle) markers when the model was trained for fill-in-the-middle."""

    def count_tokens(self, text: str) -> int: ...

    def generate(self, request: Request) -> Generation: ...

    def close(self) -> None: ...


def fit_to_context(ids: list[int], room: int, keep_first: bool) -> list[int]:
    """At most `room` token ids: the end of the code (what the suggestion continues), its start
    cut on the window's grid (`coach.prompts.grid_cut`). `keep_first` keeps a leading BOS."""
    cut = grid_cut(len(ids), room)
    if not cut:
        return ids
    return ids[:1] + ids[1 + cut:] if keep_first else ids[cut:]


# spec kind -> "module:Class", imported only when used (torch is heavy; a GGUF user needs none)
REGISTRY: dict[str, str] = {
    "gguf": "coach.backends.llamacpp:LlamaCppBackend",
    "hf": "coach.backends.hf:HFBackend",
    "adapter": "coach.backends.hf:HFBackend",
    "openai": "coach.backends.openai_http:OpenAIBackend",
}


def register(kind: str, target: str) -> None:
    REGISTRY[kind] = target


def load_backend(spec: ModelSpec, **options) -> Backend:
    target = REGISTRY.get(spec.kind)
    if target is None:
        raise BackendError(f"no backend for {spec.kind!r} models (known: {', '.join(sorted(REGISTRY))})")
    module, _, cls = target.partition(":")
    try:
        backend_cls = getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise BackendError(f"the {spec.kind} backend needs a package that is not installed: {exc.name}") from None
    return backend_cls(spec, **options)
