"""What the experiment's tables say about the claim, as data and in the report's words: the best
Empower arm against every other (paired DPR, bootstrap 95% CI, wins/ties/losses), the claim
checked the same way on every set, and the η the measurement picks for `empower-finetune`.
"""

from __future__ import annotations

import numpy as np

from coach.stats import bootstrap_interval
from evals.metrics import dpr, paired
from experiments.arms import Arm, all_arms
from experiments.tables import DATASETS, mean_dpr


def best_empower(by_arm: dict[str, list[dict]]) -> str | None:
    cands = [(mean_dpr(eps), k) for k, eps in by_arm.items() if k.startswith("empower") and mean_dpr(eps) is not None]
    return max(cands)[1] if cands else None


def comparisons(by_arm: dict[str, list[dict]], best: str, arms: list[Arm]) -> list[dict]:
    """The best Empower arm against every other arm: paired DPR difference and per-problem
    wins, ties and losses (a tie: the same DPR to 1e-9)."""
    out = []
    for a in arms:
        if a.key == best or a.key not in by_arm:
            continue
        p = paired(by_arm[best], by_arm[a.key], "dpr")
        da = {e["problem_id"]: e for e in by_arm[best] if not e["errored"]}
        db = {e["problem_id"]: e for e in by_arm[a.key] if not e["errored"]}
        w = t = l = 0
        for pid in da.keys() & db.keys():
            x = dpr(da[pid]["correct"], da[pid]["tokens_read"], da[pid]["tokens_written"])
            y = dpr(db[pid]["correct"], db[pid]["tokens_read"], db[pid]["tokens_written"])
            w, t, l = (w + 1, t, l) if x > y + 1e-9 else (w, t, l + 1) if y > x + 1e-9 else (w, t + 1, l)
        out.append({"against": a.key, "name": a.name, "n": p.n, "diff": p.diff, "low": p.low, "high": p.high,
                    "wins": w, "ties": t, "losses": l})
    return out


def verdict(c: dict) -> str:
    if c["low"] > 0:
        return "better"
    if c["high"] < 0:
        return "worse"
    return "no difference shown"


MAIN = ("humaneval", "builtin", "files")  # the sets every arm plays


def _paired(by_arm: dict[str, list[dict]], a: str, b: str) -> dict:
    p = paired(by_arm[a], by_arm[b], "dpr")
    return {"diff": p.diff, "low": p.low, "high": p.high}


def _ci(c: dict) -> str:
    return f"{c['diff']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}]"


def findings(by_dataset: dict[str, dict[str, list[dict]]], tables: dict[str, list[dict]]) -> dict:
    """The claim, checked the same way on every set the whole field plays (paired DPR, bootstrap
    95% CI), as data: the report words it, tests/test_results.py holds the README's prose to it.

    - "labels": each trained Empower arm that suggests (at least MIN_SHOWN an episode) against
      each SFT arm, and against Base-N: verdicts counted.
    - "trained_vs_threshold": per set, the best trained arm against the best untrained threshold arm.
    - "same_eta": per set and η, the model trained on η's labels against the untrained threshold at η.
    - "help": per set, the best arm against the same episodes with the human writing alone.
    """
    arms = {a.key: a for a in all_arms()}
    sets = [n for n in MAIN if n in by_dataset]
    out: dict = {"sets": sets, "labels": {}, "trained_vs_threshold": {}, "same_eta": {}, "help": {}}
    for against in ("sft", "base-n"):
        counts = {"better": 0, "worse": 0, "no difference shown": 0}
        for n in sets:
            rows = {r["key"]: r for r in tables[n]}
            emp = [k for k, r in rows.items() if arms[k].family == "empower" and r["shown"] >= MIN_SHOWN]
            others = [k for k in rows if (arms[k].family == "sft" if against == "sft" else k.startswith("base-"))]
            for e in emp:
                for o in others:
                    counts[verdict(_paired(by_dataset[n], e, o))] += 1
        out["labels"][against] = counts
    for n in sets:
        rows = {r["key"]: r for r in tables[n]}
        trained = max((r for r in rows.values() if r["trained"]), key=lambda r: r["dpr"], default=None)
        thr = max((r for r in rows.values() if arms[r["key"]].family == "threshold"), key=lambda r: r["dpr"], default=None)
        if trained and thr:
            out["trained_vs_threshold"][n] = {"trained": trained["arm"], "threshold": thr["arm"],
                                              **_paired(by_dataset[n], trained["key"], thr["key"])}
        for e in (a.eta for a in arms.values() if a.family == "threshold"):
            k_emp, k_thr = f"empower-eta{e:g}", f"threshold-eta{e:g}"
            if k_emp in rows and k_thr in rows:
                out["same_eta"].setdefault(n, {})[e] = _paired(by_dataset[n], k_emp, k_thr)
        best = max(rows.values(), key=lambda r: r["dpr"])
        ok = [x for x in by_dataset[n][best["key"]] if not x["errored"]]
        d = np.asarray([dpr(x["correct"], x["tokens_read"], x["tokens_written"])
                        - dpr(x["correct"], 0, x["tokens_written"] + x["tokens_accepted"]) for x in ok])
        low, high = bootstrap_interval(d)
        out["help"][n] = {"arm": best["arm"], "diff": float(d.mean()), "low": low, "high": high}
    return out


