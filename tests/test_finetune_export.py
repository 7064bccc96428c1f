"""`empower-finetune export` on a real run: the memorizer LoRA-trained by finetune/train.py on
labels made by the real labeller, exported to every --to and checked against PEFT and
transformers, and with real llama.cpp on the same token ids.

    .venv/bin/pytest -q tests/test_finetune_export.py

The run trains 6 steps at a high learning rate, so that its adapter really moves the model (by
up to ~10 nats per token on held-out code, measured): an export that dropped or misplaced the
adapter would be far outside the tolerances.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from finetune.cli import main as cli  # noqa: E402
from finetune.export import open_run  # noqa: E402
from tests.logprobs import cpp_logprobs, hf_logprobs, load_hf  # noqa: E402
from tests.test_finetune_export_gguf import held_out_ids  # noqa: E402
from tests.test_finetune_train import label  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MAX_NATS = 0.05  # per token, max over the held-out ids
Q4_MAX_SIZE_RATIO = 0.35  # of the f16 file
SUPPORTED = "supported: LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def user_dirs(tmp_path, monkeypatch):
    """The user's config (and the registry beside it) in a temporary directory."""
    monkeypatch.setenv("EMPOWER_CONFIG", str(tmp_path / "config" / "config.toml"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


@pytest.fixture(scope="module")
def run(test_models, tmp_path_factory) -> Path:
    """RUN/train: a finished training run, as `empower-finetune DIR` leaves it."""
    from rich.console import Console

    from finetune.train import TrainConfig, train

    root = tmp_path_factory.mktemp("export")
    dataset = label(test_models, root)
    config = TrainConfig(max_length=160, batch_size=4, lr=2e-2, max_steps=6, save_every=6)
    result = train(dataset, str(test_models.memorizer), root / "run" / "train", config, Console(file=io.StringIO()))
    assert result.adapter is not None
    return root / "run"


@pytest.fixture(scope="module")
def reference(test_models, run):
    """Held-out ids, and the log-probs of PEFT (base + adapter) and of the base alone."""
    from peft import PeftModel

    ids = held_out_ids(test_models.memorizer)
    with warnings.catch_warnings():  # PEFT 0.21 reads a property that transformers 5 deprecates
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
        peft = PeftModel.from_pretrained(load_hf(test_models.memorizer), run / "train" / "adapter").eval()
    return ids, hf_logprobs(peft, ids), hf_logprobs(load_hf(test_models.memorizer), ids), peft


def export(run: Path, capsys, *args: str) -> str:
    """`empower-finetune export RUN ARGS`, in process; its stderr."""
    capsys.readouterr()
    assert cli(["export", str(run), *args]) == 0
    return capsys.readouterr().err


def left_behind(directory: Path) -> list[str]:
    return [p.name for p in directory.rglob(".*")]


# ------------------------------------------------------------------ every --to


@pytest.mark.slow
def test_adapter_is_the_trained_adapter_with_its_config(run, capsys):
    from coach.specs import resolve

    export(run, capsys, "--to", "adapter")
    out = run / "export" / "adapter"
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        assert (out / name).read_bytes() == (run / "train" / "adapter" / name).read_bytes()
    config = json.loads((out / "export.json").read_text())
    assert config["export"] == "adapter" and config["format"] == "completion" and config["rule"] == "empower"
    assert config["adapter_sha256"] == open_run(run).adapter_sha256 and config["eta"] == 0.32
    assert resolve(str(out)).kind == "adapter"  # a spec coach serves, its base named in its config
    assert left_behind(run / "export") == []


@pytest.mark.slow
def test_merged_reloads_in_transformers_and_matches_peft(run, reference, test_models, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    export(run, capsys, "--to", "merged")
    merged_dir = run / "export" / "merged"
    assert (merged_dir / "model.safetensors").is_file() and not list(merged_dir.glob("*.bin"))
    assert json.loads((merged_dir / "export.json").read_text())["dtype"] == "float32"
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    assert merged.dtype == torch.float32 and not hasattr(merged, "peft_config")
    ids, peft_lp, base_lp, peft = reference
    with torch.no_grad():
        expected = peft(torch.tensor([ids])).logits
        got = merged(torch.tensor([ids])).logits
    diff = float((expected - got).abs().max())
    print(f"\nmerged vs PEFT: max logit diff {diff:.2e}; the adapter moves log-probs by up to "
          f"{np.abs(peft_lp - base_lp).max():.2f} nats")
    assert diff < 1e-3
    assert np.abs(peft_lp - base_lp).max() > 1.0  # the adapter really changes the model
    text = (run.parent / "code" / "bisect_copy.py").read_text()
    assert AutoTokenizer.from_pretrained(merged_dir)(text)["input_ids"] == \
        AutoTokenizer.from_pretrained(test_models.memorizer)(text)["input_ids"]
    assert left_behind(run / "export") == []


@pytest.fixture(scope="module")
def merged_logprobs(run, reference):
    """transformers' log-probs of the exported merged model."""
    from transformers import AutoModelForCausalLM

    if not (run / "export" / "merged").is_dir():
        assert cli(["export", str(run), "--to", "merged"]) == 0
    model = AutoModelForCausalLM.from_pretrained(run / "export" / "merged").eval()
    return hf_logprobs(model, reference[0])


@pytest.mark.slow
def test_gguf_f16_matches_the_merged_model(run, reference, merged_logprobs, capsys):
    pytest.importorskip("llama_cpp")
    export(run, capsys, "--to", "gguf")  # f16 by default
    gguf = run / "export" / "model-f16.gguf"
    ids = reference[0]
    diff = np.abs(cpp_logprobs(gguf, ids) - merged_logprobs)
    print(f"\nllama.cpp f16 vs transformers merged: max {diff.max():.4f} mean {diff.mean():.5f} nats")
    assert diff.max() <= MAX_NATS
    config = json.loads(Path(f"{gguf}.json").read_text())
    assert config["ftype"] == "f16" and config["hf_arch"] == "LlamaForCausalLM"
    assert config["trained"]["adapter_sha256"] == open_run(run).adapter_sha256
    assert config["trained"]["format"] == "completion"


@pytest.mark.slow
def test_base_gguf_with_the_lora_gguf_is_the_merged_gguf(run, reference, capsys):
    pytest.importorskip("llama_cpp")
    if not (run / "export" / "model-f16.gguf").is_file():
        export(run, capsys, "--to", "gguf")
    export(run, capsys, "--to", "gguf-lora")
    out = run / "export"
    ids = reference[0]
    merged = cpp_logprobs(out / "model-f16.gguf", ids)
    with_lora = cpp_logprobs(out / "base-f16.gguf", ids, lora=out / "lora.gguf")
    diff = np.abs(with_lora - merged)
    print(f"\nllama.cpp base f16 + LoRA vs merged f16: max {diff.max():.4f} mean {diff.mean():.5f} nats")
    assert diff.max() <= MAX_NATS
    assert np.abs(cpp_logprobs(out / "base-f16.gguf", ids) - merged).max() > 1.0  # the LoRA is what differs
    assert json.loads((out / "base-f16.gguf.json").read_text())["source"] == str(open_run(run).base_dir.resolve())
    assert json.loads((out / "lora.gguf.json").read_text())["trained"]["export"] == "gguf-lora"
    assert left_behind(out) == []


@pytest.mark.slow
def test_q4_k_m_is_small(run, capsys):
    pytest.importorskip("llama_cpp")
    export(run, capsys, "--to", "gguf", "--quant", "q4_k_m")
    out = run / "export"
    if not (out / "model-f16.gguf").is_file():
        export(run, capsys, "--to", "gguf")
    ratio = (out / "model-q4_k_m.gguf").stat().st_size / (out / "model-f16.gguf").stat().st_size
    print(f"\nq4_k_m / f16 size: {ratio:.3f}")
    assert ratio <= Q4_MAX_SIZE_RATIO
    assert json.loads((out / "model-q4_k_m.gguf.json").read_text())["ftype"] == "q4_k_m"


@pytest.mark.slow
def test_outputs_made_from_this_adapter_are_kept_and_registered(run, capsys):
    from coach import registry
    from coach.specs import resolve

    pytest.importorskip("llama_cpp")
    export(run, capsys, "--to", "adapter", "merged", "gguf")
    out = run / "export"
    files = [out / "adapter" / "adapter_model.safetensors", out / "merged" / "model.safetensors", out / "model-f16.gguf"]
    before = [p.stat().st_mtime_ns for p in files]
    err = export(run, capsys, "--to", "adapter", "merged", "gguf", "--name", "mine")
    assert err.count("(up to date)") == 3 and [p.stat().st_mtime_ns for p in files] == before
    entry = registry.load()["mine"]
    assert (entry.spec, entry.format, entry.eta) == (str((out / "model-f16.gguf").resolve()), "completion", 0.32)
    spec = resolve("mine")
    assert (spec.kind, spec.path, spec.format, spec.name) == ("gguf", out.resolve() / "model-f16.gguf", "completion", "mine")
    export(run, capsys, "--to", "gguf", "--force")
    assert (out / "model-f16.gguf").stat().st_mtime_ns != before[2]


# ------------------------------------------------------------------ what cannot be exported


def fake_run(root: Path, arch: str, status: str = "finished") -> Path:
    """A run directory whose training 'finished' on a base of architecture `arch`."""
    base, train = root / "base", root / "run" / "train"
    base.mkdir(parents=True)
    (base / "config.json").write_text(json.dumps({"architectures": [arch]}))
    (train / "adapter").mkdir(parents=True)
    (train / "adapter" / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8, "lora_alpha": 16}))
    (train / "adapter" / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    (train / "config.json").write_text(json.dumps({"status": status, "base": str(base), "base_path": str(base),
                                                   "format": "completion"}))
    return root / "run"


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "nowhere", "no such run directory"),
    (lambda tmp: tmp, "not a training run (no train/config.json)"),
    (lambda tmp: fake_run(tmp, "LlamaForCausalLM", status="interrupted"), "its training has not finished (interrupted)"),
])
def test_a_bad_run_directory_is_one_line(tmp_path, capsys, make, message):
    run = make(tmp_path)
    assert cli(["export", str(run), "--to", "adapter"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("empower-finetune export: ") and message in err and err.count("\n") == 1
    assert not (run / "export").exists()


@pytest.mark.parametrize("to", ["gguf", "gguf-lora"])
def test_an_unsupported_architecture_names_the_supported_ones(tmp_path, capsys, to):
    run = fake_run(tmp_path, "MistralForCausalLM")
    assert cli(["export", str(run), "--to", to]) == 2
    err = capsys.readouterr().err
    assert "MistralForCausalLM is not supported; " + SUPPORTED in err and err.count("\n") == 1
    assert not (run / "export").exists()  # refused before anything was written


FULL_DISK = """
import resource, signal, sys
from finetune.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the limit, write() fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), resource.RLIM_INFINITY))
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("to", ["merged", "gguf"])
def test_a_disk_that_fills_leaves_no_half_output(run, tmp_path, to):
    """A file-size limit makes writes fail part-way through, as a full disk does (the merged
    weights are 6.8 MB, the f16 GGUF 3.4 MB)."""
    copy = tmp_path / "run"
    shutil.copytree(run / "train", copy / "train", ignore=shutil.ignore_patterns("checkpoints"))
    kept = []
    if to == "gguf":  # the merged model is there already: what fails is the GGUF
        if not (run / "export" / "merged").is_dir():
            assert cli(["export", str(run), "--to", "merged"]) == 0
        shutil.copytree(run / "export" / "merged", copy / "export" / "merged")
        kept = ["merged"]
    done = subprocess.run([sys.executable, "-c", FULL_DISK, "1000000", "export", str(copy), "--to", to],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("empower-finetune export: ") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    leftovers = sorted(p.name for p in (copy / "export").iterdir()) if (copy / "export").exists() else []
    assert leftovers == kept  # no (new) merged/, no model-f16.gguf, no temporary


# ------------------------------------------------------------------ the pipeline's export stage


@pytest.mark.slow
def test_the_pipeline_skips_q4_k_m_without_llama_cpp_and_registers_what_there_is(run, monkeypatch):
    """Without llama-cpp-python, q4_k_m is skipped with a notice and the f16 GGUF registered;
    with it, a model too big to keep in f16 is registered as q4_k_m."""
    from rich.console import Console

    from coach import registry
    from finetune import export, pipeline
    from finetune.run_config import PipelineConfig

    config = PipelineConfig(str(run), str(open_run(run).base_dir), str(open_run(run).base_dir), name="p")
    real = export.can_quantize
    monkeypatch.setattr(export, "can_quantize", lambda quant: quant != "q4_k_m")
    stages = pipeline.Pipeline(config, run, Console(file=io.StringIO()))
    stages.stage_export()
    assert "model-f16.gguf" in stages.exported and "model-q4_k_m.gguf" not in stages.exported
    assert any("no q4_k_m GGUF: it needs llama-cpp-python" in n for n in stages.notices)
    stages.stage_register()
    assert registry.load()["p"].spec == str((run / "export" / "model-f16.gguf").resolve())
    pytest.importorskip("llama_cpp")
    monkeypatch.setattr(export, "can_quantize", real)
    monkeypatch.setattr(pipeline, "SMALL_MODEL_BYTES", 1)  # every model is "big"
    stages = pipeline.Pipeline(config, run, Console(file=io.StringIO()))
    stages.stage_export()
    assert stages.chosen() == run / "export" / "model-q4_k_m.gguf"
