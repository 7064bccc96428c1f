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

from experiments.arms import all_arms
from experiments.figures import figure_arms, figure_eta, figure_paired
from experiments.findings import (MAIN, best_empower, comparisons, defaults_lines, findings, findings_lines,
                                  verdict)
from experiments.tables import DATASETS, arm_table, groups, load_episodes


def _f(x, digits=3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


README_BEGIN = "<!-- experiment results: written by python -m experiments.empower_vs_baselines --report -->"
README_END = "<!-- end of experiment results -->"


def readme_block(tables: dict[str, list[dict]], comps: dict, found: dict | None = None,
                 run: list[str] = ()) -> list[str]:
    """The README's summary: every arm's DPR on each dataset side by side, the ranking, the
    claim checked (findings), and what run this was."""
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
    L += _ranking(tables, comps)
    if found:
        L += ["", "The claim, checked:", ""] + findings_lines(found)
    return L + defaults_lines(tables) + list(run)


def run_lines(config: dict, stages: dict[str, float]) -> list[str]:
    """What the committed run was, in one line: its command and its wall time per stage."""
    s = config["size"]
    cmd = ("python -m experiments.empower_vs_baselines" + ("" if s["name"] == "default" else f" --{s['name']}")
           + "".join(f" --set {x}" for x in config.get("set", [])))
    if not stages:
        return [f"- **The run:** `{cmd}`."]
    parts = ", ".join(f"{k} {_dur(v)}" for k, v in stages.items())
    return [f"- **The run:** `{cmd}`, {_dur(sum(stages.values()))} of stages here ({parts}; summed over "
            "the invocations that worked on each)."]


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
    found = findings(by_dataset, tables) if all(n in tables for n in MAIN) else None
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
    if found:
        L += ["", "## The claim, checked", "",
              "Paired over the same problems, DPR difference with its bootstrap 95% CI:", ""] + findings_lines(found)
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
        update_readme(readme, readme_block(tables, comps, found, run_lines(config, stages)))
    return {"tables": tables, "comparisons": comps, "findings": found}


def _dur(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def _ranking(tables: dict[str, list[dict]], comps: dict) -> list[str]:
    out = []
    for name, t in tables.items():
        ranked = sorted(t, key=lambda r: -r["dpr"])
        out.append(f"- **{DATASETS[name][0]}** by DPR: " + ", ".join(f"{r['arm']} {r['dpr']:.4f}" for r in ranked) + ".")
        if all(r["pass"] == 0 for r in t):
            out.append("  No episode was solved with any arm (Pass@1 0 each): DPR is 0 throughout, and this set "
                       "does not rank the arms.")
            continue
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
