"""GGUF export for laptops: merged models (Llama, Qwen2, Qwen3 at f16, q8_0, q4_k_m) and LoRA
adapters, checked against transformers/PEFT on the same token ids with real llama.cpp.

    .venv/bin/pytest -q tests/test_finetune_export_gguf.py

The Qwen models are random-init and built here (a few seconds): a byte-level BPE tokenizer
trained on a few stdlib modules with Qwen2's pre-tokenizer regex, hidden 256 (K-quant blocks),
2 layers. HF initialises biases to 0 and norms to 1, which would hide an export that drops
or misplaces them, so those are randomised too, and the weights are drawn 4x wider than HF's
default: zeroed biases or Llama's q/k permutation applied to Qwen2 then cost over 5 nats
(measured), a LoRA B left unpermuted on the Llama memorizer 13.6, far above the tolerances.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from finetune.gguf_export import UnsupportedModelError, write_gguf
from finetune.gguf_vocab import bpe_pre_tokenizer
from finetune.gguf_lora import write_gguf_lora
from tests.logprobs import cpp_logprobs, hf_logprobs, load_hf

ROOT = Path(__file__).resolve().parent.parent
STDLIB = Path(os.__file__).parent
BPE_TRAIN = ("argparse", "ast", "functools", "typing", "textwrap", "dataclasses")  # tokenizer corpus
HELD_OUT = "colorsys"  # no model here was trained on it, and the BPE tokenizer never saw it
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Per-token |log p_transformers - log p_llama.cpp| in nats, max over the held-out ids; for
# quantized files transformers runs the file's own (dequantized) weights, see below.
MAX_NATS = {"f16": 0.05, "q8_0": 0.25}
LORA_MAX_NATS = 0.05
Q4_MAX_SIZE_RATIO = 0.35  # of the f16 file
Q4_MAX_MEAN_NATS = 0.1  # llama.cpp also rounds activations to 8 bits in Q4_K products
ADAPTER_CONFIG = {"peft_type": "LORA", "r": 8, "lora_alpha": 16}
CODE_LINES = ["def add(a, b):\n    return a + b\n", "  x = [i * 2 for i in range(10)]  # double\n",
              "\n\n    if n > 0:\n        yield n\n", 'print(f"{name!r}: {value:>8.3f}")\n', "s = 'é€😀'\n"]


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def bpe_tokenizer(tmp_path_factory) -> Path:
    """A Qwen2-style byte-level BPE tokenizer (specials after the merges, no BOS)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([(STDLIB / f"{m}.py").read_text() for m in BPE_TRAIN], trainer)
    tok.add_special_tokens(SPECIALS)
    out = tmp_path_factory.mktemp("bpe")
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                            clean_up_tokenization_spaces=False).save_pretrained(out)
    return out


def random_model(kind: str, tokenizer: Path, out: Path, tied: bool) -> Path:
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

    config_cls, model_cls = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "qwen3": (Qwen3Config, Qwen3ForCausalLM)}[kind]
    # vocab 1024 > the tokenizer's 1003 tokens: padded embedding rows, as real Qwen models have
    config = config_cls(vocab_size=1024, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, head_dim=64, max_position_embeddings=1024,
                        rms_norm_eps=1e-6, tie_word_embeddings=tied, initializer_range=0.08,
                        eos_token_id=len(AutoTokenizer.from_pretrained(tokenizer)) - 1)
    torch.manual_seed({"qwen2": 2, "qwen3": 3}[kind])
    model = model_cls(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.5)
            elif "norm" in name:
                p.uniform_(0.5, 1.5)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tokenizer).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def qwen(bpe_tokenizer, tmp_path_factory) -> dict[str, Path]:
    """qwen2 (own lm_head, q/k/v biases) and qwen3 (tied embeddings, q/k norms)."""
    root = tmp_path_factory.mktemp("qwen")
    return {"qwen2": random_model("qwen2", bpe_tokenizer, root / "qwen2", tied=False),
            "qwen3": random_model("qwen3", bpe_tokenizer, root / "qwen3", tied=True)}


@pytest.fixture(scope="module")
def hf_dirs(qwen, test_models) -> dict[str, Path]:
    return {"llama": test_models.memorizer, **qwen}


