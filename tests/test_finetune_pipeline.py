"""`empower-finetune DIR --base SPEC --out RUN`, the whole pipeline as a person runs it: a real
subprocess on a directory of four real files (reference solutions the memorizer knows), with
the user's config and data directories in a temporary directory.

    .venv/bin/pytest -q tests/test_finetune_pipeline.py

What is checked: Ctrl+C during training exits 130 and says what was kept; the same command
resumes and finishes; the registered name resolves and `python -m coach suggest --model NAME`
serves it; a third run keeps every stage (nothing is written again); `empower-finetune models`
lists the name; bad input is one line, exit 2, no traceback.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from finetune.rules import DEFAULT_ETA

ROOT = Path(__file__).resolve().parent.parent
NAME = f"code-eta{DEFAULT_ETA:g}"  # the default: the directory's name and η
STAGES = ("scan", "plan", "label", "train", "export", "register")


@pytest.fixture(autouse=True)
def user_dirs(tmp_path, monkeypatch):
    """The user's config, registry and data in tmp, for this process and its subprocesses."""
    monkeypatch.setenv("EMPOWER_CONFIG", str(tmp_path / "config" / "config.toml"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # tmp is not inside a work tree
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # on 2 shared cores, 2 spinning threads are slower
    monkeypatch.setenv("COLUMNS", "200")  # rich's width in a pipe: whole lines to search


def finetune(*args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "finetune.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def code(test_models, tmp_path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    for p in [p for p in test_models.memorized if p.name == "solution.py"][:4]:
        shutil.copy(p, code / f"{p.parent.name}.py")
    return code


def stage_lines(stderr: str) -> dict[str, str]:
    """The stage rows of the display's last drawing: stage -> its row."""
    rows = {}
    for line in stderr.splitlines():
        words = line.split()
        if len(words) > 1 and words[1] in STAGES:
            rows[words[1]] = line
    return rows


def interrupt_training(command: list[str], run: Path, timeout: float = 240) -> subprocess.CompletedProcess | None:
    """Start the pipeline, press Ctrl+C once its first training checkpoint is complete; None
    when it finished before that could happen. It waits for loss.png too: the first checkpoint
    imports matplotlib to draw it, and an interrupt inside that import leaves a half-imported
    module that train()'s own final plot then trips on (reported: finetune/train.py)."""
    from finetune.run_dir import last_checkpoint

    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if last_checkpoint(run / "train") and (run / "train" / "loss.png").is_file():
            proc.send_signal(signal.SIGINT)
            break
        time.sleep(0.2)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        return None
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


@pytest.mark.slow
def test_the_whole_pipeline_resumes_registers_serves_and_then_keeps_everything(test_models, code, tmp_path):
    from coach.specs import resolve

    run = tmp_path / "run"
    args = [str(code), "--base", str(test_models.memorizer), "--out", str(run)]
    started = time.perf_counter()

    # 1. Ctrl+C while training: 130, and what was kept
    stopped = interrupt_training([sys.executable, "-m", "finetune.cli", *args], run)
    if stopped is not None:
        assert stopped.returncode == 130, stopped.stderr
        assert "interrupted. Kept: " in stopped.stderr and "Traceback" not in stopped.stderr
        assert "the checkpoint of step" in stopped.stderr and "Run the same command to go on" in stopped.stderr
        assert json.loads((run / "train" / "config.json").read_text())["status"] == "interrupted"
    interrupted_s = time.perf_counter() - started

    # 2. the same command goes on from there and finishes
    done = finetune(*args)
    assert done.returncode == 0, done.stderr
    rows = stage_lines(done.stderr)
    assert set(rows) == set(STAGES), done.stderr
    assert all("✓" in row for row in rows.values()), done.stderr
    assert "kept:" in rows["label"] and "kept:" not in rows["train"]  # labels reused, training resumed
    # the output is a pipe, as a log file: the plan before any work, each stage's end in a line
    plan = next(line for line in done.stderr.splitlines() if line.startswith("plan, on "))
    assert "tokens/s" in plan and "  in all: about " in done.stderr and "peak memory about" in done.stderr
    assert "train: done in " in done.stderr and "export: done in " in done.stderr
    assert "training a LoRA adapter of " in done.stderr and "steps of 8 rows" in done.stderr  # train's own plan
    config = json.loads((run / "train" / "config.json").read_text())
    assert config["status"] == "finished"
    if stopped is not None:
        assert config["resumed_from"] and "checkpoint-" in config["resumed_from"]
    assert f"empower-tui FILE --model {NAME}" in done.stdout
    assert f"copy {run / 'export' / 'model-f16.gguf'}" in done.stdout  # a small model: its f16 GGUF
    assert "empower-tui FILE --model model-f16.gguf" in done.stdout
    assert (run / "export" / "model-q4_k_m.gguf").is_file()
    finished_s = time.perf_counter() - started

    # 3. the name resolves to the f16 GGUF (a small model), in the trained format
    spec = resolve(NAME)
    assert (spec.kind, spec.path, spec.format, spec.label) == (
        "gguf", (run / "export" / "model-f16.gguf").resolve(), "completion", NAME)
    registry = json.loads((tmp_path / "config" / "registry.json").read_text())
    entry = registry["models"][NAME]
    assert entry["run"] == str(run.resolve()) and entry["eta"] == DEFAULT_ETA and entry["format"] == "completion"
    assert entry["base"] == str(test_models.memorizer.resolve()) and entry["created"]
    assert not (tmp_path / "config" / "config.toml").exists()  # the hand-written config is never touched

    # 4. coach serves it: a memorized file, continued from its 10th line
    probe = code / "lava.py"
    text = probe.read_text()
    offset = sum(len(line) + 1 for line in text.split("\n")[:9])
    suggest = subprocess.run([sys.executable, "-m", "coach", "suggest", str(probe), "--at", "10:1",
                              "--model", NAME, "--prefix-only", "--json"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert suggest.returncode == 0, suggest.stderr
    got = json.loads(suggest.stdout)
    print(f"\nsuggested at 10:1 of {probe.name}: {got['text']!r}")
    assert got["model"] == NAME and got["text"].strip() and text[offset:].startswith(got["text"])

    # 5. again: every stage is kept, nothing is written again
    outputs = [run / "train" / "adapter" / "adapter_model.safetensors", run / "export" / "model-f16.gguf",
               run / "export" / "model-q4_k_m.gguf", run / "export" / "merged" / "model.safetensors",
               run / "data" / f"empower-eta{DEFAULT_ETA:g}" / "data.jsonl", tmp_path / "config" / "registry.json"]
    before = [p.stat().st_mtime_ns for p in outputs]
    again = finetune(*args)
    assert again.returncode == 0, again.stderr
    rows = stage_lines(again.stderr)
    assert all("kept:" in rows[stage] for stage in STAGES), again.stderr
    assert [p.stat().st_mtime_ns for p in outputs] == before

    # 6. the models command lists it
    listed = finetune("models")
    assert listed.returncode == 0 and NAME in listed.stdout and "model-f16.gguf" in listed.stdout
    as_json = json.loads(finetune("models", "--json").stdout)["trained"]
    assert as_json[NAME]["kind"] == "gguf" and as_json[NAME]["spec"] == str(spec.path)
    print(f"pipeline: interrupted after {interrupted_s:.0f} s, finished at {finished_s:.0f} s, "
          f"everything checked at {time.perf_counter() - started:.0f} s")


def test_a_name_in_config_toml_wins_and_the_user_is_told(test_models, tmp_path):
    """config.toml names first; the registry's model of the same name is reported, not used."""
    from coach import registry
    from coach.specs import resolve

    registry.register("mine", test_models.memorizer_gguf, "completion", run=tmp_path)
    config = tmp_path / "config" / "config.toml"
    config.write_text(f'[models.mine]\nspec = "{test_models.random_gguf}"\n')
    done = subprocess.run([sys.executable, "-c", "from coach.specs import resolve; print(resolve('mine').path)"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == str(test_models.random_gguf)
    assert "'mine' names a model in" in done.stderr and "the config's is used" in done.stderr
    config.unlink()
    assert resolve("mine").path == test_models.memorizer_gguf.resolve()
    listed = finetune("models")
    assert "mine" in listed.stdout and "config.toml's wins" not in listed.stdout


def test_the_registry_is_json_beside_the_config_and_refuses_bad_names(test_models, tmp_path):
    from coach import registry
    from coach.specs import resolve
    from coach.types import ModelNotFound

    path = tmp_path / "config" / "registry.json"
    assert registry.registry_path() == path and registry.load() == {}
    entry, old = registry.register("a", test_models.memorizer_gguf, "chat", base="b", run=tmp_path, eta=4.0)
    assert old is None and json.loads(path.read_text())["models"]["a"]["format"] == "chat"
    assert (resolve("a").kind, resolve("a").format) == ("gguf", "chat")  # served in its trained format
    assert registry.register("a", test_models.memorizer_gguf, "chat", base="b", run=tmp_path, eta=4.0)[0] == entry
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    for bad in ("x/y", "openai:z", "m.gguf", ""):
        with pytest.raises(ValueError, match="model name"):
            registry.register(bad, test_models.memorizer_gguf, "completion")
    registry.register("gone", tmp_path / "deleted.gguf", "completion")
    with pytest.raises(ModelNotFound, match="the trained model's files are gone"):
        resolve("gone")
    with pytest.raises(ModelNotFound, match=r"names: a, gone; built-in: smollm2-135m, gemma-3-270m\)"):
        resolve("unknown")
    path.write_text("{ damaged")
    with pytest.raises(ModelNotFound, match="not a registry of models"):
        resolve("a")
    (tmp_path / "config" / "config.toml").write_text(f'[models.a]\nspec = "{test_models.memorizer_gguf}"\n')
    assert resolve("a").kind == "gguf"  # a damaged registry does not hide the config's names
    listed = finetune("models")
    assert listed.returncode == 2 and "not a registry of models" in listed.stderr and "Traceback" not in listed.stderr


def bad_base(tmp_path: Path, test_models) -> Path:
    broken = tmp_path / "broken"
    shutil.copytree(test_models.memorizer, broken)
    (broken / "config.json").write_text("{ not json")
    return broken


def truncated_weights(tmp_path: Path, test_models) -> Path:
    broken = tmp_path / "truncated"
    shutil.copytree(test_models.memorizer, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return broken


LOADS_THE_BASE = pytest.mark.slow  # a few seconds each: transformers and the base's tokenizer load first


@pytest.mark.parametrize("case, message", [
    ("missing dir", "no such directory"),
    ("unknown rule", "unknown rule 'sft-x': use empower, sft-10, sft-20, sft-rand (or sft-N)"),
    ("base not found", "the base model does not load: no model"),
    ("base a gguf", "must be a transformers model"),
    pytest.param("no code", "nothing to learn from in", marks=LOADS_THE_BASE),
    pytest.param("base broken", "does not load", marks=LOADS_THE_BASE),
    pytest.param("weights broken", "does not load", marks=LOADS_THE_BASE),
    pytest.param("too big for memory", "needs about", marks=LOADS_THE_BASE),
])
def test_bad_input_is_one_line_and_exit_2(test_models, code, tmp_path, case, message):
    base, directory, extra = str(test_models.memorizer), str(code), []
    if case == "missing dir":
        directory = str(tmp_path / "nowhere")
    elif case == "no code":
        (tmp_path / "empty").mkdir()
        (tmp_path / "empty" / "notes.txt").write_text("no code here\n")
        directory = str(tmp_path / "empty")
    elif case == "unknown rule":
        extra = ["--rule", "sft-x"]
    elif case == "base not found":
        base = str(tmp_path / "no-model")
    elif case == "base a gguf":
        base = str(test_models.memorizer_gguf)
    elif case == "base broken":
        base = str(bad_base(tmp_path, test_models))
    elif case == "weights broken":
        base = str(truncated_weights(tmp_path, test_models))
    elif case == "too big for memory":  # 4M tokens a pass: no laptop holds that
        extra = ["--batch-size", "4096", "--max-length", "1024"]
    done = finetune(directory, "--base", base, "--out", str(tmp_path / "run"), *extra)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("empower-finetune: ") and message in last, done.stderr
    assert "Traceback" not in done.stderr
    if case != "weights broken":  # found before anything ran: the error is all that is said
        assert done.stderr.count("\n") == 1, done.stderr
        assert not (tmp_path / "run").exists()


def test_no_arguments_print_the_usage_and_a_typo_is_caught(tmp_path):
    plain = finetune(cwd=tmp_path)
    assert plain.returncode == 2 and "usage: empower-finetune DIR [--base SPEC]" in plain.stderr
    assert "empower-finetune export RUN --to adapter|merged|gguf|gguf-lora" in plain.stderr
    typo = finetune("trian", cwd=tmp_path)
    assert typo.returncode == 2 and "did you mean 'train'?" in typo.stderr
    helped = finetune("--help", cwd=tmp_path)
    assert helped.returncode == 0 and "empower-finetune models" in helped.stdout


@LOADS_THE_BASE
def test_a_run_directory_holds_one_model(test_models, code, tmp_path):
    """Settings that change what the run's name means need another --out; a directory that is
    not a run is not written into."""
    from dataclasses import asdict

    from finetune.train import TrainConfig

    run = tmp_path / "run"
    run.mkdir()
    (run / "pipeline.json").write_text(json.dumps({
        "config": {"base": str(test_models.memorizer.resolve()), "rule": "empower", "eta": 0.32,
                   "format": "completion", "train": asdict(TrainConfig())},
        "stages": {"train": {"status": "finished"}}}))
    other = finetune(str(code), "--base", str(test_models.memorizer), "--out", str(run), "--eta", "1")
    assert other.returncode == 2 and "holds a model made with other settings (eta 0.32 → 1.0)" in other.stderr
    assert other.stderr.count("\n") == 1 and sorted(p.name for p in run.iterdir()) == ["pipeline.json"]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine\n")
    foreign = finetune(str(code), "--base", str(test_models.memorizer), "--out", str(tmp_path / "mine"))
    assert foreign.returncode == 2 and "is not empty and holds no run of empower-finetune" in foreign.stderr
