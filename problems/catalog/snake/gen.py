"""Regenerate the large Snake test: python problems/catalog/snake/gen.py

Writes tests/NN-large.in.gz from a fixed seed and tests/NN-large.out.gz from the reference
solution; gzip with mtime=0 so that the files come out byte-for-byte the same every time.
`random_game` also makes the small random tests.
"""
import random
from collections import deque
from pathlib import Path

from problems.testgen import save_large

HERE = Path(__file__).resolve().parent
SEED = 271828
NAME = "16-large"
STEP = {"U": (-1, 0), "D": (1, 0), "L": (0, -1), "R": (0, 1)}


def render(h, w, start, fruits, moves) -> str:
    lines = [f"{h} {w}", f"{start[0]} {start[1]}", str(len(fruits))]
    lines += [f"{r} {c} {s}" for r, c, s in fruits]
    lines += [str(len(moves)), "".join(moves)]
    return "\n".join(lines) + "\n"


def random_game(rng: random.Random, h: int, w: int, q: int, max_size: int, greed: float = 0.6,
                die: bool = False) -> str:
    """A game played by a bot that mostly avoids dying and often heads for the fruit.

    Fruit is placed on a random free cell whenever the previous piece is eaten, so the input
    always keeps the promise that fruit never appears under the snake. With `die`, the bot
    makes a fatal move near the end (if one exists) and a few moves follow it."""
    start = (rng.randint(1, h), rng.randint(1, w))
    body = deque([start])  # head last
    cells = {start}
    owed = 0
    fruits = []

    def place_fruit():
        free = h * w - len(cells)
        if free == 0:
            return
        while True:
            cell = (rng.randint(1, h), rng.randint(1, w))
            if cell not in cells:
                fruits.append((*cell, rng.randint(1, max_size)))
                return

    def outcome(move):
        """None if the move kills the snake, else the new head."""
        r, c = body[-1]
        dr, dc = STEP[move]
        cell = (r + dr, c + dc)
        if not (1 <= cell[0] <= h and 1 <= cell[1] <= w):
            return None
        if cell in cells and not (owed == 0 and cell == body[0]):
            return None
        return cell

    def reachable(cell):
        """How many free cells the head could reach from `cell` (a flood fill)."""
        seen = {cell}
        todo = [cell]
        while todo:
            r, c = todo.pop()
            for dr, dc in STEP.values():
                nxt = (r + dr, c + dc)
                if (1 <= nxt[0] <= h and 1 <= nxt[1] <= w and nxt not in cells
                        and nxt not in seen):
                    seen.add(nxt)
                    todo.append(nxt)
        return len(seen)

    place_fruit()
    eaten = 0
    moves = []
    die_at = q - rng.randint(1, 4) if die else q
    while len(moves) < q:
        safe = [m for m in "UDLR" if outcome(m)]
        if len(moves) >= die_at or not safe:
            fatal = [m for m in "UDLR" if not outcome(m)]
            moves.append(rng.choice(fatal or "UDLR"))
            if fatal:
                moves += rng.choices("UDLR", k=q - len(moves))  # ignored by the game
                break
            continue
        # Prefer moves that leave the head enough room to keep going.
        room = {m: reachable(outcome(m)) for m in safe}
        best = max(room.values())
        safe = [m for m in safe if room[m] >= min(best, len(body) + owed + 1)]
        move = rng.choice(safe)
        if eaten < len(fruits) and rng.random() < greed:
            fr, fc = fruits[eaten][:2]
            r, c = body[-1]
            toward = [m for m in safe
                      if (m == "U" and fr < r) or (m == "D" and fr > r)
                      or (m == "L" and fc < c) or (m == "R" and fc > c)]
            if toward:
                move = rng.choice(toward)
        cell = outcome(move)
        moves.append(move)
        if owed:
            owed -= 1
        else:
            cells.discard(body.popleft())
        body.append(cell)
        cells.add(cell)
        if eaten < len(fruits) and fruits[eaten][:2] == cell:
            owed += fruits[eaten][2]
            eaten += 1
            place_fruit()
    return render(h, w, start, fruits, moves)


def serpentine(rng: random.Random, h: int, w: int, q: int) -> str:
    """A long game: the snake sweeps the board row by row, eating big fruit laid on its
    path, and grows to tens of thousands of cells; the last move turns it into its body."""
    path = []
    r, c = 1, 1
    while len(path) < q - 1:
        move = "R" if r % 2 else "L"
        if (move == "R" and c == w) or (move == "L" and c == 1):
            move = "D"
        dr, dc = STEP[move]
        r, c = r + dr, c + dc
        path.append((move, (r, c)))
    fruits = []
    k = 0
    while True:
        k += rng.randint(100, 2000)
        if k >= len(path) // 2:
            break
        fruits.append((*path[k][1], rng.randint(500, 2000)))
    moves = [m for m, _ in path]
    moves.append("U")  # back into the row above, which the snake still covers
    return render(h, w, (1, 1), fruits, moves)


def main() -> None:
    text = serpentine(random.Random(SEED), h=1000, w=997, q=200_000)
    save_large(HERE, NAME, text)


if __name__ == "__main__":
    main()
