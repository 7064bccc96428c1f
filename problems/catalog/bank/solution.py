"""Reference solution for Bank Ledger: O(N + Q) with one undo log and a stack of marks."""
import sys


def main() -> None:
    data = sys.stdin.buffer.read().split()
    n, q = int(data[0]), int(data[1])
    bal = [0] * (n + 1)
    log = []  # (account, balance before the change), oldest first
    marks = []  # len(log) when each open transaction began, innermost last
    out = []
    i = 2
    for _ in range(q):
        cmd = data[i]
        if cmd == b"DEPOSIT":
            a, x = int(data[i + 1]), int(data[i + 2])
            i += 3
            if marks:
                log.append((a, bal[a]))
            bal[a] += x
        elif cmd == b"WITHDRAW":
            a, x = int(data[i + 1]), int(data[i + 2])
            i += 3
            if bal[a] < x:
                out.append("INSUFFICIENT FUNDS")
                continue
            if marks:
                log.append((a, bal[a]))
            bal[a] -= x
        elif cmd == b"TRANSFER":
            a, b, x = int(data[i + 1]), int(data[i + 2]), int(data[i + 3])
            i += 4
            if bal[a] < x:
                out.append("INSUFFICIENT FUNDS")
                continue
            if marks:
                log.append((a, bal[a]))
                log.append((b, bal[b]))
            bal[a] -= x
            bal[b] += x
        elif cmd == b"BALANCE":
            out.append(str(bal[int(data[i + 1])]))
            i += 2
        else:
            i += 1
            if cmd == b"BEGIN":
                marks.append(len(log))
            elif not marks:
                out.append("NO TRANSACTION")
            elif cmd == b"COMMIT":
                # The entries stay in the log and now belong to the enclosing transaction.
                marks.pop()
                if not marks:
                    log.clear()
            else:  # ROLLBACK: undo newest first, so an account touched twice ends at its oldest value
                start = marks.pop()
                for j in range(len(log) - 1, start - 1, -1):
                    a, old = log[j]
                    bal[a] = old
                del log[start:]
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
