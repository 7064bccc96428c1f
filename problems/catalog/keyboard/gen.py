"""Regenerate the large Special Keyboard test: python problems/catalog/keyboard/gen.py

Writes tests/NN-large.in.gz from a fixed seed and tests/NN-large.out.gz from the reference
solution; gzip with mtime=0 so that the files come out byte-for-byte the same every time.
"""
import random
from pathlib import Path

from problems.testgen import save_large

HERE = Path(__file__).resolve().parent
SEED = 314159
NAME = "14-large"

# Key classes and how often each is typed: mostly words, some numbers, a few toggles.
KEYS = [
    ("etaoinshrdlucmfwyp", 55),
    ("ETAOINSHRDLY", 5),
    ("0123456789", 14),
    (".", 6),
    (" ", 12),
    (",!?-=", 3),
    ("^", 2),
    ("~", 2),
    ("#", 1),
]


def make_input(rng: random.Random, q: int) -> str:
    """q random keys; the last one is a letter typed with numbers-only off, so that at least
    one character is always written."""
    pools, weights = zip(*KEYS)
    keys = [rng.choice(pool) for pool in rng.choices(pools, weights, k=q - 1)]
    if keys.count("#") % 2:
        keys.append("#")
    else:
        keys.append("z")
    keys.append("k")
    return f"{len(keys)}\n" + "".join(k + "\n" for k in keys)


def main() -> None:
    text = make_input(random.Random(SEED), q=199_999)
    save_large(HERE, NAME, text)


if __name__ == "__main__":
    main()
