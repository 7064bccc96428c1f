"""Correct but O(N) per BEGIN: every transaction saves a copy of all balances.

Rolling back is then just restoring the copy, but with a million accounts and tens of
thousands of transactions the copying never ends.
"""
import sys


def main() -> None:
    n, q = map(int, sys.stdin.readline().split())
    bal = [0] * (n + 1)
    saved = []  # a snapshot of all balances per open transaction
    for _ in range(q):
        cmd, *args = sys.stdin.readline().split()
        args = [int(v) for v in args]
        if cmd == "DEPOSIT":
            bal[args[0]] += args[1]
        elif cmd == "WITHDRAW":
            a, x = args
            if bal[a] < x:
                print("INSUFFICIENT FUNDS")
            else:
                bal[a] -= x
        elif cmd == "TRANSFER":
            a, b, x = args
            if bal[a] < x:
                print("INSUFFICIENT FUNDS")
            else:
                bal[a] -= x
                bal[b] += x
        elif cmd == "BALANCE":
            print(bal[args[0]])
        elif cmd == "BEGIN":
            saved.append(bal.copy())
        elif not saved:
            print("NO TRANSACTION")
        elif cmd == "COMMIT":
            saved.pop()
        else:
            bal = saved.pop()


if __name__ == "__main__":
    main()
