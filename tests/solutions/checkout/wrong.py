"""WRONG on purpose: one heap of (time the lane is free, lane).

When several lanes are free it picks the one that has been free the longest instead of the
smallest number. Fast, and right whenever at most one lane is free.
"""
import heapq
import sys


def main() -> None:
    k, n = map(int, sys.stdin.readline().split())
    lanes = [(0, lane) for lane in range(1, k + 1)]
    for _ in range(n):
        t, d = map(int, sys.stdin.readline().split())
        free_at, lane = heapq.heappop(lanes)
        leave = max(t, free_at) + d
        heapq.heappush(lanes, (leave, lane))
        print(lane, leave)


if __name__ == "__main__":
    main()
