"""Reference solution for Special Keyboard: O(q)."""
import sys

VOWELS = frozenset("aeiouAEIOU")


def main() -> None:
    lines = sys.stdin.read().split("\n")
    q = int(lines[0])
    caps = stutter = numbers = False
    dot_written = False  # has numbers-only let a '.' through since it was switched on?
    out = []
    for line in lines[1 : q + 1]:
        ch = line[0]
        if ch == "^":
            caps = not caps
        elif ch == "~":
            stutter = not stutter
        elif ch == "#":
            numbers = not numbers
            dot_written = False
        elif numbers:
            if ch.isdigit():
                out.append(ch)
            elif ch == "." and not dot_written:
                dot_written = True
                out.append(ch)
        else:
            if caps:
                ch = ch.upper()
            if stutter and ch.isalpha() and ch not in VOWELS:
                out.append(ch)
            out.append(ch)
    print("".join(out))


if __name__ == "__main__":
    main()
