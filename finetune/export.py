"""Export a trained run: the adapter, the merged model, a GGUF of it, or a GGUF LoRA.

    empower-finetune export RUN --to adapter|merged|gguf|gguf-lora [--quant f16|q8_0|q4_k_m] [--name NAME]

RUN is the run directory of `empower-finetune DIR` (the training run in RUN/train), or the
--out of `empower-finetune train`. What is written, in RUN/export/:

    adapter/            --to adapter: a copy of the PEFT adapter (a spec: its config names the base)
    merged/             --to merged: the base with the adapter merged in (float32 safetensors) and
                        the base's tokenizer files, for transformers, vLLM and the GGUF writer
    model-<quant>.gguf  --to gguf: the merged model for llama.cpp (a laptop needs only this file)
    base-<quant>.gguf   --to gguf-lora: the base model for llama.cpp, and
    lora.gguf           the adapter as a llama.cpp LoRA applied on it at load time (a few MB;
                        f32, as finetune/gguf_lora.py writes it)

Each output carries its resolved config: adapter/export.json, merged/export.json, and the GGUF
writer's <file>.gguf.json with a `trained` section (run, adapter and its sha256, base, prompt
format, rule, η). An output that is already there and was made from the same adapter (its
sha256) is kept; --force writes it again. Every output appears under its name only complete
(a temporary name, then a rename): a full disk or Ctrl+C leaves no half file or directory.

Offline, from a pip install: the GGUF writer is finetune/gguf_export.py (the `gguf` package),
and K-quants come from llama-cpp-python's llama_model_quantize. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import inspect
import json
import os
import shutil
import sys
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from coach.atomic import replace_dir, write_json
from coach.types import first_line

TARGETS = ("adapter", "merged", "gguf", "gguf-lora")
# The base's tokenizer, copied as it is into merged/ (the GGUF writer reads tokenizer.model or
# tokenizer.json; a tokenizer re-saved by transformers may have only the latter).
TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json", "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json")


class ExportError(Exception):
    """The export cannot be done: one line that says why."""


@dataclass(frozen=True)
class Run:
    """A finished training run, as export reads it."""
    root: Path  # the directory given (RUN)
    train: Path  # the training run: config.json, adapter/
    base: str  # the base spec as training was given it
    base_dir: Path  # the base's transformers directory
    format: str  # the prompt format it was trained in
    rule: str | None
    eta: float | None
    adapter_sha256: str

    @property
    def adapter(self) -> Path:
        return self.train / "adapter"

    @property
    def out(self) -> Path:
        return self.root / "export"


@dataclass(frozen=True)
class Output:
    what: str  # adapter, merged, gguf, base gguf, lora gguf
    path: Path
    kept: bool  # already there, made from the same adapter: not written again

    @property
    def bytes(self) -> int:
        if self.path.is_file():
            return self.path.stat().st_size
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())


# ------------------------------------------------------------------ the run


def open_run(path: str | Path) -> Run:
    """The finished training run in `path` (RUN/train, or `path` itself), or ExportError."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ExportError(f"{root}: no such run directory" if not root.exists() else f"{root}: not a directory")
    train = root / "train" if (root / "train" / "config.json").is_file() else root
    config_file = train / "config.json"
    if not config_file.is_file():
        raise ExportError(f"{root}: not a training run (no train/config.json): make one with "
                          "`empower-finetune DIR --base SPEC` or `empower-finetune train`")
    try:
        config = json.loads(config_file.read_text())
        status = config["status"]
    except (ValueError, KeyError):
        raise ExportError(f"{config_file}: not the config of a training run") from None
    if status != "finished" or not (train / "adapter" / "adapter_config.json").is_file():
        raise ExportError(f"{root}: its training has not finished ({status}): resume it first "
                          f"(`empower-finetune train ... --out {train} --resume`, or run the same "
                          "`empower-finetune DIR` command again)")
    manifest = config.get("dataset_manifest") or {}
    return Run(root, train, config.get("base", ""), base_dir(config, train), config.get("format", "completion"),
               manifest.get("rule"), manifest.get("eta"), adapter_sha256(train / "adapter"))


def base_dir(config: dict, train: Path) -> Path:
    """The base model's transformers directory: where training found it, else its spec resolved."""
    if config.get("base_path") and (Path(config["base_path"]) / "config.json").is_file():
        return Path(config["base_path"])
    from coach.specs import resolve
    from coach.types import CoachError

    spec = config.get("base") or json.loads((train / "adapter" / "adapter_config.json").read_text()).get(
        "base_model_name_or_path")
    try:
        resolved = resolve(spec or "", engine="hf")
    except CoachError as exc:
        raise ExportError(f"the base model of this run ({spec}) is not found: {exc}") from None
    if resolved.kind != "hf" or resolved.path is None:
        raise ExportError(f"the base model of this run ({spec}) is a {resolved.kind} model, not a transformers one")
    return resolved.path


