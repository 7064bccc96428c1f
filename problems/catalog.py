"""The built-in practice problems: records, and loading them from `problems/catalog/NAME/`.

A problem directory holds `problem.toml` (title, limits, comparison), `statement.md`,
`solution.py` (the reference, kept out of the starter file a person edits), `gen.py` (which
regenerates the large tests) and `tests/NN-slug.in` / `.out` (`.gz` for large ones). The
starter file a person opens is `problems/NAME.py`.
"""

from __future__ import annotations

import gzip
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from problems.compare import Comparison

ROOT = Path(__file__).parent
CATALOG = ROOT / "catalog"


@dataclass(frozen=True)
class TestCase:
    __test__ = False  # not a pytest class

    name: str
    input: str  # stdin; for functional problems, one JSON argument per line; for check, its code
    output: str  # expected stdout; for functional problems, the JSON return value; check: unused


@dataclass(frozen=True)
class Problem:
    name: str
    title: str
    statement: str
    tests: tuple[TestCase, ...]
    # "stdin", "functional" (LeetCode style: Solution().func_name(*args)) or "check" (HumanEval
    # style: the test's code defines check(candidate), called on the program's func_name)
    kind: str = "stdin"
    func_name: str | None = None
    summary: str = ""
    time_limit_s: float = 2.0
    memory_mb: int = 1024
    comparison: Comparison = field(default_factory=Comparison)
    starter: Path | None = None
    reference: Path | None = None
    data_dir: Path | None = None  # hidden from the programs being judged


class UnknownProblem(LookupError):
    pass


def names() -> list[str]:
    return sorted(p.name for p in CATALOG.iterdir() if (p / "problem.toml").is_file())


@lru_cache(maxsize=None)
def load(name: str) -> Problem:
    d = CATALOG / name
    if not (d / "problem.toml").is_file():
        known = ", ".join(names())
        raise UnknownProblem(f"unknown problem {name!r}; the problems are: {known}")
    meta = tomllib.loads((d / "problem.toml").read_text())
    starter = ROOT / f"{name}.py"
    return Problem(
        name=name,
        title=meta["title"],
        summary=meta.get("summary", ""),
        statement=(d / "statement.md").read_text(),
        tests=tuple(_read_tests(d / "tests")),
        kind=meta.get("kind", "stdin"),
        func_name=meta.get("func_name"),
        time_limit_s=float(meta.get("time_limit_s", 2.0)),
        memory_mb=int(meta.get("memory_mb", 1024)),
        comparison=Comparison(meta.get("compare", "exact"), float(meta.get("tolerance", 1e-6))),
        starter=starter if starter.is_file() else None,
        reference=d / "solution.py",
        data_dir=d,
    )


def _read_tests(d: Path):
    def text(p: Path) -> str:
        data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        return data.decode()

    for inp in sorted([*d.glob("*.in"), *d.glob("*.in.gz")], key=lambda p: p.name):
        stem = inp.name.removesuffix(".gz").removesuffix(".in")
        out = inp.with_name(inp.name.replace(".in", ".out", 1))
        yield TestCase(stem, text(inp), text(out))


def for_file(path: Path) -> Problem:
    """The problem a starter file (or a copy named like it) is for."""
    stem = Path(path).stem
    try:
        return load(stem)
    except UnknownProblem:
        raise UnknownProblem(
            f"cannot tell the problem from the file name {Path(path).name!r}; pass --problem "
            f"(one of: {', '.join(names())})") from None
