"""The coach from the command line, for scripts and debugging.

    python -m coach suggest --model SPEC [--policy base|base-N|threshold|trained] [--eta BITS]
                            [--format completion|chat] FILE --at LINE:COL [--json]

LINE and COL count from 1, as editors show them. Errors are one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from coach.types import CoachError, Context


def context_at(path: Path, at: str) -> Context:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CoachError(f"{path}: no such file") from None
    except (UnicodeDecodeError, IsADirectoryError):
        raise CoachError(f"{path}: not a UTF-8 text file") from None
    try:
        line, col = (int(x) for x in at.split(":"))
    except ValueError:
        raise CoachError(f"--at {at!r}: write LINE:COL, e.g. 12:5") from None
    lines = text.split("\n")
    if not 1 <= line <= len(lines) or not 1 <= col <= len(lines[line - 1]) + 1:
        raise CoachError(f"--at {at}: {path} has {len(lines)} lines (line {min(line, len(lines))} has "
                         f"{len(lines[min(max(line, 1), len(lines)) - 1])} characters)")
    offset = sum(len(x) + 1 for x in lines[: line - 1]) + col - 1
    return Context(text[:offset], text[offset:])


def cmd_suggest(args) -> int:
    from coach.engine import Coach

    ctx = context_at(Path(args.file), args.at)
    if args.prefix_only:
        ctx = Context(ctx.prefix)
    from coach.registry import default_policy

    policy = args.policy or default_policy(args.model)
    coach = Coach.from_spec(args.model, policy, args.eta, args.format, base=args.base,
                            temperature=args.temperature)
    try:
        s = coach.suggest(ctx)
    finally:
        coach.close()
    if args.json:
        print(json.dumps(asdict(s), indent=2))
    else:
        print(s.text)
        if s.dropped:
            hint = " (--prefix-only ignores the code after the cursor)" if "after the cursor" in s.dropped else ""
            print(f"nothing to suggest: {s.dropped}{hint}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coach", description="Empower's suggestion engine.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("suggest", help="print the suggestion at a position of a file")
    p.add_argument("file", help="a source file")
    p.add_argument("--at", required=True, metavar="LINE:COL", help="the cursor, 1-based (e.g. 12:5)")
    p.add_argument("--model", required=True, help="a model spec: a .gguf, an HF or adapter dir, openai:URL#NAME, a name")
    p.add_argument("--base", help="the base model of an adapter, when its config does not say")
    p.add_argument("--policy", help="base, base-N, threshold or trained (default: trained for a model "
                   "empower-finetune registered, else base)")
    p.add_argument("--eta", type=float, help="threshold in bits, for --policy threshold (default 4)")
    p.add_argument("--format", choices=["completion", "chat"], help="prompt format (default: the model's)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 is greedy (default)")
    p.add_argument("--prefix-only", action="store_true",
                   help="use only the code before the cursor, as if the rest were not written yet")
    p.add_argument("--json", action="store_true", help="text, tokens, log-probs and timings as JSON")
    args = parser.parse_args(argv)
    try:
        return cmd_suggest(args)
    except (CoachError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
