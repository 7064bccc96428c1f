"""The report's PNGs: every arm's DPR and accept ratio, DPR against η, and the paired differences
of the best Empower arm (matplotlib, drawn headless)."""

from __future__ import annotations

import math
from pathlib import Path

from experiments.arms import all_arms
from experiments.tables import DATASETS


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_arms(tables: dict[str, list[dict]], path: Path) -> None:
    """DPR and accept ratio per arm with standard errors, one row of panels per dataset. DPR's
    axis is zoomed to its values: on 0-1 a difference the paired interval calls real is invisible."""
    plt = _plt()
    names = [n for n in tables if n not in ("humaneval-all", "humaneval-llm")]
    fig, axes = plt.subplots(len(names), 2, figsize=(12, 3.2 * len(names)), squeeze=False, constrained_layout=True)
    for row, name in zip(axes, names):
        t = tables[name]
        labels = [r["arm"] for r in t]
        colors = ["tab:green" if r["key"].startswith("empower") else "tab:blue" if r["trained"] else "tab:gray" for r in t]
        for ax, metric, title in ((row[0], "dpr", "DPR"), (row[1], "accept", "accept ratio")):
            vals = [r[metric] for r in t]
            errs = [r[f"{metric}_se"] if not math.isnan(r[f"{metric}_se"]) else 0 for r in t]
            ax.bar(range(len(t)), [0 if math.isnan(v) else v for v in vals], yerr=errs, color=colors, capsize=3)
            ax.set_xticks(range(len(t)), labels, rotation=45, ha="right", fontsize=8)
            ax.set_title(f"{DATASETS[name][0]}: {title} (± SE)", fontsize=10)
            finite = [v - e for v, e in zip(vals, errs) if not math.isnan(v)] + [v + e for v, e in zip(vals, errs) if not math.isnan(v)]
            if metric == "dpr" and finite:
                lo, hi = min(finite), max(finite)
                pad = max((hi - lo) * 0.15, 0.002)
                ax.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad))
    fig.suptitle("Every arm: grey untrained, blue trained on SFT labels, green trained on Empower labels", fontsize=11)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def figure_eta(tables: dict[str, list[dict]], path: Path) -> None:
    """DPR against η: the trained Empower arms (η of the labels) and the untrained threshold
    policy (η at inference)."""
    plt = _plt()
    names = [n for n in tables if n not in ("humaneval-all", "humaneval-llm")]
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False, constrained_layout=True)
    for ax, name in zip(axes[0], names):
        by = {r["key"]: r for r in tables[name]}
        for family, label, color in (("empower", "trained on Empower labels", "tab:green"),
                                     ("threshold", "untrained, threshold policy", "tab:gray")):
            pts = sorted((a.eta, by[a.key]) for a in all_arms() if a.family == family and a.key in by)
            if pts:
                ax.errorbar([e for e, _ in pts], [r["dpr"] for _, r in pts], yerr=[r["dpr_se"] for _, r in pts],
                            marker="o", capsize=3, label=label, color=color)
        ax.set_xscale("log", base=2)
        ticks = sorted({a.eta for a in all_arms() if a.eta is not None})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("η (bits)")
        ax.set_ylabel("DPR (± SE)")
        ax.set_title(DATASETS[name][0], fontsize=10)
        ax.legend(fontsize=8, loc="best")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def figure_paired(comps: dict[str, tuple[str, list[dict]]], path: Path) -> None:
    """The best Empower arm minus each other arm, paired over problems, with 95% intervals."""
    plt = _plt()
    names = list(comps)
    fig, axes = plt.subplots(1, len(names), figsize=(4.8 * len(names), 4.2), squeeze=False, constrained_layout=True)
    for ax, name in zip(axes[0], names):
        best, cs = comps[name]
        y = range(len(cs))
        ax.errorbar([c["diff"] for c in cs], y, xerr=[[c["diff"] - c["low"] for c in cs], [c["high"] - c["diff"] for c in cs]],
                    fmt="o", capsize=3, color="tab:green")
        ax.axvline(0, color="black", lw=0.8)
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))
        ax.set_yticks(list(y), [c["name"] for c in cs], fontsize=8)
        ax.set_xlabel(f"DPR difference ({best} − arm), 95% CI", fontsize=9)
        ax.set_title(DATASETS[name][0], fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