def held_out_ids(hf_dir: Path) -> list[int]:
    from transformers import AutoTokenizer

    text = (STDLIB / f"{HELD_OUT}.py").read_text()[:1400]
    ids = AutoTokenizer.from_pretrained(hf_dir)(text)["input_ids"]
    assert 300 <= len(ids) <= 1000
    return ids


@pytest.fixture(scope="module")
def reference(hf_dirs) -> dict[str, tuple[list[int], np.ndarray]]:
    """Held-out ids and transformers' log-probs per architecture, computed once."""
    out = {}
    for arch, hf_dir in hf_dirs.items():
        ids = held_out_ids(hf_dir)
        out[arch] = ids, hf_logprobs(load_hf(hf_dir), ids)
    return out


def lora_adapter(hf_dir: Path, out: Path, seed: int, use_rslora: bool = False):
    """A PEFT LoRA with non-zero B on every projection, saved; returns its directory and model."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = get_peft_model(load_hf(hf_dir), LoraConfig(init_lora_weights=False, r=8, lora_alpha=16,
                                                        target_modules=targets, use_rslora=use_rslora)).eval()
    model.save_pretrained(out)
    return out, model


def hf_with_gguf_weights(hf_dir: Path, path: Path):
    """The HF model with every tensor replaced by the GGUF's own (dequantized, q/k rows unpermuted)."""
    import gguf
    import torch

    from finetune.gguf_export import resolve_arch, rope_heads

    model = load_hf(hf_dir)
    config = json.loads((hf_dir / "config.json").read_text())
    _, arch = resolve_arch(hf_dir, config)
    names = gguf.get_tensor_name_map(arch.gguf_arch, config["num_hidden_layers"])
    tensors = {t.name: t for t in gguf.GGUFReader(path).tensors}
    with torch.no_grad():
        for hf_name, p in model.named_parameters():
            t = tensors.get(names.get_name(hf_name, try_suffixes=(".weight", ".bias")))
            if t is None:  # lm_head of a tied model: it is token_embd
                continue
            w = gguf.quants.dequantize(t.data, t.tensor_type).reshape(p.shape)
            if n_head := rope_heads(hf_name, config, arch):  # undo the export's interleaving
                w = w.reshape(n_head, -1, 2, *w.shape[1:]).swapaxes(1, 2).reshape(p.shape)
            p.copy_(torch.tensor(w, dtype=torch.float32))
    return model


def gguf_tensor_names(path: Path) -> set[str]:
    import gguf

    return {t.name for t in gguf.GGUFReader(path).tensors}


# ------------------------------------------------------------------ fast

def test_unsupported_architecture_names_the_supported_ones(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["MistralForCausalLM"]}))
    (tmp_path / "adapter_config.json").write_text(json.dumps(ADAPTER_CONFIG))
    expected = "MistralForCausalLM is not supported; supported: LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM"
    with pytest.raises(UnsupportedModelError, match=expected):
        write_gguf(tmp_path, tmp_path / "out.gguf", "q4_k_m")
    with pytest.raises(UnsupportedModelError, match=expected):
        write_gguf_lora(tmp_path, tmp_path, tmp_path / "lora.gguf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter_config.json", "config.json"]


def test_unknown_quant_is_refused(tmp_path):
    with pytest.raises(ValueError, match="q4_k_m"):
        write_gguf(tmp_path, tmp_path / "out.gguf", "q3_k_s")


def test_cli_errors_are_one_line_and_exit_2(tmp_path, capsys):
    from finetune import gguf_export, gguf_lora

    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"]}))
    (tmp_path / "adapter_config.json").write_text(json.dumps(ADAPTER_CONFIG))
    for main, args in ((gguf_export.main, [str(tmp_path), str(tmp_path / "o.gguf"), "--quant", "q4_k_m"]),
                       (gguf_lora.main, [str(tmp_path), str(tmp_path), str(tmp_path / "o.gguf")])):
        with pytest.raises(SystemExit) as exit_:
            main(args)
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "GPT2LMHeadModel is not supported" in err


