"""Reference solution for Lava Trap: O(N^2 + Q)."""
import sys

STEP = {"U": (-1, 0), "D": (1, 0), "L": (0, -1), "R": (0, 1)}


def main() -> None:
    data = sys.stdin.read().split()
    n = int(data[0])
    grid = data[1 : 1 + n]
    r, c, d = int(data[1 + n]), int(data[2 + n]), data[3 + n]
    q = int(data[4 + n])
    pos = 5 + n
    out = []
    for _ in range(q):
        cmd = data[pos]
        pos += 1
        if cmd == "FACE":
            d = data[pos]
            pos += 1
        else:
            dr, dc = STEP[d]
            r += dr
            c += dc
            if grid[r - 1][c - 1] == "L":
                out.append("Game Over")
                break
        out.append(f"{r} {c} {d}")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
