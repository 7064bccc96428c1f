"""Regenerate the large Checkout Lanes test: python problems/catalog/checkout/gen.py

Writes tests/NN-large.in.gz from a fixed seed and tests/NN-large.out.gz from the reference
solution; gzip with mtime=0 so that the files come out byte-for-byte the same every time.
`random_day` also makes the small random tests.
"""
import random
from pathlib import Path

from problems.testgen import save_large

HERE = Path(__file__).resolve().parent
SEED = 141421
NAME = "14-large"


def random_day(rng: random.Random, k: int, n: int, rush: int, dmin: int, dmax: int,
               step: int = 1, lulls: int = 0) -> str:
    """n customers arriving about `rush` per minute, each needing dmin..dmax minutes (in
    multiples of `step`). At `lulls` random points the shop goes quiet for a long while, so
    that many lanes are free at once afterwards."""
    quiet = set(rng.sample(range(1, n), min(lulls, n - 1)))
    lines = [f"{k} {n}"]
    t = rng.randint(0, 3)
    for i in range(n):
        if i in quiet:
            t += rng.randint(dmax, 3 * dmax)
        elif rng.random() < 1 / rush:
            t += 1
        lines.append(f"{t} {step * rng.randint(dmin // step, dmax // step)}")
    return "\n".join(lines) + "\n"


def main() -> None:
    text = random_day(random.Random(SEED), k=25_000, n=40_000, rush=16, dmin=5_000, dmax=15_000,
                      step=250, lulls=1)
    save_large(HERE, NAME, text)


if __name__ == "__main__":
    main()
