"""problems/datasets.py and its sources: the built-in, LiveCodeBench and files loaders (LiveCodeBench
on a real-format fixture, lcb_fixture)."""

from __future__ import annotations

import base64
import json
import os
import pickle
import zlib
from datetime import date
from pathlib import Path

import pytest

from problems.datasets import ProblemsError, load, registered
from problems.livecodebench import ERRATA, LCB_PRELUDE, decode_tests, release_files
from problems.problem import Problem, TestCase
from problems.judge import judge
from tests import lcb_fixture as lcb


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return lcb.build(tmp_path_factory.mktemp("lcb"))


def ids(problems) -> list[str]:
    return [p.id for p in problems]


def pairs(tests) -> list[tuple[str, str]]:
    return [(t.input, t.output) for t in tests]


def write_rows(d: Path, rows: list, name: str = "test.jsonl") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return d


# ---------------------------------------------------------------- loading
def test_both_datasets_are_registered():
    assert {"builtin", "livecodebench", "humaneval", "files"} <= set(registered())


def test_the_fixture_loads_to_the_tests_of_the_builtin_problems(fx):
    lcb_probs = {p.id: p for p in load("livecodebench", path=fx.dir)}
    assert list(lcb_probs) == ["bank", "checkout", "keyboard", "lava", "snake", "warehouse", "9001"]
    for b in load("builtin"):
        p = lcb_probs[b.id]
        assert pairs(p.tests) == pairs(b.tests)  # test.jsonl pickled, test2.jsonl plain JSON
        assert (p.title, p.statement, p.n_public, p.kind) == (b.title, b.statement, b.n_public, "stdin")
        assert p.tests[0].name == "public-1" and p.tests[b.n_public].name == "private-1"
        assert p.source == "livecodebench" and p.prelude == LCB_PRELUDE
        assert p.data_dir == fx.dir.resolve()  # the judge hides the data from the programs
        assert b.reference and b.starter and b.source == "builtin" and b.platform == "builtin"
    f = lcb_probs["9001"]
    assert (f.kind, f.func_name, f.platform, f.difficulty, f.n_public) == ("functional", "countPairs", "leetcode", "easy", 2)
    assert f.starter == lcb.FUNC_STARTER and f.contest_date.date() == date(2025, 1, 11)
    assert pairs(f.tests) == [(t["input"], t["output"]) for t in lcb._functional_tests()]


