"""How a program's answer is compared with the expected one.

The default follows LiveCodeBench's grader, so that our verdicts and the official ones agree:
stdin/stdout answers are compared line by line after stripping; a line that differs as a
string still matches when all its tokens are numbers with exactly equal Decimal values.
Functional answers are compared as JSON values (tuples become lists). The `float` mode
accepts numbers within a tolerance, for problems whose answers are real numbers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


@dataclass(frozen=True)
class Mismatch:
    message: str  # one line: where and how the answer differs
    diff: str  # a few lines of context, for a results table


@dataclass(frozen=True)
class Comparison:
    mode: str = "exact"  # "exact" (LiveCodeBench) or "float"
    tolerance: float = 1e-6  # absolute and relative, in "float" mode

    def stdout(self, got: str, expected: str) -> Mismatch | None:
        got_lines, want_lines = _lines(got), _lines(expected)
        for i, (g, w) in enumerate(zip(got_lines, want_lines)):
            if g != w and not self._same_numbers(g, w):
                return Mismatch(f"line {i + 1}: expected {_short(w)}, got {_short(g)}",
                                _context(got_lines, want_lines, i))
        if len(got_lines) != len(want_lines):
            i = min(len(got_lines), len(want_lines))
            if not got_lines:
                msg = f"no output; expected {_n_lines(want_lines)}, the first {_short(want_lines[0])}"
            elif len(got_lines) < len(want_lines):
                msg = f"{_n_lines(got_lines)}, expected {len(want_lines)}; line {i + 1} missing: {_short(want_lines[i])}"
            else:
                msg = f"{_n_lines(got_lines)}, expected {len(want_lines)}; extra line {i + 1}: {_short(got_lines[i])}"
            return Mismatch(msg, _context(got_lines, want_lines, i))
        return None

    def value(self, got_json: str, expected_json: str) -> Mismatch | None:
        try:
            got = json.loads(got_json)
        except ValueError:
            return Mismatch(f"return value is not JSON: {_short(got_json)}", "")
        want = json.loads(expected_json)
        if self._same_value(got, want):
            return None
        return Mismatch(f"returned {_short(json.dumps(got))}, expected {_short(json.dumps(want))}", "")

    def _same_numbers(self, got: str, want: str) -> bool:
        g, w = got.split(), want.split()
        if len(g) != len(w):
            return False
        if self.mode == "float":
            return all(a == b or _close(a, b, self.tolerance) for a, b in zip(g, w))
        try:
            return [Decimal(a) for a in g] == [Decimal(b) for b in w]
        except InvalidOperation:
            return False

    def _same_value(self, got, want) -> bool:
        if isinstance(got, list) and isinstance(want, list):
            return len(got) == len(want) and all(self._same_value(a, b) for a, b in zip(got, want))
        if isinstance(got, dict) and isinstance(want, dict):
            return got.keys() == want.keys() and all(self._same_value(got[k], want[k]) for k in got)
        if self.mode == "float" and _number(got) and _number(want):
            return math.isclose(got, want, rel_tol=self.tolerance, abs_tol=self.tolerance)
        return got == want  # as LiveCodeBench: plain equality (True == 1 there too)


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _close(a: str, b: str, tol: float) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=tol, abs_tol=tol)
    except ValueError:
        return False


def _lines(text: str) -> list[str]:
    text = text.strip()
    return [line.strip() for line in text.split("\n")] if text else []


def _n_lines(lines: list[str]) -> str:
    return f"{len(lines)} line" + ("" if len(lines) == 1 else "s")


def _short(s: str, n: int = 60) -> str:
    return repr(s if len(s) <= n else s[: n - 1] + "…")


def _context(got: list[str], want: list[str], i: int, around: int = 2) -> str:
    rows = []
    for j in range(max(0, i - around), min(max(len(got), len(want)), i + around + 1)):
        g = got[j] if j < len(got) else "<missing>"
        w = want[j] if j < len(want) else "<missing>"
        mark = "!" if g != w else " "
        rows.append(f"{mark}{j + 1:>6}  got {g[:40]!r:<44} want {w[:40]!r}")
    return "\n".join(rows)
