"""The committed measurement and what the product says and does: the README's summary is what
docs/results/ gives, and `empower-finetune`'s default η is the one that measurement picks.
Fast: the report is rebuilt from the small files, nothing is run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"

pytestmark = pytest.mark.skipif(not (RESULTS / "config.json").is_file(), reason="no committed results")


def test_the_readme_summary_is_what_the_committed_results_give(tmp_path):
    pytest.importorskip("matplotlib")
    from experiments.report import write_report

    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)  # the report draws its PNGs beside the results: not into the checkout
    readme = tmp_path / "README.md"
    readme.write_text((ROOT / "README.md").read_text())
    write_report(results, tmp_path / "results.md", readme)
    assert readme.read_text() == (ROOT / "README.md").read_text(), (
        "README.md's experiment summary is not what docs/results/ gives: "
        "run python -m experiments.empower_vs_baselines --report")


def test_the_finetune_default_eta_is_the_one_the_committed_results_pick():
    from experiments.findings import measured_eta
    from experiments.tables import arm_table, groups, load_episodes
    from experiments.arms import all_arms
    from finetune.rules import DEFAULT_ETA

    tables = {name: arm_table(by_arm, all_arms()) for name, by_arm in groups(load_episodes(RESULTS)).items()}
    measured = measured_eta(tables)
    assert measured is not None, "docs/results/ has no held-out-code episodes"
    assert measured["eta"] == DEFAULT_ETA, (
        f"docs/results/ picks η = {measured['eta']:g} ({measured['arm']}), the default is {DEFAULT_ETA:g}")


def test_the_readme_s_plain_reading_holds_on_the_committed_results():
    """README's "Read plainly" and "Defaults that follow" are prose: each claim there is checked
    here against docs/results/, so a new run that says otherwise fails until the prose follows."""
    from experiments.arms import all_arms
    from experiments.findings import MAIN, MIN_SHOWN, findings, trained_beats_threshold, verdict
    from experiments.tables import arm_table, groups, load_episodes
    from evals.metrics import paired

    by_dataset = groups(load_episodes(RESULTS))
    tables = {name: arm_table(by_arm, all_arms()) for name, by_arm in by_dataset.items()}
    f = findings(by_dataset, tables)
    assert f["sets"] == list(MAIN)
    # Empower labels beat the SFT baselines: every pair, every set
    assert f["labels"]["sft"]["better"] == sum(f["labels"]["sft"].values()) > 0
    # no trained arm beats the untrained threshold policy; threshold is best and beats writing alone
    assert not trained_beats_threshold(f)
    for n in MAIN:
        assert f["help"][n]["arm"].startswith("threshold") and verdict(f["help"][n]) == "better", n
        # training on η = 4's labels is not told apart from the threshold at 4
        assert verdict(f["same_eta"][n][4.0]) == "no difference shown", n
        # threshold at 1 and 2 lead every set and are not told apart (the editor's default is 2)
        top = sorted(tables[n], key=lambda r: -r["dpr"])[:2]
        assert {r["key"] for r in top} == {"threshold-eta1", "threshold-eta2"}, n
        assert verdict(_as_dict(paired(by_dataset[n]["threshold-eta1"], by_dataset[n]["threshold-eta2"]))) \
            == "no difference shown", n
    # at η = 0.32 and 1 the trained model suggests less than once an episode on HumanEval and held-out code
    for n in ("humaneval", "files"):
        shown = {r["key"]: r["shown"] for r in tables[n]}
        assert shown["empower-eta0.32"] < MIN_SHOWN and shown["empower-eta1"] < MIN_SHOWN, n


def _as_dict(p) -> dict:
    return {"low": p.low, "high": p.high}