def trained_beats_threshold(f: dict) -> bool:
    """Does some trained arm beat the untrained threshold policy on some set (paired CI)?"""
    return any(verdict(c) == "better" for c in f["trained_vs_threshold"].values())


def findings_lines(f: dict) -> list[str]:
    title = {n: DATASETS[n][0] for n in DATASETS}
    L = []
    for against, what in (("sft", "SFT-10, SFT-20 and SFT-RAND"), ("base-n", "Base-10 and Base-20")):
        c = f["labels"][against]
        L.append(f"- **Empower labels against {what}:** each trained Empower arm that suggests (at least "
                 f"{MIN_SHOWN:g} suggestion an episode) against each of them, on {len(f['sets'])} sets: better in "
                 f"{c['better']}, worse in {c['worse']}, no difference shown in {c['no difference shown']} of "
                 f"{sum(c.values())} pairs.")
    parts = [f"{title[n]}: {c['trained']} against {c['threshold']}, {_ci(c)}, {verdict(c)}"
             for n, c in f["trained_vs_threshold"].items()]
    L.append("- **Trained against the untrained threshold policy** (the best of each, DPR difference, 95% CI): "
             + "; ".join(parts) + ". " + ("Some trained arm beats it." if trained_beats_threshold(f) else
                                           "No trained arm beats it on any set."))
    parts = []
    for n, by_eta in f["same_eta"].items():
        parts.append(f"{title[n]}: " + ", ".join(f"η={e:g} {_ci(c)} ({verdict(c)})" for e, c in by_eta.items()))
    L.append("- **Trained on η's labels against the untrained threshold at the same η** (did training learn the "
             "rule?): " + "; ".join(parts) + ".")
    parts = [f"{title[n]}: {c['arm']} {_ci(c)} ({verdict(c)})" for n, c in f["help"].items()]
    L.append("- **The best arm against the human writing alone** (the same episodes, had the human typed what "
             "it accepted): " + "; ".join(parts) + ".")
    return L


MIN_SHOWN = 1.0  # suggestions an episode: below this a model is all but silent


def measured_eta(tables: dict[str, list[dict]]) -> dict | None:
    """The η this measurement recommends for `empower-finetune`: the trained Empower arm with the
    best DPR on held-out code (a person's own code is the promise, HumanEval is not), among the
    arms that show at least MIN_SHOWN suggestions an episode there: a silent model scores what
    the human writing alone does, and nobody trains a model to say nothing. None without
    held-out-code episodes."""
    rows = [r for r in tables.get("files", []) if r["key"].startswith("empower-") and r["shown"] >= MIN_SHOWN]
    if not rows:
        return None
    best = max(rows, key=lambda r: r["dpr"])
    eta = next(a.eta for a in all_arms() if a.key == best["key"])
    return {"eta": eta, "arm": best["arm"], "dpr": best["dpr"], "shown": best["shown"]}


def defaults_lines(tables: dict[str, list[dict]]) -> list[str]:
    """What the table says of `empower-finetune`'s default η (finetune/rules.py), in one line."""
    from finetune.rules import DEFAULT_ETA

    m = measured_eta(tables)
    if m is None:
        return []
    verdict_ = ("the same" if m["eta"] == DEFAULT_ETA else
                f"not the same: the default should move to {m['eta']:g}, or the README say why not")
    return [f"- **`empower-finetune`'s default η:** on held-out code the trained Empower arm that does best while "
            f"it suggests (at least {MIN_SHOWN:g} suggestion an episode) is {m['arm']} (DPR {m['dpr']:.4f}, "
            f"{m['shown']:.1f} suggestions an episode). The default, `finetune.rules.DEFAULT_ETA`, is "
            f"{DEFAULT_ETA:g}: {verdict_}."]
