"""empower-evals report: benchmark runs as the paper shows them.

    empower-evals report RUN [RUN ...] [--json FILE] [--png FILE] [--baseline NAME]

Prints a table like the paper's Table 2 (assistant, policy, Pass@1, accept ratio, DPR, each with
its standard error over problems; errored episodes counted apart), then each assistant's paired
difference in Pass@1, accept ratio and DPR against a baseline on the problems both ran (bootstrap
95% interval). Where a run played arms with the package's other files shown (`--context files`),
each such arm is also paired with its twin shown the code alone (`--context none`), and the
assistants are compared within one context. Writes the same as JSON (default RUN/report.json,
RUN the first given) and a bar chart like the paper's Figure 2 (RUN/report.png). Several runs are
read as one; where two hold the same episode, the later written wins.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from coach.atomic import save_figure, write_json
from evals.metrics import ALPHA, BETA, GAMMA, paired, summarize

METRIC_NAMES = {"pass_at_1": "Pass@1", "accept_ratio": "Accept ratio", "dpr": "DPR"}
PAIRED = ("pass@1", "accept_ratio", "dpr")  # the paired differences, evals/metrics.py's names


class ReportError(Exception):
    """Runs that cannot be reported: one line for a person."""


def short(spec: str) -> str:
    """A model spec as a column can hold it: a file's name, a served model's name."""
    if spec.startswith("openai:") and "#" in spec:
        return spec.rsplit("#", 1)[1]
    return Path(spec).name if "/" in spec or spec.endswith((".gguf", ".GGUF")) else spec


def collect(runs) -> list:
    """Every episode of the runs (directories or run.sqlite files), the later written winning."""
    from evals.store import FILENAME, Store, StoreError

    found = {}
    for run in runs:
        p = Path(run).expanduser()
        db = p if p.suffix in (".sqlite", ".db") else p / FILENAME
        if not db.is_file():
            raise ReportError(f"{run}: not a benchmark run (no {db.name} there)")
        try:
            store = Store.open(db)
        except StoreError as exc:
            raise ReportError(str(exc)) from None
        try:
            for ep in store.episodes():
                found[ep.key] = ep
        finally:
            store.close()
    return list(found.values())


def build(episodes, gamma: float = GAMMA, alpha: float = ALPHA, beta: float = BETA,
          baseline: str | None = None) -> dict:
    """The report as data: one group per (human, seed, assistant, policy, context), in order of
    first appearance, and the paired differences: against each human's baseline group within one
    context, and of each context arm against its twin with context none."""
    groups: dict[tuple, list] = {}
    for ep in episodes:
        groups.setdefault((ep.human, ep.seed, ep.assistant, ep.policy, ep.context), []).append(ep)
    rows = []
    for (human, seed, assistant, policy, context), eps in groups.items():
        s = summarize(eps, gamma, alpha, beta)
        rows.append({"assistant": assistant, "policy": policy, "context": context, "human": human, "seed": seed,
                     "problems": s.n, "errored": s.n_errored, "pass_at_1": s.pass_at_1,
                     "pass_at_1_se": s.pass_at_1_se, "accept_ratio": s.accept_ratio,
                     "accept_ratio_se": s.accept_ratio_se, "accept_pooled": s.accept_pooled,
                     "dpr": s.dpr, "dpr_se": s.dpr_se,
                     "tokens_read": _mean(e.tokens_read for e in eps if not e.errored),
                     "tokens_written": _mean(e.tokens_written for e in eps if not e.errored)})
    comparisons = []  # (key, the key it is compared with)
    for members in _by_human(groups).values():
        base = _baseline(members, baseline)
        comparisons += [(key, base) for key in members if base is not None and key != base]
    comparisons += [(key, key[:4] + ("none",)) for key in groups if key[4] != "none" and key[:4] + ("none",) in groups]
    pairs = []
    for key, base in comparisons:
        for metric in PAIRED:
            try:
                d = paired(groups[key], groups[base], metric, seed=key[1])
            except ValueError:  # nothing in common: no difference to give
                continue
            pairs.append({"human": key[0], "seed": key[1], "assistant": key[2], "policy": key[3], "context": key[4],
                          "baseline_assistant": base[2], "baseline_policy": base[3], "baseline_context": base[4],
                          "metric": metric, "n": d.n, "diff": d.diff, "low": d.low, "high": d.high})
    return {"groups": rows, "paired": pairs, "constants": {"gamma": gamma, "alpha": alpha, "beta": beta},
            "episodes": len(episodes)}


def _mean(values) -> float:
    v = list(values)
    return sum(v) / len(v) if v else math.nan


def _by_human(groups: dict) -> dict:
    """The groups of each (human, seed, context): the assistants compared with a baseline."""
    out: dict = {}
    for key in groups:
        out.setdefault((*key[:2], key[4]), []).append(key)
    return out


def _baseline(members: list[tuple], wanted: str | None) -> tuple | None:
    """The group the others are compared with: the one named by --baseline (an assistant, a
    policy, or "assistant · policy"), else the first with the `base` policy, else the first."""
    if len(members) < 2:
        return None
    if wanted:
        for key in members:
            if wanted in (key[2], short(key[2]), key[3], f"{key[2]} · {key[3]}", f"{short(key[2])} · {key[3]}"):
                return key
        return None
    return next((k for k in members if k[3] == "base"), members[0])


# ------------------------------------------------------------------ showing it
def _pm(value: float, se: float) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:.3f}" + ("" if math.isnan(se) else f" ± {se:.3f}")


def _count(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:.0f}"


def tables(report: dict):
    from rich.table import Table

    rows = report["groups"]
    several_humans = len({(r["human"], r["seed"]) for r in rows}) > 1
    contexts = _contexts_shown(rows)
    c = report["constants"]
    t = Table(title=f"Simulated-human benchmark: mean ± standard error over problems "
                    f"(DPR: γ {c['gamma']:g}, α {c['alpha']:g}, β {c['beta']:g})")
    for col in ("assistant", "policy", *(["context"] if contexts else []), *(["human", "seed"] if several_humans else []),
                "problems", "errored", "Pass@1", "accept ratio", "DPR", "read", "written"):
        t.add_column(col, justify="left" if col in ("assistant", "policy", "context", "human") else "right")
    for r in rows:
        t.add_row(short(r["assistant"]), r["policy"], *([r["context"]] if contexts else []),
                  *([r["human"], str(r["seed"])] if several_humans else []),
                  str(r["problems"]), f"[red]{r['errored']}[/]" if r["errored"] else "0",
                  _pm(r["pass_at_1"], r["pass_at_1_se"]), _pm(r["accept_ratio"], r["accept_ratio_se"]),
                  _pm(r["dpr"], r["dpr_se"]), _count(r["tokens_read"]), _count(r["tokens_written"]))
    out = [t]
    if report["paired"]:
        p = Table(title="Paired differences on the same problems (bootstrap 95% interval)")
        for col in ("assistant", "policy", *(["context"] if contexts else []), "minus", "metric", "problems",
                    "difference", "95% interval"):
            p.add_column(col, justify="left" if col in ("assistant", "policy", "context", "minus", "metric") else "right")
        for d in report["paired"]:
            minus = f"{short(d['baseline_assistant'])} · {d['baseline_policy']}"
            p.add_row(short(d["assistant"]), d["policy"], *([d["context"]] if contexts else []),
                      minus + (f" · context {d['baseline_context']}" if contexts else ""),
                      d["metric"], str(d["n"]), f"{d['diff']:+.3f}", f"[{d['low']:+.3f}, {d['high']:+.3f}]")
        out.append(p)
    return out


def _contexts_shown(rows) -> bool:
    """Whether the tables need a context column: some arm was shown more than the code."""
    return any(r["context"] != "none" for r in rows)


def print_report(episodes, gamma: float = GAMMA, alpha: float = ALPHA, beta: float = BETA, console=None) -> dict:
    from rich.console import Console

    report = build(episodes, gamma, alpha, beta)
    console = console or Console()
    for t in tables(report):
        console.print(t)
    return report


def plot(report: dict, path: Path) -> None:
    """Bars of Pass@1, accept ratio and DPR with standard-error whiskers: assistants along x,
    one bar per policy (and human, where several), as in the paper's Figure 2."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["groups"]
    several_humans = len({(r["human"], r["seed"]) for r in rows}) > 1
    contexts = _contexts_shown(rows)
    assistants = list(dict.fromkeys(r["assistant"] for r in rows))

    def variant(r) -> str:
        return " · ".join([r["policy"], *([f"context {r['context']}"] if contexts else []),
                           *([r["human"]] if several_humans else [])])
    variants = list(dict.fromkeys(variant(r) for r in rows))
    width = 0.8 / len(variants)
    fig, axes = plt.subplots(1, 3, figsize=(4 + 1.2 * len(assistants) * max(1, len(variants) / 2), 4), squeeze=False)
    for ax, metric in zip(axes[0], METRIC_NAMES):
        for j, v in enumerate(variants):
            xs, ys, es = [], [], []
            for i, a in enumerate(assistants):
                r = next((r for r in rows if r["assistant"] == a and variant(r) == v), None)
                if r is None or math.isnan(r[metric]):
                    continue
                xs.append(i + (j - (len(variants) - 1) / 2) * width)
                ys.append(r[metric])
                es.append(0 if math.isnan(r[f"{metric}_se"]) else r[f"{metric}_se"])
            ax.bar(xs, ys, width, yerr=es, capsize=3, label=v)
        ax.set_title(METRIC_NAMES[metric])
        ax.set_xticks(range(len(assistants)), [short(a) for a in assistants], rotation=20, ha="right")
        ax.set_ylim(0, 1.05)
        ax.grid(axis="y", alpha=0.3)
    humans = ", ".join(sorted({r["human"] for r in rows}))
    n = max(r["problems"] + r["errored"] for r in rows)
    fig.suptitle(f"Simulated human {humans}, {n} problems; error bars: standard errors")
    axes[0][-1].legend(fontsize="small", loc="upper right")
    fig.tight_layout()
    try:
        save_figure(fig, path, dpi=120)
    finally:
        plt.close(fig)


