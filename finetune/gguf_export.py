"""Hugging Face causal LM directory -> GGUF file, written with the PyPI `gguf` library.

    python -m finetune.gguf_export HF_DIR OUT.gguf --quant q4_k_m   # or f32, f16 (default), q8_0

Why hand-written: llama.cpp's converter is in no wheel (only its source tree) and unsloth's
exporter builds llama.cpp from the internet; Empower must export from a pip install, offline.
The `gguf` package has the writer, tensor-name tables and numpy F16/Q8_0 quantizers; K-quants
(q4_k_m) come from llama.cpp itself (`llama_model_quantize` in llama-cpp-python) run on an f16
file. What is left to do here, for the architectures in `ARCHS` (Llama, Qwen2, Qwen3), is which
hyperparameters to write, which tensors to reshape and how to write the vocabulary
(SentencePiece, or byte-level BPE with merges: finetune/gguf_vocab.py). Tensors are read as numpy: no torch needed.
Outputs appear only complete (temporary name, then rename), with the resolved config `<out>.json`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import uuid
from contextlib import contextmanager, redirect_stderr
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Iterator

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT
from gguf import LlamaFileType as FT

from finetune.gguf_vocab import UnsupportedModelError, read_json, write_vocab

# ftype name -> (file type written in the header, type of the 2-D weights), written by `gguf`
FTYPES: dict[str, tuple[FT, QT]] = {
    "f32": (FT.ALL_F32, QT.F32),
    "f16": (FT.MOSTLY_F16, QT.F16),
    "q8_0": (FT.MOSTLY_Q8_0, QT.Q8_0),
}
# quant name -> llama.cpp's llama_ftype, made from an f16 file by llama_model_quantize
LLAMA_QUANTS: dict[str, str] = {"q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M"}
QUANTS = (*FTYPES, *LLAMA_QUANTS)


# --------------------------------------------------------------- architectures

@dataclass(frozen=True)
class Arch:
    """How one HF architecture maps onto a llama.cpp one."""

    gguf_arch: gguf.MODEL_ARCH
    # HF stores Llama's q/k rows for rotate_half RoPE; llama.cpp rotates interleaved pairs, so
    # those rows are permuted (as llama.cpp's converter does). Qwen2/Qwen3 use llama.cpp's
    # NEOX RoPE, which is rotate_half: their rows go through as they are.
    permute_qk: bool


# HF `architectures[0]` -> Arch. Qwen2's q/k/v biases and Qwen3's per-head q/k norms need
# nothing special: `gguf`'s tensor-name tables map them and llama.cpp's graphs use them.
ARCHS: dict[str, Arch] = {
    "LlamaForCausalLM": Arch(gguf.MODEL_ARCH.LLAMA, permute_qk=True),
    "Qwen2ForCausalLM": Arch(gguf.MODEL_ARCH.QWEN2, permute_qk=False),
    "Qwen3ForCausalLM": Arch(gguf.MODEL_ARCH.QWEN3, permute_qk=False),
}


def resolve_arch(hf_dir: Path, config: dict) -> tuple[str, Arch]:
    if not config:
        raise UnsupportedModelError(f"{hf_dir}: no config.json (not a Hugging Face model directory)")
    hf_arch = (config.get("architectures") or ["?"])[0]
    if hf_arch not in ARCHS:
        raise UnsupportedModelError(f"{hf_dir}: {hf_arch} is not supported; supported: {', '.join(sorted(ARCHS))}")
    if config.get("use_sliding_window"):
        raise UnsupportedModelError(f"{hf_dir}: sliding-window attention is not supported")
    return hf_arch, ARCHS[hf_arch]


def permute_rope(w: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder each head's rows from HF's [first half | second half] to interleaved pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def rope_heads(hf_name: str, config: dict, arch: Arch) -> int | None:
    """The head count to permute this tensor's rows with, or None when it stays as it is."""
    if not arch.permute_qk:
        return None
    n_head = config["num_attention_heads"]
    if ".q_proj." in hf_name:
        return n_head
    if ".k_proj." in hf_name:
        return config.get("num_key_value_heads", n_head)
    return None


