"""Hugging Face causal LM directory -> GGUF file, written with the PyPI `gguf` library.

    python -m finetune.gguf_export HF_DIR OUT.gguf [--ftype f32|f16|q8_0]

Why this is hand-written: llama.cpp's own converter (`convert_hf_to_gguf.py`) lives only in
the llama.cpp source tree (vendored inside the llama-cpp-python sdist, not in any wheel), and
unsloth's exporter clones and builds llama.cpp from the internet. Empower must export from a
pip install, offline. The PyPI `gguf` package has everything below the converter: the writer,
the tensor-name tables, the vocab readers and numpy quantizers (F32/F16/Q8_0 here; K-quants
come later from llama-cpp-python's `llama_model_quantize`). What the converter adds on top,
and what this module re-does for the architectures it knows, is small: which hyperparameters
to write, which tensors to reshape, and how to write the vocabulary.

Tensors are read with `safetensors` as numpy arrays, so converting needs no torch.
An architecture is one entry in `ARCHS`; adding Qwen2/Qwen3 (biases, no q/k permutation, a
GPT-2 byte-level vocab) means writing its vocab function and registering it there.
The resolved conversion config is saved beside the output as `<out>.json`.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT
from gguf import LlamaFileType as FT

# ftype name -> (file type written in the header, type of the 2-D weights)
FTYPES: dict[str, tuple[FT, QT]] = {
    "f32": (FT.ALL_F32, QT.F32),
    "f16": (FT.MOSTLY_F16, QT.F16),
    "q8_0": (FT.MOSTLY_Q8_0, QT.Q8_0),
}


class UnsupportedModelError(ValueError):
    """The HF directory holds something this writer cannot convert."""


# ---------------------------------------------------------------- vocabularies

def write_sentencepiece_vocab(hf_dir: Path, config: dict, w: gguf.GGUFWriter) -> str:
    """Llama-style SentencePiece vocab from tokenizer.model: tokens, scores, types, specials."""
    from sentencepiece import SentencePieceProcessor
    from sentencepiece import sentencepiece_model_pb2

    try:
        vocab = gguf.SentencePieceVocab(hf_dir)
    except FileNotFoundError:
        raise UnsupportedModelError(f"{hf_dir}: no tokenizer.model (a SentencePiece vocab is needed)") from None
    tokens, scores, types = [], [], []
    for text, score, toktype in vocab.all_tokens():
        tokens.append(text)
        scores.append(score)
        types.append(toktype)
    # The embedding matrix may have more rows than the tokenizer has pieces (padded vocab):
    # llama.cpp needs one token per row, so pad the same way llama.cpp's converter does.
    n_vocab = config.get("vocab_size", len(tokens))
    if len(tokens) > n_vocab:
        raise UnsupportedModelError(f"{hf_dir}: {len(tokens)} tokens but vocab_size {n_vocab}")
    for i in range(len(tokens), n_vocab):
        tokens.append(f"[PAD{i}]".encode())
        scores.append(-10000.0)
        types.append(gguf.TokenType.UNUSED)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)

    # llama.cpp prepends a space unless told otherwise; follow the model's own normalizer, and
    # let tokenizer_config's add_prefix_space win, as transformers does.
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(Path(vocab.fname_tokenizer).read_bytes())
    add_space_prefix = proto.normalizer_spec.add_dummy_prefix
    tok_config = _read_json(hf_dir / "tokenizer_config.json")
    if isinstance(tok_config.get("add_prefix_space"), bool):
        add_space_prefix = tok_config["add_prefix_space"]
    w.add_add_space_prefix(add_space_prefix)

    # Special ids, add_bos/add_eos and the chat template come from tokenizer_config.json /
    # tokenizer.json / config.json; ids missing there come from the SentencePiece model itself.
    special = gguf.SpecialVocab(hf_dir, load_merges=False, n_vocab=len(tokens))
    sp = SentencePieceProcessor(model_file=str(vocab.fname_tokenizer))
    for kind, tid in (("bos", sp.bos_id()), ("eos", sp.eos_id()), ("unk", sp.unk_id()), ("pad", sp.pad_id())):
        if tid >= 0 and kind not in special.special_token_ids:
            special.special_token_ids[kind] = tid
    special.add_to_gguf(w, quiet=True)
    return "spm"


# --------------------------------------------------------------- architectures

@dataclass(frozen=True)
class Arch:
    """How one HF architecture maps onto a llama.cpp one."""

    gguf_arch: gguf.MODEL_ARCH
    write_vocab: Callable[[Path, dict, gguf.GGUFWriter], str]
    # HF stores Llama's q/k rows for rotate_half RoPE; llama.cpp rotates interleaved pairs, so
    # those rows are permuted (as llama.cpp's converter does). Qwen2/Qwen3 are stored as
    # llama.cpp expects them and need no permutation.
    permute_qk: bool


# HF `architectures[0]` -> Arch. Qwen2/Qwen3 go here with a GPT-2/BPE vocab writer.
ARCHS: dict[str, Arch] = {
    "LlamaForCausalLM": Arch(gguf.MODEL_ARCH.LLAMA, write_sentencepiece_vocab, permute_qk=True),
}


def permute_rope(w: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder each head's rows from HF's [first half | second half] to interleaved pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


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

def read_tensors(hf_dir: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(name, float32 array) for every tensor in the model's safetensors file(s)."""
    from safetensors import safe_open

    files = sorted(hf_dir.glob("model*.safetensors"))
    if not files:
        raise UnsupportedModelError(f"{hf_dir}: no model*.safetensors (save with safe_serialization)")
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


