"""The whole comparison, `--quick`, on the tiny test models: every arm labelled, trained,
exported to GGUF, registered and played; stopped midway and resumed without redoing finished
work; the report regenerated from the small results alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.arms import all_arms

ROOT = Path(__file__).resolve().parent.parent


def command(test_models, tmp_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "experiments.empower_vs_baselines", "--quick",
            "--base", str(test_models.memorizer), "--estimator", str(test_models.memorizer),
            "--work", str(tmp_path / "work"), "--results", str(tmp_path / "results"), *extra]


def env(tmp_path: Path) -> dict:
    return {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}


def episodes(results: Path) -> list[dict]:
    return [json.loads(line) for f in sorted((results / "episodes").glob("*.jsonl"))
            for line in f.read_text().splitlines()]


@pytest.mark.slow
def test_quick_experiment_runs_every_arm_resumes_and_reports(test_models, tmp_path):
    results = tmp_path / "results"
    # Stopped (SIGTERM, as `timeout` or a closed terminal sends) once the first arm is trained.
    first = subprocess.Popen(command(test_models, tmp_path), cwd=ROOT, env=env(tmp_path),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 400
    while not (results / "train.json").is_file() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    first.send_signal(signal.SIGTERM)
    out1, _ = first.communicate(timeout=120)
    assert first.returncode == 130, out1[-2000:]
    assert "run the same command again" in out1
    trained_before = set(json.loads((results / "train.json").read_text()))
    assert trained_before

    second = subprocess.run(command(test_models, tmp_path), cwd=ROOT, env=env(tmp_path),
                            capture_output=True, text=True, timeout=900)
    out2 = second.stdout + second.stderr
    assert second.returncode == 0, out2[-3000:]
    assert "$ empower-finetune label" not in out2  # the labels were finished
    for key in trained_before:  # so was that arm's training
        assert f"train {ROOT}" not in out2 and f"--out {tmp_path / 'work' / 'train' / key} " not in out2

    arms = all_arms()
    rows = episodes(results)
    by = {}
    for r in rows:
        by.setdefault(r["dataset"], {}).setdefault(r["arm"], set()).add(r["problem_id"])
    assert set(by) == {"humaneval", "builtin", "files"}
    for dataset, per_arm in by.items():
        assert set(per_arm) == {a.key for a in arms}, dataset  # every arm played
        assert len({frozenset(p) for p in per_arm.values()}) == 1, dataset  # on the same problems
    assert not [r for r in rows if r["errored"]]
    trained = json.loads((results / "train.json").read_text())
    assert set(trained) == {a.key for a in arms if a.trained}
    assert all(t["steps"] == 2 and t["train_examples"] == trained["sft-10"]["train_examples"] for t in trained.values())

    doc = tmp_path / "results.md"
    text = doc.read_text()
    for heading in ("## Ranking", "## The claim, checked", "## What was run", "## Labels", "## Training", "## HumanEval (fixed 40)",
                    "## Built-in problems", "## Held-out code", "## Figures"):
        assert heading in text
    for a in arms:
        assert f"| {a.name} |" in text
    for png in ("arms.png", "eta.png", "paired.png"):
        assert (results / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Paired differences are over the problems both arms ran: each comparison counts them all.
    from experiments.report import README_BEGIN, README_END, write_report

    readme = tmp_path / "README.md"
    readme.write_text(f"# A README\n\n{README_BEGIN}\nold numbers\n{README_END}\n\nthe rest\n")
    data = write_report(results, tmp_path / "again.md", readme)
    summary = readme.read_text()  # every arm's row written between the markers, the rest kept
    assert "old numbers" not in summary and summary.startswith("# A README") and summary.endswith("the rest\n")
    assert all(f"| {a.name} |" in summary for a in arms) and "by DPR:" in summary
    assert "The claim, checked:" in summary and "**The run:** `python -m experiments.empower_vs_baselines --quick" in summary
    found = data["findings"]  # the claim checked on every set, each verdict from a paired interval
    assert found["sets"] == ["humaneval", "builtin", "files"]
    assert set(found["trained_vs_threshold"]) == set(found["help"]) == set(found["sets"])
    assert all(c["low"] <= c["diff"] <= c["high"] for c in found["trained_vs_threshold"].values())
    for dataset, (best, comps) in data["comparisons"].items():
        assert len(comps) == len(arms) - 1
        assert all(c["n"] == len(next(iter(by[dataset].values()))) for c in comps), dataset
        assert all(c["wins"] + c["ties"] + c["losses"] == c["n"] for c in comps)
    # The report is a function of the small results alone.
    assert (tmp_path / "again.md").read_text() == text.replace("results.md", "again.md") or \
        (tmp_path / "again.md").read_text() == text

    third = subprocess.run(command(test_models, tmp_path), cwd=ROOT, env=env(tmp_path),
                           capture_output=True, text=True, timeout=600)
    out3 = third.stdout + third.stderr
    assert third.returncode == 0, out3[-3000:]
    assert "$ empower-finetune train" not in out3 and "$ empower-evals" not in out3  # nothing left to do
    assert episodes(results) == rows


@pytest.mark.parametrize("bad", ["nope=1", "steps", "full_humaneval=maybe", "name=big"])
def test_a_size_field_is_changed_by_name_and_a_bad_one_is_refused(bad):
    from experiments.sizes import DEFAULT, with_fields

    s = with_fields(DEFAULT, ["files_per_file=4", "full_humaneval=false", "llm_problems=0", "lr=0.0005",
                              "humaneval_ids=none", "train_bytes=1000,2000"])
    assert (s.files_per_file, s.full_humaneval, s.llm_problems, s.lr, s.humaneval_ids, s.train_bytes) == \
        (4, False, 0, 0.0005, None, (1000, 2000))
    assert s.steps == DEFAULT.steps  # the rest as it was
    with pytest.raises(ValueError):
        with_fields(DEFAULT, [bad])


def test_work_made_by_another_recipe_is_refused_in_one_line_and_left_alone(tmp_path, capsys):
    from dataclasses import asdict, replace

    from experiments.empower_vs_baselines import check_recipe, main
    from experiments.sizes import DEFAULT

    results, work = tmp_path / "results", tmp_path / "work"
    results.mkdir()
    made = {"size": asdict(replace(DEFAULT, k=8)), "argv": []}
    (results / "config.json").write_text(json.dumps(made))
    before = (results / "config.json").read_text()

    assert main(["--results", str(results), "--work", str(work)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"k 8 there, {DEFAULT.k} here" in err, err
    assert (results / "config.json").read_text() == before and not work.exists()

    # what a rerun only adds to (problem counts, the optional stages) may change
    check_recipe(replace(DEFAULT, k=8, llm_problems=40, full_humaneval=True, files_per_file=8), results / "config.json")


def test_work_inside_a_git_repository_that_ignores_it_is_refused_in_one_line(tmp_path, capsys):
    """The corpus is chosen through empower-finetune scan's filters, which in a git repository
    read what git lists: a --work the repository ignores (its .cache/) lists nothing."""
    from experiments.empower_vs_baselines import main

    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text(".cache/\n")
    code = main(["--results", str(tmp_path / "results"), "--work", str(repo / ".cache" / "work")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0, err
    assert "nothing to learn from" in err and "outside any git repository" in err
