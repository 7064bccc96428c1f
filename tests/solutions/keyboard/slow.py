"""Correct but O(q^2): works out which modes are on by re-reading every key typed so far.

Each mode is "on" when its key has been pressed an odd number of times, which is true but
costs a pass over the whole history for every key.
"""
import sys

VOWELS = "aeiouAEIOU"


def presses(history, key):
    count = 0
    for k in history:
        if k == key:
            count += 1
    return count


def main() -> None:
    q = int(sys.stdin.readline())
    history = []
    out = []
    for _ in range(q):
        key = sys.stdin.readline()[0]
        ch = key
        if key not in "^~#":
            caps = presses(history, "^") % 2 == 1
            stutter = presses(history, "~") % 2 == 1
            numbers = presses(history, "#") % 2 == 1
            if numbers:
                # The keys typed since numbers-only was last switched on.
                start = len(history) - history[::-1].index("#")
                if ch.isdigit() or (ch == "." and "." not in history[start:]):
                    out.append(ch)
            else:
                if caps:
                    ch = ch.upper()
                if stutter and ch.isalpha() and ch not in VOWELS:
                    out.append(ch)
                out.append(ch)
        history.append(key)
    print("".join(out))


if __name__ == "__main__":
    main()
