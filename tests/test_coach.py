"""coach on the real llama.cpp backend and the tiny offline models: prompts, extraction,
policies, the engine's caches and cancellation, and `python -m coach suggest`."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from coach import prompts
from coach.backends import load_backend
from coach.engine import Coach
from coach.policies import parse, threshold_length
from coach.specs import resolve
from coach.types import BackendError, CoachError, Context, ModelNotFound, Prompt, Request
from tests.models import split_probe

UNSEEN = "import sys\n\n\ndef parse(line):\n    parts = line.split(',')\n    return [p.strip() for p in "


@pytest.fixture(scope="module")
def memorizer(test_models):
    backend = load_backend(resolve(str(test_models.memorizer_gguf)))
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def probe(test_models):
    path = next(p for p in test_models.memorized if p.name == "solution.py")
    return path, *split_probe(path.read_text())


# ---------------------------------------------------------------- specs
def test_specs_name_every_kind_of_model(test_models, tmp_path, monkeypatch):
    assert resolve(str(test_models.memorizer_gguf)).kind == "gguf"
    assert resolve(str(test_models.memorizer)).kind == "hf"
    server = resolve("openai:http://127.0.0.1:8000/v1#Qwen/Qwen2.5-Coder")
    assert (server.kind, server.url, server.name) == ("openai", "http://127.0.0.1:8000/v1", "Qwen/Qwen2.5-Coder")
    config = tmp_path / "config.toml"
    config.write_text(f'[models.mine]\nspec = "{test_models.memorizer_gguf}"\nformat = "completion"\n')
    monkeypatch.setenv("EMPOWER_CONFIG", str(config))
    mine = resolve("mine")
    assert (mine.kind, mine.name, mine.format, mine.label) == ("gguf", "mine", "completion", "mine")


@pytest.mark.parametrize("spec, message", [
    ("nope.gguf", "no model 'nope.gguf'"),
    ("openai:localhost:8000", "write openai:http://host:port/v1#served-model-name"),
    ("org/model-that-needs-the-hub", "cannot download 'org/model-that-needs-the-hub' from the Hugging Face Hub"),
])
def test_bad_specs_say_what_is_wrong(spec, message, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the real download path, as it fails offline
    with pytest.raises(ModelNotFound, match=message):
        resolve(spec, config={})


def test_a_file_that_is_not_a_gguf_is_refused(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelNotFound, match="not a GGUF file"):
        resolve(str(bad))
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(BackendError, match="cannot load this GGUF"):
        load_backend(resolve(str(bad)))


# ---------------------------------------------------------------- prompts and extraction
def test_the_window_start_stays_put_while_typing():
    text = "".join(f"line_{i} = {i}\n" for i in range(2000))
    starts = {prompts.window(text[:n], 4000)[:20] for n in range(10_000, 10_300)}
    assert len(starts) <= 2  # at most one step of the grid within 300 keystrokes
    w = prompts.window(text[:10_000], 4000)
    assert len(w) <= 4000 and text[:10_000].endswith(w) and w.startswith("line_")


def test_the_backends_cut_tokens_on_the_same_grid():
    from coach.backends import fit_to_context

    cuts = [fit_to_context(list(range(n)), 400, keep_first=False) for n in range(1000, 1100)]
    assert all(len(c) <= 400 for c in cuts) and len({c[0] for c in cuts}) <= 2  # ≤ 1 step of 100 tokens
    bos = fit_to_context([-1, *range(1000)], 400, keep_first=True)
    assert bos[0] == -1 and len(bos) <= 400 and bos[-1] == 999
    assert fit_to_context(list(range(400)), 400, keep_first=False) == list(range(400))


def test_the_chat_prompt_is_the_papers_protocol():
    messages = prompts.chat_messages("def f():\n")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "def f():\n" in messages[-1]["content"]


@pytest.mark.parametrize("raw, ctx, expected", [
    ("    return a + b\n```\nMore words.", Context("def f(a, b):\n"), "    return a + b"),
    ("```python\ndef f(a, b):\n    return a\n```", Context("def f(a, b):\n"), "    return a"),
    ("a + b)\n", Context("print(", ")\n"), "a + b"),
    ("x = 1\ny = 2\n", Context("z = ", "  # note\n"), "x = 1"),
    ("total)\n", Context("print(", "total)\n"), ""),
    ("   \n\n", Context("x = "), ""),
    ("Sure! Here is the rest of it:\n```python\n    return a * b\n```", Context("def f(a, b):\n"), "    return a * b"),
    ("I cannot see the rest of your program, so I will not guess.", Context("def f(a, b):\n"), ""),
])
def test_extraction(raw, ctx, expected):
    prompt = Prompt("chat", "", prefill=f"```python\n{ctx.prefix}")
    start, end, why = prompts.extract(raw, prompt, ctx)
    assert raw[start:end] == expected
    assert bool(why) == (expected == "")


# ---------------------------------------------------------------- policies
def test_policy_names_and_the_threshold_rule():
    assert parse("base-20").max_tokens == 20 and parse("base").max_tokens > 20
    assert parse("threshold", 0.32).eta_bits == 0.32
    with pytest.raises(CoachError, match="unknown policy"):
        parse("greedy")
    half = math.log(0.5)  # one bit each
    assert threshold_length([-half] * 5, 2.5) == 2
    assert threshold_length([-half] * 5, 0.5) == 0
    assert threshold_length([-half] * 5, 100) == 5
    assert threshold_length([], 1) == 0 and threshold_length([float("nan")], 100) == 0  # a NaN stops it


def test_a_policy_has_one_spelling_in_the_editor_the_benchmark_and_the_experiment():
    from coach.policies import policy_name
    from experiments.arms import all_arms
    from tui.app import Settings

    assert str(parse("threshold", 2)) == policy_name("threshold", 2.0) == "threshold@2"
    assert Settings(policy="threshold", eta=2.0).policy_label == "threshold@2"  # the log's and status bar's
    assert Settings(policy="base-10", eta=2.0).policy_label == str(parse("base-10")) == "base-10"
    arms = {a.name: a.policy_label for a in all_arms()}  # the run store's keys
    assert arms["threshold η=2"] == "threshold@2" and arms["Base-10"] == "base-10"


def test_threshold_lengths_grow_with_eta(memorizer):
    lengths = []
    for eta in (0.5, 4, 16, 64):
        coach = Coach(memorizer, parse("threshold", eta))
        lengths.append(coach.suggest(Context(UNSEEN)).n_tokens)
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1]


def early_and_full(spec, contexts, etas, fmt=None, **backend_options):
    """The suggestions of threshold coaches at each η, on two backends of `spec` (one KV cache
    each, fed the same prompts in the same order: the same arithmetic): on one they stop
    generating once η is crossed, on the other they generate to the cap; (early, full) pairs."""
    backends = [load_backend(spec, **backend_options) for _ in range(2)]
    pairs = []
    try:
        for eta in etas:
            early, full = (Coach(b, parse("threshold", eta), fmt) for b in backends)
            full.stop_past_eta = False
            pairs += [(early.suggest(ctx), full.suggest(ctx)) for ctx in contexts]
    finally:
        for b in backends:
            b.close()
    return pairs


def stdlib_contexts(n: int, mid_line: bool = False) -> list[Context]:
    """Cuts of textwrap.py after a space (and, mid_line, with the rest of the file after it)."""
    import textwrap

    text = Path(textwrap.__file__).read_text()[:6000]
    cuts = [text.index(" ", 200 + i * (5600 // n)) + 1 for i in range(n)]
    return [Context(text[:c], text[c:] if mid_line else "") for c in cuts]


def test_threshold_stops_generating_at_eta_and_shows_what_the_whole_generation_would(memorizer, test_models):
    pairs = early_and_full(memorizer.spec, stdlib_contexts(12) + stdlib_contexts(6, mid_line=True) + [Context(UNSEEN)],
                           (1.0, 4.0, 16.0))
    pairs += early_and_full(resolve(str(test_models.memorizer)), stdlib_contexts(4) + [Context(UNSEEN)], (4.0,))  # transformers
    for early, full in pairs:
        assert (early.text, early.n_tokens, early.logprobs) == (full.text, full.n_tokens, full.logprobs)
        assert early.timings["generated_tokens"] <= full.timings["generated_tokens"]
    generated = [sum(s.timings["generated_tokens"] for s in side) for side in zip(*pairs)]
    print(f"\ntokens generated: {generated[0]} stopping at η vs {generated[1]} to the cap")
    assert generated[0] < 0.8 * generated[1]
    assert any(e.finish_reason == "enough" for e, _ in pairs)


def test_a_chat_answer_is_settled_only_once_its_start_cannot_move():
    prompt = Prompt("chat", "", prefill="```python\ndef f(x):\n")
    assert not prompts.settled("```pyth", prompt)  # the fence line is not complete
    assert not prompts.settled("```python\ndef f(", prompt)  # maybe the code typed again
    assert prompts.settled("```python\ndef f(x):\n    return", prompt)  # typed again, whole
    assert prompts.settled("    return x\n", prompt)  # a plain continuation
    assert not prompts.settled("    return x", prompt)  # its first line may still be prose
    assert not prompts.settled("\n    Here is", prompt)
    assert prompts.settled("\n    return f(", prompt)  # no prose has "(": code, whatever follows
    assert prompts.settled("x", Prompt("completion", "def f(x):\n"))


def test_threshold_matches_an_independent_transformers_computation(test_models, memorizer):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # the ids llama.cpp generated (re-tokenizing the text could merge them differently)
    gen_ids = list(memorizer.generate(Request(Prompt("completion", UNSEEN), parse("base").max_tokens)).token_ids)
    tok = AutoTokenizer.from_pretrained(test_models.memorizer)
    model = AutoModelForCausalLM.from_pretrained(test_models.memorizer, dtype=torch.float32)
    prompt_ids = tok(UNSEEN)["input_ids"]
    with torch.inference_mode():
        logits = model(torch.tensor([prompt_ids + gen_ids])).logits[0].log_softmax(-1)
    hf = [logits[len(prompt_ids) + i - 1, t].item() for i, t in enumerate(gen_ids)]
    bits = [-sum(hf[:i + 1]) / math.log(2) for i in range(len(hf))]
    # η halfway between two cumulative values, so the 0.03-nat engine difference cannot matter
    for i in (1, len(bits) // 2, len(bits) - 2):
        eta = (bits[i - 1] + bits[i]) / 2
        if bits[i] - bits[i - 1] < 0.2:
            continue
        s = Coach(memorizer, parse("threshold", eta)).suggest(Context(UNSEEN))
        assert s.n_tokens == threshold_length([-lp for lp in hf], eta) == i
        assert s.nll_bits < eta


def test_trained_stops_where_the_model_stops(memorizer, test_models):
    path = next(p for p in test_models.memorized if p.parent.name == "lava")  # short: whole in the window
    lines = path.read_text().splitlines(True)
    ctx = Context("".join(lines[:-3]))
    s = Coach(memorizer, parse("trained")).suggest(ctx)
    assert s.text == "".join(lines[-3:]) and s.finish_reason == "stop"  # the memorizer ends files with EOS
    short = Coach(memorizer, parse("base-5")).suggest(ctx)
    assert short.n_tokens == 5 and s.text.startswith(short.text) and short.finish_reason == "length"


def test_base_n_caps_and_the_text_matches_its_tokens(memorizer, probe):
    _, prompt, _ = probe
    s = Coach(memorizer, parse("base-5")).suggest(Context(prompt))
    assert s.n_tokens == 5 and "".join(s.tokens) == s.text and len(s.logprobs) == 5
    assert all(lp <= 0 for lp in s.logprobs)


# ---------------------------------------------------------------- the llama.cpp backend
def test_greedy_continuation_of_a_memorized_file(memorizer, probe):
    _, prompt, expected = probe
    gen = memorizer.generate(Request(Prompt("completion", prompt), 64, stop=("\n",)))
    assert gen.text + "\n" == expected and gen.finish_reason == "stop"
    assert "".join(gen.tokens) == gen.text


def test_a_keystroke_reevaluates_only_the_new_tokens(memorizer, probe):
    _, prompt, _ = probe
    prompt = "# a start no earlier call had\n" + prompt
    first = memorizer.generate(Request(Prompt("completion", prompt + "x"), 4))
    again = memorizer.generate(Request(Prompt("completion", prompt + "xy"), 4))
    assert first.evaluated_tokens > 20 and again.evaluated_tokens <= 3


def test_cancellation_stops_generation_between_tokens(memorizer):
    cancel = threading.Event()
    threading.Timer(0.05, cancel.set).start()
    started = time.perf_counter()
    gen = memorizer.generate(Request(Prompt("completion", UNSEEN), 10_000, temperature=1.0, cancel=cancel))
    assert gen.finish_reason == "cancelled" and time.perf_counter() - started < 1.0


def test_chat_without_a_template_is_a_clear_error(memorizer):
    with pytest.raises(BackendError, match="no chat template"):
        Coach(memorizer, parse("base"), "chat").suggest(Context("x = "))


# ---------------------------------------------------------------- the engine
def test_typing_through_a_suggestion_needs_no_model_call(memorizer, probe):
    _, prompt, expected = probe
    coach = Coach(memorizer, parse("base"))
    first = coach.suggest(Context(prompt))
    assert first.source == "model" and first.text.startswith(expected.rstrip("\n"))
    typed = first.text[:5]
    second = coach.suggest(Context(prompt + typed))
    assert second.source == "typed-through" and second.text == first.text[5:]
    assert "".join(second.tokens) == second.text
    assert second.latency_s < 0.001
    assert coach.suggest(Context(prompt)).source == "cache"


def test_a_newer_request_cancels_the_one_in_flight(test_models):
    backend = load_backend(resolve(str(test_models.random_gguf)))
    coach = Coach(backend, parse("base-4000"), temperature=1.0)
    long_prompt = "".join(f"value_{i} = {i} * {i}\n" for i in range(150))  # ~80 ms to evaluate
    try:
        results = []
        t = threading.Thread(target=lambda: results.append(coach.suggest(Context(long_prompt))))
        t.start()
        deadline = time.monotonic() + 5
        while coach._inflight is None and time.monotonic() < deadline:  # the first is generating
            time.sleep(0.001)
        newer = coach.suggest(Context(long_prompt + "x"))
        t.join(timeout=5)
        assert results and results[0].finish_reason == "cancelled" and results[0].dropped == "cancelled"
        assert newer.finish_reason != "cancelled"
    finally:
        coach.close()


def test_a_prefetch_answers_the_next_state_from_the_cache_as_the_model_would(memorizer, probe):
    _, prompt, expected = probe
    coach = Coach(memorizer, parse("base-16"))
    shown = coach.suggest(Context(prompt))
    after = Context(prompt + shown.text)  # the state once the ghost is taken
    assert coach.prefetch(after) is True
    assert coach.prefetch(after) is False  # known already: nothing done
    # a prefetch is not what is on screen: typing the ghost's first characters still goes through it
    assert coach.suggest(Context(prompt + shown.text[:2])).source == "typed-through"
    taken = coach.suggest(after)
    assert taken.source == "cache" and taken.text
    fresh = Coach(memorizer, parse("base-16")).suggest(after)
    assert (taken.text, taken.tokens) == (fresh.text, fresh.tokens)


def test_a_request_waits_for_the_prefetch_of_its_state_and_cancels_any_other(test_models):
    backend = load_backend(resolve(str(test_models.random_gguf)))
    coach = Coach(backend, parse("base-4000"), temperature=1.0)
    long_prompt = "".join(f"value_{i} = {i} * {i}\n" for i in range(150))
    try:
        def prefetching(ctx):
            done = []
            t = threading.Thread(target=lambda: done.append(coach.prefetch(ctx)))
            t.start()
            deadline = time.monotonic() + 5
            while coach._inflight is None and time.monotonic() < deadline:
                time.sleep(0.001)
            return t, done

        # the same state: the request waits and takes the prefetch's answer (one generation)
        ctx = Context(long_prompt)
        t, done = prefetching(ctx)
        got = coach.suggest(ctx)
        t.join(timeout=30)
        assert done == [True] and got.source == "cache" and got.finish_reason != "cancelled"
        # another state: the request wins, the prefetch is cancelled and nothing of it is kept
        other = Context(long_prompt + "y")
        t, done = prefetching(other)
        newer = coach.suggest(Context(long_prompt + "x"))
        t.join(timeout=5)
        assert done == [False] and newer.finish_reason != "cancelled"
        assert coach.prefetch(other) is True  # it was not cached cancelled: computed now
    finally:
        coach.close()


def test_a_model_closed_under_a_late_request_says_so_instead_of_crashing(test_models):
    """The editor closes its model on exit while a worker may still be about to ask (a prefetch):
    llama.cpp's freed context would take the process down."""
    coach = Coach(load_backend(resolve(str(test_models.memorizer_gguf))), parse("base-8"))
    coach.close()
    with pytest.raises(BackendError, match="closed"):
        coach.suggest(Context("import sys\n"))


