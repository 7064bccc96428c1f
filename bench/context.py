"""Does showing the model chunks of the package's other files help? (issue 21)

    python bench/context.py [--package DIR] [--per-file 2] [--limit N] [--policy threshold]
                            [--eta 2] [--policy base-10] [--concurrency 2] [--out bench/out/context]
                            [--table-only]

The editor puts a few chunks of the project's other open files ahead of the code in the prompt
(coach/related.py). This measures it with the simulated-human benchmark: the `files` dataset's
episodes (finish a function's body, starting from the file up to it) on a real multi-file package
nobody here wrote, each played twice, with the package's other files (`--context files`: the
chunks chosen each round by coach.related.choose, the episode's own file left out) and with the
file alone (`--context none`), paired on the same problems.

Defaults: the standard library's `email` package, copied to OUT/package/email (test directories
and caches left out; 29 files, 50 functions at 2 a file on Python 3.11); the oracle human (it
replays the author's body and accepts a suggestion exactly when it continues it); the editor's
default assistant (coach/builtin.py DEFAULT_ASSISTANT: smollm2-135m, threshold η = 2, completion
prompts). The run is an ordinary `empower-evals` run in OUT/run: a stopped measurement resumes,
and `empower-evals report OUT/run` reads it. Prints each arm's DPR, accept ratio and seconds an
episode, and the paired differences (files − none) with bootstrap 95% intervals; writes
OUT/results.json.

Measured on 2026-12-04 (2 cores shared with other work, load average 5-8; Python 3.11.7's email):

    python bench/context.py                                   # threshold η = 2: 50 problems an arm, 39 min
    python bench/context.py --policy base-10 --limit 24       # base-10 on the first 24 of them, 23 min

    arm                  n   DPR             accept ratio    read  written  s/episode
    threshold@2  files   50  0.9688 ± 0.0033  0.266 ± 0.032  15.5    60.7       78.1
    threshold@2  none    50  0.9688 ± 0.0033  0.267 ± 0.030  14.5    61.0       15.2
    base-10      files   24  0.9640 ± 0.0060  0.060 ± 0.026  63.6    61.5      106.7
    base-10      none    24  0.9632 ± 0.0059  0.010 ± 0.009  63.8    63.1        9.8

    files − none, paired  n   DPR                          accept ratio                   tokens written
    threshold@2           50  +0.0000 [-0.0005, +0.0004]   -0.006 [-0.055, +0.048] (n 49)  -0.22 [-0.96, +0.50]
    base-10               24  +0.0008 [+0.00005, +0.0018]  +0.050 [+0.008, +0.104]         -1.63 [-3.29, -0.29]

(n 49: one problem had no suggestion shown in one arm.) With the editor's default assistant the
other files change 43 of 50 transcripts but not the outcome: no measurable difference in DPR or
accept ratio (on the first 24 problems alone its accept ratio was lower with them, -0.057
[-0.121, -0.006], so not even the sign is settled). base-10, which always shows 10 tokens, has
more of them accepted with the other files (e.g. a comment another module shares), though 6% of
its suggestions against 1%. DPR moves little by construction here (γ = 0.999: a token written
costs 0.05%). Chunks went into every round (1,375 characters on average, within the quarter of
the 8,000-character window) and changed from one round to the next in 124 of 272 cases; each
change makes llama.cpp read the whole prompt again, so an episode with them took 5-10x as long.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coach.builtin import DEFAULT_ASSISTANT  # noqa: E402

EMAIL = Path(sysconfig.get_paths()["stdlib"]) / "email"
LEFT_OUT = shutil.ignore_patterns("__pycache__", "*.pyc", "test", "tests")  # a package's tests are not its code


def copy_package(src: Path, out: Path) -> Path:
    """The package under OUT/package, copied once (a resumed measurement reads the same files)."""
    dst = out / "package" / src.name
    if not dst.is_dir():
        shutil.copytree(src, dst, ignore=LEFT_OUT)
    return dst


def run(args, package: Path) -> None:
    from evals.cli import main as evals

    argv = ["--human", "oracle", "--assistant", args.model, "--format", args.format]
    for p in args.policy:
        argv += ["--policy", p]
    if "threshold" in args.policy:
        argv += ["--eta", f"{args.eta:g}"]
    argv += ["--dataset", "files", str(package), "--per-file", str(args.per_file)]
    argv += ["--limit", str(args.limit)] if args.limit else []
    argv += ["--context", "files", "--context", "none", "--concurrency", str(args.concurrency),
             "--out", str(args.out / "run")]
    print("empower-evals " + " ".join(argv), flush=True)
    rc = evals(argv)
    if rc:
        raise SystemExit(f"empower-evals exited {rc}")


def results(out: Path) -> dict:
    """Each arm's figures and the paired differences files − none, from the run's store."""
    from evals.metrics import paired
    from evals.report import build, collect

    episodes = collect([out / "run"])
    report = build(episodes)
    arms = []
    for g in report["groups"]:
        mine = [e for e in episodes if (e.assistant, e.policy, e.context) == (g["assistant"], g["policy"], g["context"])
                and not e.errored]
        arms.append({k: g[k] for k in ("assistant", "policy", "context", "problems", "errored", "pass_at_1",
                                       "accept_ratio", "accept_ratio_se", "dpr", "dpr_se", "tokens_read",
                                       "tokens_written")}
                    | {"seconds": sum(e.seconds for e in mine) / max(1, len(mine))})
    pairs = [p for p in report["paired"] if (p["context"], p["baseline_context"]) == ("files", "none")]
    # DPR with γ = 0.999 moves by 0.05% a token: the tokens the human wrote, paired, say more
    for assistant, policy in dict.fromkeys((p["assistant"], p["policy"]) for p in pairs):
        arm = {c: [e for e in episodes if (e.assistant, e.policy, e.context) == (assistant, policy, c)]
               for c in ("files", "none")}
        d = paired(arm["files"], arm["none"], written)
        pairs.append({"assistant": assistant, "policy": policy, "context": "files", "baseline_context": "none",
                      "metric": "tokens_written", "n": d.n, "diff": d.diff, "low": d.low, "high": d.high})
    return {"arms": arms, "paired": pairs, "python": sys.version.split()[0]}


def written(o) -> float:
    return float(o.tokens_written)


def show(res: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t = Table(title="Each arm (mean ± standard error over problems)")
    for col in ("policy", "context", "problems", "errored", "DPR", "accept ratio", "read", "written", "s/episode"):
        t.add_column(col, justify="left" if col in ("policy", "context") else "right")
    for a in res["arms"]:
        t.add_row(a["policy"], a["context"], str(a["problems"]), str(a["errored"]), f"{a['dpr']:.4f} ± {a['dpr_se']:.4f}",
                  f"{a['accept_ratio']:.3f} ± {a['accept_ratio_se']:.3f}", f"{a['tokens_read']:.1f}",
                  f"{a['tokens_written']:.1f}", f"{a['seconds']:.1f}")
    console.print(t)
    p = Table(title="Paired on the same problems: context files − none (bootstrap 95% interval)")
    for col in ("policy", "metric", "n", "difference", "95% interval"):
        p.add_column(col, justify="left" if col in ("policy", "metric") else "right")
    for d in res["paired"]:
        p.add_row(d["policy"], d["metric"], str(d["n"]), f"{d['diff']:+.4f}", f"[{d['low']:+.4f}, {d['high']:+.4f}]")
    console.print(p)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[2].replace("\n", " "))
    parser.add_argument("--package", type=Path, default=EMAIL, help="a directory of Python code (default: the "
                        "standard library's email)")
    parser.add_argument("--per-file", type=int, default=2, help="functions of a file at most (default 2)")
    parser.add_argument("--limit", type=int, help="the first N problems")
    parser.add_argument("--model", default=DEFAULT_ASSISTANT.model)
    parser.add_argument("--format", default=DEFAULT_ASSISTANT.format)
    parser.add_argument("--policy", action="append", help=f"repeat for several (default {DEFAULT_ASSISTANT.policy})")
    parser.add_argument("--eta", type=float, default=DEFAULT_ASSISTANT.eta, help="η of the threshold policy")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "context")
    parser.add_argument("--table-only", action="store_true", help="only the figures of the run already in OUT")
    args = parser.parse_args()
    args.policy = args.policy or [DEFAULT_ASSISTANT.policy]
    if not args.table_only:
        run(args, copy_package(args.package.expanduser().resolve(), args.out))
    res = results(args.out)
    show(res)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
