"""docs/results.md and its figures, from the small results alone (RESULTS/*.json, episodes/).

    python -m experiments.empower_vs_baselines --report

Every number in the report is computed here from those files: rerunning the report changes
nothing unless the results changed. Metrics are evals.metrics' (the paper's DPR, γ 0.999, α 0.1,
β 0.5); paired differences are over the problems both arms ran, with a bootstrap 95% interval.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from evals.metrics import dpr, paired, summarize
from experiments.arms import Arm, all_arms

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


# ---------------------------------------------------------------------------- figures
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


# ---------------------------------------------------------------------------- the document
def _f(x, digits=3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


README_BEGIN = "<!-- experiment results: written by python -m experiments.empower_vs_baselines --report -->"
README_END = "<!-- end of experiment results -->"


def readme_block(tables: dict[str, list[dict]], comps: dict) -> list[str]:
    """The README's summary: every arm's DPR on each dataset side by side, then the ranking."""
    names = list(tables)
    head = {"humaneval": "HumanEval-40", "builtin": "built-in", "files": "held-out code",
            "humaneval-all": "HumanEval-164", "humaneval-llm": "HumanEval, LLM human"}
    L = ["| arm | " + " | ".join(f"{head[n]} DPR" for n in names) + " | accept (HumanEval-40) | shown / episode |",
         "| --- |" + " --- |" * (len(names) + 2)]
    rows = {n: {r["arm"]: r for r in t} for n, t in tables.items()}
    for a in all_arms():
        cells = []
        for n in names:
            r = rows[n].get(a.name)
            cells.append(f"{r['dpr']:.4f} ± {r['dpr_se']:.4f}" if r else "")
        first = rows.get("humaneval", {}).get(a.name)
        if any(cells):
            L.append(f"| {a.name} | " + " | ".join(cells) + f" | {_f(first['accept'], 2) if first else ''} "
                     f"| {_f(first['shown'], 1) if first else ''} |")
    episodes = {head[n]: max(r["n"] for r in t) for n, t in tables.items()}
    L += ["", "Episodes an arm: " + ", ".join(f"{k} {v}" for k, v in episodes.items()) + ".", ""]
    return L + _ranking(tables, comps) + defaults_lines(tables)


def update_readme(readme: Path, block: list[str]) -> bool:
    """Put `block` between the README's markers; False (nothing written) where they are missing."""
    text = readme.read_text() if readme.is_file() else ""
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        return False
    new = text[:start + len(README_BEGIN)] + "\n" + "\n".join(block) + "\n" + text[end:]
    if new != text:
        readme.write_text(new)
    return True


