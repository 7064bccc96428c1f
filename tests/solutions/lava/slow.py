"""Correct but O(Q^2): recomputes the state by replaying every command so far.

Treating the state as a pure function of the command history is easy to get right and
far too slow once Q reaches the hundreds of thousands.
"""
import sys

STEP = {"U": (-1, 0), "D": (1, 0), "L": (0, -1), "R": (0, 1)}


def replay(grid, start, commands):
    """The player's (r, c, d) after all of `commands`, or None if they fell in the lava."""
    r, c, d = start
    for cmd in commands:
        if cmd[0] == "FACE":
            d = cmd[1]
        else:
            dr, dc = STEP[d]
            r, c = r + dr, c + dc
            if grid[r - 1][c - 1] == "L":
                return None
    return r, c, d


def main() -> None:
    n = int(sys.stdin.readline())
    grid = [sys.stdin.readline().strip() for _ in range(n)]
    r, c, d = sys.stdin.readline().split()
    start = (int(r), int(c), d)
    q = int(sys.stdin.readline())
    commands = []
    for _ in range(q):
        commands.append(sys.stdin.readline().split())
        state = replay(grid, start, commands)
        if state is None:
            print("Game Over")
            return
        print(*state)


if __name__ == "__main__":
    main()
