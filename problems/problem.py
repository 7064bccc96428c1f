"""One problem record for every source: the editor's practice problems, HumanEval,
LiveCodeBench and the functions of a person's own files (problems/datasets.py loads them).

    problem = problems.datasets.load("humaneval", ids=["HumanEval/3"])[0]
    report = problem.judge(source)          # the judge of problems/judge.py, in its sandbox
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from problems.compare import Comparison
from problems.sandbox import Limits

if TYPE_CHECKING:
    from problems.judge import Report


@dataclass(frozen=True)
class TestCase:
    __test__ = False  # not a pytest class

    name: str
    input: str  # stdin; for functional problems, one JSON argument per line; for check, its code
    output: str  # expected stdout; for functional problems, the JSON return value; check: unused


@dataclass(frozen=True)
class Problem:
    id: str  # "lava", "HumanEval/3", "abc311_c", "pkg/mod.py::Class.method"
    title: str
    statement: str = field(repr=False)
    tests: tuple[TestCase, ...] = field(repr=False)  # as the judge takes them; public ones first
    # "stdin"; "functional": Solution().<func_name>(*one JSON value a line); "check": a test's
    # code (HumanEval's) runs after the program and calls check(<func_name>); or "match": nothing
    # runs, the program is correct when it is the reference (a person's own code: problems.files)
    kind: str = "stdin"
    func_name: str | None = None
    starter: str = field(default="", repr=False)  # the code the programmer starts from
    reference: str | None = field(default=None, repr=False)  # a correct program, where known
    n_public: int = 0  # tests[:n_public] are the examples a programmer may see
    summary: str = ""  # one line for a picker
    difficulty: str = ""
    contest_date: datetime | None = None
    platform: str = ""
    source: str = ""  # the dataset: "builtin", "livecodebench", "humaneval", "files"
    time_limit_s: float = field(default=2.0, repr=False)  # per test
    memory_mb: int = field(default=1024, repr=False)
    comparison: Comparison = field(default_factory=Comparison, repr=False)
    prelude: str = field(default="", repr=False)  # code the judge runs before the program
    data_dir: Path | None = field(default=None, repr=False)  # hidden from judged programs
    starter_file: Path | None = field(default=None, repr=False)  # the file a person opens (builtin)
    # files: the file it came from (relative to the directory loaded, as in the id), and that
    # directory's Python files, relative path -> text: one mapping shared by every problem of a load
    file: str = field(default="", repr=False)
    package: Mapping[str, str] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in ("stdin", "functional", "check", "match"):
            raise ValueError(f"problem {self.id}: kind must be stdin, functional, check or match, not {self.kind!r}")
        if self.kind == "match" and self.reference is None:
            raise ValueError(f"problem {self.id}: a match problem needs its reference")
        if self.kind in ("functional", "check") and not self.func_name:
            raise ValueError(f"problem {self.id}: a {self.kind} problem needs func_name")

    @property
    def file_stem(self) -> str:
        """The name of the file its code is kept in, less ".py": the id, with what a file name
        cannot hold as "_" ("HumanEval/3": HumanEval_3.py)."""
        return re.sub(r"[^\w.-]", "_", self.id)

    def others(self) -> dict[str, str]:
        """The package's files but this problem's own (whose text holds the answer): what the
        benchmark shows the assistant, as the editor shows it the other open buffers. A new dict
        of the shared texts, none copied; empty where the problem comes from no package."""
        if not self.package:
            return {}
        return {rel: text for rel, text in self.package.items() if rel != self.file}

    def limits(self) -> Limits:
        # lcb_runner gives a program (timeout + 1) s per test + 5 s in all; the judge's 120 s
        # default would cut off problems with many tests.
        total = max(Limits().program_s, (self.time_limit_s + 1) * len(self.tests) + 5)
        return Limits(time_s=self.time_limit_s, memory_mb=self.memory_mb, program_s=total)

    def program(self, source: str) -> str:
        """The text the judge runs: the prelude, then the program."""
        return f"{self.prelude}\n{source}" if self.prelude else source

    def judge(self, source: str, **options) -> "Report":
        """Judge a program (without the prelude) by the problems/ judge with this problem's
        limits; options go to it. A match problem is judged by comparison alone: the code of a
        person's file is not run."""
        from problems import judge as judging  # the judge takes Problems: imported when judging

        if self.kind == "match":
            same = source.rstrip() == self.reference.rstrip()
            why = "" if same else "the code is not the reference: it stopped short or left it"
            verdict = judging.Verdict.PASSED if same else judging.Verdict.WRONG_ANSWER
            return judging.Report(self.id, [judging.TestResult("reference", verdict, message=why)])
        options.setdefault("limits", self.limits())
        return judging.judge(self.program(source), self, **options)
