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
    from experiments.report import arm_table, groups, load_episodes, measured_eta
    from experiments.arms import all_arms
    from finetune.rules import DEFAULT_ETA

    tables = {name: arm_table(by_arm, all_arms()) for name, by_arm in groups(load_episodes(RESULTS)).items()}
    measured = measured_eta(tables)
    assert measured is not None, "docs/results/ has no held-out-code episodes"
    assert measured["eta"] == DEFAULT_ETA, (
        f"docs/results/ picks η = {measured['eta']:g} ({measured['arm']}), the default is {DEFAULT_ETA:g}")
