"""empower-evals: the benchmark (not built yet; this entry point is its placeholder)."""

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="empower-evals", description="Empower: the benchmark (not built yet).")
    parser.parse_known_args(argv)
    print("empower-evals: the benchmark is not built yet. Available now: python -m problems --help", file=sys.stderr)
    return 2
