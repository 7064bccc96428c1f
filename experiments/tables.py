"""The experiment's episodes as tables: by dataset and arm, on the problems every arm played, and
one row of the paper's measures per arm (experiments/report.py words them).

Metrics are evals.metrics' (the paper's DPR, γ 0.999, α 0.1, β 0.5).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from evals.metrics import dpr, summarize
from experiments.arms import Arm


DATASETS = {  # name in the report, and what the problems are
    "humaneval": ("HumanEval (fixed 40)", "bench/humaneval-40.txt: 40 HumanEval problems, oracle human"),
    "builtin": ("Built-in problems", "the six practice problems of problems/catalog, oracle human"),
    "files": ("Held-out code", "functions of held-out standard-library modules: the episode starts at the "
              "function's body, the oracle replays the author's code; correct = the body was finished"),
    "humaneval-all": ("HumanEval (all 164)", "every HumanEval problem, for the best Empower arm and the best other arm"),
    "humaneval-llm": ("HumanEval with an LLM human", "the first problems of the fixed 40 with the built-in gemma-3-270m "
                      "as the human (the paper's setting, scaled down), for the best untrained, SFT and Empower arm "
                      "(best by DPR with the oracle)"),
}


def load_episodes(results: Path) -> list[dict]:
    out = []
    for f in sorted((results / "episodes").glob("*.jsonl")):
        out += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return out


def mean_dpr(eps: list[dict]) -> float | None:
    ok = [e for e in eps if not e["errored"]]
    return sum(dpr(e["correct"], e["tokens_read"], e["tokens_written"]) for e in ok) / len(ok) if ok else None


def arm_table(eps_by_arm: dict[str, list[dict]], arms: list[Arm]) -> list[dict]:
    rows = []
    for a in arms:
        eps = eps_by_arm.get(a.key)
        if not eps:
            continue
        s = summarize(eps)
        ok = [e for e in eps if not e["errored"]]
        shown = sum(e["suggested"] for e in ok)
        rows.append({"arm": a.name, "key": a.key, "trained": a.trained, "n": s.n, "errored": s.n_errored,
                     "pass": s.pass_at_1, "pass_se": s.pass_at_1_se, "accept": s.accept_ratio,
                     "accept_se": s.accept_ratio_se, "dpr": s.dpr, "dpr_se": s.dpr_se,
                     "shown": shown / len(ok) if ok else math.nan,
                     "chars": sum(e["suggestion_chars"] for e in ok) / shown if shown else math.nan,
                     "read": _mean(e["tokens_read"] for e in ok), "written": _mean(e["tokens_written"] for e in ok),
                     # the same episodes had the human written what it accepted too: no assistant at all
                     "alone": _mean(dpr(e["correct"], 0, e["tokens_written"] + e["tokens_accepted"]) for e in ok)})
    return rows


def _mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs) if xs else math.nan


def groups(episodes: list[dict]) -> dict[str, dict[str, list[dict]]]:
    """Episodes by report dataset, then by arm, on the problems every arm of the dataset played
    (an arm that played more, as after a smaller rerun, is not compared on more). HumanEval also
    gives "humaneval-all": all 164 for the arms that ran them all."""
    out: dict[str, dict[str, list[dict]]] = {}
    for e in episodes:
        out.setdefault(e["dataset"], {}).setdefault(e["arm"], []).append(e)
    for name in list(out):  # every table on the problems every arm of it played
        by = out[name]
        common = set.intersection(*({e["problem_id"] for e in eps} for eps in by.values()))
        out[name] = {k: [e for e in eps if e["problem_id"] in common] for k, eps in by.items()}
        most = max(len(eps) for eps in by.values())
        if name == "humaneval" and most > len(common):
            out["humaneval-all"] = {k: eps for k, eps in by.items() if len(eps) == most}
    return {k: out[k] for k in DATASETS if k in out}
