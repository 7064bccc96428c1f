"""Judging throughput: all tests of a program in one worker vs a fresh interpreter per test.

    python bench/judge.py [--per-problem 20] [--out bench/out/judge.json]

Judges every built-in problem × N programs (right, wrong and slow: the reference, the
plausible wrong solution, the untouched starter and the quadratic one, from tests/solutions)
twice in one run, once each way, checks that both ways give the same verdicts, and prints
the times side by side with their ratio. Both ways use the same sandbox and stop at the
first failing test (the default), so the difference is the interpreter start-up per test.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from problems import catalog
from problems.judge import judge

ROOT = Path(__file__).resolve().parent.parent
# Of every 20 programs: 12 right, 4 wrong, 2 unfinished starters, 2 quadratic (time limit).
MIX = ["reference"] * 12 + ["wrong"] * 4 + ["starter"] * 2 + ["slow"] * 2


def programs(name: str, n: int) -> list[tuple[str, str]]:
    p = catalog.load(name)
    sources = {"reference": p.reference.read_text(), "starter": p.starter.read_text(),
               "wrong": (ROOT / "tests/solutions" / name / "wrong.py").read_text(),
               "slow": (ROOT / "tests/solutions" / name / "slow.py").read_text()}
    # Distinct programs, as in a benchmark run: the same code under a different comment.
    return [(kind, f"# program {i} ({kind})\n" + sources[kind]) for i, kind in
            enumerate(MIX[i % len(MIX)] for i in range(n))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-problem", type=int, default=20)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out/judge.json")
    args = parser.parse_args()
    console = Console()
    work = [(name, kind, src) for name in catalog.names() for kind, src in programs(name, args.per_problem)]
    modes = {"one worker per program": False, "fresh interpreter per test": True}
    times, tests_run, verdicts = {}, {}, {}
    by_kind: dict[tuple[str, str], float] = {}
    with Progress(console=console) as progress:
        for mode, fresh in modes.items():
            task = progress.add_task(mode, total=len(work))
            start, run, seen = time.perf_counter(), 0, []
            for name, kind, src in work:
                t0 = time.perf_counter()
                report = judge(src, catalog.load(name), fresh_process=fresh)
                by_kind[mode, kind] = by_kind.get((mode, kind), 0.0) + time.perf_counter() - t0
                run += sum(r.verdict.value != "not run" for r in report.results)
                seen.append((name, kind, [r.verdict.value for r in report.results]))
                progress.advance(task)
            times[mode], tests_run[mode], verdicts[mode] = time.perf_counter() - start, run, seen
    a, b = modes
    assert verdicts[a] == verdicts[b], "the two ways of judging disagree"
    table = Table(title=f"Judging {len(catalog.names())} problems × {args.per_problem} programs")
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
