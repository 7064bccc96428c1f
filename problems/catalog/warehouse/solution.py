"""Reference solution for Warehouse: O(Q log Q) with a heap of batches by expiry day."""
import heapq
import sys


def main() -> None:
    data = sys.stdin.buffer.read().split()
    q = int(data[0])
    batches = []  # heap of [expiry day, units left]
    stock = 0
    day = 1
    out = []
    i = 1
    for _ in range(q):
        cmd = data[i]
        if cmd == b"RECEIVE":
            units, expiry = int(data[i + 1]), int(data[i + 2])
            i += 3
            heapq.heappush(batches, [expiry, units])
            stock += units
        elif cmd == b"SHIP":
            need = int(data[i + 1])
            i += 2
            shipped = 0
            while need and batches:
                top = batches[0]
                take = min(need, top[1])
                # Lowering the top's units keeps the heap valid: it only makes the top smaller.
                top[1] -= take
                need -= take
                shipped += take
                if top[1] == 0:
                    heapq.heappop(batches)
            stock -= shipped
            out.append(shipped)
        elif cmd == b"NEXTDAY":
            i += 1
            day += 1
            thrown = 0
            while batches and batches[0][0] < day:
                thrown += heapq.heappop(batches)[1]
            stock -= thrown
            out.append(thrown)
        else:  # STOCK
            i += 1
            out.append(stock)
    sys.stdout.write("\n".join(map(str, out)) + "\n")


if __name__ == "__main__":
    main()