def adapter_sha256(adapter: Path) -> str:
    """Of the adapter's config and weights: what every output is made from."""
    h = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
        if (adapter / name).is_file():
            h.update(name.encode())
            with open(adapter / name, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
    return h.hexdigest()


def record(run: Run, what: str, **more) -> dict:
    """The resolved config saved with an output."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for lib in ("torch", "transformers", "peft", "gguf", "llama_cpp_python"):
        try:
            versions[lib] = version(lib)
        except PackageNotFoundError:
            pass
    return {"export": what, "run": str(run.root.resolve()), "adapter": str(run.adapter.resolve()),
            "adapter_sha256": run.adapter_sha256, "base": run.base, "base_path": str(run.base_dir.resolve()),
            "format": run.format, "rule": run.rule, "eta": run.eta, **more,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "versions": versions}


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _fresh(output: Path, config: dict, **want) -> bool:
    """`output` exists and its config says it was made from what `want` says."""
    return output.exists() and bool(config) and all(config.get(k) == v for k, v in want.items())


# ------------------------------------------------------------------ writing safely


def _scratch(run: Run, name: str) -> Path:
    run.out.mkdir(parents=True, exist_ok=True)
    tmp = run.out / f".{name}.{os.getpid()}.part"
    shutil.rmtree(tmp, ignore_errors=True)
    return tmp


# ------------------------------------------------------------------ the outputs


def export_adapter(run: Run, force: bool = False) -> Output:
    final = run.out / "adapter"
    if not force and _fresh(final, _read(final / "export.json"), adapter_sha256=run.adapter_sha256):
        return Output("adapter", final, True)
    tmp = _scratch(run, "adapter")
    try:
        shutil.copytree(run.adapter, tmp)
        (tmp / "export.json").write_text(json.dumps(record(run, "adapter"), indent=2) + "\n")
        replace_dir(tmp, final, durable=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Output("adapter", final, False)


def export_merged(run: Run, force: bool = False) -> Output:
    """PeftModel.merge_and_unload() on the base in float32, saved as safetensors with the base's
    tokenizer: a plain transformers model directory."""
    final = run.out / "merged"
    if not force and _fresh(final, _read(final / "export.json"), adapter_sha256=run.adapter_sha256):
        return Output("merged", final, True)
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tmp = _scratch(run, "merged")
    try:
        try:
            model = AutoModelForCausalLM.from_pretrained(run.base_dir, dtype=torch.float32)
            with warnings.catch_warnings():  # PEFT 0.21 reads a property that transformers 5 deprecates
                warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
                merged = PeftModel.from_pretrained(model, run.adapter).merge_and_unload()
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise ExportError(f"the base model and its adapter do not load ({first_line(exc)})") from None
        # transformers 5 always writes safetensors (and has no such argument); 4.x needs it said
        safe = {"safe_serialization": True} if "safe_serialization" in inspect.signature(
            merged.save_pretrained).parameters else {}
        try:
            merged.save_pretrained(tmp, **safe)
            copied = [name for name in TOKENIZER_FILES if (run.base_dir / name).is_file()]
            for name in copied:
                shutil.copy2(run.base_dir / name, tmp / name)
            if not copied:  # a tokenizer without files we know: let transformers write it
                from transformers import AutoTokenizer

                AutoTokenizer.from_pretrained(run.base_dir).save_pretrained(tmp)
        except OSError:
            raise
        except Exception as exc:  # safetensors reports a full disk as its own SafetensorError
            raise ExportError(f"writing {final} failed ({first_line(exc)})") from None
        (tmp / "export.json").write_text(json.dumps(record(run, "merged", dtype="float32"), indent=2) + "\n")
        replace_dir(tmp, final, durable=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Output("merged", final, False)


def check_gguf_arch(run: Run) -> None:
    """UnsupportedModelError (naming the supported architectures) before anything is written."""
    from finetune.gguf_export import resolve_arch

    resolve_arch(run.base_dir, _read(run.base_dir / "config.json"))


def can_quantize(quant: str) -> bool:
    """Whether this machine can write `quant` (K-quants need llama-cpp-python)."""
    from finetune.gguf_export import LLAMA_QUANTS

    return quant not in LLAMA_QUANTS or importlib.util.find_spec("llama_cpp") is not None


def export_gguf(run: Run, quant: str = "f16", force: bool = False) -> Output:
    """The merged model as one GGUF file (merged/ is made first where it is not there)."""
    from finetune.gguf_export import write_gguf

    check_gguf_arch(run)
    out = run.out / f"model-{quant}.gguf"
    meta = Path(f"{out}.json")
    if not force and _fresh(out, _read(meta).get("trained", {}), adapter_sha256=run.adapter_sha256) \
            and _read(meta).get("ftype") == quant:
        return Output("gguf", out, True)
    merged = export_merged(run)
    write_gguf(merged.path, out, quant)
    write_json(meta, {**_read(meta), "trained": record(run, "gguf", quant=quant, merged=str(merged.path.resolve()))})
    return Output("gguf", out, False)


def export_gguf_lora(run: Run, quant: str = "f16", force: bool = False) -> list[Output]:
    """The base as a GGUF and the adapter as a llama.cpp LoRA for it."""
    from finetune.gguf_export import write_gguf
    from finetune.gguf_lora import read_adapter_config, write_gguf_lora

    check_gguf_arch(run)
    read_adapter_config(run.adapter)  # refuse what llama.cpp's LoRA cannot hold, before writing
    outputs = []
    base = run.out / f"base-{quant}.gguf"
    meta = _read(Path(f"{base}.json"))
    if not force and _fresh(base, meta, source=str(run.base_dir.resolve()), ftype=quant):
        outputs.append(Output("base gguf", base, True))
    else:
        run.out.mkdir(parents=True, exist_ok=True)
        write_gguf(run.base_dir, base, quant)
        outputs.append(Output("base gguf", base, False))
    lora = run.out / "lora.gguf"
    meta_path = Path(f"{lora}.json")
    if not force and _fresh(lora, _read(meta_path).get("trained", {}), adapter_sha256=run.adapter_sha256):
        outputs.append(Output("lora gguf", lora, True))
    else:
        write_gguf_lora(run.adapter, run.base_dir, lora)
        write_json(meta_path, {**_read(meta_path), "trained": record(run, "gguf-lora", base_gguf=str(base.resolve()))})
        outputs.append(Output("lora gguf", lora, False))
    return outputs


def export(run: Run, to: str, quant: str = "f16", force: bool = False) -> list[Output]:
    if to == "adapter":
        return [export_adapter(run, force)]
    if to == "merged":
        return [export_merged(run, force)]
    if to == "gguf":
        return [export_gguf(run, quant, force)]
    if to == "gguf-lora":
        return export_gguf_lora(run, quant, force)
    raise ExportError(f"--to {to}: use one of {', '.join(TARGETS)}")


def registrable(outputs: list[Output]) -> tuple[Path, Path | None] | None:
    """(spec, lora) to register for what was exported: a GGUF first, then base + LoRA, then the
    adapter, then the merged directory."""
    by = {o.what: o.path for o in outputs}
    if "gguf" in by:
        return by["gguf"], None
    if "base gguf" in by and "lora gguf" in by:
        return by["base gguf"], by["lora gguf"]
    for what in ("adapter", "merged"):
        if what in by:
            return by[what], None
    return None



def size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


# ------------------------------------------------------------------ the command


def parser() -> argparse.ArgumentParser:
    from finetune.gguf_export import QUANTS

    p = argparse.ArgumentParser(prog="empower-finetune export",
                                description="Export a trained run: the adapter, the merged model, a GGUF, a GGUF LoRA.")
    p.add_argument("run", metavar="RUN", help="a run directory (empower-finetune DIR's --out, or train's --out)")
    p.add_argument("--to", nargs="+", required=True, choices=TARGETS, metavar="WHAT",
                   help="adapter (a copy of the PEFT adapter), merged (safetensors + tokenizer), gguf (the "
                        "merged model for llama.cpp), gguf-lora (a base GGUF and a LoRA GGUF for it)")
    p.add_argument("--quant", choices=QUANTS, default="f16",
                   help="weights of the GGUF (gguf) or of the base GGUF (gguf-lora): default f16; q4_k_m needs "
                        "llama-cpp-python")
    p.add_argument("--name", metavar="NAME", help="register what was exported under NAME (empower-tui --model NAME)")
    p.add_argument("--force", action="store_true", help="write outputs again even where they are up to date")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    from rich.console import Console
    from rich.markup import escape

    from finetune.gguf_export import UnsupportedModelError

    console = Console(stderr=True)
    if "merged" in args.to or "gguf" in args.to:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" would cut into the status line
    done: list[Output] = []
    try:
        if args.name:
            from coach.registry import check_name

            check_name(args.name)
        run = open_run(args.run)
        for to in dict.fromkeys(args.to):
            if to in ("gguf", "gguf-lora") and not can_quantize(args.quant):
                raise ExportError(f"--quant {args.quant} needs llama-cpp-python (pip install 'empower[editor]'); "
                                  "f16 and q8_0 do not")
            with console.status(f"exporting {to}…"):
                outputs = export(run, to, args.quant, args.force)
            for o in outputs:
                console.print(f"{o.what:<9} {escape(str(o.path))}  {size(o.bytes)}"
                              + ("  [dim](up to date)[/]" if o.kept else ""), highlight=False, soft_wrap=True)
            done += outputs
        if args.name:
            register(run, done, args.name, console)
    except (ExportError, UnsupportedModelError, ValueError, RuntimeError, OSError) as exc:
        print(f"empower-finetune export: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        kept = ", ".join(str(o.path) for o in done) or "nothing new"
        print(f"empower-finetune export: interrupted; no half-written output is left (kept: {kept})", file=sys.stderr)
        return 130
    return 0


def register(run: Run, outputs: list[Output], name: str, console) -> None:
    from coach import registry

    chosen = registrable(outputs)
    if chosen is None:
        return
    spec, lora = chosen
    entry, old = registry.register(name, spec, run.format, base=str(run.base_dir.resolve()), run=run.root,
                                   eta=run.eta, rule=run.rule, lora=lora)
    replaced = old is not None and not registry.same(old, entry)
    console.print(f"registered [bold]{name}[/] → {spec}" + (f" (it named {old.spec} before)" if replaced else ""),
                  highlight=False, soft_wrap=True)
