"""empower-finetune: the trainer (not built yet; this entry point is its placeholder)."""

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="empower-finetune", description="Empower: the trainer (not built yet).")
    parser.add_argument("dir", nargs="?", metavar="DIR", help="the directory of your code")
    parser.parse_known_args(argv)
    print("empower-finetune: the trainer is not built yet. Available now: python -m problems --help", file=sys.stderr)
    return 2
