"""Regenerate the large Warehouse test: python problems/catalog/warehouse/gen.py

Writes tests/NN-large.in.gz from a fixed seed and tests/NN-large.out.gz from the reference
solution; gzip with mtime=0 so that the files come out byte-for-byte the same every time.
`random_log` also makes the small random tests.
"""
import random
from pathlib import Path

from problems.testgen import save_large

HERE = Path(__file__).resolve().parent
SEED = 173205
NAME = "14-large"


def random_log(rng: random.Random, q: int, units: int, shelf_life: int, order: int,
               day_every: int) -> str:
    """q random commands. Batches of 1..units units keep for 0..shelf_life days, orders are
    for 1..order units, and about one command in `day_every` moves to the next day."""
    day = 1
    lines = [str(q)]
    for i in range(q):
        x = rng.random()
        if i == q - 1 or x < 0.05:
            lines.append("STOCK")  # the last command always prints
        elif x < 0.05 + 1 / day_every:
            lines.append("NEXTDAY")
            day += 1
        elif x < 0.55:
            lines.append(f"RECEIVE {rng.randint(1, units)} {day + rng.randint(0, shelf_life)}")
        else:
            lines.append(f"SHIP {rng.randint(1, order)}")
    return "\n".join(lines) + "\n"


def main() -> None:
    text = random_log(random.Random(SEED), q=100_000, units=10, shelf_life=600, order=4,
                      day_every=200)
    save_large(HERE, NAME, text)


if __name__ == "__main__":
    main()
