"""Warehouse.

Stock arrives in batches that expire. Commands: RECEIVE q e (q units good up to and including
day e), SHIP q (ship up to q units, soonest-expiring first; print how many), NEXTDAY (the day
goes up by one and batches with e < day are thrown away; print how many units), STOCK (print
the units in stock). The warehouse starts empty on day 1.

Input: Q, then Q commands, one per line.
Example: RECEIVE 10 3 / RECEIVE 5 1 / SHIP 7 / NEXTDAY / STOCK prints 7, 0, 8.
"""
import sys


def read_q() -> int:
    """Read the number of commands."""
    return int(sys.stdin.readline())


def read_command() -> tuple[str, list[int]]:
    """Read the next command. Returns its name and its numbers, e.g. ("SHIP", [7])."""
    name, *args = sys.stdin.readline().split()
    return name, [int(v) for v in args]


def main() -> None:
    # Your code here.
    ...


if __name__ == "__main__":
    main()