def test_unknown_bpe_pre_tokenizer_is_refused():
    odd = {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": r"\w+"}}, {"type": "ByteLevel", "use_regex": False}]}}
    with pytest.raises(UnsupportedModelError, match="known: gpt-2, smollm, qwen2"):
        bpe_pre_tokenizer(odd)
    # digits split off, then ByteLevel's regex: SmolLM's; with digits kept whole, plain GPT-2
    digits = {"type": "Digits", "individual_digits": True}
    smollm = {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [digits, {"type": "ByteLevel", "use_regex": True}]}}
    assert bpe_pre_tokenizer(smollm) == "smollm"
    assert bpe_pre_tokenizer({"pre_tokenizer": {"type": "ByteLevel", "use_regex": True}}) == "gpt-2"


def test_adapter_with_dora_is_refused(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({**ADAPTER_CONFIG, "use_dora": True}))
    with pytest.raises(UnsupportedModelError, match="DoRA"):
        write_gguf_lora(tmp_path, tmp_path, tmp_path / "lora.gguf")


# ------------------------------------------------------------------ slow: real exports

@pytest.mark.slow
@pytest.mark.parametrize("quant", ["f16", "q8_0"])
@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3"])
def test_logprobs_match_transformers(hf_dirs, reference, tmp_path, arch, quant):
    out = write_gguf(hf_dirs[arch], tmp_path / f"{arch}-{quant}.gguf", quant)
    ids, hf = reference[arch]
    cpp = cpp_logprobs(out, ids)
    if quant != "f16":
        # Rounding the weights to Q8_0 alone moves the memorizer's own log-probs by up to 0.68
        # nats (its peaked logits magnify it): compare with transformers running the weights
        # the GGUF holds, so that what is measured is the export, not the format's loss.
        print(f"{arch} {quant} vs the f32 model: max {np.abs(hf - cpp).max():.4f}")
        hf = hf_logprobs(hf_with_gguf_weights(hf_dirs[arch], out), ids)
    diff = np.abs(hf - cpp)
    print(f"{arch} {quant}: max {diff.max():.4f} mean {diff.mean():.5f} nats over {len(ids)} tokens")
    assert diff.max() <= MAX_NATS[quant]
    resolved = json.loads(Path(f"{out}.json").read_text())
    assert resolved["ftype"] == quant and resolved["hf_arch"] == json.loads(
        (hf_dirs[arch] / "config.json").read_text())["architectures"][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name, f"{out.name}.json"]  # no temporaries


@pytest.mark.slow
def test_qwen_layouts_reach_the_gguf(qwen, tmp_path):
    qwen2 = gguf_tensor_names(write_gguf(qwen["qwen2"], tmp_path / "qwen2.gguf"))
    qwen3 = gguf_tensor_names(write_gguf(qwen["qwen3"], tmp_path / "qwen3.gguf"))
    assert {"blk.0.attn_q.bias", "blk.1.attn_v.bias", "output.weight"} <= qwen2
    assert {"blk.0.attn_q_norm.weight", "blk.1.attn_k_norm.weight"} <= qwen3
    assert "output.weight" not in qwen3  # tied: llama.cpp reuses token_embd


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["qwen2", "qwen3"])
def test_bpe_vocab_tokenizes_like_transformers(qwen, tmp_path, arch):
    from llama_cpp import Llama
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(qwen[arch])
    llm = Llama(model_path=str(write_gguf(qwen[arch], tmp_path / "m.gguf")), vocab_only=True, verbose=False)
    try:
        for line in [*CODE_LINES, (STDLIB / f"{HELD_OUT}.py").read_text()[:1400]]:
            assert llm.tokenize(line.encode(), add_bos=True, special=True) == tok(line)["input_ids"], line
        im_end = tok.convert_tokens_to_ids("<|im_end|>")
        assert llm.tokenize(b"<|im_end|>", add_bos=False, special=True) == [im_end]
        assert llm.token_eos() == im_end
    finally:
        llm.close()


