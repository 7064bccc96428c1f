"""Correct but O(Q * batches): keeps the batches in a plain list and searches it every time."""
import sys


def main() -> None:
    q = int(sys.stdin.readline())
    batches = []  # [expiry day, units left], in arrival order
    day = 1
    out = []
    for _ in range(q):
        cmd, *args = sys.stdin.readline().split()
        if cmd == "RECEIVE":
            batches.append([int(args[1]), int(args[0])])
        elif cmd == "SHIP":
            need = int(args[0])
            shipped = 0
            while need and batches:
                soonest = min(range(len(batches)), key=lambda j: batches[j][0])
                take = min(need, batches[soonest][1])
                batches[soonest][1] -= take
                need -= take
                shipped += take
                if batches[soonest][1] == 0:
                    batches.pop(soonest)
            out.append(shipped)
        elif cmd == "NEXTDAY":
            day += 1
            out.append(sum(units for expiry, units in batches if expiry < day))
            batches = [b for b in batches if b[0] >= day]
        else:
            out.append(sum(units for _, units in batches))
    print("\n".join(map(str, out)))


if __name__ == "__main__":
    main()
