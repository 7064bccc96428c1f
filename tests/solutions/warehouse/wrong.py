"""WRONG on purpose: throws a batch away on its expiry day instead of the day after.

An off-by-one in the NEXTDAY check (`<=` where `<` is meant).
"""
import heapq
import sys


def main() -> None:
    q = int(sys.stdin.readline())
    batches = []  # heap of [expiry day, units left]
    day = 1
    for _ in range(q):
        cmd, *args = sys.stdin.readline().split()
        if cmd == "RECEIVE":
            heapq.heappush(batches, [int(args[1]), int(args[0])])
        elif cmd == "SHIP":
            need = int(args[0])
            shipped = 0
            while need and batches:
                take = min(need, batches[0][1])
                batches[0][1] -= take
                need -= take
                shipped += take
                if batches[0][1] == 0:
                    heapq.heappop(batches)
            print(shipped)
        elif cmd == "NEXTDAY":
            day += 1
            thrown = 0
            while batches and batches[0][0] <= day:  # the bug: should be <
                thrown += heapq.heappop(batches)[1]
            print(thrown)
        else:
            print(sum(units for _, units in batches))


if __name__ == "__main__":
    main()