def write_hparams(config: dict, w: gguf.GGUFWriter, file_type: FT) -> None:
    """The hyperparameters llama.cpp reads for a Llama-like decoder (keys prefixed by arch)."""
    n_embd, n_head = config["hidden_size"], config["num_attention_heads"]
    head_dim = config.get("head_dim") or n_embd // n_head
    w.add_vocab_size(config["vocab_size"])
    w.add_context_length(config.get("max_position_embeddings", 2048))
    w.add_embedding_length(n_embd)
    w.add_block_count(config["num_hidden_layers"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_head_count(n_head)
    w.add_head_count_kv(config.get("num_key_value_heads", n_head))
    w.add_rope_dimension_count(head_dim)
    if head_dim != n_embd // n_head:
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    w.add_layer_norm_rms_eps(config.get("rms_norm_eps", 1e-6))
    # transformers 5 nests RoPE settings in rope_parameters; older configs keep rope_theta flat.
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        raise UnsupportedModelError(f"RoPE scaling {rope!r} is not supported yet")
    w.add_rope_freq_base(rope.get("rope_theta", config.get("rope_theta", 10000.0)))
    w.add_file_type(file_type)


# --------------------------------------------------------------------- tensors

def read_tensors(hf_dir: Path, pattern: str = "model*.safetensors") -> Iterator[tuple[str, np.ndarray]]:
    """(name, float32 array) for every tensor in the model's safetensors file(s)."""
    from safetensors import safe_open

    files = sorted(hf_dir.glob(pattern))
    if not files:
        raise UnsupportedModelError(f"{hf_dir}: no {pattern} (save with safe_serialization)")
    for file in files:
        with safe_open(file, framework="numpy") as f:
            for name in f.keys():
                # numpy has no bfloat16: safetensors refuses those tensors, so read their bits.
                if f.get_slice(name).get_dtype() == "BF16":
                    yield name, _read_bf16(file, name)
                else:
                    yield name, f.get_tensor(name).astype(np.float32)


def _read_bf16(file: Path, name: str) -> np.ndarray:
    """A bfloat16 tensor as float32 (bf16 is the top half of an f32), from the raw file."""
    with open(file, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        info = json.loads(f.read(header_len))[name]
        start, end = info["data_offsets"]
        f.seek(8 + header_len + start)
        bits = np.frombuffer(f.read(end - start), dtype=np.uint16)
    return (bits.astype(np.uint32) << 16).view(np.float32).reshape(info["shape"])


def convert_tensor(data: np.ndarray, gguf_name: str, qtype: QT) -> tuple[np.ndarray, QT]:
    """Quantize as llama.cpp's converter does: norms and other 1-D tensors stay F32."""
    if data.ndim <= 1 or gguf_name.endswith("_norm.weight"):
        qtype = QT.F32
    try:
        return gguf.quants.quantize(data, qtype), qtype
    except gguf.QuantError:  # rows not a multiple of the block size
        return gguf.quants.quantize(data, QT.F16), QT.F16


# ------------------------------------------------------- writing outputs safely

@contextmanager
def atomic_outputs(*finals: Path) -> Iterator[list[Path]]:
    """Temporary paths beside `finals`, renamed onto them only if the body finishes.

    On any error (a full disk included) the temporaries are removed and no final name is
    created; a file that was already under a final name stays as it was. The last final is
    renamed first, so a GGUF under its name always has its `<out>.json` beside it.
    """
    temps = [f.with_name(f".{f.name}.{uuid.uuid4().hex[:8]}.part") for f in finals]
    placed: list[Path] = []
    try:
        for final in finals:
            final.parent.mkdir(parents=True, exist_ok=True)
        yield temps
        for temp in temps:  # a rename is atomic, but only of what reached the disk
            with open(temp, "rb") as f:
                os.fsync(f.fileno())
        for temp, final in reversed(list(zip(temps, finals))):
            os.replace(temp, final)
            placed.append(final)
    except BaseException:
        for path in (*temps, *placed):
            path.unlink(missing_ok=True)
        raise


@contextmanager
def captured_stderr() -> Iterator[io.StringIO]:
    """Collect what C code writes to fd 2 (llama.cpp's log) and Python to sys.stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    text = io.StringIO()
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            with redirect_stderr(text):
                yield text
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text.write(sink.read().decode(errors="replace"))


# ------------------------------------------------------------------ the export

@dataclass
class ExportConfig:
    """Saved beside the GGUF as <out>.json, so the file explains how it was made."""

    source: str
    out: str
    ftype: str
    hf_arch: str
    gguf_arch: str
    vocab: str
    n_vocab: int
    n_tensors: int
    gguf_version: str  # the PyPI package that wrote the file
    gguf_format: int  # the GGUF file-format version
    quantizer: str = "gguf"  # what made the weights: `gguf`, or llama.cpp for K-quants


def _write_gguf_file(hf_dir: Path, out: Path, ftype: str) -> ExportConfig:
    """Write the GGUF straight to `out` (no temporary name): the core of every export."""
    file_type, qtype = FTYPES[ftype]
    config = read_json(hf_dir / "config.json")
    hf_arch, arch = resolve_arch(hf_dir, config)
    names = gguf.get_tensor_name_map(arch.gguf_arch, config["num_hidden_layers"])

    w = gguf.GGUFWriter(out, gguf.MODEL_ARCH_NAMES[arch.gguf_arch])
    try:
        w.add_name(hf_dir.name)
        write_hparams(config, w, file_type)
        if qtype not in (QT.F32, QT.F16):
            w.add_quantization_version(gguf.GGML_QUANT_VERSION)
        vocab = write_vocab(hf_dir, config, w)

        n_tensors = 0
        for hf_name, data in read_tensors(hf_dir):
            if hf_name.endswith("rotary_emb.inv_freq"):  # recomputed by llama.cpp
                continue
            if hf_name == "lm_head.weight" and config.get("tie_word_embeddings"):
                continue  # llama.cpp reuses token_embd when output.weight is absent
            name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if name is None:
                raise UnsupportedModelError(f"{hf_dir}: cannot map tensor {hf_name!r} for {hf_arch}")
            if n_head := rope_heads(hf_name, config, arch):
                data = permute_rope(data, n_head)
            data, tensor_type = convert_tensor(data, name, qtype)
            w.add_tensor(name, data, raw_dtype=tensor_type)
            n_tensors += 1

        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
    finally:
        w.close()
    return ExportConfig(
        source=str(hf_dir.resolve()), out="", ftype=ftype, hf_arch=hf_arch,
        gguf_arch=gguf.MODEL_ARCH_NAMES[arch.gguf_arch], vocab=vocab, n_vocab=config["vocab_size"],
        n_tensors=n_tensors, gguf_version=version("gguf"), gguf_format=gguf.GGUF_VERSION)


def llama_quantize(src: Path, dst: Path, quant: str) -> None:
    """Requantize an f16 GGUF with llama.cpp (K-quants exist only there); its log is captured."""
    try:
        import llama_cpp
    except ImportError:
        raise RuntimeError(f"{quant} needs llama-cpp-python (pip install 'empower[editor]')") from None
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, LLAMA_QUANTS[quant])
    with captured_stderr() as log:
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params)
    if rc != 0:
        tail = " | ".join(log.getvalue().strip().splitlines()[-3:])
        raise RuntimeError(f"llama_model_quantize to {quant} failed (rc={rc}): {tail}")


def write_gguf(hf_dir: Path, out: Path, quant: str = "f16") -> Path:
    """Convert the HF model in hf_dir to a GGUF file at out, quantized as `quant`; returns out."""
    hf_dir, out = Path(hf_dir), Path(out)
    if quant not in QUANTS:
        raise ValueError(f"quant {quant!r}: choose one of {', '.join(QUANTS)}")
    resolve_arch(hf_dir, read_json(hf_dir / "config.json"))  # refuse before writing anything
    with atomic_outputs(out, Path(f"{out}.json")) as (tmp, tmp_json):
        if quant in FTYPES:
            resolved = _write_gguf_file(hf_dir, tmp, quant)
        else:  # the f16 goes beside the output: same disk, and /tmp may be small
            with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as scratch:
                resolved = _write_gguf_file(hf_dir, Path(scratch) / "f16.gguf", "f16")
                llama_quantize(Path(scratch) / "f16.gguf", tmp, quant)
            resolved.ftype = quant
            resolved.quantizer = f"llama_model_quantize (llama-cpp-python {version('llama_cpp_python')})"
        resolved.out = str(out.resolve())
        tmp_json.write_text(json.dumps(asdict(resolved), indent=2) + "\n")
    return out


def export_gguf(hf_dir: Path, out: Path, ftype: str = "f16") -> Path:
    """write_gguf for the types `gguf` writes itself (f32, f16, q8_0): the older entry point."""
    if ftype not in FTYPES:
        raise ValueError(f"ftype {ftype!r}: choose one of {', '.join(FTYPES)} (write_gguf also makes q4_k_m)")
    return write_gguf(hf_dir, out, ftype)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m finetune.gguf_export", description=__doc__.splitlines()[0])
    parser.add_argument("hf_dir", type=Path, help="a Hugging Face model directory (config.json, *.safetensors)")
    parser.add_argument("out", type=Path, help="the .gguf file to write")
    parser.add_argument("--quant", "--ftype", dest="quant", choices=QUANTS, default="f16",
                        help="weight type (default f16; --ftype is the older name)")
    args = parser.parse_args(argv)
    try:
        print(write_gguf(args.hf_dir, args.out, args.quant))
    except (UnsupportedModelError, OSError, RuntimeError) as e:
        parser.exit(2, f"error: {e}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