@pytest.mark.slow
def test_q4_k_m_is_small_and_still_the_model(test_models, reference, tmp_path):
    # The memorizer (1.7M parameters, hidden 256, vocab 1000) is big enough: its norms and the
    # metadata are <1% of the file, and Q4_K_M keeps only output, one attn_v and one ffn_down
    # at Q6_K, so the ratio is ~0.32.
    f16 = write_gguf(test_models.memorizer, tmp_path / "m-f16.gguf", "f16")
    q4 = write_gguf(test_models.memorizer, tmp_path / "m-q4_k_m.gguf", "q4_k_m")
    ratio = q4.stat().st_size / f16.stat().st_size
    ids, hf = reference["llama"]
    cpp = cpp_logprobs(q4, ids)
    # Rounding to Q4_K/Q6_K alone moves the memorizer by up to 4 nats (0.4 on average), so
    # again the reference is transformers running the weights the file holds: a file that
    # lost or misplaced a tensor would be off by as much as the rounding, or more.
    same_weights = np.abs(hf_logprobs(hf_with_gguf_weights(test_models.memorizer, q4), ids) - cpp)
    print(f"q4_k_m/f16 size {ratio:.3f}; llama q4_k_m vs the f32 model: max {np.abs(hf - cpp).max():.3f} "
          f"mean {np.abs(hf - cpp).mean():.3f}; vs its own weights: max {same_weights.max():.3f} "
          f"mean {same_weights.mean():.4f} nats")
    assert ratio <= Q4_MAX_SIZE_RATIO
    assert same_weights.mean() <= Q4_MAX_MEAN_NATS and same_weights.max() <= 1.0
    resolved = json.loads(Path(f"{q4}.json").read_text())
    assert resolved["ftype"] == "q4_k_m" and "llama_model_quantize" in resolved["quantizer"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f16.name, f"{f16.name}.json", q4.name, f"{q4.name}.json"])  # the f16 scratch file is gone


@pytest.mark.slow
@pytest.mark.parametrize("arch,rslora", [("llama", False), ("qwen2", False), ("qwen3", True)])
def test_lora_adapter_in_llama_cpp_matches_peft(hf_dirs, reference, tmp_path, arch, rslora):
    adapter, peft_model = lora_adapter(hf_dirs[arch], tmp_path / "adapter", seed=7, use_rslora=rslora)
    ids, base_hf = reference[arch]
    expected = hf_logprobs(peft_model, ids)
    assert np.abs(expected - base_hf).max() > 1.0  # the adapter really changes the model
    base = write_gguf(hf_dirs[arch], tmp_path / "base.gguf", "f16")
    lora = write_gguf_lora(adapter, hf_dirs[arch], tmp_path / "lora.gguf")
    diff = np.abs(expected - cpp_logprobs(base, ids, lora=lora))
    print(f"{arch} f16 + LoRA{' (rsLoRA)' * rslora}: max {diff.max():.4f} mean {diff.mean():.5f} nats")
    assert diff.max() <= LORA_MAX_NATS
    assert len(gguf_tensor_names(lora)) == 2 * 7 * 2  # (a, b) x 7 projections x 2 layers
    resolved = json.loads(Path(f"{lora}.json").read_text())
    assert (resolved["r"], resolved["lora_alpha"], resolved["n_pairs"]) == (8, 16.0, 14)
    assert resolved["b_scale"] == ("sqrt(r)" if rslora else "1")


# ------------------------------------------------------------------ slow: failures

FILL_DISK = """
import resource, signal, sys
from pathlib import Path
from finetune.gguf_export import write_gguf
from finetune.gguf_lora import write_gguf_lora
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the limit, write() fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
try:
    if sys.argv[2] == "lora":
        write_gguf_lora(Path(sys.argv[4]), Path(sys.argv[3]), Path(sys.argv[5]))
    else:
        write_gguf(Path(sys.argv[3]), Path(sys.argv[5]), sys.argv[2])
except OSError as e:  # numpy's tofile() reports a short write without an errno
    print("OSError:", e)
"""


@pytest.mark.slow
@pytest.mark.parametrize("what,limit", [("f16", 200_000), ("q4_k_m", 200_000), ("lora", 20_000)])
def test_a_write_that_runs_out_of_space_leaves_nothing(qwen, tmp_path, what, limit):
    """A file-size limit makes write() fail part-way through, as a full disk does."""
    adapter = None
    if what == "lora":
        adapter, _ = lora_adapter(qwen["qwen3"], tmp_path / "adapter", seed=1)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    run = subprocess.run([sys.executable, "-c", FILL_DISK, str(limit), what, str(qwen["qwen3"]), str(adapter),
                          str(out_dir / "x.gguf")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.stdout.startswith("OSError: ") and "written" in run.stdout, run.stderr
    assert list(out_dir.iterdir()) == []  # neither x.gguf, x.gguf.json, nor a temporary
