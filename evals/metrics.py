"""The paper's metrics over benchmark episodes: Pass@1, accept ratio and DPR, with standard
errors over problems, and paired bootstrap differences between two assistants.

Inputs are plain per-problem values (an `Outcome`, a mapping, or any object with the same
attribute names, such as the episode runner's own result records). An episode that errored
(the human or the assistant failed, not the program) says nothing about the assistant: it is
counted apart and left out of every mean, never scored as a failure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from coach.stats import bootstrap_interval

# The paper's DPR constants (§5.2): reading is cheaper than writing (alpha < beta), and gamma
# close to 1 keeps a long correct solution from scoring near 0.
GAMMA, ALPHA, BETA = 0.999, 0.1, 0.5


@dataclass(frozen=True)
class Outcome:
    problem_id: str
    correct: bool  # every test passed
    accepted: int = 0  # suggestions the human accepted
    suggested: int = 0  # suggestions shown to the human
    tokens_read: int = 0  # suggested tokens shown to the human
    tokens_written: int = 0  # tokens the human wrote
    errored: bool = False  # the episode itself failed: excluded from the means


def outcome(x) -> Outcome:
    """An Outcome from an Outcome, a mapping, or an object with those attributes
    (`problem_id`, or failing that `id`)."""
    if isinstance(x, Outcome):
        return x
    get = x.get if isinstance(x, Mapping) else (lambda k, d=None: getattr(x, k, d))
    pid = get("problem_id", None)
    pid = get("id", "") if pid is None else pid
    if get("correct", None) is None:
        raise ValueError(f"result {pid or x!r} has no `correct`")
    return Outcome(str(pid), bool(get("correct")), int(get("accepted", 0)), int(get("suggested", 0)),
                   int(get("tokens_read", 0)), int(get("tokens_written", 0)), bool(get("errored", False)))


def dpr(correct: bool, read: float, written: float, gamma: float = GAMMA, alpha: float = ALPHA,
        beta: float = BETA) -> float:
    """Discounted pass rate of one solution: 1[correct] * gamma ** (alpha*read + beta*written)."""
    if not 0 < gamma <= 1 or alpha < 0 or beta < 0 or read < 0 or written < 0:
        raise ValueError("dpr needs 0 < gamma <= 1 and alpha, beta, read, written >= 0")
    return float(gamma ** (alpha * read + beta * written)) if correct else 0.0


def mean_se(values: Iterable[float]) -> tuple[float, float]:
    """The mean and its standard error (sample SD / sqrt(n)); nan where undefined."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        return math.nan, math.nan
    se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.nan
    return float(v.mean()), se


# Per-problem values, each None where undefined for that problem.
def _pass(o: Outcome) -> float:
    return float(o.correct)


def _accept(o: Outcome) -> float | None:
    return o.accepted / o.suggested if o.suggested else None


def _dpr(o: Outcome) -> float:
    return dpr(o.correct, o.tokens_read, o.tokens_written)


METRICS: dict[str, Callable[[Outcome], float | None]] = {
    "pass@1": _pass, "accept_ratio": _accept, "dpr": _dpr}


@dataclass(frozen=True)
class Summary:
    """Means over problems with their standard errors.

    accept_ratio is the mean over problems of accepted / suggested, over the problems where
    something was suggested (n_suggested of them): the paper (§5.2) reports it "averaged
    across problems" with standard errors of about 0.02 on 554 problems, the size of a
    per-problem mean; pooled over thousands of suggestions it would be near 0.005.
    accept_pooled (all accepted / all suggested, as the user study's acceptance rate) is
    given beside it, without an error.
    """
    n: int  # problems in the means
    n_errored: int  # episodes that errored, left out of every mean
    pass_at_1: float
    pass_at_1_se: float
    accept_ratio: float
    accept_ratio_se: float
    n_suggested: int  # problems with at least one suggestion (the accept ratio's n)
    accept_pooled: float
    dpr: float
    dpr_se: float
    gamma: float = GAMMA
    alpha: float = ALPHA
    beta: float = BETA


def summarize(results: Iterable, gamma: float = GAMMA, alpha: float = ALPHA, beta: float = BETA) -> Summary:
    outs = [outcome(r) for r in results]
    ok = [o for o in outs if not o.errored]
    shown = [o for o in ok if o.suggested]
    acc, acc_se = mean_se(o.accepted / o.suggested for o in shown)
    total = sum(o.suggested for o in ok)
    return Summary(
        len(ok), len(outs) - len(ok), *mean_se(float(o.correct) for o in ok), acc, acc_se, len(shown),
        sum(o.accepted for o in ok) / total if total else math.nan,
        *mean_se(dpr(o.correct, o.tokens_read, o.tokens_written, gamma, alpha, beta) for o in ok),
        gamma, alpha, beta)


@dataclass(frozen=True)
class Paired:
    """mean(a - b) over the problems both assistants ran, with a bootstrap percentile interval."""
    metric: str
    n: int  # problems in the difference
    diff: float  # mean of a - b
    low: float  # the interval's ends (level 0.95 by default)
    high: float
    n_errored: int  # problems dropped because either episode errored
    n_undefined: int  # dropped because the metric is undefined for either (nothing suggested)
    n_unmatched: int  # problems only one of the two ran


def paired(a: Iterable, b: Iterable, metric: str | Callable[[Outcome], float | None] = "dpr",
           n_boot: int = 10_000, seed: int = 0, level: float = 0.95) -> Paired:
    """Two assistants on the same problems, matched by problem id. metric: a name in METRICS
    or a function of an Outcome (None where undefined)."""
    fn = METRICS.get(metric) if isinstance(metric, str) else metric
    if fn is None:
        raise ValueError(f"unknown metric {metric!r}; the metrics are: {', '.join(METRICS)}")
    da, db = _by_id(a, "a"), _by_id(b, "b")
    common = [k for k in da if k in db]
    errored = undefined = 0
    diffs = []
    for k in common:
        if da[k].errored or db[k].errored:
            errored += 1
        elif (va := fn(da[k])) is None or (vb := fn(db[k])) is None:
            undefined += 1
        else:
            diffs.append(va - vb)
    if not diffs:
        raise ValueError("no problem has a defined value for both assistants")
    d = np.asarray(diffs, dtype=float)
    low, high = bootstrap_interval(d, n_boot, seed, level)
    name = metric if isinstance(metric, str) else getattr(metric, "__name__", "metric")
    return Paired(name, d.size, float(d.mean()), low, high, errored, undefined, len(da) + len(db) - 2 * len(common))


def _by_id(results: Iterable, side: str) -> dict[str, Outcome]:
    out: dict[str, Outcome] = {}
    for r in results:
        o = outcome(r)
        if not o.problem_id:
            raise ValueError(f"a result in {side} has no problem_id: pairing needs one")
        if o.problem_id in out:
            raise ValueError(f"problem {o.problem_id} appears twice in {side}")
        out[o.problem_id] = o
    return out
