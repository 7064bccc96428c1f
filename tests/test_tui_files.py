"""Opening and atomic saving (tui/files.py) on real files under tmp_path: what a person sees (the
text, the bytes on disk, the modes, one-line refusals), not how it is done. The recovery copies:
test_tui_recovery.py."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tui.files import MAX_BYTES, FileRefused, SaveFailed, open_file, save_atomic
from tui.recovery import Recovery

BOM = b"\xef\xbb\xbf"


@pytest.fixture(autouse=True)
def private_recovery_dir(tmp_path, monkeypatch):
    """No test writes to the real user's data dir."""
    monkeypatch.setenv("EMPOWER_RECOVERY_DIR", str(tmp_path / "recovery"))


def write(path: Path, data: bytes, mode: int | None = None) -> Path:
    path.write_bytes(data)
    if mode is not None:
        path.chmod(mode)
    return path


def refused(path) -> str:
    with pytest.raises(FileRefused) as e:
        open_file(path)
    message = str(e.value)
    assert "\n" not in message and str(path) in message
    return message


def save_refused(path, text: str = "new\n") -> str:
    with pytest.raises(SaveFailed) as e:
        save_atomic(path, text)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"cannot save {path}: ")
    return message


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- opening and saving --------------------------------------------------------------------

def test_round_trip(tmp_path):
    path = write(tmp_path / "lava.py", "def main():\n    print('héllo ✓')\n".encode())
    opened = open_file(path)
    assert (opened.path, opened.exists, opened.read_only, opened.newline, opened.bom) == (
        path, True, False, "\n", False)
    assert opened.text == "def main():\n    print('héllo ✓')\n"

    text = opened.text + "main()\n"
    n = save_atomic(opened.path, text, newline=opened.newline, bom=opened.bom, mode=opened.mode)
    assert n == len(text.encode())
    assert open_file(path).text == text
    assert os.listdir(tmp_path) == ["lava.py"]  # no temp file left beside it


def test_relative_path_is_made_absolute(tmp_path, monkeypatch):
    write(tmp_path / "a.py", b"x\n")
    monkeypatch.chdir(tmp_path)
    assert open_file("a.py").path == tmp_path / "a.py"


def test_new_file_is_created_with_the_umask_mode(tmp_path):
    path = tmp_path / "new.py"
    opened = open_file(path)
    assert (opened.text, opened.exists, opened.read_only, opened.mode) == ("", False, False, None)
    old = os.umask(0o027)
    try:
        save_atomic(path, "x = 1\n")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"x = 1\n"
    assert mode_of(path) == 0o640


@pytest.mark.parametrize("data, newline", [
    (b"a\r\nb\r\n", "\r\n"),
    (b"a\r\nb\r\nc\n", "\r\n"),   # mixed: the dominant one wins
    (b"a\nb\nc\r\n", "\n"),
    (b"no newline at all", "\n"),
])
def test_newline_style_is_detected_and_the_text_normalised(tmp_path, data, newline):
    opened = open_file(write(tmp_path / "f.txt", data))
    assert opened.newline == newline
    assert "\r" not in opened.text


def test_crlf_file_stays_crlf_after_save(tmp_path):
    path = write(tmp_path / "win.txt", b"one\r\ntwo\r\n")
    opened = open_file(path)
    assert opened.text == "one\ntwo\n"
    save_atomic(path, opened.text + "three\n", newline=opened.newline)
    assert path.read_bytes() == b"one\r\ntwo\r\nthree\r\n"


def test_bom_is_stripped_and_written_back(tmp_path):
    path = write(tmp_path / "bom.py", BOM + b"x = 1\n")
    opened = open_file(path)
    assert (opened.text, opened.bom) == ("x = 1\n", True)
    save_atomic(path, "x = 2\n", bom=opened.bom)
    assert path.read_bytes() == BOM + b"x = 2\n"


@pytest.mark.parametrize("mode", [0o640, 0o755])
def test_permission_bits_are_kept(tmp_path, mode):
    path = write(tmp_path / "script.py", b"old\n", mode)
    opened = open_file(path)
    assert opened.mode == mode
    save_atomic(path, "new\n", mode=opened.mode)
    assert path.read_bytes() == b"new\n"
    assert mode_of(path) == mode


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                    reason="only root can give a file away")
def test_root_keeps_the_owner(tmp_path):
    path = write(tmp_path / "theirs.py", b"old\n")
    os.chown(path, 1234, 1234)
    save_atomic(path, "new\n")
    st = path.stat()
    assert (st.st_uid, st.st_gid) == (1234, 1234)


def test_symlink_stays_a_symlink_and_its_target_gets_the_text(tmp_path):
    (tmp_path / "real").mkdir()
    real = write(tmp_path / "real" / "lava.py", b"old\n", 0o640)
    link = tmp_path / "link.py"
    link.symlink_to(real)
    opened = open_file(link)
    assert (opened.path, opened.text) == (link, "old\n")  # shown as the link, not the target
    save_atomic(opened.path, "new\n", mode=opened.mode)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == b"new\n"
    assert mode_of(real) == 0o640
    assert sorted(os.listdir(tmp_path / "real")) == ["lava.py"]


def test_read_only_file_is_reported_and_never_overwritten(tmp_path):
    # chmod 0444 counts even for root, whom os.access lets write anything.
    path = write(tmp_path / "ro.py", b"keep me\n", 0o444)
    assert open_file(path).read_only
    assert "read-only" in save_refused(path)
    assert path.read_bytes() == b"keep me\n"
    assert mode_of(path) == 0o444
    assert os.listdir(tmp_path) == ["ro.py"]