def _finite(x):
    """JSON has no NaN: an undefined figure (one problem's SE, an accept ratio with nothing
    suggested) is written as null."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    p = argparse.ArgumentParser(prog="empower-evals report", description=__doc__.split("\n\n")[2].replace("\n", " "))
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (or their run.sqlite files)")
    p.add_argument("--json", type=Path, help="default RUN/report.json (RUN the first given)")
    p.add_argument("--png", type=Path, help="default RUN/report.png")
    p.add_argument("--baseline", help="what the others are compared with: an assistant, a policy, or 'assistant · "
                                      "policy' (default: the base policy)")
    for name, default in (("gamma", GAMMA), ("alpha", ALPHA), ("beta", BETA)):
        p.add_argument(f"--{name}", type=float, default=default, help=f"DPR's {name} (default {default})")
    args = p.parse_args(argv)
    try:
        episodes = collect(args.runs)
        if not episodes:
            raise ReportError(f"{', '.join(args.runs)}: no finished episode yet")
        report = build(episodes, args.gamma, args.alpha, args.beta, args.baseline)
    except (ReportError, ValueError) as exc:
        print(f"empower-evals report: {exc}", file=sys.stderr)
        return 2
    console = Console()
    for t in tables(report):
        console.print(t)
    first = Path(args.runs[0]).expanduser()
    home = first.parent if first.suffix in (".sqlite", ".db") else first
    json_path, png_path = args.json or home / "report.json", args.png or home / "report.png"
    try:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        write_json(json_path, _finite({**report, "runs": [str(r) for r in args.runs]}))
        png_path.parent.mkdir(parents=True, exist_ok=True)
        plot(report, png_path)
    except OSError as exc:
        print(f"empower-evals report: cannot write the report: {exc}", file=sys.stderr)
        return 2
    console.print(f"wrote {json_path} and {png_path}")
    return 0