def test_private_tests_decode_from_both_forms():
    tests = [{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]
    assert decode_tests(lcb.encode(tests)) == tests
    assert decode_tests(json.dumps(tests)) == tests


class Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_malicious_pickle_is_refused_without_running(tmp_path):
    blob = base64.b64encode(zlib.compress(pickle.dumps(Evil(tmp_path / "ran")))).decode()
    pickle.loads(zlib.decompress(base64.b64decode(blob)))  # the payload is real: a plain load runs it
    assert (tmp_path / "ran").exists()

    marker = tmp_path / "pwned"
    blob = base64.b64encode(zlib.compress(pickle.dumps(Evil(marker)))).decode()
    with pytest.raises(ValueError, match="refused to load this pickle"):
        decode_tests(blob)
    row = lcb.rows("test.jsonl")[0] | {"private_test_cases": blob}
    with pytest.raises(ProblemsError, match=r"test.jsonl:1 \(bank\): private_test_cases: .*refused"):
        load("livecodebench", path=write_rows(tmp_path / "evil", [row]))
    assert not marker.exists()


def _packed(raw: bytes) -> str:
    return base64.b64encode(zlib.compress(raw)).decode()


def test_a_pickle_of_something_else_than_a_str_is_refused():
    blob = _packed(pickle.dumps([{"input": "", "output": ""}]))
    with pytest.raises(ValueError, match=r"refused to load this pickle: it holds more than a str \(at its EMPTY_LIST\)"):
        decode_tests(blob)
    # Pickles without any class that made the old loader raise TypeError/AttributeError (an
    # object's state set on a str, an item set on an int) or build a list far larger than itself
    hostile = [pickle.PROTO + b"\x04" + pickle.SHORT_BINUNICODE + b"\x01a" + pickle.EMPTY_DICT + pickle.BUILD + pickle.STOP,
               pickle.PROTO + b"\x04" + pickle.BININT1 + b"\x01" + pickle.BININT1 + b"\x02" + pickle.BININT1 + b"\x03"
               + pickle.SETITEM + pickle.STOP,
               pickle.PROTO + b"\x04" + pickle.EMPTY_LIST + pickle.MARK + pickle.NONE * 100_000 + pickle.APPENDS + pickle.STOP,
               pickle.PROTO + b"\x04" + pickle.BINUNICODE8 + (2**40).to_bytes(8, "little") + b"short",
               b"\x80"]
    for raw in hostile:
        with pytest.raises(ValueError, match="neither JSON nor a base64 zlib pickle"):
            decode_tests(_packed(raw))
    # what LiveCodeBench writes, in every pickle protocol
    tests = [{"input": "1\n", "output": "2\n", "testtype": "stdin"}]
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert decode_tests(_packed(pickle.dumps(json.dumps(tests), protocol=protocol))) == tests
    with pytest.raises(ValueError, match="neither JSON nor a base64 zlib pickle"):
        decode_tests("not base64 at all!")
    with pytest.raises(ValueError, match="must be a list of"):
        decode_tests('[{"input": "1"}]')


def test_a_blob_too_large_once_inflated_or_cut_short_is_refused(monkeypatch):
    blob = lcb.encode([{"input": "x" * 5000, "output": "", "testtype": "stdin"}])
    whole = base64.b64decode(blob)
    with pytest.raises(ValueError, match="cut short"):
        decode_tests(base64.b64encode(whole[:-10]).decode())
    monkeypatch.setattr("problems.livecodebench.MAX_INFLATED", 1000)
    with pytest.raises(ValueError, match="larger than 1,000 bytes once inflated"):
        decode_tests(blob)


# ---------------------------------------------------------------- filters
def test_release_tags_map_to_files_as_livecodebench_does(fx):
    assert release_files("release_v1") == ("test.jsonl",)
    assert release_files("release_v6") == release_files("release_latest") == (
        "test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl", "test6.jsonl")
    assert release_files("v6") == ("test6.jsonl",)
    assert release_files("v2_v4") == ("test2.jsonl", "test3.jsonl", "test4.jsonl")
    assert ids(load("livecodebench", path=fx.dir, release="release_v1")) == ["bank", "checkout"]
    assert ids(load("livecodebench", path=fx.dir, release="v2")) == ["keyboard", "lava"]
    assert ids(load("livecodebench", path=fx.dir, release="v2_v3")) == ["keyboard", "lava", "snake", "warehouse", "9001"]
    with pytest.raises(ProblemsError, match="release_v4 needs test4.jsonl, not found in"):
        load("livecodebench", path=fx.dir, release="release_v4")
    for bad in ("release_v7", "v3_v2", "latest"):
        with pytest.raises(ProblemsError, match="unknown LiveCodeBench release"):
            release_files(bad)


def test_dates_are_inclusive_and_limit_keeps_file_order(fx):
    got = load("livecodebench", path=fx.dir, start="2024-05-25", end=date(2024, 9, 14))
    assert ids(got) == ["lava", "snake", "warehouse"]
    assert ids(load("livecodebench", path=fx.dir, start="2025-01-01")) == ["9001"]
    assert ids(load("livecodebench", path=fx.dir, limit=2)) == ["bank", "checkout"]
    assert ids(load("livecodebench", path=fx.dir, start="2024-01-01", limit=1)) == ["keyboard"]
    with pytest.raises(ProblemsError, match="limit: 0 problems"):
        load("livecodebench", path=fx.dir, limit=0)
    with pytest.raises(ProblemsError, match="start: '2024/01/01' is not a date"):
        load("livecodebench", path=fx.dir, start="2024/01/01")


def test_ids_from_a_list_or_a_file(fx, tmp_path):
    assert ids(load("livecodebench", path=fx.dir, ids=["9001", "lava"])) == ["lava", "9001"]
    f = tmp_path / "ids.txt"
    f.write_text("# the functional one\n9001\n\nsnake  # and a stdin one\n")
    assert ids(load("livecodebench", path=fx.dir, ids=f)) == ["snake", "9001"]
    with pytest.raises(ProblemsError, match="no problem with id nope in test.jsonl, test2.jsonl, test3.jsonl"):
        load("livecodebench", path=fx.dir, ids=["lava", "nope"])
    with pytest.raises(ProblemsError, match="not a str"):
        load("livecodebench", path=fx.dir, ids="lava")
    with pytest.raises(ProblemsError, match="cannot read the id file"):
        load("livecodebench", path=fx.dir, ids=tmp_path / "missing.txt")
    assert ids(load("builtin", ids=["snake", "bank"])) == ["bank", "snake"]
    assert ids(load("builtin", limit=1)) == ["bank"]


def test_errata_are_left_out_unless_asked_for(fx):
    assert "abc337_e" in ERRATA and "find-the-peaks" in ERRATA
    default = load("livecodebench", path=fx.dir, release="release_v1")
    assert "abc337_e" not in ids(default) and default.excluded == ["abc337_e"]
    every = load("livecodebench", path=fx.dir, release="release_v1", include_errata=True)
    assert ids(every) == ["bank", "checkout", "abc337_e"] and every.excluded == []
    # LeetCode errata are title slugs: matched on question_title too
    row = lcb.rows("test3.jsonl")[2] | {"question_title": "find-the-peaks"}
    d = write_rows(Path(fx.dir.parent / "slug"), [row])
    assert load("livecodebench", path=d).excluded == ["9001"]


def test_parquet_files_load_like_the_jsonl(fx, tmp_path):
    pytest.importorskip("pyarrow")
    d = lcb.build_parquet(tmp_path / "pq")
    got = load("livecodebench", path=d, release="release_v3")
    want = load("livecodebench", path=fx.dir, release="release_v3")
    assert ids(got) == ids(want) and [pairs(p.tests) for p in got] == [pairs(p.tests) for p in want]


# ---------------------------------------------------------------- judging
def test_a_loaded_stdin_problem_judges_its_reference_and_fails_a_wrong_program(fx):
    lava = load("livecodebench", path=fx.dir, ids=["lava"])[0]
    assert lava.judge(fx.references["lava"]).passed
    report = lava.judge("print('Game Over')\n")
    assert not report.passed and report.first_failure.name == "public-1"


def test_a_functional_problem_is_judged_as_livecodebench_judges_it(fx):
    f = load("livecodebench", path=fx.dir, ids=["9001"])[0]
    assert f.judge(lcb.FUNC_REFERENCE, all_tests=True).passed
    wrong = f.judge(lcb.FUNC_WRONG, all_tests=True)
    assert not wrong.passed and 0 < wrong.n_passed < len(f.tests)
    # Without LiveCodeBench's import header the starter's `List[int]` is a NameError.
    bare = judge(lcb.FUNC_REFERENCE, f, limits=f.limits())
    assert not bare.passed and "NameError" in bare.first_failure.message


def test_a_builtin_reference_passes():
    bank = load("builtin", ids=["bank"])[0]
    assert bank.prelude == "" and bank.judge(bank.reference).passed


def test_limits_leave_livecodebench_its_time_per_test():
    p = Problem("x", "x", "", tuple(TestCase(str(i), "", "") for i in range(100)), time_limit_s=6.0)
    assert p.limits().time_s == 6.0 and p.limits().program_s == 7 * 100 + 5
    assert Problem("y", "y", "", ()).limits().program_s == 120  # never below the judge's default


# ---------------------------------------------------------------- bad input
def test_bad_input_gives_one_clear_line(fx, tmp_path):
    with pytest.raises(ProblemsError, match="no LiveCodeBench data at .*nowhere: no such directory"):
        load("livecodebench", path=tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProblemsError, match="no LiveCodeBench files in .*empty: expected test.jsonl"):
        load("livecodebench", path=tmp_path / "empty")
    with pytest.raises(ProblemsError, match="unknown dataset 'lcb'; the datasets are: builtin, files, humaneval, livecodebench"):
        load("lcb")
    with pytest.raises(ProblemsError, match="dataset 'builtin': .*release"):
        load("builtin", release="v1")

    good = lcb.rows("test.jsonl")[:2]
    cases = {
        "{not json": r"test.jsonl:2: not a JSON row",
        json.dumps({k: v for k, v in good[1].items() if k != "metadata"}): r"test.jsonl:2 \(checkout\): missing field metadata",
        json.dumps(good[1] | {"private_test_cases": "!!"}): r"\(checkout\): private_test_cases: neither JSON",
        json.dumps(good[1] | {"contest_date": "soon"}): r"\(checkout\): Invalid isoformat",
        json.dumps(lcb.rows("test3.jsonl")[2] | {"metadata": "{}"}): r"\(9001\): functional tests but no func_name",
    }
    for i, (line, message) in enumerate(cases.items()):
        d = write_rows(tmp_path / f"bad{i}", [good[0], line])
        with pytest.raises(ProblemsError, match=message + r".*\(strict=False skips such rows\)"):
            load("livecodebench", path=d)
        lenient = load("livecodebench", path=d, strict=False)
        assert ids(lenient) == ["bank"] and len(lenient.skipped) == 1
        assert lenient.skipped[0].where.startswith("test.jsonl:2")


def test_a_failed_download_says_to_pass_a_local_directory(tmp_path):
    pytest.importorskip("huggingface_hub")
    with pytest.raises(ProblemsError) as err:  # offline, empty cache: the real hub client refuses
        load("livecodebench", release="v1", cache_dir=tmp_path, offline=True)
    msg = str(err.value)
    assert "\n" not in msg and "test.jsonl of livecodebench/code_generation_lite" in msg
    assert "pass a local directory" in msg


# ---------------------------------------------------------------- a directory of code
def test_a_files_episode_starts_at_a_body_and_is_judged_by_the_reference_alone():
    from problems.files import FILES_BODY_LINES, file_problems

    long_body = "".join(f"    x{i} = {i}\n" for i in range(FILES_BODY_LINES[1] + 1))
    text = ("def short():\n    return 1\n\n"                      # one line: too short to say anything
            "def outer(a):\n    '''Doc.'''\n    def inner():\n        return a\n    return inner\n\n"
            f"def long():\n{long_body}\n"                         # longer than the rounds could finish
            "class C:\n    def m(self, y):\n        z = y * 2\n        return z\n")
    ps = file_problems("m.py", text)
    assert [p.id for p in ps] == ["m.py::outer", "m.py::C.m"]  # inner lies inside outer's episode
    outer = ps[0]
    assert outer.starter.endswith("    '''Doc.'''\n") and outer.reference.endswith("    return inner\n")
    assert outer.statement == "Doc." and outer.kind == "match"
    assert outer.judge(outer.reference).passed and outer.judge(outer.reference + "\n\n").passed
    wrong = outer.judge(outer.reference.replace("return a", "return None"))
    assert not wrong.passed and "not the reference" in wrong.first_failure.message
    assert file_problems("bad.py", "def f(:\n") == []
    many = "".join(f"def f{i}():\n    a = {i}\n    return a\n\n" for i in range(20))
    picked = [p.title for p in file_problems("many.py", many, per_file=4)]
    assert picked == ["f0", "f5", "f10", "f15"]  # spread over the file


def test_the_problems_of_a_directory_share_its_files_and_leave_their_own_out(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "units.py").write_text("METRES_PER_FOOT = 0.3048\n")  # no function: no episode
    (tmp_path / "pkg" / "a.py").write_text("def f(x):\n    y = x + 1\n    return y\n")
    (tmp_path / "pkg" / "b.py").write_text("def g(x):\n    y = x * 2\n    return y\n")
    (tmp_path / ".hidden.py").write_text("SECRET = 1\n")
    everything = load("files", path=tmp_path)
    assert [p.id for p in everything] == ["pkg/a.py::f", "pkg/b.py::g"]
    f, g = everything
    assert f.package is g.package  # one mapping for the load, the texts never copied
    assert sorted(f.package) == ["pkg/a.py", "pkg/b.py", "pkg/units.py"] and f.file == "pkg/a.py"
    assert sorted(f.others()) == ["pkg/b.py", "pkg/units.py"]  # its own file holds the answer
    assert f.others()["pkg/b.py"] is g.package["pkg/b.py"]
    (first,) = load("files", path=tmp_path, limit=1)  # a limit keeps every file as the package's
    assert sorted(first.others()) == ["pkg/b.py", "pkg/units.py"]
    assert load("builtin", ids=["lava"])[0].others() == {}  # no package
