"""empower-tui: the editor (not built yet; this entry point is its placeholder)."""

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="empower-tui", description="Empower: the editor (not built yet).")
    parser.add_argument("file", nargs="?", metavar="FILE", help="the file to edit (e.g. problems/lava.py)")
    parser.parse_known_args(argv)
    print("empower-tui: the editor is not built yet. Available now: python -m problems --help", file=sys.stderr)
    return 2
