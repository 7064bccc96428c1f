"""One model spec everywhere: the string that names a model in the editor, trainer and benchmark.

    path/to/model.gguf                  llama.cpp, in-process (config may add a GGUF LoRA)
    path/to/hf-dir                      transformers
    path/to/adapter-dir                 transformers + PEFT; base from adapter_config.json or --base
    openai:http://host:port/v1#name     any OpenAI-compatible server (vLLM, llama.cpp, Ollama)
    org/name                            a Hugging Face Hub id, downloaded once and cached
    NAME                                a name from the user's config.toml ([models.NAME]), or
                                        of a model empower-finetune trained (coach/registry.py)
    smollm2-135m, gemma-3-270m          a built-in model (coach/builtin.py; after those names)

The API key of a server comes from an environment variable (EMPOWER_API_KEY by default, or the
config's `api_key_env`); the key itself is never stored in a spec, logged or printed.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from coach import registry as reg
from coach.config import config_path, load_config
from coach.types import ModelNotFound

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSpec:
    raw: str  # what the person wrote
    kind: str  # "gguf", "hf", "adapter" or "openai"
    path: Path | None = None
    base: "ModelSpec | None" = None  # the base model of an adapter
    url: str | None = None  # openai: the server's base URL (…/v1)
    name: str | None = None  # openai: the served model name; otherwise a display name
    lora: Path | None = None  # gguf: a GGUF LoRA adapter applied at load time
    format: str | None = None  # a prompt format forced by the config ("completion" or "chat")
    api_key_env: str = "EMPOWER_API_KEY"

    @property
    def label(self) -> str:
        """A short name for status bars and logs (never contains a key)."""
        if self.kind == "openai":
            return f"{self.name} @ {re.sub(r'//[^/@]*@', '//', self.url or '')}"  # no user:password@
        return self.name or (self.path.name if self.path else self.raw)


def resolve(spec: str, base: str | None = None, config: dict | None = None,
            registry: dict | None = None, engine: str | None = None) -> ModelSpec:
    """Turn what a person wrote into a ModelSpec, or raise ModelNotFound saying why.
    `registry`: the trained models' names (coach.registry.load(), read when None).
    engine="hf": a transformers model is needed (an estimator, training): a built-in model then
    resolves to its HF copy instead of its GGUF."""
    config = load_config() if config is None else config
    spec = spec.strip()
    if spec.startswith("openai:"):
        return _openai(spec)
    path = Path(spec).expanduser()
    if path.exists():
        return _local(spec, path, base, config)
    named = config.get("models", {}).get(spec)
    try:
        trained = _trained(spec, registry)
    except ModelNotFound:  # a damaged registry.json does not hide the config's names
        if named is None:
            raise
        trained = None
    if named is not None and trained is not None:
        _say_once(f"empower: {spec!r} names a model in {config_path()} and a trained model in "
                  f"{reg.registry_path()}: the config's is used (rename one of them)")
    if named is None and trained is not None:
        if trained.kind == "missing":
            raise ModelNotFound(f"{spec!r}: the trained model's files are gone ({trained.spec}); train it again "
                                f"or remove the name: empower-finetune models --remove {spec}")
        named = trained.as_config()
    if named is not None:
        if not isinstance(named, dict) or "spec" not in named:
            raise ModelNotFound(f"config: [models.{spec}] needs a `spec = \"...\"` line")
        resolved = resolve(named["spec"], named.get("base", base), config, engine=engine)
        return replace(resolved, name=spec, format=named.get("format", resolved.format),
                       lora=Path(named["lora"]).expanduser() if named.get("lora") else resolved.lora,
                       api_key_env=named.get("api_key_env", resolved.api_key_env))
    from coach.builtin import BUILTINS

    if spec in BUILTINS:
        b = BUILTINS[spec]
        if engine == "hf":
            return ModelSpec(spec, "hf", path=b.hf(), name=spec)
        return ModelSpec(spec, "gguf", path=b.gguf(), name=spec)
    if HUB_ID.match(spec) and not spec.startswith((".", "/")):
        return _local(spec, download(spec), base, config)
    names = sorted({*config.get("models", {}), *_trained_names(registry)})
    known = f"{', '.join(names) or 'none configured or trained'}; built-in: {', '.join(BUILTINS)}"
    raise ModelNotFound(
        f"no model {spec!r}: not a file or directory, not openai:URL#NAME, not a Hub id and not "
        f"a name in {config_path()}, of a trained model or of a built-in one (names: {known})")


def _trained(name: str, registry: dict | None):
    """The registry's entry for `name`, or None."""
    entries = reg.load() if registry is None else registry
    return entries.get(name)


def _trained_names(registry: dict | None) -> list[str]:
    try:
        return list(reg.load() if registry is None else registry)
    except ModelNotFound:
        return []


_said: set[str] = set()


def _say_once(message: str) -> None:
    """A notice on stderr, once per process (the editor captures stderr while it runs)."""
    if message not in _said:
        _said.add(message)
        print(message, file=sys.stderr)


def _openai(spec: str) -> ModelSpec:
    url, _, name = spec.removeprefix("openai:").partition("#")
    if not url.startswith(("http://", "https://")) or not name:
        raise ModelNotFound(f"{spec!r}: write openai:http://host:port/v1#served-model-name")
    return ModelSpec(spec, "openai", url=url.rstrip("/"), name=name)


def _local(raw: str, path: Path, base: str | None, config: dict) -> ModelSpec:
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelNotFound(f"{path}: a model file must be a .gguf")
        with open(path, "rb") as f:
            if f.read(4) != b"GGUF":
                raise ModelNotFound(f"{path}: not a GGUF file")
        return ModelSpec(raw, "gguf", path=path)
    if (path / "adapter_config.json").is_file():
        adapter = json.loads((path / "adapter_config.json").read_text())
        base_spec = base or adapter.get("base_model_name_or_path")
        if not base_spec:
            raise ModelNotFound(f"{path}: the adapter names no base model; pass --base")
        try:
            resolved_base = resolve(base_spec, None, config)
        except ModelNotFound as exc:
            raise ModelNotFound(f"{path}: its base model {base_spec!r} cannot be found ({exc}); pass --base") from None
        return ModelSpec(raw, "adapter", path=path, base=resolved_base)
    if (path / "config.json").is_file():
        return ModelSpec(raw, "hf", path=path)
    if list(path.glob("*.gguf")) and path.is_dir():
        raise ModelNotFound(f"{path}: a directory of GGUF files; name one of them")
    raise ModelNotFound(f"{path}: not a model (no config.json, no adapter_config.json, not a .gguf)")


def download(hub_id: str) -> Path:
    """Download a Hub model once into the Hugging Face cache (with its progress bars)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelNotFound(f"{hub_id!r} looks like a Hub id, and huggingface_hub is not installed") from None
    try:
        return Path(snapshot_download(hub_id, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]))
    except Exception as exc:  # offline, unknown repo, gated: all end the same way for a person
        raise ModelNotFound(
            f"cannot download {hub_id!r} from the Hugging Face Hub ({type(exc).__name__}); use a "
            "local .gguf file, a local model directory, openai:URL#NAME, or a name from config.toml") from None
