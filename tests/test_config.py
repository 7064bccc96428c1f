"""coach/config.py: every place Empower keeps things follows the environment at call time, and a
relative XDG variable is ignored as the XDG spec asks (a stray `XDG_DATA_HOME=data` must not
scatter a person's log into whatever directory the editor was started from)."""

from __future__ import annotations

from pathlib import Path

from coach import builtin, config, registry
from tui.recovery import recovery_dir
from tui.log import default_path


def test_the_xdg_directories_at_call_time(tmp_path, monkeypatch):
    for var in ("EMPOWER_CONFIG", "EMPOWER_CACHE", "EMPOWER_LOG_DB", "EMPOWER_RECOVERY_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "k"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "d"))
    assert config.config_path() == tmp_path / "c" / "empower" / "config.toml"
    assert registry.registry_path() == tmp_path / "c" / "empower" / "registry.json"
    assert builtin.BUILTINS["smollm2-135m"].hf_dir().parent == tmp_path / "k" / "empower" / "models"
    assert default_path() == tmp_path / "d" / "empower" / "interactions.db"
    assert recovery_dir() == tmp_path / "d" / "empower" / "recovery"


def test_relative_xdg_variables_are_ignored_and_empower_variables_win(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(var, "relative/dir")
    monkeypatch.delenv("EMPOWER_CACHE", raising=False)
    monkeypatch.delenv("EMPOWER_CONFIG", raising=False)
    assert config.config_path() == tmp_path / ".config" / "empower" / "config.toml"
    assert config.models_cache_dir() == tmp_path / ".cache" / "empower" / "models"
    assert config.data_dir() == tmp_path / ".local" / "share" / "empower"
    monkeypatch.setenv("EMPOWER_CONFIG", "~/mine.toml")
    monkeypatch.setenv("EMPOWER_CACHE", str(tmp_path / "models"))
    assert config.config_path() == tmp_path / "mine.toml" and config.models_cache_dir() == tmp_path / "models"
    Path(tmp_path / "mine.toml").write_text("[models.a]\npath = 'x.gguf'\n")
    assert config.load_config() == {"models": {"a": {"path": "x.gguf"}}}
