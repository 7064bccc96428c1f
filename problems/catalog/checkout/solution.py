"""Reference solution for Checkout Lanes: O(n log K) with two heaps."""
import heapq
import sys


def main() -> None:
    data = sys.stdin.buffer.read().split()
    k, n = int(data[0]), int(data[1])
    free = list(range(1, k + 1))  # lanes free now, by number (a sorted list is a heap)
    busy = []  # (leave_time, lane) for the lanes in use
    out = []
    for i in range(n):
        t, d = int(data[2 + 2 * i]), int(data[3 + 2 * i])
        # Lanes that emptied by time t are free, whatever order they emptied in.
        while busy and busy[0][0] <= t:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lane, start = heapq.heappop(free), t
        else:
            start, lane = heapq.heappop(busy)
        heapq.heappush(busy, (start + d, lane))
        out.append(f"{lane} {start + d}")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
