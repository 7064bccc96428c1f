"""Crash-recovery copies of unsaved text (tui/recovery.py) on real files under tmp_path: where they
go, with what modes, what a corrupt or failed copy does, and two editors on one file."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tui.files import SaveFailed
from tui.recovery import Recovery, recovery_dir


@pytest.fixture(autouse=True)
def private_recovery_dir(tmp_path, monkeypatch):
    """No test writes to the real user's data dir."""
    monkeypatch.setenv("EMPOWER_RECOVERY_DIR", str(tmp_path / "recovery"))


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_recovery_round_trip(tmp_path):
    rec = Recovery(tmp_path / "lava.py")
    assert rec.read() is None
    assert rec.file.parent == tmp_path / "recovery"
    assert rec.file.name.startswith("lava.py-") and rec.file.suffix == ".json"

    rec.write("unsaved ✓\n")
    rec.write("unsaved, later ✓\n")
    got = rec.read()
    assert got is not None
    assert (got.text, got.path) == ("unsaved, later ✓\n", tmp_path / "lava.py")
    assert got.saved_at == pytest.approx(json.loads(rec.file.read_text())["saved_at"])
    assert mode_of(rec.file) == 0o600
    assert mode_of(rec.file.parent) == 0o700
    assert os.listdir(rec.file.parent) == [rec.file.name]  # no temp left

    rec.clear()
    assert rec.read() is None and not rec.file.exists()
    rec.clear()  # missing is fine


def test_recovery_copies_of_different_files_are_apart(tmp_path):
    a = Recovery(tmp_path / "one" / "lava.py")
    b = Recovery(tmp_path / "two" / "lava.py")
    assert a.file != b.file
    a.write("a")
    b.write("b")
    assert (a.read().text, b.read().text) == ("a", "b")
    # The same file named another way is the same copy.
    assert Recovery(tmp_path / "one" / "lava.py").file == a.file


def test_corrupt_recovery_copy_reads_as_none_and_is_left_alone(tmp_path):
    rec = Recovery(tmp_path / "lava.py")
    rec.file.parent.mkdir(parents=True)
    for junk in (b"{not json", b"\xff\xfe", b"[1, 2]", b'{"path": 1, "saved_at": 0, "text": "x"}'):
        rec.file.write_bytes(junk)
        assert rec.read() is None
        assert rec.file.read_bytes() == junk


def test_recovery_write_failure_is_one_line(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    rec = Recovery(tmp_path / "lava.py", directory=blocker / "recovery")
    with pytest.raises(SaveFailed) as e:
        rec.write("text")
    assert "\n" not in str(e.value) and "recovery copy" in str(e.value)


def test_recovery_dir_follows_the_environment(tmp_path, monkeypatch):
    assert recovery_dir() == tmp_path / "recovery"
    monkeypatch.delenv("EMPOWER_RECOVERY_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert recovery_dir() == tmp_path / "xdg" / "empower" / "recovery"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert recovery_dir() == tmp_path / "home" / ".local" / "share" / "empower" / "recovery"



def test_two_editors_on_one_file_keep_their_own_recovery_copies(tmp_path):
    import subprocess
    import sys

    path, where = tmp_path / "shared.py", tmp_path / "recovery"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid no editor runs as any more
    running = Recovery(path, where, pid=os.getpid())  # another editor, still open
    crashed = Recovery(path, where, pid=gone.pid)  # an editor that died with unsaved text
    running.write("the open editor's text")
    crashed.write("the crashed editor's text")
    assert running.file != crashed.file

    mine = Recovery(path, where, pid=gone.pid + 100000)  # a new editor of the same file
    found = mine.read()
    assert found is not None and found.text == "the crashed editor's text"  # never the live one's
    mine.clear()  # restored or discarded: the crashed editor's copy goes, the open one's stays
    assert not crashed.file.exists() and running.file.exists()
    assert running.read().text == "the open editor's text"