def export_gguf(hf_dir: Path, out: Path, ftype: str = "f16") -> Path:
    """Convert the HF model in hf_dir to a GGUF file at out; returns out."""
    hf_dir, out = Path(hf_dir), Path(out)
    if ftype not in FTYPES:
        raise ValueError(f"ftype {ftype!r}: choose one of {', '.join(FTYPES)}")
    file_type, qtype = FTYPES[ftype]
    config = _read_json(hf_dir / "config.json")
    hf_arch = (config.get("architectures") or ["?"])[0]
    if hf_arch not in ARCHS:
        raise UnsupportedModelError(
            f"{hf_dir}: architecture {hf_arch!r} is not supported; supported: {', '.join(sorted(ARCHS))}")
    arch = ARCHS[hf_arch]
    n_layers = config["num_hidden_layers"]
    names = gguf.get_tensor_name_map(arch.gguf_arch, n_layers)

    out.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(out, gguf.MODEL_ARCH_NAMES[arch.gguf_arch])
    w.add_name(hf_dir.name)
    write_hparams(config, w, file_type)
    if qtype not in (QT.F32, QT.F16):
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    vocab = arch.write_vocab(hf_dir, config, w)

    n_head = config["num_attention_heads"]
    n_kv = config.get("num_key_value_heads", n_head)
    n_tensors = 0
    for hf_name, data in read_tensors(hf_dir):
        if hf_name.endswith("rotary_emb.inv_freq"):  # recomputed by llama.cpp
            continue
        if hf_name == "lm_head.weight" and config.get("tie_word_embeddings"):
            continue  # llama.cpp reuses token_embd when output.weight is absent
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise UnsupportedModelError(f"{hf_dir}: cannot map tensor {hf_name!r} for {hf_arch}")
        if arch.permute_qk and hf_name.endswith("q_proj.weight"):
            data = permute_rope(data, n_head)
        elif arch.permute_qk and hf_name.endswith("k_proj.weight"):
            data = permute_rope(data, n_kv)
        data, tensor_type = convert_tensor(data, name, qtype)
        w.add_tensor(name, data, raw_dtype=tensor_type)
        n_tensors += 1

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    resolved = ExportConfig(
        source=str(hf_dir.resolve()), out=str(out.resolve()), ftype=ftype, hf_arch=hf_arch,
        gguf_arch=gguf.MODEL_ARCH_NAMES[arch.gguf_arch], vocab=vocab, n_vocab=config["vocab_size"],
        n_tensors=n_tensors, gguf_version=version("gguf"), gguf_format=gguf.GGUF_VERSION)
    Path(f"{out}.json").write_text(json.dumps(asdict(resolved), indent=2) + "\n")
    return out


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m finetune.gguf_export", description=__doc__.splitlines()[0])
    parser.add_argument("hf_dir", type=Path, help="a Hugging Face model directory (config.json, *.safetensors)")
    parser.add_argument("out", type=Path, help="the .gguf file to write")
    parser.add_argument("--ftype", choices=sorted(FTYPES), default="f16", help="weight type (default f16)")
    args = parser.parse_args(argv)
    try:
        print(export_gguf(args.hf_dir, args.out, args.ftype))
    except UnsupportedModelError as e:
        parser.exit(2, f"error: {e}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
