"""WRONG on purpose: committing a nested transaction throws its undo log away.

The inner changes then survive a rollback of the enclosing transaction.
"""
import sys


def main() -> None:
    n, q = map(int, sys.stdin.readline().split())
    bal = [0] * (n + 1)
    logs = []  # one undo log per open transaction
    for _ in range(q):
        cmd, *args = sys.stdin.readline().split()
        args = [int(v) for v in args]
        if cmd == "DEPOSIT":
            a, x = args
            if logs:
                logs[-1].append((a, bal[a]))
            bal[a] += x
        elif cmd == "WITHDRAW":
            a, x = args
            if bal[a] < x:
                print("INSUFFICIENT FUNDS")
                continue
            if logs:
                logs[-1].append((a, bal[a]))
            bal[a] -= x
        elif cmd == "TRANSFER":
            a, b, x = args
            if bal[a] < x:
                print("INSUFFICIENT FUNDS")
                continue
            if logs:
                logs[-1] += [(a, bal[a]), (b, bal[b])]
            bal[a] -= x
            bal[b] += x
        elif cmd == "BALANCE":
            print(bal[args[0]])
        elif cmd == "BEGIN":
            logs.append([])
        elif not logs:
            print("NO TRANSACTION")
        elif cmd == "COMMIT":
            logs.pop()  # the bug: should be merged into the enclosing transaction's log
        else:
            for a, old in reversed(logs.pop()):
                bal[a] = old


if __name__ == "__main__":
    main()
