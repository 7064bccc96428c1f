"""The built-in practice problems, from `problems/catalog/NAME/`, as the `builtin` dataset.

A problem directory holds `problem.toml` (title, limits, comparison), `statement.md`,
`solution.py` (the reference, kept out of the starter file a person edits), `gen.py` (which
regenerates the large tests) and `tests/NN-slug.in` / `.out` (`.gz` for large ones). The
starter file a person opens is `problems/NAME.py`.

    from problems.builtin import load, names
    lava = load("lava")                       # a Problem (problems/problem.py)
"""

from __future__ import annotations

import gzip
import tomllib
from functools import lru_cache
from pathlib import Path

from problems.compare import Comparison
from problems.datasets import ProblemSet, ProblemsError, check_found, dataset, id_set
from problems.problem import Problem, TestCase

ROOT = Path(__file__).parent
CATALOG = ROOT / "catalog"


class UnknownProblem(ProblemsError, LookupError):
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
    starter, reference = ROOT / f"{name}.py", d / "solution.py"
    tests = tuple(_read_tests(d / "tests"))
    return Problem(
        id=name,
        title=meta["title"],
        summary=meta.get("summary", ""),
        statement=(d / "statement.md").read_text(),
        tests=tests,
        kind=meta.get("kind", "stdin"),
        func_name=meta.get("func_name"),
        starter=starter.read_text() if starter.is_file() else "",
        starter_file=starter if starter.is_file() else None,
        reference=reference.read_text() if reference.is_file() else None,
        n_public=next((i for i, t in enumerate(tests) if "example" not in t.name), len(tests)),
        platform="builtin",
        source="builtin",
        time_limit_s=float(meta.get("time_limit_s", 2.0)),
        memory_mb=int(meta.get("memory_mb", 1024)),
        comparison=Comparison(meta.get("compare", "exact"), float(meta.get("tolerance", 1e-6))),
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


@dataset("builtin")
def load_builtin(*, ids=None, limit: int | None = None) -> ProblemSet:
    wanted, out = id_set(ids), ProblemSet()
    known = names()
    check_found(wanted, set(known), "the built-in problems")
    for name in known:
        if wanted is not None and name not in wanted:
            continue
        if limit is not None and len(out) >= limit:
            break
        out.append(load(name))
    return out
