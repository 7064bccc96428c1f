"""Correct but O(n * K): lists the free lanes, and scans every lane again when none is free."""
import sys


def main() -> None:
    k, n = map(int, sys.stdin.readline().split())
    free_at = [0] * (k + 1)  # when each lane's last customer leaves; index 0 unused
    out = []
    for _ in range(n):
        t, d = map(int, sys.stdin.readline().split())
        free = [j for j in range(1, k + 1) if free_at[j] <= t]
        if free:
            lane, start = free[0], t
        else:
            # min() keeps the first of equal keys, so ties go to the smallest lane number.
            lane = min(range(1, k + 1), key=lambda j: free_at[j])
            start = free_at[lane]
        free_at[lane] = start + d
        out.append(f"{lane} {start + d}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
