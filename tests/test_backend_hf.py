"""The transformers backend on the offline test models: real tokenizers, models and PEFT.

    .venv/bin/python -m pytest tests/test_backend_hf.py -q

Tests marked slow need the built test models (tests/models.py: ~50 s the first time, then
cached); each of them takes well under a second once the models are there.
"""

from __future__ import annotations

import json
import shutil
import threading
import time

import pytest
import torch

from coach.backends import load_backend
from coach.backends.hf import HFBackend, _Detokenizer
from coach.specs import ModelSpec, resolve
from coach.types import BackendError, ModelNotFound, Prompt, Request
from tests.models import split_probe

TOL = 1e-4  # nats: the backend's cached, token-by-token log-probs vs one plain forward pass


def request(text: str, max_tokens: int = 24, fmt: str = "completion", **kw) -> Request:
    return Request(Prompt(fmt, text), max_tokens=max_tokens, **kw)


def load_model(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(path)


@torch.no_grad()
def logprobs_of(model, tok, prompt: str, generated) -> list[float]:
    """log p of each generated id from one plain forward pass over prompt + generated ids."""
    ids = tok(prompt)["input_ids"]
    lp = model(torch.tensor([ids + list(generated)])).logits[0].log_softmax(-1)
    return [float(lp[len(ids) + i - 1, t]) for i, t in enumerate(generated)]


@torch.no_grad()
def greedy_ids(model, tok, prompt: str, n: int) -> list[int]:
    """Greedy decoding without any cache: a full forward pass per token."""
    ids, out = tok(prompt)["input_ids"], []
    for _ in range(n):
        token = int(model(torch.tensor([ids + out])).logits[0, -1].argmax())
        if token == tok.eos_token_id:
            break
        out.append(token)
    return out


@pytest.fixture(scope="module")
def memorizer(test_models):
    backend = HFBackend(resolve(str(test_models.memorizer)))
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def probe(test_models):
    """(prompt, expected next line) of the first memorized file."""
    return split_probe(test_models.memorized[0].read_text(encoding="utf-8"))


# ------------------------------------------------------------------ generation

@pytest.mark.slow
def test_greedy_continues_memorized_file_with_the_models_logprobs(test_models, memorizer, probe):
    prompt, expected = probe
    g = memorizer.generate(request(prompt, max_tokens=40))
    assert g.text.startswith(expected)
    assert "".join(g.tokens) == g.text and len(g.logprobs) == len(g.tokens)
    assert g.finish_reason == "length" and len(g.tokens) == 40
    assert g.prompt_tokens == len(memorizer.tokenizer(prompt)["input_ids"])

    model, tok = load_model(test_models.memorizer)
    assert list(g.token_ids) == greedy_ids(model, tok, prompt, 40) and tok.decode(g.token_ids) == g.text
    logprobs = logprobs_of(model, tok, prompt, g.token_ids)
    assert max(abs(a - b) for a, b in zip(g.logprobs, logprobs, strict=True)) < TOL


@pytest.mark.slow
def test_eos_ends_generation_and_is_not_in_the_text(test_models, memorizer):
    text = next(p for p in test_models.memorized if p.name == "keyword.py").read_text()
    head, last = text.rsplit("\n", 2)[0] + "\n", text.rsplit("\n", 2)[1] + "\n"
    g = memorizer.generate(request(head, max_tokens=60))
    assert (g.text, g.finish_reason) == (last, "stop")


@pytest.mark.slow
def test_stop_string_cuts_text_tokens_and_logprobs_together(memorizer, probe):
    prompt, expected = probe
    full = memorizer.generate(request(prompt, max_tokens=40))
    starts = [sum(map(len, full.tokens[:i])) for i in range(len(full.tokens))]
    # At a token boundary: the text stops right before the stop string.
    k = next(i for i in range(2, len(full.tokens))
             if full.tokens[i].strip() and full.text.find(full.tokens[i]) == starts[i])
    g = memorizer.generate(request(prompt, max_tokens=40, stop=("never there", full.tokens[k])))
    assert g.finish_reason == "stop" and full.tokens[k] not in g.text
    assert g.tokens == full.tokens[:k] and g.token_ids == full.token_ids[:k]
    assert g.logprobs == pytest.approx(full.logprobs[:k], abs=TOL)
    assert g.text == "".join(g.tokens) == full.text[:starts[k]]
    # Mid-token (a stop string that starts inside a token): the text still ends right before
    # it; that token stays, cut short, with its id and log-prob (as in the llama.cpp backend).
    j = next(i for i, t in enumerate(full.tokens) if len(t) > 1 and full.text.find(t[1:]) == starts[i] + 1)
    g = memorizer.generate(request(prompt, max_tokens=40, stop=(full.tokens[j][1:],)))
    assert g.text == "".join(g.tokens) == full.text[: starts[j] + 1]
    assert g.tokens == (*full.tokens[:j], full.tokens[j][0]) and g.token_ids == full.token_ids[:j + 1]
    assert len(g.logprobs) == j + 1
    # A newline stop on a multi-line continuation: the first line without its "\n".
    g = memorizer.generate(request(prompt, max_tokens=60, stop=("\n",)))
    assert g.text == expected.rstrip("\n") and g.finish_reason == "stop"


@pytest.mark.slow
def test_cancel_from_another_thread_stops_between_tokens(memorizer, probe):
    prompt, _ = probe
    reached, checks = threading.Event(), []

    class Flag(threading.Event):
        """A cancel flag that, at the third check, waits until the other thread has set it."""
        def is_set(self):
            checks.append(time.perf_counter())
            if len(checks) == 3:
                reached.set()
                self.wait(5)
            return super().is_set()

    cancel, result = Flag(), {}
    worker = threading.Thread(target=lambda: result.update(g=memorizer.generate(request(prompt, 200, cancel=cancel))))
    worker.start()
    assert reached.wait(5)
    set_at = time.perf_counter()
    cancel.set()
    worker.join(5)
    assert not worker.is_alive() and time.perf_counter() - set_at < 1.0
    g = result["g"]
    assert g.finish_reason == "cancelled" and len(g.tokens) == 2  # checks: before prefill, before tokens 2, 3
    # An already-set flag: nothing generated; the backend stays usable.
    assert memorizer.generate(request(prompt, cancel=cancel)).finish_reason == "cancelled"
    assert memorizer.generate(request(prompt, 3)).finish_reason == "length"


@pytest.mark.slow
def test_sampling_is_seeded_and_top_p_near_zero_is_greedy(memorizer, probe):
    prompt, _ = probe
    greedy = memorizer.generate(request(prompt))
    a = memorizer.generate(request(prompt, temperature=1.5, top_p=0.95, seed=7))
    b = memorizer.generate(request(prompt, temperature=1.5, top_p=0.95, seed=7))
    assert a.text == b.text and a.logprobs == b.logprobs and "".join(a.tokens) == a.text
    narrow = memorizer.generate(request(prompt, temperature=1.0, top_p=1e-9, seed=3))
    assert narrow.text == greedy.text


# ------------------------------------------------------------------ KV cache reuse

@pytest.mark.slow
def test_kv_reuse_evaluates_only_new_tokens_and_changes_nothing(test_models):
    text = max(test_models.memorized, key=lambda p: p.stat().st_size).read_text()
    prompt = text[: text.index("\n", 1200) + 1]
    typed = prompt + text[len(prompt)]  # one more character
    warm, fresh = (HFBackend(resolve(str(test_models.memorizer))) for _ in range(2))
    try:
        first = warm.generate(request(prompt))
        again = warm.generate(request(typed))
        cold = fresh.generate(request(typed))
        accepted = warm.generate(request(typed + again.text))  # its tokens are in the cache already
        other = warm.generate(request("import os\n"))
    finally:
        warm.close()
        fresh.close()
    assert first.evaluated_tokens == first.prompt_tokens > 300
    assert again.prompt_tokens >= first.prompt_tokens and again.evaluated_tokens <= 3
    assert cold.evaluated_tokens == cold.prompt_tokens
    assert (again.text, again.tokens, again.finish_reason) == (cold.text, cold.tokens, cold.finish_reason)
    assert again.logprobs == pytest.approx(cold.logprobs, abs=TOL)
    assert accepted.evaluated_tokens <= 3
    assert other.evaluated_tokens == other.prompt_tokens - 1  # all but the shared BOS


@pytest.mark.slow
def test_kv_reuse_on_a_sliding_window_model_past_its_window(test_models, tmp_path):
    """Gemma 3 style: most layers see a window of the last tokens; editing far behind the
    window's start must still give what a fresh computation gives."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, sliding_window=16, max_position_embeddings=512,
        layer_types=["sliding_attention"] * 3 + ["full_attention"], bos_token_id=1, eos_token_id=2, pad_token_id=0)
    Gemma3ForCausalLM(config).save_pretrained(tmp_path)
    for name in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copy(test_models.tokenizer / name, tmp_path / name)
    code = test_models.memorized[0].read_text()[:400]
    warm, fresh = (HFBackend(resolve(str(tmp_path), config={})) for _ in range(2))
    try:
        warm.generate(request(code, 8))
        edited = code[:300] + "# x\n" + code[300:]  # ~100 tokens in, far past the 16-token window
        again, cold = warm.generate(request(edited, 8)), fresh.generate(request(edited, 8))
    finally:
        warm.close()
        fresh.close()
    assert again.evaluated_tokens < again.prompt_tokens / 2
    assert again.tokens == cold.tokens and again.logprobs == pytest.approx(cold.logprobs, abs=TOL)


@pytest.mark.slow
def test_prompt_past_the_context_loses_its_start_on_a_grid(test_models, memorizer):
    """The test models have a 1024-token context: a longer prompt keeps BOS and its end, cut so
    that the next keystroke cuts at the same token and reuses the cache."""
    text = "".join(p.read_text() for p in test_models.memorized)
    code = text[: text.index("\n", 4000) + 1]
    g = memorizer.generate(request(code, 8))
    assert memorizer.count_tokens(code) > 1024 > g.prompt_tokens >= 1024 - 8 - 1 - (1024 - 8 - 1) // 4
    again = memorizer.generate(request(code + "x", 8))
    assert again.evaluated_tokens <= 3 and "".join(again.tokens) == again.text


# ------------------------------------------------------------------ tokenizer features

@pytest.mark.slow
def test_chat_template_fim_tokens_and_counting(test_models, tmp_path, memorizer):
    assert not memorizer.has_chat_template() and memorizer.fim_tokens() is None
    assert memorizer.count_tokens("") == 0 and memorizer.count_tokens("def f():\n") >= 3

    from transformers import AutoModelForCausalLM, AutoTokenizer

    fim = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")
    tok = AutoTokenizer.from_pretrained(test_models.random)
    tok.add_special_tokens({"additional_special_tokens": list(fim)})
    tok.chat_template = ("{{ bos_token }}{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n"
                         "{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}")
    model = AutoModelForCausalLM.from_pretrained(test_models.random)
    model.resize_token_embeddings(len(tok))
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)

    backend = HFBackend(resolve(str(tmp_path)))
    try:
        assert backend.fim_tokens() == fim
        assert backend.has_chat_template()
        text = backend.render_chat([{"role": "user", "content": "hi"}])
        assert text == "<s><user>hi\n<assistant>"
        chat = backend.tokenize_prompt(request(text, fmt="chat"))
        assert chat == backend.tokenize_prompt(request("<user>hi\n<assistant>"))  # one BOS, not two
        g = backend.generate(request(text, 30, fmt="chat", temperature=1.0, seed=1))
        assert "".join(g.tokens) == g.text and not any(m in g.text for m in fim)
        # Markers count as special tokens in the FIM format only; in plain code they are text.
        pre, suf, mid = fim
        assert len(backend.tokenize_prompt(request(f"{pre}a{suf}b{mid}", fmt="fim"))) == 6
        as_code = backend.tokenize_prompt(request(f"{pre}a{suf}b{mid}"))
        assert len(as_code) > 10 and backend.count_tokens(f"{pre}a{suf}b{mid}") == len(as_code) - 1
    finally:
        backend.close()


@pytest.mark.slow
def test_detokenizer_gives_whole_characters_and_spaces(test_models):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(test_models.tokenizer)
    prompt, code = "x = 1\n", "    s = 'é€😀'  # ok\n  x"
    ids = tok(prompt + code)["input_ids"]
    n = len(tok(prompt)["input_ids"])
    detok = _Detokenizer(tok, ids[:n][-4:])
    pieces = [detok.add(t) for t in ids[n:]]
    assert "".join(pieces) + detok.rest() == code
    assert "€" in pieces and "😀" in pieces and "\ufffd" not in "".join(pieces)


# ------------------------------------------------------------------ adapters

@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing.*:FutureWarning")  # peft 0.21 on transformers 5
def test_lora_adapter_changes_logprobs_as_peft_does(test_models, tmp_path):
    from peft import LoraConfig, get_peft_model

    base, tok = load_model(test_models.random)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                            "gate_proj", "up_proj", "down_proj"])
    peft_model = get_peft_model(base, config)
    torch.manual_seed(0)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:  # B starts at zero: make the adapter do something
            torch.nn.init.normal_(param, std=0.3)
    peft_model.peft_config["default"].base_model_name_or_path = str(test_models.random)
    peft_model.save_pretrained(tmp_path / "adapter")

    spec = resolve(str(tmp_path / "adapter"))
    assert spec.kind == "adapter" and spec.base.kind == "hf" and spec.base.path == test_models.random
    prompt = "def area(width, height):\n"
    backend = load_backend(spec)
    try:
        g = backend.generate(request(prompt, 12))
    finally:
        backend.close()
    peft_model.eval()
    assert list(g.token_ids) == greedy_ids(peft_model, tok, prompt, 12) and len(g.tokens) == 12
    logprobs = logprobs_of(peft_model, tok, prompt, g.token_ids)
    assert max(abs(a - b) for a, b in zip(g.logprobs, logprobs, strict=True)) < TOL
    with peft_model.disable_adapter():
        base_logprobs = logprobs_of(peft_model, tok, prompt, g.token_ids)
    assert max(abs(a - b) for a, b in zip(g.logprobs, base_logprobs)) > 0.1


def test_adapter_with_missing_base_is_not_found(tmp_path):
    (tmp_path / "adapter").mkdir()
    missing = tmp_path / "no-such-base"
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(missing)}))
    with pytest.raises(ModelNotFound, match="no-such-base"):
        resolve(str(tmp_path / "adapter"), config={})


def test_adapter_whose_base_fails_to_load_is_a_backend_error(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.json").write_text("{ not json")
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": str(tmp_path / "base")}))
    spec = resolve(str(tmp_path / "adapter"), config={})
    with pytest.raises(BackendError, match="base model of .*adapter") as exc:
        HFBackend(spec)
    assert "\n" not in str(exc.value)


def test_corrupt_or_missing_model_dir_is_a_backend_error(tmp_path):
    (tmp_path / "config.json").write_text("garbage")
    with pytest.raises(BackendError, match="cannot load a transformers model") as exc:
        load_backend(resolve(str(tmp_path), config={}))
    assert "\n" not in str(exc.value)
    with pytest.raises(BackendError, match="no-model-here"):
        HFBackend(ModelSpec("x", "hf", path=tmp_path / "no-model-here"))


@pytest.mark.slow
def test_copied_model_dir_without_weights_is_a_backend_error(test_models, tmp_path):
    shutil.copytree(test_models.random, tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\0" * 64)
    with pytest.raises(BackendError, match="cannot load"):
        HFBackend(resolve(str(tmp_path / "m"), config={}))


@pytest.mark.slow
def test_load_backend_gives_an_hf_backend(test_models):
    backend = load_backend(resolve(str(test_models.memorizer), config={}))
    try:
        assert isinstance(backend, HFBackend) and backend.spec.kind == "hf"
    finally:
        backend.close()
    with pytest.raises(BackendError, match="closed"):
        backend.generate(request("x"))
