"""A Hugging Face tokenizer's vocabulary written into a GGUF (finetune/gguf_export.py writes the
rest): SentencePiece from tokenizer.model, or byte-level BPE with its merges from
tokenizer.json, with the pre-tokenizer llama.cpp must split text by, named as llama.cpp names it.
"""

from __future__ import annotations

import json
from pathlib import Path

import gguf



class UnsupportedModelError(ValueError):
    """The HF directory holds something the GGUF writer cannot convert."""


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def write_sentencepiece_vocab(hf_dir: Path, config: dict, w: gguf.GGUFWriter) -> str:
    """Llama-style SentencePiece vocab from tokenizer.model: tokens, scores, types, specials."""
    from sentencepiece import SentencePieceProcessor
    from sentencepiece import sentencepiece_model_pb2

    vocab = gguf.SentencePieceVocab(hf_dir)
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
    tok_config = read_json(hf_dir / "tokenizer_config.json")
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


# tokenizer.json's Split regex -> llama.cpp's `tokenizer.ggml.pre`, which selects the same
# regex inside llama.cpp. The converter recognises a pre-tokenizer by hashing the token ids
# of a probe text, which only works for vocabularies it has seen; the regex is what matters.
BPE_PRE_TOKENIZERS = {
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+": "qwen2",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+": "llama-bpe",
}


def bpe_pre_tokenizer(tokenizer: dict) -> str:
    """The llama.cpp name of a byte-level BPE tokenizer's pre-tokenizer, or UnsupportedModelError."""
    pre = tokenizer.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre])
    byte_level = [s for s in steps if s.get("type") == "ByteLevel"]
    patterns = [s.get("pattern", {}).get("Regex") for s in steps if s.get("type") == "Split"]
    if not byte_level and (tokenizer.get("decoder") or {}).get("type") != "ByteLevel":
        raise UnsupportedModelError("tokenizer.json: a BPE vocab that is not byte-level is not supported")
    digits = [s for s in steps if s.get("type") == "Digits"]
    if not patterns and byte_level and byte_level[0].get("use_regex", True):
        if digits and digits[0].get("individual_digits"):
            return "smollm"  # SmolLM: every digit split off, then ByteLevel's regex
        if not digits:
            return "gpt-2"  # ByteLevel's own built-in regex
    if len(patterns) == 1 and patterns[0] in BPE_PRE_TOKENIZERS:
        return BPE_PRE_TOKENIZERS[patterns[0]]
    raise UnsupportedModelError(
        f"tokenizer.json: pre-tokenizer {patterns!r} is not one llama.cpp is known to reproduce "
        f"(known: gpt-2, smollm, {', '.join(BPE_PRE_TOKENIZERS.values())})")


def write_bpe_vocab(hf_dir: Path, config: dict, w: gguf.GGUFWriter) -> str:
    """GPT-2-style byte-level BPE vocab from tokenizer.json: tokens, types, merges, specials."""
    tokenizer = read_json(hf_dir / "tokenizer.json")
    model = tokenizer.get("model") or {}
    if model.get("type") != "BPE":
        raise UnsupportedModelError(f"{hf_dir}: tokenizer.json model {model.get('type')!r} is not supported (BPE is)")
    pre = bpe_pre_tokenizer(tokenizer)
    by_id = {i: text for text, i in model["vocab"].items()}
    added = {t["id"]: t for t in tokenizer.get("added_tokens", [])}
    n_vocab = config.get("vocab_size", max([*by_id, *added]) + 1)
    if max([*by_id, *added]) >= n_vocab:
        raise UnsupportedModelError(f"{hf_dir}: token ids reach {max([*by_id, *added])} but vocab_size is {n_vocab}")
    tokens, types = [], []
    for i in range(n_vocab):
        if i in added:
            text = added[i]["content"]
            # Some tokenizers leave control tokens such as <|im_end|> unmarked; llama.cpp must
            # not split them, so treat <|...|> as control as the converter does.
            control = added[i].get("special") or (text.startswith("<|") and text.endswith("|>"))
            tokens.append(text)
            types.append(gguf.TokenType.CONTROL if control else gguf.TokenType.USER_DEFINED)
        elif i in by_id:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL)
        else:  # a padded embedding row
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    special = gguf.SpecialVocab(hf_dir, load_merges=True, n_vocab=n_vocab)
    # A tokenizer.json without a post-processor adds no BOS; llama.cpp's own default for some
    # pre-tokenizers is to add one, so say so explicitly.
    special.add_special_token.setdefault("bos", False)
    special.add_to_gguf(w, quiet=True)
    return f"bpe/{pre}"


def write_vocab(hf_dir: Path, config: dict, w: gguf.GGUFWriter) -> str:
    """SentencePiece when tokenizer.model is there (as the converter prefers), else BPE."""
    if (hf_dir / "tokenizer.model").is_file():
        return write_sentencepiece_vocab(hf_dir, config, w)
    if (hf_dir / "tokenizer.json").is_file():
        return write_bpe_vocab(hf_dir, config, w)
    raise UnsupportedModelError(f"{hf_dir}: no tokenizer.model or tokenizer.json")
