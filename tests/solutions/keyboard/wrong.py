"""WRONG on purpose: lets only the first '.' of the whole input through numbers-only mode.

The flag is never reset when the mode is switched on again, so a second numbers-only
stretch drops its dot.
"""
import sys

VOWELS = "aeiouAEIOU"


def main() -> None:
    q = int(sys.stdin.readline())
    caps = stutter = numbers = False
    seen_dot = False
    out = ""
    for _ in range(q):
        ch = sys.stdin.readline()[0]
        if ch == "^":
            caps = not caps
        elif ch == "~":
            stutter = not stutter
        elif ch == "#":
            numbers = not numbers  # the bug: seen_dot should start over here
        elif numbers:
            if ch.isdigit():
                out += ch
            elif ch == "." and not seen_dot:
                seen_dot = True
                out += ch
        else:
            if caps:
                ch = ch.upper()
            if stutter and ch.isalpha() and ch not in VOWELS:
                out += ch
            out += ch
    print(out)


if __name__ == "__main__":
    main()
