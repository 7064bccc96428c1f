"""Lava Trap.

Walk a player over an N x N board of '.' (safe) and 'L' (lava) cells. Commands are
MOVE (one step forward) and FACE X (turn to X, one of U D L R). After each command print
"r c d" (1-indexed row, column, facing); if a MOVE lands on lava print "Game Over" and stop.

Input: N, the N board rows, "r c d", Q, then Q commands, one per line.
Example: board .L. / ... / ..., start "2 1 R", commands MOVE, FACE U, MOVE
prints "2 2 R", "2 2 U", "Game Over".
"""
import sys


def read_grid() -> tuple[int, list[str]]:
    """Read N and then the N rows of the board. Returns (n, rows)."""
    n = int(sys.stdin.readline())
    return n, [sys.stdin.readline().strip() for _ in range(n)]


def read_start() -> tuple[int, int, str]:
    """Read the starting row, column and facing. Returns (r, c, d)."""
    r, c, d = sys.stdin.readline().split()
    return int(r), int(c), d


def read_q() -> int:
    """Read the number of commands."""
    return int(sys.stdin.readline())


def read_command() -> list[str]:
    """Read the next command as its words: ["MOVE"] or ["FACE", "U"]."""
    return sys.stdin.readline().split()


def main() -> None:
    # Your code here.
    ...


if __name__ == "__main__":
    main()
