"""empower-evals: not built yet."""
import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="empower-evals")
    parser.parse_args(argv)
    print("empower-evals: not built yet", file=sys.stderr)
    return 2
