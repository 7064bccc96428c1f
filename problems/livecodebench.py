"""LiveCodeBench's code_generation_lite problems as the `livecodebench` dataset: rows read from
local test*.jsonl (or Parquet) files, or downloaded into the Hugging Face cache when no path is
given; their tests decoded without unpickling anything.

    from problems.datasets import load
    probs = load("livecodebench", path="~/data/lcb", release="release_v6", start="2025-01-01")
"""

from __future__ import annotations

import base64
import json
import pickletools
import re
import sys
import zlib
from datetime import date, datetime
from pathlib import Path

from problems.datasets import (ProblemSet, ProblemsError, as_row, bad_row, check_found, check_limit, dataset,
                               id_set, rows)
from problems.problem import Problem, TestCase

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
MAX_INFLATED = 1 << 30  # a private-test blob larger than this once inflated is refused (zip bomb)
_ROW_FIELDS = ("question_title", "question_content", "platform", "question_id", "contest_id",
               "contest_date", "starter_code", "difficulty", "public_test_cases",
               "private_test_cases", "metadata")


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
    wanted = id_set(ids)
    check_limit(limit)
    if path is None:
        files = download(release or "release_latest", cache_dir=cache_dir, revision=revision, offline=offline)
        data_dir = _hideable(files[0].parents[2])  # <repo cache>/snapshots/<commit>/file
    else:
        files = local_files(path, release)
        data_dir = _hideable(files[0].parent)
    out, seen = ProblemSet(), set()
    for f in files:
        for where, row in rows(f):
            try:
                row = as_row(row)
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
                bad_row(out, f.parent, where, f"missing {exc}" if isinstance(exc, KeyError) else str(exc), strict)
            if limit is not None and len(out) >= limit:
                return out  # the rest of the files is not read, so no check of missing ids
    check_found(wanted, seen, ", ".join(p.name for p in files))
    return out
