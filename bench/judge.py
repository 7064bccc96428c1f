"""Judging throughput: all tests of a program in one worker vs a fresh interpreter per test;
and the sandbox's cost against an earlier one's.

    python bench/judge.py [--per-problem 20] [--out bench/out/judge.json]
    python bench/judge.py --sandbox-vs REV [--per-problem 8] [--out bench/out/judge-sandbox.json]

--sandbox-vs REV: the same programs judged by this checkout's judge (bubblewrap) and by the
judge of git revision REV (e250416: our own `unshare` namespaces), each in a child process
with its own tree on the path, alternating problem by problem in one run; both ways (one worker
per program, a fresh interpreter per test). Reported: ms per test run, new ÷ old, and whether
the verdicts agree.

Judges every built-in problem × N programs (right, wrong and slow: the reference, the
plausible wrong solution, the untouched starter and the quadratic one, from tests/solutions)
twice in one run, once each way, checks that both ways give the same verdicts, and prints
the times side by side with their ratio. Both ways use the same sandbox and stop at the
first failing test (the default), so the difference is the interpreter start-up per test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from problems import builtin
from problems.judge import judge

ROOT = Path(__file__).resolve().parent.parent
# Of every 20 programs: 12 right, 4 wrong, 2 unfinished starters, 2 quadratic (time limit).
MIX = ["reference"] * 12 + ["wrong"] * 4 + ["starter"] * 2 + ["slow"] * 2


def programs(name: str, n: int) -> list[tuple[str, str]]:
    p = builtin.load(name)
    sources = {"reference": p.reference, "starter": p.starter,
               "wrong": (ROOT / "tests/solutions" / name / "wrong.py").read_text(),
               "slow": (ROOT / "tests/solutions" / name / "slow.py").read_text()}
    # Distinct programs, as in a benchmark run: the same code under a different comment.
    return [(kind, f"# program {i} ({kind})\n" + sources[kind]) for i, kind in
            enumerate(MIX[i % len(MIX)] for i in range(n))]


# Run in a child with a tree's `problems` first on the path: judge each (problem, program) of a
# JSON list on stdin, print [seconds, tests run, verdicts] for each.
CHILD = """
import json, sys, time
from problems import builtin
from problems.judge import judge
out = []
for name, src, fresh in json.load(sys.stdin):
    t0 = time.perf_counter()
    report = judge(src, builtin.load(name), fresh_process=fresh)
    out.append([time.perf_counter() - t0, sum(r.verdict.value != "not run" for r in report.results),
                [r.verdict.value for r in report.results]])
