"""Intervals for paired differences, shared by the benchmark (problems paired: evals/metrics.py)
and the editor's A/B of two assistants on one person (blocks paired: tui/ab_report.py).
numpy is there wherever either is: llama-cpp-python, the editor's engine, depends on it."""

from __future__ import annotations

import numpy as np


def bootstrap_interval(d: np.ndarray, n_boot: int = 10_000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean of `d`, resampling its items (problems, pairs of blocks)
    with replacement."""
    d = np.asarray(d, dtype=float)
    rng = np.random.default_rng(seed)
    n = d.size
    # Resample in blocks so that memory stays near 16 MB of indices however many items.
    block = max(1, 2_000_000 // n)
    means = np.concatenate([d[rng.integers(0, n, size=(min(block, n_boot - i), n))].mean(axis=1)
                            for i in range(0, n_boot, block)])
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)
