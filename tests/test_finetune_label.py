"""`empower-finetune label` as a real command on a directory of real code, with the memorizer as
estimator: long completions on the files it memorized, short ones elsewhere; datasets and
manifests; a killed run resumes; two ranks under torchrun give the one-process dataset."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from finetune.rules import DEFAULT_ETA

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent
EXE = str(Path(sys.executable).parent / "empower-finetune")
STDLIB = Path(sysconfig.get_paths()["stdlib"])


@pytest.fixture
def code(tmp_path, test_models):
    """A person's code: two files the memorizer knows by heart, three it never saw."""
    d = tmp_path / "code"
    d.mkdir()
    for p in [p for p in test_models.memorized if p.name == "solution.py"][:2]:
        shutil.copy(p, d / f"{p.parent.name}.py")
    for name in ("bisect", "colorsys", "fnmatch"):
        (d / f"{name}_copy.py").write_text((STDLIB / f"{name}.py").read_text()[:2500])
    return d


def run(*args, **kwargs):
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=600, **kwargs)


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_label_writes_datasets_with_long_labels_where_the_estimator_knows_the_code(code, test_models, tmp_path):
    out = tmp_path / "data"
    r = run("label", code, "--estimator", test_models.memorizer, "--eta", "0.32", "4",
            "--rule", "empower", "sft-10", "sft-rand", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "empower-eta0.32" in r.stdout and "tokens/s" in r.stdout
    assert "Loading weights" not in r.stderr  # transformers' tqdm bar, which would cut into a log
    for name in ("empower-eta0.32", "empower-eta4", "sft-10", "sft-rand"):
        manifest = json.loads((out / name / "manifest.json").read_text())
        data = rows(out / name / "data.jsonl")
        assert manifest["examples"] == len(data) == 5 * 8
        assert sum(manifest["histogram"].values()) == len(data)
        for row in data:
            source = (code / row["source"]).read_text()
            # the state and the completion are the file's own text, end to end
            assert source.startswith(row["state"] + row["completion"])
            assert row["completion_tokens"] == len(row["completion_token_ids"])
            assert row["stop"] and row["format"] == "completion" and row["estimator"] == str(test_models.memorizer)
    empower = rows(out / "empower-eta4" / "data.jsonl")
    known = [r["completion_tokens"] for r in empower if not r["source"].endswith("_copy.py")]
    unseen = [r["completion_tokens"] for r in empower if r["source"].endswith("_copy.py")]
    assert sum(known) / len(known) > 20 > 3 * sum(unseen) / len(unseen)
    for r in rows(out / "sft-10" / "data.jsonl"):  # ten tokens, or what is left of the file
        source = (code / r["source"]).read_text()
        assert r["completion_tokens"] == 10 or (r["completion_tokens"] < 10 and
                                                (r["state"] + r["completion"]).rstrip() == source.rstrip())
    # η = 4 bits takes at least what η = 0.32 takes, state by state
    low = rows(out / "empower-eta0.32" / "data.jsonl")
    assert all(a["completion_tokens"] <= b["completion_tokens"] for a, b in zip(low, empower))


DEFAULT = f"empower-eta{DEFAULT_ETA:g}"  # the dataset labelled with the default η


def test_a_killed_run_resumes_without_redoing_finished_files(code, test_models, tmp_path):
    out = tmp_path / "data"
    args = ("label", code, "--estimator", test_models.memorizer, "--k", "4", "--out", out)  # η: the default
    assert run(*args).returncode == 0
    first = (out / DEFAULT / "data.jsonl").read_text()
    shards = sorted((out / ".shards").rglob("*.json"))
    assert len(shards) == 5
    shards[0].unlink()  # as if killed before this file's shard was written
    stamps = {p: p.stat().st_mtime_ns for p in shards[1:]}
    r = run(*args)
    assert r.returncode == 0 and "4 from an earlier run" in r.stdout
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert (out / DEFAULT / "data.jsonl").read_text() == first


@pytest.mark.slow
def test_two_ranks_under_torchrun_give_the_one_process_dataset(code, test_models, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert run("label", code, "--estimator", test_models.memorizer, "--k", "4", "--out", one).returncode == 0
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                        "--master_port", "29517", "-m", "finetune.cli", "label", str(code),
                        "--estimator", str(test_models.memorizer), "--k", "4", "--out", str(two)],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (two / DEFAULT / "data.jsonl").read_text() == (one / DEFAULT / "data.jsonl").read_text()


@pytest.mark.parametrize("case", ["missing", "a file", "empty", "all skipped", "bad estimator", "bad rule"])
def test_bad_input_gets_one_line_and_exit_2(tmp_path, test_models, case):
    d = tmp_path / "code"
    estimator = test_models.memorizer
    extra = []
    if case == "a file":
        d.write_text("x = 1\n")
    elif case != "missing":
        d.mkdir()
    if case == "all skipped":
        (d / "blob.py").write_bytes(b"\x00\x01binary")
    if case in ("bad estimator", "bad rule"):
        (d / "a.py").write_text("def f():\n    return 1\n")
    if case == "bad estimator":
        estimator = tmp_path / "nope"
    if case == "bad rule":
        extra = ["--rule", "longest"]
    r = run("label", d, "--estimator", estimator, "--out", tmp_path / "out", *extra)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("empower-finetune: ") and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_the_chat_estimator_stops_reading_only_when_every_rule_allows_it():
    """Cutting continuations at the largest η is safe for the empower rule alone; the SFT rules
    need every token, so their shards are read whole and are never shared with cut ones."""
    from finetune.label import LabelConfig

    cut = LabelConfig("m", "chat", rules=("empower",), etas=(0.32, 4.0))
    whole = LabelConfig("m", "chat", rules=("empower", "sft-10"), etas=(0.32, 4.0))
    assert cut.stop_bits() == 4.0 and whole.stop_bits() is None
    assert LabelConfig("m", "raw", rules=("empower",)).stop_bits() is None  # one pass reads it all anyway
    assert cut.fingerprint() != whole.fingerprint() == LabelConfig("m", "chat", rules=("sft-20",)).fingerprint()
