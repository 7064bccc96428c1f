"""The registry of finetuned models: names that `empower-finetune` gives to the models it trains.

    empower-finetune models                 # list them
    empower-tui FILE --model my-code-eta0.32

A JSON file, `registry.json`, beside the user's config.toml (`coach.config.config_path()`), so
that registering a model never touches the hand-written config. Its shape:

    {"version": 1,
     "models": {"my-code-eta0.32": {"spec": "/abs/RUN/export/model-f16.gguf", "format": "completion",
                                    "base": "/abs/base-hf-dir", "run": "/abs/RUN", "eta": 0.32,
                                    "rule": "empower", "created": "2026-11-20T14:03:11+00:00"}}}

`spec` is what the model is loaded from (a GGUF file or an adapter directory, absolute), `format`
the prompt format it was trained in (so coach serves it in that format), `base` the model it
was trained from, `run` the run directory, `eta` the threshold of its labels (None for the SFT
rules). An entry may also name a GGUF LoRA (`lora`) to apply on a base GGUF `spec`.
`coach.specs.resolve` looks a name up here after config.toml's `[models.NAME]`: config wins.

Writes are atomic (temporary file, then rename) under a lock file, so two runs that finish
together both stay registered.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from coach.atomic import write_json
from coach.config import config_path
from coach.types import ModelNotFound

VERSION = 1
FILE = "registry.json"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")  # no "/" (a path or a Hub id), no ":" (openai:)


@dataclass(frozen=True)
class Entry:
    spec: str  # absolute path of the GGUF file or the adapter directory
    format: str  # "completion" or "chat": the prompt format it was trained in
    base: str | None  # the model it was trained from (absolute path when local)
    run: str | None  # the run directory
    eta: float | None  # η in bits of its labels; None for the SFT rules
    created: str  # ISO 8601, UTC
    rule: str | None = None  # "empower", "sft-10", ...
    lora: str | None = None  # a GGUF LoRA applied on `spec` at load time

    @property
    def kind(self) -> str:
        """gguf, gguf+lora, adapter, hf, or missing (the files are gone)."""
        path = Path(self.spec)
        if path.is_file():
            return "gguf+lora" if self.lora else "gguf"
        if (path / "adapter_config.json").is_file():
            return "adapter"
        if (path / "config.json").is_file():
            return "hf"
        return "missing"

    def as_config(self) -> dict:
        """The entry as a config.toml `[models.NAME]` table (what resolve reads)."""
        table = {"spec": self.spec, "format": self.format}
        if self.lora:
            table["lora"] = self.lora
        if self.base and self.kind == "adapter":
            table["base"] = self.base
        return table


def registry_path() -> Path:
    """registry.json beside config.toml (read at call time: tests point it elsewhere)."""
    return config_path().parent / FILE


def check_name(name: str) -> str:
    if not NAME.match(name) or name.endswith(".gguf"):
        raise ValueError(f"model name {name!r}: use letters, digits and . _ + - (no '/', no ':', not ending in .gguf)")
    return name


def load(path: Path | None = None) -> dict[str, Entry]:
    """name -> Entry; {} when there is no registry yet. ModelNotFound for a damaged file."""
    path = path or registry_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        models = data["models"]
        return {name: Entry(**{k: v for k, v in e.items() if k in Entry.__dataclass_fields__})
                for name, e in models.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelNotFound(f"{path}: not a registry of models ({type(exc).__name__}: {exc}); "
                            "fix or delete it") from None


def default_policy(model: str | None) -> str:
    """The policy a model is served with when none is asked for: a model empower-finetune
    trained ends its suggestions itself ("trained", so the editor and the log say so); any other
    generates up to the cap ("base")."""
    try:
        return "trained" if model is not None and model in load() else "base"
    except ModelNotFound:  # the editor says so when it resolves the model
        return "base"


def register(name: str, spec: str | Path, fmt: str, *, base: str | None = None, run: str | Path | None = None,
             eta: float | None = None, rule: str | None = None, lora: str | Path | None = None,
             path: Path | None = None) -> tuple[Entry, Entry | None]:
    """Add or replace `name`; returns (the new entry, the one it replaced or None). An entry
    identical but for its time is kept as it is (with its first time)."""
    check_name(name)
    path = path or registry_path()
    entry = Entry(str(Path(spec).resolve()), fmt, base, str(Path(run).resolve()) if run else None, eta,
                  datetime.now(timezone.utc).isoformat(timespec="seconds"), rule,
                  str(Path(lora).resolve()) if lora else None)
    with _locked(path):
        entries = load(path)
        old = entries.get(name)
        if old is not None and same(old, entry):
            return old, old
        entries[name] = entry
        _write(path, entries)
    return entry, old


def same(a: Entry, b: Entry) -> bool:
    """The same model (everything but the time it was registered)."""
    return {**asdict(a), "created": None} == {**asdict(b), "created": None}


def remove(name: str, path: Path | None = None) -> Entry | None:
    path = path or registry_path()
    with _locked(path):
        entries = load(path)
        old = entries.pop(name, None)
        if old is not None:
            _write(path, entries)
    return old


def _write(path: Path, entries: dict[str, Entry]) -> None:
    data = {"version": VERSION, "models": {n: asdict(e) for n, e in sorted(entries.items())}}
    write_json(path, data, durable=True)  # a person's trained models are found through it


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `<path>.lock` for a read-modify-write (where fcntl exists)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock; the rename is still atomic
        yield
        return
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
