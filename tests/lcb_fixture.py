"""A LiveCodeBench-format directory built from the built-in problems, for tests.

`build(dir)` writes test.jsonl, test2.jsonl and test3.jsonl in the code_generation_lite row format
(the same fields, the private tests encoded as the dataset does: JSON -> pickle -> zlib ->
base64; test2.jsonl stores them as plain JSON, as some releases do). Rows:

    test.jsonl   bank, checkout, abc337_e (a small stdin problem under an id in LiveCodeBench's errata)
    test2.jsonl  keyboard, lava
    test3.jsonl  snake, warehouse, 9001 (a functional, LeetCode-style problem written here)

A built-in problem keeps its name as question_id; its example tests are the public ones. The
loader and the benchmark's tests then run on real-format data without the hub.
"""

from __future__ import annotations

import base64
import json
import pickle
import random
import zlib
from dataclasses import dataclass
from pathlib import Path

from problems import builtin

FILES = {
    "test.jsonl": [("bank", "2023-05-06"), ("checkout", "2023-07-01"), ("abc337_e", "2024-01-20")],
    "test2.jsonl": [("keyboard", "2024-04-13"), ("lava", "2024-05-25")],
    "test3.jsonl": [("snake", "2024-08-03"), ("warehouse", "2024-09-14"), ("9001", "2025-01-11")],
}
PLAIN_JSON = {"test2.jsonl"}  # private tests stored as plain JSON here

# A functional problem: LeetCode style, graded as Solution().countPairs(nums, target).
FUNC_ID, FUNC_NAME = "9001", "countPairs"
FUNC_STARTER = "class Solution:\n    def countPairs(self, nums: List[int], target: int) -> int:\n        "
# No `from typing import List`: it passes only with LiveCodeBench's import header, as it would there.
FUNC_REFERENCE = (
    "class Solution:\n    def countPairs(self, nums: List[int], target: int) -> int:\n"
    "        return sum(nums[i] + nums[j] < target\n"
    "                   for i in range(len(nums)) for j in range(i + 1, len(nums)))\n")
FUNC_WRONG = FUNC_REFERENCE.replace("< target", "<= target")
FUNC_STATEMENT = ("Given a list of integers nums and an integer target, count the pairs of indices "
                  "i < j with nums[i] + nums[j] < target.\n")
ERRATA_ID = "abc337_e"
ERRATA_REFERENCE = "print(sum(map(int, input().split())))\n"


@dataclass(frozen=True)
class Fixture:
    dir: Path
    ids: tuple[str, ...]  # every question_id, in file order
    references: dict[str, str]  # question_id -> a correct program


def encode(tests: list[dict]) -> str:
    """Private tests the way code_generation_lite stores them."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(tests)))).decode()


def _count_pairs(nums: list[int], target: int) -> int:
    return sum(nums[i] + nums[j] < target for i in range(len(nums)) for j in range(i + 1, len(nums)))


def _functional_tests() -> list[dict]:
    rng = random.Random(9001)
    cases = [([-1, 1, 2, 3, 1], 2), ([-6, 2, 5, -2, -7, -1, 3], -2)]
    cases += [([rng.randint(-50, 50) for _ in range(rng.randint(1, 40))], rng.randint(-60, 60))
              for _ in range(8)]
    return [{"input": f"{json.dumps(nums)}\n{json.dumps(target)}", "output": json.dumps(_count_pairs(nums, target)),
             "testtype": "functional"} for nums, target in cases]


def _row(qid: str, day: str, title: str, content: str, platform: str, starter: str, public: list[dict],
         private: list[dict], meta: dict, plain: bool, difficulty: str = "medium") -> dict:
    return {
        "question_title": title, "question_content": content, "platform": platform,
        "question_id": qid, "contest_id": qid.split("_")[0], "contest_date": f"{day}T00:00:00",
        "starter_code": starter, "difficulty": difficulty,
        "public_test_cases": json.dumps(public),
        "private_test_cases": json.dumps(private) if plain else encode(private),
        "metadata": json.dumps(meta),
    }


def rows(file: str) -> list[dict]:
    out = []
    for qid, day in FILES[file]:
        plain = file in PLAIN_JSON
        if qid == FUNC_ID:
            tests = _functional_tests()
            out.append(_row(qid, day, "count-pairs-below-target", FUNC_STATEMENT, "leetcode", FUNC_STARTER,
                            tests[:2], tests[2:], {"func_name": FUNC_NAME}, plain, "easy"))
        elif qid == ERRATA_ID:
            tests = [{"input": f"{a} {b}\n", "output": f"{a + b}\n", "testtype": "stdin"}
                     for a, b in ((1, 2), (40, 2), (-5, 5))]
            out.append(_row(qid, day, "Add Two", "Print a + b.\n", "atcoder", "", tests[:1], tests[1:], {}, plain))
        else:
            p = builtin.load(qid)
            tests = [{"input": t.input, "output": t.output, "testtype": "stdin"} for t in p.tests]
            n_public = sum("example" in t.name for t in p.tests)
            out.append(_row(qid, day, p.title, p.statement, "codeforces", "", tests[:n_public],
                            tests[n_public:], {}, plain))
    return out


def build(root: Path) -> Fixture:
    root.mkdir(parents=True, exist_ok=True)
    ids, refs = [], {FUNC_ID: FUNC_REFERENCE, ERRATA_ID: ERRATA_REFERENCE}
    for file in FILES:
        with (root / file).open("w", encoding="utf-8") as f:
            for row in rows(file):
                f.write(json.dumps(row) + "\n")
                ids.append(row["question_id"])
    for name in builtin.names():
        refs[name] = (builtin.CATALOG / name / "solution.py").read_text()
    return Fixture(root, tuple(ids), refs)


def build_parquet(root: Path) -> Path:
    """The same rows as one Parquet file per release file (test.parquet, test2.parquet, ...)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root.mkdir(parents=True, exist_ok=True)
    for file in FILES:
        pq.write_table(pa.Table.from_pylist(rows(file)), root / file.replace(".jsonl", ".parquet"))
    return root
