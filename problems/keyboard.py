"""Special Keyboard.

Replay q keystrokes and print the text that comes out. Three toggle keys switch a mode on or
off and are never written: ^ caps lock (letters in upper case), ~ stutter (consonants written
twice; y is a consonant), # numbers only (only digits and the first '.' since it was switched
on are written). Modes affect only later keys and can be on together.

Input: q, then q lines with one character each (a line may hold a single space).
Output: one line, the text written.
Example: the keys ^ a b ^ c print "ABc".
"""
import sys


def read_q() -> int:
    """Read the number of keys typed from the first line."""
    return int(sys.stdin.readline())


def read_next_char() -> str:
    """Read the next key: the first character of the next line (it may be a space)."""
    line = sys.stdin.readline()
    if not line:
        raise EOFError("expected another key")
    return line[0]


def main() -> None:
    # Your code here.
    ...


if __name__ == "__main__":
    main()