def write_report(results: Path, doc: Path, readme: Path | None = None) -> dict:
    """Write `doc` and its PNGs (beside it, in results/) from `results`, and the summary into
    `readme` between its markers; returns the data."""
    config = json.loads((results / "config.json").read_text())
    corpus = json.loads((results / "corpus.json").read_text())
    labels = json.loads((results / "labels.json").read_text())
    train = json.loads((results / "train.json").read_text()) if (results / "train.json").is_file() else {}
    stages = json.loads((results / "stages.json").read_text())["stages"] if (results / "stages.json").is_file() else {}
    arms = all_arms()
    by_dataset = groups(load_episodes(results))
    tables = {name: arm_table(by_arm, arms) for name, by_arm in by_dataset.items()}
    comps = {}
    for name, by_arm in by_dataset.items():
        best = best_empower(by_arm)
        if best and len(by_arm) > 1:
            comps[name] = (next(a.name for a in arms if a.key == best), comparisons(by_arm, best, arms))
    rel = lambda p: Path(os.path.relpath(p, doc.parent)).as_posix()  # noqa: E731
    figs = {}
    if tables:
        figs["arms"] = results / "arms.png"
        figure_arms(tables, figs["arms"])
        figs["eta"] = results / "eta.png"
        figure_eta(tables, figs["eta"])
    if comps:
        figs["paired"] = results / "paired.png"
        figure_paired(comps, figs["paired"])

    s = config["size"]
    L = ["# Empower labels against the baselines, measured here", "",
         f"Generated by `python -m experiments.empower_vs_baselines{'' if s['name'] == 'default' else ' --' + s['name']}"
         + "".join(f" --set {x}" for x in config.get("set", [])) + f"` from the files in `{rel(results)}/`; "
         "`--report` regenerates this page from them without running anything. Do not edit by hand.", ""]
    L += ["## Ranking", ""]
    L += _ranking(tables, comps) + defaults_lines(tables)
    L += ["", "## What was run", "",
          f"- Machine: {config['machine']}, Python {config['python']}.",
          f"- Model trained and served: `{s['base']}`; labels from `{s['estimator']}` "
          f"({labels['_config'].get('framing')} framing, window {labels['_config'].get('window_chars')} characters, "
          f"{labels['_config'].get('dtype')}).",
          f"- Corpus: {len(corpus['train'])} standard-library modules of {s['train_bytes'][0]:,}–{s['train_bytes'][1]:,} bytes "
          f"({sum(f['bytes'] for f in corpus['train']):,} bytes) to learn from, {s['k']} states each; "
          f"{len(corpus['episodes'])} held-out modules ({sum(f['bytes'] for f in corpus['episodes']):,} bytes) whose functions "
          f"are the held-out-code episodes (at most {s.get('files_per_file', 8)} functions a file). Python {corpus['python']}; every file with its sha256 in `{rel(results / 'corpus.json')}`.",
          f"- Training, every trained arm alike: LoRA (the trainer's defaults), {s['steps']} optimizer steps of "
          f"{s['grad_accum']} rows, rows of at most {s['max_length']} tokens, learning rate {s['lr']:g}, seed 0; "
          "the validation loss on the files the trainer holds out (10%, the same for every arm).",
          "- Served as the editor serves them: untrained arms from the built-in GGUF, trained arms from their "
          "exported f16 GGUF, both through llama.cpp; trained arms stop where the model stops (`trained`).",
          "- Human: the oracle (replays the reference; accepts a suggestion only when it continues it), "
          "K_H = 10 tokens a round, at most 50 rounds"
          + (f"; and {s['llm_human']} served by llama.cpp here on the first {s['llm_problems']} of the fixed 40."
             if s.get("llm_human") and s.get("llm_problems") else "."), ""]
    if stages:
        L += ["Wall time per stage (summed over the invocations that worked on it):", "", "| stage | time |", "| --- | --- |"]
        L += [f"| {k} | {_dur(v)} |" for k, v in stages.items()]
        L += [f"| all | {_dur(sum(stages.values()))} |", ""]
    L += ["## Labels", "", "One pass of the estimator labels every rule; the same states for every arm.", "",
          "| arm | states | share empty | mean label tokens |", "| --- | --- | --- | --- |"]
    for a in arms:
        if a.key in labels:
            x = labels[a.key]
            L.append(f"| {a.name} | {x['states']} | {x['share_empty']:.0%} | {x['mean_label_tokens']:.2f} |")
    if train:
        L += ["", "## Training", "", "| arm | steps | examples | validation loss before → after |", "| --- | --- | --- | --- |"]
        for a in arms:
            if a.key in train:
                x = train[a.key]
                L.append(f"| {a.name} | {x['steps']} | {x['train_examples']} | {_f(x['eval_loss_before'])} → {_f(x['eval_loss'])} |")
        L += ["", "The loss is per label token (and the stop), on the held-out files' labels of the arm's own rule: "
              "it compares an arm before and after, not arms with each other."]
    for name, t in tables.items():
        title, what = DATASETS[name]
        L += ["", f"## {title}", "", what + ".", "",
              "| arm | episodes | Pass@1 | accept ratio | DPR | shown / episode | chars / suggestion | tokens read | tokens written |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in t:
            err = f" ({r['errored']} errored)" if r["errored"] else ""
            L.append(f"| {r['arm']} | {r['n']}{err} | {_f(r['pass'])} ± {_f(r['pass_se'])} | {_f(r['accept'])} ± {_f(r['accept_se'])} "
                     f"| {_f(r['dpr'], 4)} ± {_f(r['dpr_se'], 4)} | {_f(r['shown'], 1)} | {_f(r['chars'], 1)} "
                     f"| {_f(r['read'], 1)} | {_f(r['written'], 1)} |")
        if name in comps:
            best, cs = comps[name]
            L += ["", f"{best} against each arm, paired over the same problems (DPR difference, bootstrap 95% CI; "
                  "wins / ties / losses per problem):", "",
                  "| against | problems | DPR difference | 95% CI | wins / ties / losses | |", "| --- | --- | --- | --- | --- | --- |"]
            L += [f"| {c['name']} | {c['n']} | {c['diff']:+.4f} | [{c['low']:+.4f}, {c['high']:+.4f}] "
                  f"| {c['wins']} / {c['ties']} / {c['losses']} | {verdict(c)} |" for c in cs]
    if figs:
        L += ["", "## Figures", ""]
        L += [f"![{k}]({rel(v)})" for k, v in figs.items()]
    L += ["", "## The GPU-sized run", "", "```", scale_commands(), "```", ""]
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(L))
    if readme is not None and tables:
        update_readme(readme, readme_block(tables, comps))
    return {"tables": tables, "comparisons": comps}


