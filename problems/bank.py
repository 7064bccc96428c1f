"""Bank Ledger.

N accounts start at 0. Commands: DEPOSIT a x, WITHDRAW a x, TRANSFER a b x (print
"INSUFFICIENT FUNDS" and do nothing if a has less than x), BALANCE a (print it), BEGIN (open
a transaction, possibly nested), COMMIT (close the innermost one, keeping its changes inside
the enclosing one), ROLLBACK (undo all changes since the innermost BEGIN and close it).
COMMIT or ROLLBACK with none open prints "NO TRANSACTION".

Input: "N Q", then Q commands, one per line.
Example: DEPOSIT 1 5 / BEGIN / WITHDRAW 1 5 / BALANCE 1 / ROLLBACK / BALANCE 1 prints 0 then 5.
"""
import sys


def read_header() -> tuple[int, int]:
    """Read the number of accounts N and the number of commands Q."""
    n, q = sys.stdin.readline().split()
    return int(n), int(q)


def read_command() -> tuple[str, list[int]]:
    """Read the next command. Returns its name and its numbers, e.g. ("DEPOSIT", [1, 5])."""
    name, *args = sys.stdin.readline().split()
    return name, [int(v) for v in args]


def main() -> None:
    # Your code here.
    ...


if __name__ == "__main__":
    main()
