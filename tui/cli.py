"""empower-tui: the editor (not built yet; this entry point is its placeholder), and
`empower-tui stats`, the metrics of the interaction log."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from datetime import datetime, timezone


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # A subcommand beside a positional FILE: argparse cannot tell them apart, the first word can.
    if argv[:1] == ["stats"]:
        return stats(argv[1:])
    parser = argparse.ArgumentParser(
        prog="empower-tui", description="Empower: the editor (not built yet).",
        epilog="empower-tui stats [--db PATH] [--session ID] [--json] [--csv FILE]: how the "
               "suggestions were used, per model and policy, from the interaction log "
               "(empower-tui stats --help).")
    parser.add_argument("file", nargs="?", metavar="FILE", help="the file to edit (e.g. problems/lava.py)")
    parser.parse_known_args(argv)
    print("empower-tui: the editor is not built yet. Available now: python -m problems --help", file=sys.stderr)
    return 2


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
    args = parser.parse_args(argv)
    try:
        # Imported here so that `empower-tui --help` works without the editor extra.
        from tui import log, metrics
    except ImportError as e:
        return _fail(f"stats needs the editor extra (pip install 'empower[editor]'): {e}")
    path = args.db if args.db is not None else log.default_path()
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
    if args.json:
        print(json.dumps({"db": str(path), **dataclasses.asdict(result)}, indent=2))
    else:
        print_table(result, str(path))
    return 0


def _fail(message: str) -> int:
    print(f"empower-tui stats: {message}", file=sys.stderr)
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
