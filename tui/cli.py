"""empower-tui: not built yet."""
import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="empower-tui")
    parser.parse_args(argv)
    print("empower-tui: not built yet", file=sys.stderr)
    return 2
