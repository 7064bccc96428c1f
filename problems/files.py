"""The functions of a directory of a person's own code as the `files` dataset: each episode starts
from a file up to a function's body and must finish that body; nothing is run.

    from problems.datasets import load
    probs = load("files", path="~/my-code", per_file=8)
    probs[0].others()      # the directory's other Python files, path -> text (its own left out)

Each problem also knows the directory's other files, so that the benchmark can put chunks of
them ahead of the code as the editor does with its other open buffers (coach/related.py).
"""

from __future__ import annotations

import ast
from pathlib import Path
from types import MappingProxyType

from problems.datasets import ProblemSet, ProblemsError, Skipped, check_found, dataset, id_set
from problems.problem import Problem

FILES_PER_FILE = 8  # functions taken from one file at most, spread over it
FILES_BODY_LINES = (2, 30)  # a body shorter says nothing; longer, the rounds could not finish it


def _functions(tree: ast.Module):
    """Top-level functions and the methods of top-level classes, with their qualified names
    (nested functions are left out: their start lies inside another episode's reference)."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield f"{node.name}.{item.name}", item


def file_problems(rel: str, text: str, per_file: int = FILES_PER_FILE, package=None) -> list[Problem]:
    """The episodes of one file: for each function whose body (after its docstring) is 2-30
    lines, the code up to that body is the start and the code up to the function's end the
    reference. At most `per_file`, evenly spread over the file. A file that does not parse has none.
    `package`: the directory's files (rel -> text) the problems share, this one among them."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    found = []
    for qualname, fn in _functions(tree):
        body = fn.body[1:] if (fn.body and isinstance(fn.body[0], ast.Expr)
                               and isinstance(fn.body[0].value, ast.Constant)
                               and isinstance(fn.body[0].value.value, str)) else fn.body
        if not body or body[0].lineno <= fn.lineno:  # a one-line `def f(): return x`
            continue
        first, last = body[0].lineno, fn.end_lineno
        if not FILES_BODY_LINES[0] <= last - first + 1 <= FILES_BODY_LINES[1]:
            continue
        start, reference = text[:offsets[first - 1]], text[:offsets[last]]
        doc = ast.get_docstring(fn) or f"finish {qualname} as the file's author did"
        found.append(Problem(f"{rel}::{qualname}", qualname, doc, (), kind="match", starter=start,
                             reference=reference, source="files", platform="files", file=rel,
                             package=package))
    if len(found) > per_file:
        step = len(found) / per_file
        found = [found[int(i * step)] for i in range(per_file)]
    return found


@dataset("files")
def load_files(path: str | Path, *, ids=None, limit: int | None = None, per_file: int = FILES_PER_FILE) -> ProblemSet:
    """Functions of the Python files under `path` (sorted by path; hidden directories skipped),
    as episodes of finishing a person's own code: see `file_problems`. The oracle replays the
    reference; an episode is correct when the reference was finished within the rounds."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ProblemsError(f"{path}: not a directory (the files dataset reads a directory of code)")
    wanted, out, seen = id_set(ids), ProblemSet(), set()
    # Every Python file the dataset reads counts as the package's (all of them, not only those
    # with episodes, nor only those before --limit): the editor's picker offers a project's files,
    # and which of them a person would have open cannot be known, so the assistant may draw on any
    # (coach/related.py keeps the few chunks that share the most names with the code at hand).
    # Read once, shared read-only by every problem of this load.
    texts: dict[str, str] = {}
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root).as_posix()
        if any(part.startswith(".") for part in f.relative_to(root).parts) or not f.is_file():
            continue
        try:
            texts[rel] = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            out.skipped.append(Skipped(rel, str(exc)))
    package = MappingProxyType(texts)
    for rel, text in texts.items():
        for p in file_problems(rel, text, per_file, package):
            seen.add(p.id)
            if wanted is None or p.id in wanted:
                out.append(p)
            if limit is not None and len(out) >= limit:
                return out
    check_found(wanted, seen, str(root))
    if not out and not seen:
        raise ProblemsError(f"{path}: no Python function with a body of {FILES_BODY_LINES[0]}-{FILES_BODY_LINES[1]} lines")
    return out
