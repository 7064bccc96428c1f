"""Correct but O(Q * length): the snake is a plain list, searched on every move.

`cell in body` and `body.insert(0, ...)` each walk the whole snake, which is fine for a short
snake and hopeless for one that is a hundred thousand cells long.
"""
import sys

STEP = {"U": (-1, 0), "D": (1, 0), "L": (0, -1), "R": (0, 1)}


def main() -> None:
    h, w = map(int, sys.stdin.readline().split())
    r, c = map(int, sys.stdin.readline().split())
    fruits = [tuple(map(int, sys.stdin.readline().split())) for _ in range(int(sys.stdin.readline()))]
    sys.stdin.readline()
    moves = sys.stdin.readline().strip()

    body = [(r, c)]  # head first
    owed = 0
    nxt = 0
    for k, move in enumerate(moves, 1):
        dr, dc = STEP[move]
        r, c = r + dr, c + dc
        length = len(body)
        if not (1 <= r <= h and 1 <= c <= w):
            print("DEAD", k, length)
            return
        if owed:
            owed -= 1
        else:
            body.pop()
        if (r, c) in body:
            print("DEAD", k, length)
            return
        body.insert(0, (r, c))
        if nxt < len(fruits) and fruits[nxt][:2] == (r, c):
            owed += fruits[nxt][2]
            nxt += 1
    print("ALIVE", len(body), r, c)


if __name__ == "__main__":
    main()