def _dur(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def _ranking(tables: dict[str, list[dict]], comps: dict) -> list[str]:
    out = []
    for name, t in tables.items():
        ranked = sorted(t, key=lambda r: -r["dpr"])
        out.append(f"- **{DATASETS[name][0]}** by DPR: " + ", ".join(f"{r['arm']} {r['dpr']:.4f}" for r in ranked) + ".")
        if name in comps:
            best, cs = comps[name]
            by = {v: [c["name"] for c in cs if verdict(c) == v] for v in ("better", "worse", "no difference shown")}
            parts = []
            if by["better"]:
                parts.append(f"better than {', '.join(by['better'])}")
            if by["worse"]:
                parts.append(f"worse than {', '.join(by['worse'])}")
            if by["no difference shown"]:
                parts.append(f"not distinguishable from {', '.join(by['no difference shown'])}")
            out.append(f"  The best Empower arm, {best}, is " + "; ".join(parts) + " (paired 95% CIs).")
            row = next(r for r in t if r["arm"] == best)
            if not row["shown"] >= 1:  # NaN-safe: no episodes shown anything
                out.append(f"  It suggests almost nothing ({row['shown']:.1f} suggestions an episode): its DPR is about "
                           f"that of the human writing alone ({row['alone']:.4f} on these problems).")
    return out or ["- no episodes yet"]


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


def scale_commands(size=None) -> str:
    """The GPU-sized run: a larger corpus and training, and LiveCodeBench with an LLM human on a
    vLLM server (the paper's setting), as commands."""
    return "\n".join([
        "# on a GPU machine, with a vLLM server of the human (e.g. gemma-3-27b) at $HUMAN_URL:",
        "python -m experiments.empower_vs_baselines --scale   # prints these lines",
        "empower-finetune label CORPUS --estimator smollm2-135m --rule empower sft-10 sft-20 sft-rand \\",
        "    --eta 0.32 1 2 4 --k 16 --out WORK/labels",
        "for arm in empower-eta0.32 empower-eta1 empower-eta2 empower-eta4 sft-10 sft-20 sft-rand; do",
        "  empower-finetune train WORK/labels/$arm --base smollm2-135m --out WORK/train/$arm \\",
        "      --max-steps 400 --grad-accum 16 --max-length 2048 --lr 2e-4 --seed 0",
        "  empower-finetune export WORK/train/$arm --to gguf --quant f16 --name evb-$arm",
        "done",
        "empower-evals --human gemma-3-27b --human-url $HUMAN_URL --dataset livecodebench --release v6 \\",
        "    --assistant smollm2-135m --policy base --policy base-10 --policy base-20 --policy threshold \\",
        "    --eta 1 --eta 2 --eta 4 --out WORK/evals/lcb",
        "empower-evals --human gemma-3-27b --human-url $HUMAN_URL --dataset livecodebench --release v6 \\",
        "    --assistant evb-empower-eta0.32 --assistant evb-empower-eta1 --assistant evb-empower-eta2 \\",
        "    --assistant evb-empower-eta4 --assistant evb-sft-10 --assistant evb-sft-20 --assistant evb-sft-rand \\",
        "    --policy trained --out WORK/evals/lcb",
        "empower-evals report WORK/evals/lcb",
    ])