print(json.dumps(out))
"""


def judged_in(tree: Path, items: list) -> list:
    done = subprocess.run([sys.executable, "-c", CHILD], input=json.dumps(items), cwd=tree, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(tree)}, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"bench/judge.py: the judge in {tree} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def sandbox_vs(args, console: Console) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        old.mkdir()
        # the earlier judge's package, as that revision had it (its problems' data included)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.sandbox_vs, "problems"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        trees = {"new (bubblewrap)": ROOT, f"old ({args.sandbox_vs})": old}
        totals = {(t, fresh): [0.0, 0, []] for t in trees for fresh in (False, True)}
        names = builtin.names()
        with Progress(console=console) as progress:
            task = progress.add_task("judging, new and old in turn", total=len(names) * 4)
            for name in names:
                for fresh in (False, True):
                    items = [[name, src, fresh] for _, src in programs(name, args.per_problem)]
                    for tree_name, tree in trees.items():
                        for seconds, run, verdicts in judged_in(tree, items):
                            t = totals[tree_name, fresh]
                            t[0] += seconds
                            t[1] += run
                            t[2].append(verdicts)
                        progress.advance(task)
    new, old_name = trees
    table = Table(title=f"The sandbox's cost: {len(names)} problems × {args.per_problem} programs, in one run")
    for col in ("mode", "ms per test, new", "ms per test, old", "new ÷ old", "same verdicts"):
        table.add_column(col, justify="left" if col == "mode" else "right")
    results = {}
    for fresh, mode in ((False, "one worker per program"), (True, "fresh interpreter per test")):
        a, b = totals[new, fresh], totals[old_name, fresh]
        per_a, per_b = 1000 * a[0] / a[1], 1000 * b[0] / b[1]
        same = a[2] == b[2]
        table.add_row(mode, f"{per_a:.1f}", f"{per_b:.1f}", f"{per_a / per_b:.2f}×", "yes" if same else "NO")
        results[mode] = {"ms_per_test_new": per_a, "ms_per_test_old": per_b, "ratio": per_a / per_b,
                         "tests_new": a[1], "tests_old": b[1], "same_verdicts": same}
    console.print(table)
    out = args.out or ROOT / "bench/out/judge-sandbox.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"old": args.sandbox_vs, "per_problem": args.per_problem, "results": results}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-problem", type=int, default=None, help="programs per problem (default 20; 8 with --sandbox-vs)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--sandbox-vs", metavar="REV", help="compare the sandbox with the judge of git revision REV")
    args = parser.parse_args()
    console = Console()
    if args.sandbox_vs:
        args.per_problem = args.per_problem or 8
        return sandbox_vs(args, console)
    args.per_problem = args.per_problem or 20
    args.out = args.out or ROOT / "bench/out/judge.json"
    work = [(name, kind, src) for name in builtin.names() for kind, src in programs(name, args.per_problem)]
    modes = {"one worker per program": False, "fresh interpreter per test": True}
    times, tests_run, verdicts = {}, {}, {}
    by_kind: dict[tuple[str, str], float] = {}
    with Progress(console=console) as progress:
        for mode, fresh in modes.items():
            task = progress.add_task(mode, total=len(work))
            start, run, seen = time.perf_counter(), 0, []
            for name, kind, src in work:
                t0 = time.perf_counter()
                report = judge(src, builtin.load(name), fresh_process=fresh)
                by_kind[mode, kind] = by_kind.get((mode, kind), 0.0) + time.perf_counter() - t0
                run += sum(r.verdict.value != "not run" for r in report.results)
                seen.append((name, kind, [r.verdict.value for r in report.results]))
                progress.advance(task)
            times[mode], tests_run[mode], verdicts[mode] = time.perf_counter() - start, run, seen
    a, b = modes
    assert verdicts[a] == verdicts[b], "the two ways of judging disagree"
    table = Table(title=f"Judging {len(builtin.names())} problems × {args.per_problem} programs")
    for col in ("mode", "programs", "tests run", "seconds", "ms per test"):
        table.add_column(col, justify="right" if col != "mode" else "left")
    for mode in modes:
        table.add_row(mode, str(len(work)), str(tests_run[mode]), f"{times[mode]:.1f}",
                      f"{1000 * times[mode] / tests_run[mode]:.1f}")
    console.print(table)
    kinds = Table(title="seconds by kind of program")
    for col in ("kind", "programs", a, b, "ratio"):
        kinds.add_column(col, justify="right" if col != "kind" else "left")
    for kind in dict.fromkeys(MIX):
        n = sum(k == kind for _, k, _ in work)
        kinds.add_row(kind, str(n), f"{by_kind[a, kind]:.1f}", f"{by_kind[b, kind]:.1f}",
                      f"{by_kind[b, kind] / by_kind[a, kind]:.2f}×")
    console.print(kinds)
    ratio = times[b] / times[a]
    console.print(f"ratio (fresh interpreter per test / one worker per program): [bold]{ratio:.2f}×[/]")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seconds": times, "tests_run": tests_run, "ratio": ratio,
                                    "seconds_by_kind": {f"{m}/{k}": v for (m, k), v in by_kind.items()},
                                    "per_problem": args.per_problem, "mix": MIX}, indent=2))


if __name__ == "__main__":
    main()
