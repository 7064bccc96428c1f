"""Which built-in assistant the editor defaults to, chosen by measurement (issue 9).

    python bench/default_assistant.py [--concurrency 2] [--out bench/out/default-assistant]
                                      [--table-only]

The oracle human (it replays the reference solution and accepts a suggestion exactly when it
continues that solution) on the 6 built-in problems and a fixed sample of 40 HumanEval problems
(bench/humaneval-40.txt: every 4th id, HumanEval/0, /4, ... /156), for each built-in model in
each prompt format it supports (SmolLM2-135M-Instruct: chat and completion; Gemma 3 270M, a base
model with no chat template: completion), with the policies base-20, threshold at η = 2 and 8
bits, and base. The runs are ordinary `empower-evals` runs, one directory per (dataset, format)
under --out, so a stopped measurement resumes where it was, and each can be read with
`empower-evals report DIR`.

The score is DPR over all 46 problems pooled (Pass@1 and accept ratio beside it, and DPR on
each dataset alone); the best becomes the editor's default (coach/builtin.py, DEFAULT_ASSISTANT).
Writes OUT/table.md (the README's table) and OUT/results.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FORMATS = {"chat": ["smollm2-135m"], "completion": ["smollm2-135m", "gemma-3-270m"]}
POLICIES = ["base-20", "threshold", "base"]
ETAS = ["2", "8"]
DATASETS = {"builtin": [], "humaneval": ["--problems", str(ROOT / "bench" / "humaneval-40.txt")]}


def run(out: Path, concurrency: int) -> None:
    from evals.cli import main as evals

    for fmt, models in FORMATS.items():
        for dataset, extra in DATASETS.items():
            argv = ["--human", "oracle", "--dataset", dataset, *extra, "--format", fmt,
                    "--concurrency", str(concurrency), "--out", str(out / f"{dataset}-{fmt}")]
            for m in models:
                argv += ["--assistant", m]
            for p in POLICIES:
                argv += ["--policy", p]
            for e in ETAS:
                argv += ["--eta", e]
            print("empower-evals " + " ".join(argv), flush=True)
            rc = evals(argv)
            if rc:
                raise SystemExit(f"empower-evals exited {rc}")


def table(out: Path) -> list[dict]:
    from evals.metrics import summarize
    from evals.report import collect

    rows = []
    for fmt in FORMATS:
        eps = {d: collect([out / f"{d}-{fmt}"]) for d in DATASETS if (out / f"{d}-{fmt}" / "run.sqlite").is_file()}
        groups: dict[tuple, dict] = {}
        for dataset, episodes in eps.items():
            for ep in episodes:
                groups.setdefault((ep.assistant, ep.policy), {}).setdefault(dataset, []).append(ep)
        for (assistant, policy), by_dataset in groups.items():
            pooled = summarize([e for v in by_dataset.values() for e in v])
            row = {"model": assistant, "format": fmt, "policy": policy, "problems": pooled.n,
                   "errored": pooled.n_errored, "pass_at_1": pooled.pass_at_1, "accept_ratio": pooled.accept_ratio,
                   "dpr": pooled.dpr, "dpr_se": pooled.dpr_se,
                   "tokens_read": sum(e.tokens_read for v in by_dataset.values() for e in v if not e.errored) / max(pooled.n, 1)}
            for dataset, v in by_dataset.items():
                row[f"dpr_{dataset}"] = summarize(v).dpr
            rows.append(row)
    rows.sort(key=lambda r: -r["dpr"])
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| model | format | policy | problems | Pass@1 | accept ratio | DPR (all) | DPR built-in | DPR HumanEval-40 | tokens read |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for i, r in enumerate(rows):
        b = "**" if i == 0 else ""
        lines.append(f"| {b}{r['model']}{b} | {r['format']} | {r['policy']} | {r['problems']} | {r['pass_at_1']:.3f} | "
                     f"{r['accept_ratio']:.3f} | {b}{r['dpr']:.3f} ± {r['dpr_se']:.3f}{b} | "
                     f"{r.get('dpr_builtin', float('nan')):.3f} | {r.get('dpr_humaneval', float('nan')):.3f} | {r['tokens_read']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "bench" / "out" / "default-assistant"))
    p.add_argument("--table-only", action="store_true", help="only the table of what is stored")
    args = p.parse_args()
    out = Path(args.out)
    if not args.table_only:
        run(out, args.concurrency)
    rows = table(out)
    if not rows:
        print(f"nothing stored under {out}", file=sys.stderr)
        return 1
    text = markdown(rows)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print(text)
    best = rows[0]
    print(f"best: {best['model']} · {best['format']} · {best['policy']} (DPR {best['dpr']:.3f}); "
          f"wrote {out / 'table.md'} and {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
