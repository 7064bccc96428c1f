"""Snake.

A snake starts as one cell on an H x W board and makes Q moves (U D L R). Each move: the head
steps forward (off the board: dead); the tail stays put if the snake still owes growth (owed
drops by 1), else it is freed; if the head's cell is still part of the snake: dead; if the head
is on the current fruit, owed grows by its size and the next fruit appears.
Print "ALIVE L r c" (length, head) after all moves, or "DEAD k L" for a death on move k,
with L the length before that move.

Input: "H W", "r c" (start), F, F lines "r c s" (fruit in order), Q, the moves as one string.
Example: 2x2 board, start 1 1, one fruit "1 2 3", moves RDLURD -> "ALIVE 4 2 2".
"""
import sys


def read_ints() -> list[int]:
    """Read one line of whitespace-separated integers."""
    return [int(v) for v in sys.stdin.readline().split()]


def read_fruits() -> list[tuple[int, int, int]]:
    """Read F and then F lines of fruit. Returns a list of (r, c, size)."""
    count = int(sys.stdin.readline())
    return [tuple(read_ints()) for _ in range(count)]


def read_moves() -> str:
    """Read Q and then the line of Q moves. Returns the moves as a string."""
    sys.stdin.readline()
    return sys.stdin.readline().strip()


def main() -> None:
    # Your code here.
    ...


if __name__ == "__main__":
    main()
