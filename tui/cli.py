"""empower-tui: the editor (`empower-tui [FILE]`), and `empower-tui stats`, the metrics of the
interaction log.

Flags beat the config file's [editor] table, which beats the defaults. With no model given or
configured, the editor uses the built-in default assistant (coach/builtin.py, DEFAULT_ASSISTANT:
chosen by measurement, see the README) with its policy, η and format:

    [editor]
    model = "memorizer.gguf"     # any model spec (coach/specs.py), or a [models.NAME] name
    policy = "threshold"         # base, base-N, threshold, trained
    eta = 4.0                    # bits, for threshold
    delay_ms = 100               # pause before asking for a suggestion
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from tui.ab import DEFAULT_BLOCK_MIN, IDLE_S


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # A subcommand beside a positional FILE: argparse cannot tell them apart, the first word can.
    if argv[:1] == ["stats"]:
        return stats(argv[1:])
    args = parser().parse_args(argv)
    try:
        from tui.app import EmpowerApp
    except ImportError as e:
        return _fail("empower-tui", f"the editor needs the editor extra (pip install 'empower[editor]'): {e}")
    try:
        settings, opened, problem = prepare(args)
    except BadInput as e:
        return _fail("empower-tui", str(e))
    if settings.ab is not None:  # a study is kept in the log: refuse it now, not after the screen opens
        from tui.log import NullLog, open_log

        log = open_log(settings.log_db)
        log.close()
        if isinstance(log, NullLog):
            return _fail("empower-tui", f"the A/B needs the interaction log: {log.reason}")
    EmpowerApp(opened, settings, problem, project=project_of(args.file)).run()
    return 0


def project_of(target: str | None):
    """The project Ctrl+P picks from: a directory given, or the git work tree a file is in."""
    from tui.project import Project

    if target is None:
        return None
    path = Path(target)
    if path.is_dir():
        return Project.around(path)
    project = Project.around(path if path.parent.is_dir() else Path.cwd())
    return project if (project.root / ".git").exists() else None


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="empower-tui",
        description="Empower: a code editor whose assistant completes the obvious and stops. "
                    "Grey text is a suggestion: Tab takes it, Ctrl+Right a word, Ctrl+Down a "
                    "line, Esc dismisses it; F1 lists every key.",
        epilog="empower-tui stats [--db PATH] [--session ID] [--json] [--csv FILE]: how the "
               "suggestions were used, per model and policy, from the interaction log "
               "(empower-tui stats --help).")
    parser.add_argument("file", nargs="?", metavar="FILE|DIR",
                        help="the file to edit (created on save), or a project's directory (Ctrl+P picks its "
                             "files; a file in a git repository opens its project too); none: pick a built-in problem")
    parser.add_argument("--model", metavar="SPEC", help="the assistant: a .gguf, an HF or adapter "
                        "directory, openai:URL#NAME, or a name from the config")
    parser.add_argument("--policy", help="base, base-N (e.g. base-20), threshold, trained "
                        "(default: trained for a model empower-finetune registered, else base)")
    parser.add_argument("--eta", type=float, metavar="BITS", help="η for --policy threshold")
    parser.add_argument("--format", choices=["completion", "chat"], help="prompt format "
                        "(default: the model's)")
    parser.add_argument("--delay", type=float, metavar="MS", help="pause before asking for a "
                        "suggestion, in ms (default 100)")
    parser.add_argument("--no-suggestions", action="store_true", help="start with suggestions off (F2)")
    parser.add_argument("--no-context", action="store_true", help="show the model the current file only, "
                        "not chunks of the other open files")
    parser.add_argument("--no-prefetch", action="store_true", help="do not let the model work ahead: "
                        "read a file when it opens, and the next suggestion while one is shown")
    parser.add_argument("--ab", nargs=2, metavar=("A", "B"), help="a blind A/B of two assistants on "
                        "yourself: each MODEL@POLICY (smollm2-135m@threshold@2, mine@trained; a model alone: "
                        "its default policy). They take turns in blocks, shown only as X and Y; F8, or quitting, "
                        "asks which helped more; `empower-tui stats --ab` reports the study. The same two "
                        "again go on with the same study")
    parser.add_argument("--ab-block", type=float, metavar="MIN", help="minutes of editing a turn lasts "
                        f"(default {DEFAULT_BLOCK_MIN:g}; pauses count at most {IDLE_S:g} s)")
    parser.add_argument("--problem", metavar="ID", help="the problem this file solves: a built-in one "
                        "(default: from the file name) or a HumanEval task (HumanEval/3); with no FILE, "
                        "its own file (HumanEval_3.py here, started from its prompt)")
    parser.add_argument("--db", metavar="PATH", help="the interaction log (default: "
                        "$EMPOWER_LOG_DB, else $XDG_DATA_HOME/empower/interactions.db)")
    parser.add_argument("--unsafe-no-sandbox", action="store_true", help="where the judge has no "
                        "sandbox (no user namespaces), run your program's tests (F5) without one, as you")
    return parser


class BadInput(Exception):
    """Refused before any screen opens: one line, exit 2."""


def prepare(args: argparse.Namespace):
    """Settings (flags over the config's [editor] table), the opened file and its problem."""
    from coach.policies import parse
    from coach.config import config_path, load_config
    from coach.types import CoachError
    from problems import builtin
    from problems.datasets import ProblemsError, find
    from tui.app import Settings
    from tui.files import FileRefused, open_file

    try:
        config = load_config().get("editor", {})
    except CoachError as e:
        raise BadInput(str(e)) from None
    if not isinstance(config, dict):
        raise BadInput(f"{config_path()}: [editor] must be a table")
    if args.unsafe_no_sandbox:
        from problems.sandbox import allow_unsafe

        allow_unsafe()
    delay_ms = args.delay if args.delay is not None else config.get("delay_ms", 100)
    model = args.model or config.get("model")
    default = None
    if model is None:
        from coach.builtin import default_assistant

        default = default_assistant()
        model = default.model if default else None
    policy = args.policy or config.get("policy") or (default.policy if default else None)
    if policy is None:
        from coach.registry import default_policy

        policy = default_policy(model)
    eta = args.eta if args.eta is not None else config.get("eta")
    if eta is None and default and policy == default.policy:
        eta = default.eta
    if args.ab:
        if args.model or args.policy or args.eta is not None:
            raise BadInput("--ab names both assistants (MODEL@POLICY each): leave out --model, --policy and --eta")
        model, policy, eta = None, "base", None
    settings = Settings(
        model=model,
        policy=policy,
        eta=eta,
        format=args.format or config.get("format") or (default.format if default else None),
        suggestions=not args.no_suggestions,
        prefetch=not args.no_prefetch,
        context=not args.no_context,
        log_db=args.db,
    )
    if args.ab:
        settings.ab = tuple(arm(spec) for spec in args.ab)
        if settings.ab[0].name == settings.ab[1].name:
            raise BadInput(f"--ab: both assistants are {settings.ab[0].name}; an A/B needs two")
        minutes = args.ab_block if args.ab_block is not None else DEFAULT_BLOCK_MIN
        if not minutes > 0:
            raise BadInput(f"--ab-block must be a number of minutes > 0, not {minutes:g}")
        settings.ab_block_s = 60 * minutes
    elif args.ab_block is not None:
        raise BadInput("--ab-block is the length of an A/B's turns: give --ab A B too")
    try:
        settings.delay_s = float(delay_ms) / 1000
        if settings.delay_s < 0:
            raise ValueError
    except (TypeError, ValueError):
        raise BadInput(f"the delay must be a number of milliseconds >= 0, not {delay_ms!r}") from None
    try:
        policy = parse(settings.policy, settings.eta)
    except CoachError as e:
        raise BadInput(str(e)) from None
    settings.eta = policy.eta_bits if settings.policy == "threshold" else settings.eta
    problem = None
    if args.problem:
        try:
            problem = find(args.problem)
        except ProblemsError as e:
            raise BadInput(str(e)) from None
    if args.file is None and problem is None or args.file is not None and Path(args.file).is_dir():
        return settings, None, None  # a built-in problem to pick, or a project's file (Ctrl+P)
    # With no FILE, a problem's own file: the built-in starter, or ID.py here ("HumanEval/3":
    # HumanEval_3.py), which starts from the problem's starter code until it is saved.
    path = args.file or problem.starter_file or f"{problem.file_stem}.py"
    try:
        opened = open_file(path)
    except FileRefused as e:
        raise BadInput(str(e)) from None
    if problem is not None and not opened.exists and problem.starter:
        opened = dataclasses.replace(opened, text=problem.starter)
    if problem is None and opened.path.stem in builtin.names():
        problem = builtin.load(opened.path.stem)
    return settings, opened, problem


def arm(spec: str):
    """An A/B's assistant, `MODEL@POLICY`; a model alone gets the policy it is served with:
    the default assistant's for its model, `trained` for one empower-finetune registered, else base."""
    from coach.builtin import default_assistant
    from coach.policies import parse, split_assistant
    from coach.registry import default_policy
    from coach.types import CoachError
    from tui.ab import Arm

    model, policy, eta = split_assistant(spec)
    fmt = None
    if policy is None:
        default = default_assistant()
        if default is not None and model == default.model:
            policy, eta, fmt = default.policy, default.eta, default.format
        else:
            policy = default_policy(model)
    try:
        parsed = parse(policy, eta)
    except CoachError as e:
        raise BadInput(f"--ab {spec}: {e}") from None
    return Arm(model, policy, parsed.eta_bits if policy == "threshold" else None, fmt)


def stats(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="empower-tui stats",
        description="Per model and policy: suggestions shown, acceptance rate, characters "
                    "accepted and later deleted per acceptance, share of the final file that "
                    "came from suggestions, median latency.")
    parser.add_argument("--db", metavar="PATH", help="the interaction log (default: $EMPOWER_LOG_DB, "
                        "else $XDG_DATA_HOME/empower/interactions.db)")
    parser.add_argument("--session", type=int, metavar="ID", help="only this session")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--csv", metavar="FILE", help="also write the events to FILE as CSV")
    parser.add_argument("--ab", action="store_true", help="the A/B study instead (empower-tui --ab A B): per "
                        "assistant, its measures over its blocks, X − Y paired over pairs of blocks with 95%% "
                        "intervals, and which felt more helpful; this shows which assistant was which")
    parser.add_argument("--study", type=int, metavar="ID", help="with --ab: this study (default: the latest)")
    args = parser.parse_args(argv)
    try:
        # Imported here so that `empower-tui --help` works without the editor extra.
        from tui import log, metrics
    except ImportError as e:
        return _fail(f"stats needs the editor extra (pip install 'empower[editor]'): {e}")
    path = args.db if args.db is not None else log.default_path()
    if args.ab or args.study is not None:
        return ab_stats(path, args)
    try:
        db = log.open_for_reading(path)
        result = metrics.compute(db, args.session)
        if args.csv:
            n = write_csv(log.events(db, args.session), args.csv)
            print(f"wrote {n} events to {args.csv}", file=sys.stderr)
    except (log.LogUnavailable, LookupError) as e:
        return _fail(str(e))
    except OSError as e:
        return _fail(f"cannot write {args.csv}: {e.strerror or e}")
    for s in result.skipped:
        print(f"empower-tui stats: skipped session {s.session}: {s.reason}", file=sys.stderr)
    return _show(result, path, args.json, print_table)


def _show(result, path, as_json: bool, table) -> int:
    """A stats result as JSON (with the log's path) or as `table` draws it."""
    if as_json:
        print(json.dumps({"db": str(path), **dataclasses.asdict(result)}, indent=2))
    else:
        table(result, str(path))
    return 0


def ab_stats(path, args) -> int:
    from tui import ab_report, log

    if args.session is not None or args.csv:
        return _fail("--ab reports a study: --session and --csv are for the plain stats")
    try:
        report = ab_report.compute(log.open_for_reading(path), args.study)
    except (log.LogUnavailable, LookupError) as e:
        return _fail(str(e.args[0]) if e.args else str(e))
    for why in report.skipped:
        print(f"empower-tui stats: skipped {why}", file=sys.stderr)
    return _show(report, path, args.json, print_ab)


def print_ab(r, path: str) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from rich.text import Text

    from coach.policies import policy_name, split_assistant
    from tui.ab_report import said

    console = Console()
    when = datetime.fromtimestamp(r.started_at).strftime("%Y-%m-%d %H:%M")
    arms = Table(title=f"A/B study {r.study} (since {when}) in {path}", box=box.SIMPLE_HEAD, pad_edge=False)
    arms.add_column("assistant", overflow="fold", min_width=14)
    for name in ["blocks", "min", "shown\n/min", "acc", "del\n/acc", "share", "median\nlatency"]:
        arms.add_column(name, justify="right", no_wrap=True)
    for a in r.arms:
        m = a.measures
        model, policy, eta = split_assistant(a.assistant)
        arms.add_row(Text.assemble((a.label, "bold"), " ", model, "\n", "  ", (policy_name(policy, eta), "dim")), str(a.blocks), f"{a.active_min:.1f}", _num(m["shown_per_min"]),
                     _pct(m["acceptance"]), _num(m["deleted_per_acceptance"]), _pct(m["share"]),
                     "-" if m["latency_ms"] is None else f"{m['latency_ms']:.0f} ms")
    console.print(arms)
    diffs = Table(title=f"X − Y, paired over {r.pairs} pair(s) of blocks (bootstrap 95% interval)",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ["measure", "X − Y", "95% interval", "pairs"]:
        diffs.add_column(name, justify="left" if name == "measure" else "right")
    names = {"shown_per_min": "shown / min", "acceptance": "acceptance", "deleted_per_acceptance":
             "deleted / acc", "share": "share", "latency_ms": "median latency (ms)"}
    for d in r.paired:
        scale, fmt = (100, "{:+.1f} pt") if d.measure in ("acceptance", "share") else (1, "{:+.1f}")
        diffs.add_row(names[d.measure], "-" if d.diff is None else fmt.format(scale * d.diff),
                      "-" if d.low is None else f"[{fmt.format(scale * d.low)}, {fmt.format(scale * d.high)}]",
                      str(d.n_pairs))
    console.print(diffs)
    console.print(f"preference: {said(r.preference)}" + (
        f" (said {len(r.preferences)} time(s): " + ", ".join(
            f"{c} {n}" for c, n in sorted(Counter(p.choice for p in r.preferences).items())) + ")"
        if r.preferences else ""))
    console.print("acc: suggestions taken / shown; del/acc: characters taken and deleted later, per acceptance; "
                  "share: of the code written in its blocks and kept, the part its suggestions wrote", style="dim")


def _fail(who: str, message: str | None = None) -> int:
    if message is None:  # the stats command's one-argument form
        who, message = "empower-tui stats", who
    print(f"{who}: {message}", file=sys.stderr)
    return 2


CSV_COLUMNS = ["session", "seq", "time", "kind", "offset", "start", "end", "text", "data"]


def write_csv(events, path: str) -> int:
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(CSV_COLUMNS)
        for ev in events:
            when = datetime.fromtimestamp(ev.time, timezone.utc).isoformat(timespec="milliseconds")
            out.writerow([ev.session, ev.seq, when, ev.kind, ev.offset, ev.start, ev.end, ev.text,
                          json.dumps(ev.data) if ev.data else ""])
            n += 1
    return n


def print_table(result, path: str) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    if not result.groups:
        console.print(f"no sessions in {path}")
        return
    # Compact on purpose: it must stay readable in an 80-column terminal beside long specs.
    table = Table(title=f"{len(result.sessions)} session(s) in {path}", box=box.SIMPLE_HEAD,
                  pad_edge=False)
    # One column for both, policy under the model: specs are long (openai:http://...#name) and
    # the table must stay readable in 80 columns.
    table.add_column("model\npolicy", overflow="fold", min_width=14)
    for name in ["sess", "shown", "acc", "rate", "chars\n/acc", "del\n/acc", "share",
                 "median\nlatency"]:
        table.add_column(name, justify="right", no_wrap=True)
    for g in result.groups:
        table.add_row(Text.assemble(g.model or "-", "\n", (g.policy or "-", "dim")),
                      str(g.sessions), str(g.shown), str(g.accepted), _pct(g.acceptance_rate),
                      _num(g.chars_accepted_per_acceptance), _num(g.chars_deleted_per_acceptance),
                      _pct(g.final_share),
                      "-" if g.median_latency_ms is None else f"{g.median_latency_ms:.0f} ms")
    console.print(table)
    console.print("acc: suggestions taken (whole or in part); chars/acc: characters taken per "
                  "acceptance; del/acc: of those, deleted later; share: of the final files, "
                  "from suggestions", style="dim")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"
