"""WRONG on purpose: checks for a collision before the tail moves.

So the head may never step into the cell the tail is leaving, and a snake circling in a
tight loop dies when it should not.
"""
import sys
from collections import deque

STEP = {"U": (-1, 0), "D": (1, 0), "L": (0, -1), "R": (0, 1)}


def main() -> None:
    h, w = map(int, sys.stdin.readline().split())
    r, c = map(int, sys.stdin.readline().split())
    fruits = [tuple(map(int, sys.stdin.readline().split())) for _ in range(int(sys.stdin.readline()))]
    sys.stdin.readline()
    moves = sys.stdin.readline().strip()

    body = deque([(r, c)])
    cells = {(r, c)}
    owed = 0
    nxt = 0
    for k, move in enumerate(moves, 1):
        dr, dc = STEP[move]
        r, c = r + dr, c + dc
        if not (1 <= r <= h and 1 <= c <= w) or (r, c) in cells:  # the bug: tail not moved yet
            print("DEAD", k, len(body))
            return
        if owed:
            owed -= 1
        else:
            cells.discard(body.popleft())
        body.append((r, c))
        cells.add((r, c))
        if nxt < len(fruits) and fruits[nxt][:2] == (r, c):
            owed += fruits[nxt][2]
            nxt += 1
    print("ALIVE", len(body), r, c)


if __name__ == "__main__":
    main()
