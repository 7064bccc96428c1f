"""WRONG on purpose: looks the board up as grid[col][row], swapping row and column.

Passes whenever the lava happens to be symmetric, fails on most other boards.
"""
import sys

STEP = {"U": (-1, 0), "D": (1, 0), "L": (0, -1), "R": (0, 1)}


def main() -> None:
    n = int(sys.stdin.readline())
    grid = [sys.stdin.readline().strip() for _ in range(n)]
    r, c, d = sys.stdin.readline().split()
    r, c = int(r), int(c)
    q = int(sys.stdin.readline())
    for _ in range(q):
        parts = sys.stdin.readline().split()
        if parts[0] == "FACE":
            d = parts[1]
        else:
            dr, dc = STEP[d]
            r, c = r + dr, c + dc
            if grid[c - 1][r - 1] == "L":  # the bug: indices swapped
                print("Game Over")
                return
        print(r, c, d)


if __name__ == "__main__":
    main()
