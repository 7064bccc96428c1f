"""LoRA training (finetune/train.py) on the offline test models and real labels: a directory of
real code (three reference solutions the memorizer knows by heart, three standard-library
fragments it never saw) labelled by the real `label` code with the memorizer as estimator.

    .venv/bin/pytest -q tests/test_finetune_train.py

What is checked: the labelled positions are exactly the completion + EOS after the prompt that
coach serves; the held-out eval loss falls; a killed run resumes to the uninterrupted run's
weights; two processes under torchrun give the one-process adapter; bad input is one clear
error; and the trained model stops where the labels stop more often than the base model.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from coach import prompts  # noqa: E402
from coach.backends.hf import HFBackend  # noqa: E402
from coach.specs import resolve  # noqa: E402
from coach.types import Context, Prompt, Request  # noqa: E402
from finetune.base_model import choose_backend, lora_targets, pick_backend  # noqa: E402
from finetune.train import TrainConfig, TrainError, main, train  # noqa: E402
from finetune.train_data import IGNORE, ServedPrompts, encode_rows, read_rows, split_by_source  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STDLIB = Path(sysconfig.get_paths()["stdlib"])
# Small enough for 2 CPU cores: prompts are served from a window of the state that fits.
MAX_LENGTH = 160
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def label(test_models, root: Path, fmt: str = "completion") -> Path:
    """A dataset made by the real labeller from a directory of real code."""
    from finetune import corpus
    from finetune.label import LabelConfig, Source, label_corpus
    from finetune.estimator import Estimator

    code = root / "code"
    code.mkdir(parents=True, exist_ok=True)
    for p in [p for p in test_models.memorized if p.name == "solution.py"][:3]:
        shutil.copy(p, code / f"{p.parent.name}.py")
    for name in ("bisect", "colorsys", "fnmatch"):
        (code / f"{name}_copy.py").write_text((STDLIB / f"{name}.py").read_text()[:1500])
    found = corpus.scan(code)
    estimator = Estimator.load(str(test_models.memorizer), "raw")
    config = LabelConfig(str(test_models.memorizer), format=fmt, etas=(0.32,), k=6)
    label_corpus([Source(f.rel, f.text, f.sha256) for f in found.files], estimator, config, root / "data")
    return root / "data" / "empower-eta0.32"


@pytest.fixture(scope="module")
def dataset(test_models, tmp_path_factory):
    return label(test_models, tmp_path_factory.mktemp("labels"))


def quick(**changes) -> TrainConfig:
    """A short run: a few steps of small batches."""
    return replace(TrainConfig(max_length=MAX_LENGTH, batch_size=4, lr=2e-3, max_steps=6, save_every=3), **changes)


def adapter_weights(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run / "adapter" / "adapter_model.safetensors"))


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys() and a
    return max(float((a[k] - b[k]).abs().max()) for k in a)


# ------------------------------------------------------------------ the data


@pytest.mark.parametrize("fmt", ["completion", "chat"])
def test_labels_are_the_completion_and_eos_after_the_served_prompt(test_models, dataset, tmp_path, fmt):
    """Decode the labelled positions: the completion, then EOS. The prompt is what the
    transformers backend serves for the state (the chat format through the model's template)."""
    model = test_models.memorizer
    if fmt == "chat":  # the test models have no chat template: give a copy one
        model = tmp_path / "chat-model"
        shutil.copytree(test_models.memorizer, model)
        cfg = json.loads((model / "tokenizer_config.json").read_text())
        (model / "tokenizer_config.json").write_text(json.dumps({**cfg, "chat_template": CHATML}))
    backend = HFBackend(resolve(str(model)))
    rows = [{**r, "format": fmt} for r in read_rows(dataset)]
    served = ServedPrompts(backend.tokenizer, backend.spec)
    eos = backend.tokenizer.eos_token_id
    # Within the model's context (1024), then so short that prompts must come from a shorter
    # window of the state (its end kept); the completion is never cut.
    for max_length in (1000, MAX_LENGTH if fmt == "completion" else 700):
        enc = encode_rows(rows, served, fmt, max_length)
        assert len(enc.examples) == len(rows) and enc.dropped == 0 and enc.retokenized == 0
        assert (enc.windowed > 0) == (max_length < 1000 or fmt == "chat")
        for row, ex in zip(rows, enc.examples):
            assert len(ex.input_ids) <= max_length
            code = ex.prompt.rsplit("```python\n", 1)[-1] if fmt == "chat" else ex.prompt
            assert row["state"].endswith(code) and (len(code) < len(row["state"]) or ex.prompt == prompts.build(
                Context(row["state"]), fmt, backend).text)
            prompt = prompts.build(Context(code), fmt, backend)
            assert prompt.text == ex.prompt  # the served prompt of that window
            n_prompt = next(i for i, t in enumerate(ex.labels) if t != IGNORE)
            assert ex.input_ids[:n_prompt] == backend.tokenize_prompt(Request(prompt, max_tokens=0))
            labelled = [t for t in ex.labels if t != IGNORE]
            assert labelled == ex.input_ids[n_prompt:] and labelled[-1] == eos and eos not in labelled[:-1]
            assert backend.tokenizer.decode(labelled[:-1]) == row["completion"]
            if fmt == "completion":  # the same tokenizer labelled it: the very same ids
                assert labelled[:-1] == row["completion_token_ids"]
        assert any(len(ex.labels) - ex.labels.count(IGNORE) > 1 for ex in enc.examples)  # not all empty
    backend.close()


def test_held_out_files_are_whole_files_chosen_by_the_seed(dataset):
    rows = read_rows(dataset)
    train_rows, eval_rows, held = split_by_source(rows, 0.1, seed=0)
    assert len(held) == 1 and {r["source"] for r in eval_rows} == set(held)
    assert not {r["source"] for r in train_rows} & set(held)
    assert split_by_source(rows, 0.1, seed=0)[2] == held
    assert {tuple(split_by_source(rows, 0.5, seed=s)[2]) for s in range(6)} != {tuple(held)}
    assert split_by_source(rows, 0.0, seed=0)[2] == []
    two = [r for r in rows if r["source"] in sorted({r["source"] for r in rows})[:2]]
    assert len(split_by_source(two, 0.9, seed=0)[2]) == 1  # never every file


def test_lora_goes_on_every_attention_and_mlp_projection(test_models):
    from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

    llama = AutoModelForCausalLM.from_pretrained(test_models.random)
    assert lora_targets(llama) == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50, n_positions=16))
    assert lora_targets(gpt2) == ["c_attn", "c_fc", "c_proj"]  # Conv1D layers, other names