# ---------------------------------------------------------------- the command line
def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "coach", "suggest", *args], capture_output=True, text=True, timeout=120)


def test_cli_prints_the_memorized_continuation(test_models, probe):
    path, prompt, expected = probe
    line = prompt.count("\n") + 1
    out = run_cli("--model", str(test_models.memorizer_gguf), str(path), "--at", f"{line}:1", "--prefix-only",
                  "--policy", "base")
    assert out.returncode == 0 and out.stdout.startswith(expected)
    # with the rest of the file after the cursor, the same continuation is already there
    out = run_cli("--model", str(test_models.memorizer_gguf), str(path), "--at", f"{line}:1")
    assert out.returncode == 0 and out.stdout.strip() == "" and "repeats the code after the cursor" in out.stderr
    data = json.loads(run_cli("--model", str(test_models.memorizer_gguf), str(path), "--at", f"{line}:1",
                              "--prefix-only", "--policy", "base-3", "--json").stdout)
    assert data["n_tokens"] == 3 and len(data["logprobs"]) == 3 and data["timings"]["prompt_tokens"] > 0


@pytest.mark.parametrize("args, message", [
    (["--model", "missing.gguf", "problems/lava.py", "--at", "1:1"], "no model 'missing.gguf'"),
    (["--model", "MODEL", "problems/nope.py", "--at", "1:1"], "no such file"),
    (["--model", "MODEL", "problems/lava.py", "--at", "999:1"], "has 4"),
    (["--model", "MODEL", "problems/lava.py", "--at", "x"], "write LINE:COL"),
    (["--model", "MODEL", "problems/lava.py", "--at", "1:1", "--policy", "nope"], "unknown policy"),
])
def test_cli_bad_input_is_one_line(test_models, args, message):
    out = run_cli(*[str(test_models.memorizer_gguf) if a == "MODEL" else a for a in args])
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


