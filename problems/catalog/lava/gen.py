"""Regenerate the large Lava Trap test: python problems/catalog/lava/gen.py

Writes tests/13-large.in.gz from a fixed seed and tests/13-large.out.gz from the reference
solution; gzip with mtime=0 so that the files come out byte-for-byte the same every time.
"""
import random
from pathlib import Path

from problems.testgen import save_large

HERE = Path(__file__).resolve().parent
SEED = 20240613
NAME = "13-large"
STEP = {"U": (-1, 0), "D": (1, 0), "L": (0, -1), "R": (0, 1)}


def make_input(rng: random.Random, n: int, q: int, lava: float, die: bool) -> str:
    """A board with about `lava` of its cells on fire and a walk of q commands that never
    leaves the board; it only steps onto lava at the very end, and only if `die`."""
    grid = [["L" if rng.random() < lava else "." for _ in range(n)] for _ in range(n)]
    r, c = rng.randint(1, n), rng.randint(1, n)
    grid[r - 1][c - 1] = "."
    d = rng.choice("UDLR")
    lines = [str(n), *("".join(row) for row in grid), f"{r} {c} {d}", str(q)]
    for _ in range(q - 2 if die else q):
        dr, dc = STEP[d]
        nr, nc = r + dr, c + dc
        safe = 1 <= nr <= n and 1 <= nc <= n and grid[nr - 1][nc - 1] == "."
        # Walk in straight runs: keep going while it is safe, turn now and then.
        if safe and rng.random() < 0.8:
            lines.append("MOVE")
            r, c = nr, nc
        else:
            d = rng.choice("UDLR")
            lines.append(f"FACE {d}")
    if die:
        # Turn towards a neighbouring lava cell, if there is one, and step in.
        hot = [k for k, (dr, dc) in STEP.items()
               if 1 <= r + dr <= n and 1 <= c + dc <= n and grid[r + dr - 1][c + dc - 1] == "L"]
        d = rng.choice(hot or ["U"])
        lines.append(f"FACE {d}")
        dr, dc = STEP[d]
        inside = 1 <= r + dr <= n and 1 <= c + dc <= n
        lines.append("MOVE" if inside else "FACE D")
    return "\n".join(lines) + "\n"


def main() -> None:
    text = make_input(random.Random(SEED), n=50, q=150_000, lava=0.25, die=True)
    save_large(HERE, NAME, text)


if __name__ == "__main__":
    main()
