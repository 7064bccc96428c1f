"""Reference solution for Snake: O(H*W + F + Q) with a deque of cells and an occupancy map."""
import sys
from collections import deque


def main() -> None:
    data = sys.stdin.read().split()
    h, w = int(data[0]), int(data[1])
    r, c = int(data[2]), int(data[3])
    f = int(data[4])
    fruits = [(int(data[5 + 3 * i]), int(data[6 + 3 * i]), int(data[7 + 3 * i])) for i in range(f)]
    moves = data[6 + 3 * f]
    step = {"U": (-1, 0), "D": (1, 0), "L": (0, -1), "R": (0, 1)}

    # Cells are numbered (r - 1) * w + (c - 1); the deque holds them tail first, head last.
    occupied = bytearray(h * w)
    head = (r - 1) * w + (c - 1)
    body = deque([head])
    occupied[head] = 1
    owed = 0
    eaten = 0
    fruit = (fruits[0][0] - 1) * w + fruits[0][1] - 1 if f else -1

    for k, move in enumerate(moves, 1):
        dr, dc = step[move]
        r += dr
        c += dc
        length = len(body)
        if not (1 <= r <= h and 1 <= c <= w):
            print("DEAD", k, length)
            return
        if owed:
            owed -= 1
        else:
            occupied[body.popleft()] = 0
        head = (r - 1) * w + (c - 1)
        if occupied[head]:
            print("DEAD", k, length)
            return
        occupied[head] = 1
        body.append(head)
        if head == fruit:
            owed += fruits[eaten][2]
            eaten += 1
            fruit = (fruits[eaten][0] - 1) * w + fruits[eaten][1] - 1 if eaten < f else -1
    print("ALIVE", len(body), r, c)


if __name__ == "__main__":
    main()
