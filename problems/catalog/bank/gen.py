"""Regenerate the large Bank Ledger test: python problems/catalog/bank/gen.py

Writes tests/NN-large.in.gz from a fixed seed and tests/NN-large.out.gz from the reference
solution; gzip with mtime=0 so that the files come out byte-for-byte the same every time.
`random_ledger` also makes the small random tests.
"""
import random
from pathlib import Path

from problems.testgen import save_large

HERE = Path(__file__).resolve().parent
SEED = 161803
NAME = "16-large"


def random_ledger(rng: random.Random, n: int, q: int, busy: int, unit: int, max_depth: int,
                  begin: float = 0.1) -> str:
    """q random commands on n accounts. Most commands touch the `busy` accounts 1..busy (so
    that balances build up and withdrawals sometimes fail); amounts are multiples of `unit`.
    Transactions nest up to about `max_depth` deep; `begin` is how often one is opened."""
    def account():
        return rng.randint(1, busy) if rng.random() < 0.98 else rng.randint(1, n)

    def amount(most):
        return unit * rng.randint(1, most)

    rest = 1 - 2 * begin  # the share of commands that are not about transactions
    depth = 0
    lines = [f"{n} {q}"]
    for _ in range(q):
        x = rng.random()
        if x < begin and depth < max_depth:
            lines.append("BEGIN")
            depth += 1
        elif x < 2 * begin:
            # Close a transaction, now and then with none open.
            if depth or rng.random() < 0.05:
                lines.append(rng.choice(["COMMIT", "ROLLBACK"]))
                depth = max(depth - 1, 0)
            else:
                lines.append("BEGIN")
                depth += 1
        elif x < 2 * begin + 0.4 * rest:
            lines.append(f"DEPOSIT {account()} {amount(30)}")
        elif x < 2 * begin + 0.55 * rest:
            lines.append(f"WITHDRAW {account()} {amount(10)}")
        elif x < 2 * begin + 0.8 * rest:
            lines.append(f"TRANSFER {account()} {account()} {amount(10)}")
        else:
            lines.append(f"BALANCE {account()}")
    lines.append(f"BALANCE {rng.randint(1, busy)}")  # so that something is always printed
    lines[0] = f"{n} {q + 1}"
    return "\n".join(lines) + "\n"


def main() -> None:
    text = random_ledger(random.Random(SEED), n=1_000_000, q=59_999, busy=200, unit=10,
                         max_depth=40, begin=0.2)
    save_large(HERE, NAME, text)


if __name__ == "__main__":
    main()
