"""The problems and their judge from the command line.

    python -m problems list
    python -m problems show lava
    python -m problems check problems/lava.py [--problem lava] [--all] [--fresh-process] [--json]

`check` exits 0 iff every test passes; bad input gets one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.markdown import Markdown
from rich.table import Table

from problems import builtin
from problems.judge import Report, Verdict, judge
from problems.sandbox import JudgeError, allow_unsafe

STYLE = {Verdict.PASSED: "green", Verdict.WRONG_ANSWER: "red", Verdict.TIME_LIMIT: "yellow",
         Verdict.RUNTIME_ERROR: "magenta", Verdict.MEMORY_LIMIT: "yellow", Verdict.NOT_RUN: "dim"}


class UsageError(Exception):
    """Bad input from the person: one line, exit 2."""


def read_program(path: Path) -> str:
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    if not path.is_file():
        raise UsageError(f"{path}: not a file")
    if path.suffix != ".py":
        raise UsageError(f"{path}: not a Python file (expected a .py file)")
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    try:
        compile(source, str(path), "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise UsageError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except ValueError as exc:  # e.g. a NUL byte
        raise UsageError(f"{path}: cannot be compiled: {exc}") from None
    return source


def cmd_list(args, console: Console) -> int:
    table = Table(title="Practice problems")
    for col in ("name", "title", "tests", "time limit", "summary"):
        table.add_column(col)
    for name in builtin.names():
        p = builtin.load(name)
        table.add_row(name, p.title, str(len(p.tests)), f"{p.time_limit_s:g} s", p.summary)
    console.print(table)
    return 0


def cmd_show(args, console: Console) -> int:
    console.print(Markdown(builtin.load(args.name).statement))
    return 0


def cmd_check(args, console: Console) -> int:
    source = read_program(Path(args.file))
    problem = builtin.load(args.problem) if args.problem else builtin.for_file(Path(args.file))
    with console.status(f"judging {args.file} on {problem.id} ({len(problem.tests)} tests)"):
        report = judge(source, problem, all_tests=args.all, fresh_process=args.fresh_process)
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        print_report(report, console)
    if report.warning:
        Console(stderr=True).print(f"[yellow]{report.warning}[/]")
    return 0 if report.passed else 1


def report_json(report: Report) -> dict:
    out = asdict(report)
    out["passed"] = report.passed
    for r in out["results"]:
        r["verdict"] = r["verdict"].value
    return out


def print_report(report: Report, console: Console) -> None:
    table = Table(title=f"{report.problem}: {report.n_passed}/{len(report.results)} passed")
    for col in ("#", "test", "verdict", "time", "details"):
        table.add_column(col, no_wrap=col != "details")
    for i, r in enumerate(report.results, 1):
        style = STYLE[r.verdict]
        time = f"{r.time_s:.2f} s" if r.verdict is not Verdict.NOT_RUN else ""
        table.add_row(str(i), r.name, f"[{style}]{r.verdict.value}[/]", time, r.message)
    console.print(table)
    failed = report.first_failure
    if failed and failed.detail:
        console.print(f"[bold]{failed.name}[/] ({failed.verdict.value}):")
        console.print(failed.detail, markup=False, highlight=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m problems", description="Empower's practice problems and judge.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="list the problems")
    show = sub.add_parser("show", help="print a problem's statement")
    show.add_argument("name")
    check = sub.add_parser("check", help="run a problem's tests against a program")
    check.add_argument("file", help="the program, e.g. problems/lava.py")
    check.add_argument("--problem", help="the problem's name (default: from the file name)")
    check.add_argument("--all", action="store_true", help="run every test, not stopping at the first failure")
    check.add_argument("--fresh-process", action="store_true", help="a new sandboxed interpreter per test (slower)")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--unsafe-no-sandbox", action="store_true",
                       help="where there is no sandbox (no user namespaces), run the program as you anyway")
    args = parser.parse_args(argv)
    if getattr(args, "unsafe_no_sandbox", False):
        allow_unsafe()
    console = Console()
    try:
        return {"list": cmd_list, "show": cmd_show, "check": cmd_check}[args.cmd](args, console)
    except (UsageError, builtin.UnknownProblem, JudgeError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