def test_backend_choice():
    assert choose_backend("auto", cuda=False, unsloth_problem=None) == "transformers"
    assert choose_backend("auto", cuda=True, unsloth_problem=None) == "unsloth"
    assert choose_backend("auto", cuda=True, unsloth_problem="NotImplementedError: no GPU") == "transformers"
    assert choose_backend("auto", cuda=True, unsloth_problem=None, world=2) == "transformers"
    assert choose_backend("transformers", cuda=True, unsloth_problem=None) == "transformers"
    assert choose_backend("unsloth", cuda=True, unsloth_problem=None) == "unsloth"
    for kwargs, words in [(dict(cuda=False, unsloth_problem=None), "needs a CUDA GPU"),
                          (dict(cuda=True, unsloth_problem="ImportError: no module"), "does not import"),
                          (dict(cuda=True, unsloth_problem=None, world=2), "one GPU")]:
        with pytest.raises(TrainError, match=words):
            choose_backend("unsloth", **kwargs)
    with pytest.raises(TrainError, match="unknown backend"):
        choose_backend("jax", cuda=False, unsloth_problem=None)
    if not torch.cuda.is_available():  # this machine, for real: unsloth is refused in one line
        assert pick_backend("auto") == "transformers"
        with pytest.raises(TrainError, match="needs a CUDA GPU"):
            pick_backend("unsloth")


