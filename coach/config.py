"""Where Empower keeps things on a person's machine, and the config file: one home for the XDG
base directories (read at call time, never at import, so tests and a changed environment are
honoured), used by the specs, the registry of trained models, the built-in models, the editor's
log and recovery copies, and the experiment.

    $EMPOWER_CONFIG, else $XDG_CONFIG_HOME/empower/config.toml   the config (never written by Empower)
    registry.json beside it                                      trained models (coach/registry.py)
    $EMPOWER_CACHE, else $XDG_CACHE_HOME/empower/models          built-in models' assembled copies
    $XDG_CACHE_HOME/empower/experiments                          the experiment's work
    $XDG_DATA_HOME/empower                                       the interaction log, recovery copies

A relative or empty XDG_* variable is ignored, as the XDG spec asks.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from coach.types import ModelNotFound


def _xdg(variable: str, default: str) -> Path:
    value = os.environ.get(variable, "")
    return Path(value) if os.path.isabs(value) else Path.home() / default


def config_path() -> Path:
    if os.environ.get("EMPOWER_CONFIG"):
        return Path(os.environ["EMPOWER_CONFIG"]).expanduser()
    return _xdg("XDG_CONFIG_HOME", ".config") / "empower" / "config.toml"


def load_config(path: Path | None = None) -> dict:
    """The config's tables ({} when there is no config file); bad TOML is one line."""
    path = path or config_path()
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ModelNotFound(f"{path}: not valid TOML: {exc}") from None


def cache_dir() -> Path:
    """Empower's directory in the XDG cache dir."""
    return _xdg("XDG_CACHE_HOME", ".cache") / "empower"


def models_cache_dir() -> Path:
    """Where assembled GGUFs and transformers copies of the built-in models live."""
    if os.environ.get("EMPOWER_CACHE"):
        return Path(os.environ["EMPOWER_CACHE"]).expanduser()
    return cache_dir() / "models"


def data_dir() -> Path:
    """Empower's directory in the XDG data dir (the log and the recovery copies)."""
    return _xdg("XDG_DATA_HOME", ".local/share") / "empower"
