"""empower-finetune scan: what would be learnt from in a directory, and what is left out and why.

    empower-finetune scan DIR [--lang python ...] [--max-bytes N] [--redact] [--json] [--tokenizer SPEC]

The work is finetune/corpus.py's `scan`; here are the command, the options every command that
reads a corpus shares (`corpus_options`, `load_corpus`) and the report it prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

from finetune import corpus as corpus_


def fail(message: str) -> int:
    """A command's one-line error (every empower-finetune command but train and export)."""
    print(f"empower-finetune: {message}", file=sys.stderr)
    return 2


def corpus_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="your code: a git repository or any directory")
    parser.add_argument("--lang", nargs="+", default=["python"], metavar="LANG",
                        help="languages, by file extension (default: python)")
    parser.add_argument("--max-bytes", type=int, default=None, metavar="N",
                        help="skip files larger than this (default 1,000,000)")
    parser.add_argument("--redact", action="store_true",
                        help="keep files holding secrets with the secrets replaced (default: leave them out)")


def load_corpus(args, console):
    from rich.progress import Progress

    from finetune import corpus

    unknown = [lang for lang in args.lang if lang not in corpus.LANGS]
    if unknown:
        raise corpus.ScanError(f"unknown language {unknown[0]!r}: use {', '.join(corpus.LANGS)}")
    options = dict(langs=tuple(args.lang), max_bytes=args.max_bytes or corpus.MAX_BYTES, redact=args.redact)
    if not console.is_terminal:  # a transient bar still leaves a blank line in a pipe
        return corpus.scan(args.dir, **options)
    with Progress(transient=True, console=console) as bar:
        task = bar.add_task("reading", total=None)
        return corpus.scan(args.dir, **options,
                           progress=lambda done, total: bar.update(task, completed=done, total=total))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="empower-finetune scan",
                                     description="What would be learnt from in DIR, and what is left out and why.")
    corpus_options(parser)
    parser.add_argument("--json", action="store_true", help="print the lists as JSON")
    parser.add_argument("--tokenizer", metavar="SPEC", help="count tokens with this model's tokenizer")
    args = parser.parse_args(argv)
    from rich.console import Console

    from finetune import corpus

    console = Console(stderr=args.json)
    try:
        found = load_corpus(args, console)
    except corpus.ScanError as e:
        return fail(str(e))
    if args.json:
        print(json.dumps({"root": str(found.root), "source": found.source,
                          "kept": [f.rel for f in found.files],
                          "skipped": [{"file": s.rel, "reason": s.reason, "detail": s.detail}
                                      for s in found.skipped]}, indent=2))
    else:
        count = None
        if args.tokenizer:
            try:
                count = token_counter(args.tokenizer)
            except Exception as e:  # one line, whatever the tokenizer's library raised
                return fail(f"the tokenizer of {args.tokenizer} does not load: {e}")
        print_report(found, console, count_tokens=count)
    return 0


def token_counter(spec: str):
    from transformers import AutoTokenizer

    from coach.specs import resolve

    resolved = resolve(spec, engine="hf")
    path = resolved.base.path if resolved.kind == "adapter" else resolved.path
    if path is None or resolved.kind not in ("hf", "adapter"):
        raise ValueError("needs a transformers model directory, Hub id or configured name")
    tokenizer = AutoTokenizer.from_pretrained(path)
    return lambda text: len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def print_report(corpus: corpus_.Corpus, console, count_tokens: Callable[[str], int] | None = None,
                 listed: int = 20) -> None:
    """A table of the files kept (per language: files, lines, bytes, tokens where count_tokens is
    given) and skipped (per reason), then the first `listed` skipped paths with their details."""
    from rich.markup import escape
    from rich.table import Table

    how = "git ls-files" if corpus.source == "git" else "a walk with .gitignore"
    table = Table(title=escape(str(corpus.root)), caption=f"listed by {how}")
    for column in ("", "files", "lines", "bytes") + (("tokens",) if count_tokens else ()):
        table.add_column(column, justify="left" if not column else "right")
    by_lang: dict[str, list[corpus_.SourceFile]] = {}
    for f in corpus.files:
        by_lang.setdefault(f.lang, []).append(f)
    for lang, files in by_lang.items():
        lines = sum(len(f.text.splitlines()) for f in files)
        row = [f"kept: {lang}", str(len(files)), f"{lines:,}", corpus_.size_text(sum(len(f.text.encode()) for f in files))]
        table.add_row(*row, *([f"{sum(count_tokens(f.text) for f in files):,}"] if count_tokens else []))
    for reason, n in corpus.counts().items():
        table.add_row(f"skipped: {reason}", str(n), *[""] * (2 + bool(count_tokens)))
    console.print(table)
    if redacted := sum(f.redacted for f in corpus.files):
        console.print(f"{redacted} secrets redacted in {sum(bool(f.redacted) for f in corpus.files)} files")
    if corpus.skipped and listed:
        detail = Table("skipped", "reason", "detail", box=None)
        for s in corpus.skipped[:listed]:
            detail.add_row(escape(s.rel), s.reason, escape(s.detail))
        console.print(detail)
        if len(corpus.skipped) > listed:
            console.print(f"... and {len(corpus.skipped) - listed} more")