# ------------------------------------------------------------------ bad input


def test_bad_input_is_one_clear_error(test_models, dataset, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "data.jsonl").write_text("")
    chat = label(test_models, tmp_path / "chat", fmt="chat")
    garbage = tmp_path / "garbage-model"
    garbage.mkdir()
    (garbage / "config.json").write_text("{not json")
    cases = [
        (empty, test_models.memorizer, "dataset is empty"),
        (tmp_path / "nowhere", test_models.memorizer, "no data.jsonl"),
        (chat, test_models.random, "no chat template"),
        (dataset, tmp_path / "no-such-model", "base model does not load"),
        (dataset, garbage, "does not load"),
    ]
    for n, (data, base, words) in enumerate(cases):
        with pytest.raises(TrainError, match=words) as err:
            train(data, str(base), tmp_path / f"run{n}", quick())
        assert "\n" not in str(err.value)
        assert not (tmp_path / f"run{n}" / "adapter").exists()
    # the command: exit 2 and one line
    capsys.readouterr()
    assert main([str(empty), "--base", str(test_models.memorizer), "--out", str(tmp_path / "cli")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("empower-finetune train: ") and err.count("\n") == 1


# ------------------------------------------------------------------ training


@pytest.fixture(scope="module")
def trained(test_models, dataset, tmp_path_factory):
    run = tmp_path_factory.mktemp("train") / "run"
    config = TrainConfig(max_length=MAX_LENGTH, batch_size=8, lr=3e-3, epochs=8, dropout=0.0)
    return train(dataset, str(test_models.memorizer), run, config), run


@pytest.mark.slow
def test_training_lowers_the_held_out_loss_and_writes_the_run(trained, test_models):
    result, run = trained
    print(f"\neval loss on held-out completion tokens: {result.eval_loss_before:.3f} before, "
          f"{result.eval_loss:.3f} after {result.steps} steps ({result.tokens_per_s} tokens/s, {result.seconds} s)")
    assert not result.interrupted and result.steps == result.total_steps
    assert result.eval_loss < result.eval_loss_before
    # the run directory
    names = {p.name for p in run.iterdir()}
    assert {"adapter", "checkpoints", "metrics.jsonl", "loss.png", "config.json"} <= names
    assert not [n for n in names if n.startswith(".")]  # no temporary file left behind
    adapter = json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(test_models.memorizer.resolve())
    assert set(adapter["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[0] == {"step": 0, "eval_loss": result.eval_loss_before}
    assert [r["step"] for r in rows] == sorted({r["step"] for r in rows})
    assert rows[-1]["step"] == result.steps and rows[-1]["eval_loss"] == result.eval_loss
    assert all(r["train_loss"] > 0 and r["lr"] is not None for r in rows[1:])
    assert any(r.get("tokens_per_s") for r in rows)
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = json.loads((run / "config.json").read_text())
    assert config["status"] == "finished" and config["format"] == "completion" and config["backend"] == "transformers"
    assert config["config"]["lr"] == 3e-3 and config["resolved"]["steps"] == result.steps
    assert config["data"]["eval_sources"] == result.eval_sources and config["versions"]["peft"]
    # the adapter is a model spec that coach serves
    assert resolve(str(run / "adapter")).kind == "adapter"


def stop_rate(spec: str, examples) -> float:
    """How often greedy decoding from a state ends (EOS) within ±1 token of the label's end."""
    backend = HFBackend(resolve(spec))
    hits = 0
    for ex in examples:
        n = sum(t != IGNORE for t in ex.labels) - 1  # completion tokens, without the EOS
        gen = backend.generate(Request(Prompt("completion", ex.prompt), max_tokens=n + 2))
        hits += gen.finish_reason == "stop" and abs(len(gen.token_ids) - n) <= 1
    backend.close()
    return hits / len(examples)


@pytest.mark.slow
def test_the_trained_model_stops_where_the_labels_stop(trained, test_models, dataset):
    """The behaviour Empower trains for: complete the obvious, then stop. Greedy decoding from
    the training states (the prompts as trained: the served window that fits max_length)."""
    result, run = trained
    backend = HFBackend(resolve(str(test_models.memorizer)))
    served = ServedPrompts(backend.tokenizer, backend.spec)
    rows = read_rows(dataset)
    seen = encode_rows([r for r in rows if r["source"] not in result.eval_sources], served, "completion", MAX_LENGTH)
    held = encode_rows([r for r in rows if r["source"] in result.eval_sources], served, "completion", MAX_LENGTH)
    backend.close()
    rates = {(name, model): stop_rate(model, enc.examples)
             for name, enc in (("training", seen), ("held-out", held))
             for model in (str(test_models.memorizer), str(run / "adapter"))}
    for name, enc in (("training", seen), ("held-out", held)):
        print(f"\nstops within ±1 token of the label's end, {len(enc.examples)} {name} states: "
              f"base {rates[name, str(test_models.memorizer)]:.0%}, trained {rates[name, str(run / 'adapter')]:.0%}")
    assert rates["training", str(run / "adapter")] > rates["training", str(test_models.memorizer)]


@pytest.mark.slow
def test_a_chat_model_trains_on_its_chat_prompts(test_models, tmp_path):
    """The chat format end to end: a copy of the memorizer with a chat template, labels made
    for the chat format, prompts through the template and the prefilled assistant turn."""
    model = tmp_path / "chat-model"
    shutil.copytree(test_models.memorizer, model)
    cfg = json.loads((model / "tokenizer_config.json").read_text())
    (model / "tokenizer_config.json").write_text(json.dumps({**cfg, "chat_template": CHATML}))
    data = label(test_models, tmp_path / "labels", fmt="chat")
    result = train(data, str(model), tmp_path / "run", quick(max_steps=2, max_length=700))
    assert result.steps == 2 and result.adapter and result.eval_loss is not None
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["format"] == "chat" and config["data"]["train"]["windowed"] > 0
    assert config["data"]["train"]["dropped"] == 0


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_uninterrupted_weights(test_models, dataset, tmp_path, capsys):
    from rich.console import Console
    from transformers import TrainerCallback

    class CtrlC(TrainerCallback):
        """A real SIGINT to this process right after the first checkpoint is saved."""
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 3:
                os.kill(os.getpid(), signal.SIGINT)

    config = quick(dropout=0.1)  # dropout: the RNG state must come back too
    console = Console(file=sys.stderr, width=200)
    straight = train(dataset, str(test_models.memorizer), tmp_path / "straight", config, console)
    stopped = train(dataset, str(test_models.memorizer), tmp_path / "stopped", config, console, callbacks=[CtrlC()])
    said = capsys.readouterr().err
    assert stopped.interrupted and stopped.adapter is None and 3 <= stopped.steps < 6
    assert stopped.checkpoint == tmp_path / "stopped" / "checkpoints" / "checkpoint-3"
    assert "interrupted" in said and "--resume" in said
    assert json.loads((tmp_path / "stopped" / "config.json").read_text())["status"] == "interrupted"
    with pytest.raises(TrainError, match="--resume"):  # the same directory needs --resume
        train(dataset, str(test_models.memorizer), tmp_path / "stopped", config, console)
    with pytest.raises(TrainError, match="lr changed"):  # and the same settings
        train(dataset, str(test_models.memorizer), tmp_path / "stopped", replace(config, lr=1e-3), console, resume=True)
    resumed = train(dataset, str(test_models.memorizer), tmp_path / "stopped", config, console, resume=True)
    assert resumed.steps == straight.steps == 6
    assert resumed.eval_loss_before == pytest.approx(straight.eval_loss_before, abs=1e-6)  # kept across the resume
    diff = max_diff(adapter_weights(tmp_path / "straight"), adapter_weights(tmp_path / "stopped"))
    print(f"\nresume vs uninterrupted: max |Δw| = {diff:.2e}, eval loss {resumed.eval_loss:.6f} vs {straight.eval_loss:.6f}")
    assert diff <= 1e-6
    assert resumed.eval_loss == pytest.approx(straight.eval_loss, abs=1e-6)
    steps = [json.loads(line)["step"] for line in (tmp_path / "stopped" / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(7))  # step 0 (eval before training), then 1..6, none twice


@pytest.mark.slow
def test_two_processes_under_torchrun_train_the_one_process_adapter(test_models, dataset, tmp_path):
    """Data parallel: 2 processes x 2 rows give the global batch of 1 process x 4 rows, in the
    same order (the Trainer's seeded sampler, batches dealt out in turn), and the loss is the
    mean over the global batch's completion tokens in both (the Trainer counts them across
    processes). No dropout: the processes draw different masks than one process would. What
    remains is float32 summation order (gradients all-reduced over gloo, other matmul shapes):
    Adam turns gradient noise of ~1e-7 into weight noise well under the lr, so we allow 2e-5
    on weights of ~1e-2 after 4 steps of lr 2e-3."""
    config = quick(dropout=0.0, max_steps=4, save_every=4)
    one = train(dataset, str(test_models.memorizer), tmp_path / "one", config)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "finetune.train", str(dataset), "--base", str(test_models.memorizer),
                        "--out", str(tmp_path / "two"), "--batch-size", "2", "--max-length", str(MAX_LENGTH),
                        "--lr", "2e-3", "--max-steps", "4", "--save-every", "4", "--dropout", "0"],
                       capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    two = json.loads((tmp_path / "two" / "config.json").read_text())
    assert two["resolved"]["world"] == 2 and two["resolved"]["global_batch"] == 4 == one_global(tmp_path / "one")
    diff = max_diff(adapter_weights(tmp_path / "one"), adapter_weights(tmp_path / "two"))
    print(f"\ntorchrun 2 processes vs 1: max |Δw| = {diff:.2e}; eval loss {two['eval_loss']:.6f} vs {one.eval_loss:.6f}")
    assert diff <= 2e-5
    assert two["eval_loss"] == pytest.approx(one.eval_loss, abs=1e-4)


def one_global(run: Path) -> int:
    return json.loads((run / "config.json").read_text())["resolved"]["global_batch"]


def test_the_loss_from_the_target_positions_alone_is_the_models_own_loss(test_models, dataset, tmp_path):
    """CompletionTrainer computes the output layer only where a completion token or its EOS is
    predicted, without an attention mask: on a right-padded batch of rows of different lengths
    its loss (and its gradient) equals the model's own loss over every position with the mask."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments

    from finetune.train import completion_trainer
    from finetune.train_data import Collator

    tokenizer = AutoTokenizer.from_pretrained(test_models.memorizer)
    examples = encode_rows(read_rows(dataset), ServedPrompts(tokenizer, resolve(str(test_models.memorizer), engine="hf")),
                           "completion", MAX_LENGTH).examples[:4]
    assert len({len(e.input_ids) for e in examples}) > 1  # padding matters
    batch = Collator(tokenizer.pad_token_id or 0)([{"input_ids": e.input_ids, "labels": e.labels} for e in examples])
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(test_models.memorizer, dtype=torch.float64),
                           LoraConfig(r=4, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    trainer = completion_trainer()(model=model, args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True,
                                                                         report_to="none"))
    ours = trainer.compute_loss(model, dict(batch))
    ours.backward()
    ours_grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    model.zero_grad()
    theirs = model(**batch).loss
    theirs.backward()
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-9)
    for a, p in zip(ours_grads, [p for p in model.parameters() if p.requires_grad]):
        assert torch.allclose(a, p.grad, rtol=1e-7, atol=1e-12)