def test_save_refuses_a_directory(tmp_path):
    assert save_refused(tmp_path).endswith("is a directory")


@pytest.mark.parametrize("broken", ["replace", "fsync", "write"])
def test_failed_save_leaves_the_original_and_no_temp_file(tmp_path, monkeypatch, broken):
    path = write(tmp_path / "lava.py", b"original\n", 0o644)

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, broken, no_space)
    assert save_refused(path).endswith("no space left on device")
    monkeypatch.undo()
    assert path.read_bytes() == b"original\n"
    assert os.listdir(tmp_path) == ["lava.py"]


def test_save_into_a_removed_directory_fails_and_creates_nothing(tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    opened = open_file(gone / "new.py")
    gone.rmdir()
    assert "does not exist" in save_refused(opened.path)
    assert os.listdir(tmp_path) == []


def test_text_that_utf8_cannot_encode_is_refused(tmp_path):
    path = write(tmp_path / "a.py", b"old\n")
    with pytest.raises(SaveFailed, match="UTF-8"):
        save_atomic(path, "bad \udce9 surrogate\n")
    assert path.read_bytes() == b"old\n"


# --- refusals ------------------------------------------------------------------------------

def test_directory_is_refused(tmp_path):
    assert refused(tmp_path).endswith("is a directory")


def test_binary_file_is_refused(tmp_path):
    assert refused(write(tmp_path / "a.out", b"\x7fELF\x02\x01\x01\x00\x00")).endswith("binary file")


def test_latin1_file_is_refused_with_the_offset(tmp_path):
    path = write(tmp_path / "latin.py", "name = 'café'\n".encode("latin-1"))
    assert refused(path).endswith("not UTF-8 (byte 0xe9 at offset 11)")
    # The offset counts from the start of the file, BOM included.
    path = write(tmp_path / "bom.py", BOM + b"caf\xe9")
    assert refused(path).endswith("not UTF-8 (byte 0xe9 at offset 6)")


@pytest.mark.timeout(10)
def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert refused(fifo).endswith("not a regular file (a FIFO)")


def test_character_device_is_refused():
    assert refused("/dev/null").endswith("not a regular file (a character device)")


def test_too_large_file_is_refused(tmp_path):
    path = tmp_path / "huge.log"
    with open(path, "wb") as f:
        f.truncate(MAX_BYTES + 1)  # sparse: costs no disk and no time
    assert "too large" in refused(path)
    path.write_bytes(b"x" * MAX_BYTES)  # at the limit exactly, it opens
    assert len(open_file(path).text) == MAX_BYTES


def test_missing_parent_is_refused(tmp_path):
    message = refused(tmp_path / "no" / "such" / "file.py")
    assert message.endswith(f"directory {tmp_path / 'no' / 'such'} does not exist")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file_is_refused(tmp_path):
    path = write(tmp_path / "secret.py", b"x\n", 0o000)
    assert refused(path).endswith("permission denied")


def test_a_newline_in_the_name_keeps_the_message_on_one_line(tmp_path):
    odd = tmp_path / "two\nlines"
    odd.mkdir()
    with pytest.raises(FileRefused) as e:
        open_file(odd)
    assert "\n" not in str(e.value) and "two\\nlines" in str(e.value)


def test_open_never_modifies_the_file(tmp_path):
    path = write(tmp_path / "crlf.txt", BOM + b"a\r\nb\r\n", 0o444)
    before = path.stat()
    open_file(path)
    after = path.stat()
    assert path.read_bytes() == BOM + b"a\r\nb\r\n"
    assert (after.st_mtime_ns, after.st_mode) == (before.st_mtime_ns, before.st_mode)


# --- another program, a long name (issue 19) -------------------------------------

def test_a_save_refuses_to_overwrite_what_another_program_changed(tmp_path):
    from tui.files import ANY, ChangedOnDisk

    path = tmp_path / "mine.py"
    path.write_text("x = 1\n")
    opened = open_file(path)
    path.write_text("x = 2  # someone else's\n")
    with pytest.raises(ChangedOnDisk, match="changed on disk since it was read"):
        save_atomic(path, "x = 3\n", expect=opened.disk)
    assert path.read_text() == "x = 2  # someone else's\n"  # nothing written
    save_atomic(path, "x = 3\n", expect=ANY)  # the person chose to overwrite
    assert path.read_text() == "x = 3\n"
    path.unlink()
    with pytest.raises(ChangedOnDisk, match="was removed"):
        save_atomic(path, "x = 4\n", expect=open_file(tmp_path / "other.py").disk or "0" * 64)
    new = open_file(tmp_path / "new.py")
    (tmp_path / "new.py").write_text("made meanwhile\n")
    with pytest.raises(ChangedOnDisk, match="was made by another program"):
        save_atomic(tmp_path / "new.py", "mine\n", expect=new.disk)
    assert (tmp_path / "new.py").read_text() == "made meanwhile\n"


def test_a_file_named_near_the_length_limit_is_saved_and_recovered(tmp_path):
    name = "é" * 120 + "_x.py"  # 245 bytes of UTF-8: the temporary name beside it would not fit
    assert len(name.encode()) == 245
    path = tmp_path / name
    opened = open_file(path)
    save_atomic(path, "print(1)\n", expect=opened.disk)
    assert path.read_text() == "print(1)\n" and open_file(path).text == "print(1)\n"
    r = Recovery(path, tmp_path / "recovery")
    r.write("unsaved")
    assert r.read().text == "unsaved" and len(r.file.name.encode()) < 255
