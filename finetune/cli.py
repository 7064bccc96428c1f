"""empower-finetune: not built yet."""
import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="empower-finetune")
    parser.parse_args(argv)
    print("empower-finetune: not built yet", file=sys.stderr)
    return 2
