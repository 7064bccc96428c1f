"""evals.metrics: DPR, summaries with standard errors, paired bootstrap differences."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from coach.stats import bootstrap_interval
from evals.metrics import Outcome, dpr, mean_se, outcome, paired, summarize


def test_dpr_by_hand():
    assert dpr(True, 0, 0) == 1.0
    assert dpr(False, 0, 0) == 0.0
    assert dpr(True, 100, 20) == pytest.approx(0.999 ** 20)  # 0.1*100 + 0.5*20
    assert dpr(True, 30, 0, gamma=0.5, alpha=1 / 30, beta=1) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        dpr(True, -1, 0)


def test_mean_and_standard_error_of_a_known_sample():
    mean, se = mean_se([1, 0, 1, 1])  # sample SD 0.5, so SE 0.5 / 2
    assert (mean, se) == (0.75, 0.25)
    assert math.isnan(mean_se([1.0])[1]) and math.isnan(mean_se([])[0])


def test_summary_excludes_errored_episodes_and_counts_them():
    results = [
        Outcome("a", True, accepted=1, suggested=2, tokens_read=100, tokens_written=20),
        Outcome("b", False, accepted=0, suggested=4, tokens_read=10, tokens_written=10),
        Outcome("c", True, accepted=3, suggested=3, tokens_read=0, tokens_written=0),
        Outcome("d", True, accepted=0, suggested=0, tokens_read=0, tokens_written=60),
        Outcome("e", False, accepted=9, suggested=9, errored=True),  # not a failure: left out
    ]
    s = summarize(results)
    assert (s.n, s.n_errored) == (4, 1)
    assert s.pass_at_1 == 0.75 and s.pass_at_1_se == pytest.approx(0.25)
    # accept ratio: per problem, over the 3 problems shown something: (1/2 + 0 + 1) / 3
    assert s.n_suggested == 3 and s.accept_ratio == pytest.approx(0.5)
    assert s.accept_ratio_se == pytest.approx(np.std([0.5, 0, 1], ddof=1) / math.sqrt(3))
    assert s.accept_pooled == pytest.approx(4 / 9)
    dprs = [0.999 ** 20, 0.0, 1.0, 0.999 ** 30]
    assert s.dpr == pytest.approx(np.mean(dprs)) and s.dpr_se == pytest.approx(np.std(dprs, ddof=1) / 2)


def test_results_come_as_mappings_or_foreign_records():
    rec = SimpleNamespace(problem_id="x", correct=True, accepted=1, suggested=1, tokens_read=5,
                          tokens_written=7, errored=False, transcript=[])
    assert outcome(rec) == Outcome("x", True, 1, 1, 5, 7)
    assert outcome({"id": "y", "correct": 0}) == Outcome("y", False)
    with pytest.raises(ValueError, match="no `correct`"):
        outcome({"id": "z"})


def test_paired_difference_of_identical_gaps_is_exact():
    a = [Outcome(str(i), True, tokens_written=0) for i in range(20)]
    b = [Outcome(str(i), False) for i in range(20)]
    p = paired(a, b, "pass@1")
    assert (p.n, p.diff, p.low, p.high) == (20, 1.0, 1.0, 1.0)


def test_bootstrap_interval_covers_the_true_difference_and_excludes_zero():
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 1, 400)
    a = [{"id": str(i), "correct": True, "tokens_written": w} for i, w in enumerate(rng.poisson(40, 400))]
    b = [{"id": str(i), "correct": bool(x < 0.5), "tokens_written": 40} for i, x in enumerate(base)]
    # true difference in DPR: E[0.999**(0.5*W)] - 0.5*0.999**20, W ~ Poisson(40)
    true = math.exp(40 * (0.999 ** 0.5 - 1)) - 0.5 * 0.999 ** 20
    p = paired(a, b, "dpr")
    assert p.low < true < p.high and p.low > 0
    same = paired(a, [r | {"id": r["id"]} for r in a[::-1]], "dpr")  # matched by id, not position
    assert same.diff == 0 and same.low == same.high == 0


def test_no_difference_gives_an_interval_around_zero():
    rng = np.random.default_rng(2)
    a = [Outcome(str(i), bool(x)) for i, x in enumerate(rng.random(300) < 0.4)]
    b = [Outcome(str(i), bool(x)) for i, x in enumerate(rng.random(300) < 0.4)]
    p = paired(a, b, "pass@1", n_boot=4000, seed=3)
    assert p.low < 0 < p.high
    assert paired(a, b, "pass@1", n_boot=4000, seed=3) == p  # seeded
    d = np.random.default_rng(0).normal(size=50)
    assert bootstrap_interval(d, 1000, seed=1) == bootstrap_interval(d, 1000, seed=1)
    assert bootstrap_interval(d, 1000, seed=1) != bootstrap_interval(d, 1000, seed=2)


def test_paired_drops_errored_undefined_and_unmatched_problems_and_counts_them():
    a = [Outcome("1", True, 1, 2), Outcome("2", True, 1, 1, errored=True), Outcome("3", False, 0, 0),
         Outcome("4", True, 2, 2), Outcome("only-a", True)]
    b = [Outcome("1", False, 0, 2), Outcome("2", True, 1, 1), Outcome("3", True, 1, 1),
         Outcome("4", True, 1, 2), Outcome("only-b", True)]
    p = paired(a, b, "accept_ratio", n_boot=200)
    assert (p.n, p.n_errored, p.n_undefined, p.n_unmatched) == (2, 1, 1, 2)
    assert p.diff == pytest.approx(((0.5 - 0) + (1 - 0.5)) / 2)
    custom = paired(a, b, lambda o: float(o.correct), n_boot=200)
    assert custom.n == 3 and custom.diff == 0  # 1: +1, 3: -1, 4: 0
    with pytest.raises(ValueError, match="unknown metric"):
        paired(a, b, "pass@10")
    with pytest.raises(ValueError, match="appears twice"):
        paired(a + a[:1], b)


def test_bootstrap_in_blocks_matches_one_block_in_distribution():
    d = np.random.default_rng(5).normal(0.1, 1.0, 2000)  # 2000 problems: 1000 resamples a block
    low, high = bootstrap_interval(d, n_boot=5000, seed=0)
    se = d.std(ddof=1) / math.sqrt(d.size)
    assert low == pytest.approx(d.mean() - 1.96 * se, abs=0.3 * se)
    assert high == pytest.approx(d.mean() + 1.96 * se, abs=0.3 * se)