@pytest.mark.slow
def test_the_chat_format_renders_the_models_template_and_prefills_the_code(test_models, tmp_path):
    import shutil

    model = tmp_path / "chat-model"
    shutil.copytree(test_models.memorizer, model)
    config = json.loads((model / "tokenizer_config.json").read_text())
    (model / "tokenizer_config.json").write_text(json.dumps(dict(config, chat_template=CHATML)))
    coach = Coach.from_spec(str(model), "base-8", fmt="chat")
    try:
        ctx = Context("def area(w, h):\n")
        prompt = prompts.build(ctx, "chat", coach.backend)
        assert prompt.text.startswith("<|im_start|>system\n" + prompts.SYSTEM)
        assert prompt.text.endswith("<|im_start|>assistant\n```python\ndef area(w, h):\n")
        assert prompt.text.count("<|im_start|>user") == 3  # two few-shot exchanges and the code
        s = coach.suggest(ctx)
        assert "```" not in s.text and s.n_tokens <= 8
    finally:
        coach.close()


def test_models_loaded_at_once_in_threads_leave_stdout_where_it_was(memorizer):
    """llama-cpp-python silences a model's load by pointing fds 1 and 2 at /dev/null and back;
    two loads overlapping in threads (evals makes replicas that way) restored /dev/null, and
    `empower-evals` then printed nothing, its report included."""
    before = [os.fstat(fd) for fd in (1, 2)]
    start, clones = threading.Barrier(6), []

    def load():
        start.wait()
        clones.append(memorizer.clone())

    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for c in clones:
        c.close()
    after = [os.fstat(fd) for fd in (1, 2)]
    assert len(clones) == 6
    assert [(s.st_dev, s.st_ino) for s in after] == [(s.st_dev, s.st_ino) for s in before]
