"""The file a person edits: open it, and save it without ever leaving it half-written.

`open_file(path)` reads a file for editing or says in one line why it will not (`FileRefused`);
`save_atomic(...)` writes a temp file beside the target and renames it over, so a crash or a
full disk leaves the old file whole (`SaveFailed`). The crash-recovery copies of unsaved text
are tui/recovery.py's.

Every error message names the path and the reason on one line, ready for a status bar or a CLI.
Standard library only.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 5 * 1024 * 1024
_SNIFF_BYTES = 8 * 1024  # a NUL this early means binary, as git and grep decide it
_BOM = codecs.BOM_UTF8

# O_NONBLOCK: opening a FIFO that slipped past the stat check must not wait for a writer.
# O_NOCTTY: opening a terminal device must never make it our controlling terminal.
_READ_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_CLOEXEC", 0))
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


class FileRefused(Exception):
    """The file cannot be opened for editing (one line)."""


class SaveFailed(Exception):
    """The buffer could not be written (one line); the file on disk is untouched."""


@dataclass(frozen=True)
class Opened:
    path: Path          # absolute, as given (not resolved through symlinks), for display and saving
    text: str           # the file's text ("" for a new file); line endings normalised to "\n"
    exists: bool        # False: a new file, created on first save
    read_only: bool     # the file exists but cannot be written by us (save will report it)
    newline: str        # "\n" or "\r\n": what the file used (dominant), restored on save
    mode: int | None    # st_mode permission bits of the existing file
    bom: bool = False   # the file began with a UTF-8 byte order mark, written back on save
    disk: str | None = None  # sha256 of the bytes read (None: no file): a save checks it is still so


# --- opening -------------------------------------------------------------------------------

def open_file(path: str | os.PathLike) -> Opened:
    """Read `path` for editing; raise FileRefused (one line) when it cannot be edited as text."""
    path = Path(path).absolute()  # not resolve(): a symlink is shown and saved as the link
    shown = shown_path(path)

    def refuse(reason: str) -> FileRefused:
        return FileRefused(f"cannot open {shown}: {reason}")

    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        # A dangling symlink is a new file too: saving creates the file it points to.
        parent = Path(os.path.realpath(path)).parent
        if not parent.is_dir():
            raise refuse(f"directory {shown_path(parent)} does not exist") from None
        return Opened(path, "", exists=False, read_only=False, newline="\n", mode=None)
    except OSError as e:
        raise refuse(reason(e)) from None
    # Decided before opening: opening a device can have effects of its own (a tape rewinds).
    _check_regular(st, refuse)

    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError as e:
        raise refuse(reason(e)) from None
    try:
        st = os.fstat(fd)
        _check_regular(st, refuse)  # the path may have been swapped since the stat above
        if st.st_size > MAX_BYTES:
            raise refuse(f"too large ({_mb(st.st_size)}; the limit is {_mb(MAX_BYTES)})")
        data = _read_at_most(fd, MAX_BYTES + 1)
    except OSError as e:
        raise refuse(reason(e)) from None
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:  # it grew after the fstat
        raise refuse(f"too large (over {_mb(MAX_BYTES)})")
    if b"\0" in data[:_SNIFF_BYTES]:
        raise refuse("binary file")

    bom = data.startswith(_BOM)
    body = data[len(_BOM):] if bom else data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        offset = e.start + (len(_BOM) if bom else 0)  # an offset in the file, as `xxd` shows it
        raise refuse(f"not UTF-8 (byte 0x{body[e.start]:02x} at offset {offset})") from None

    crlf = text.count("\r\n")
    newline = "\r\n" if crlf > text.count("\n") - crlf else "\n"
    return Opened(path, text.replace("\r\n", "\n"), exists=True, read_only=_read_only(path, st),
                  newline=newline, mode=stat.S_IMODE(st.st_mode), bom=bom, disk=hashlib.sha256(data).hexdigest())


def _check_regular(st: os.stat_result, refuse: Callable[[str], Exception]) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise refuse("is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise refuse(f"not a regular file ({_kind(st.st_mode)})")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "an unknown kind of file"


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks, size = [], 0
    while size < limit:
        chunk = os.read(fd, min(limit - size, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _read_only(path: Path, st: os.stat_result) -> bool:
    # Root passes os.access for any file, so the mode bits decide too: a person who made a file
    # read-only (chmod a-w) meant it, whoever runs the editor.
    return not os.access(path, os.W_OK) or not st.st_mode & 0o222


# --- saving --------------------------------------------------------------------------------

class ChangedOnDisk(SaveFailed):
    """Another program changed (or made, or removed) the file since it was read: nothing was
    written. The editor asks whether to overwrite, reload or cancel."""


ANY = "any"  # save_atomic(expect=ANY): whatever is on disk now is overwritten


def encoded(text: str, newline: str = "\n", bom: bool = False) -> bytes:
    """The bytes a save writes for `text` (UnicodeEncodeError where UTF-8 cannot hold it)."""
    if newline != "\n":
        text = text.replace("\r\n", "\n")  # a stray "\r\n" in the buffer must not become "\r\r\n"
    return (_BOM if bom else b"") + text.replace("\n", newline).encode("utf-8")


def disk_digest(path: str | os.PathLike) -> str | None:
    """sha256 of the file's bytes now, None where there is no file."""
    digest = hashlib.sha256()
    try:
        with open(os.path.realpath(path), "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return digest.hexdigest()


def save_atomic(path: str | os.PathLike, text: str, *, newline: str = "\n", bom: bool = False,
                mode: int | None = None, expect: str | None = ANY) -> int:
    """Write `text` to `path` all at once or not at all; return the bytes written.

    `newline` replaces each "\\n"; `bom` prefixes a UTF-8 BOM. The file keeps its current
    permission bits and owner; a file that no longer exists gets `mode` (what it had when it
    was opened), and a new one 0o666 less the umask, as any program's new file would.
    `expect`: the sha256 of the file as it was read (None: there was none); where the file is
    not that any more, ChangedOnDisk and nothing is written. ANY: overwrite whatever is there.
    """
    if newline not in ("\n", "\r\n"):
        raise ValueError(f"newline must be '\\n' or '\\r\\n', not {newline!r}")
    shown = shown_path(Path(path).absolute())

    def fail(reason: str) -> SaveFailed:
        return SaveFailed(f"cannot save {shown}: {reason}")

    # Through symlinks to the real file: the link stays a link, and the temp file lands in the
    # real file's directory, where the rename is atomic.
    target = Path(os.path.realpath(path))
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise fail(reason(e)) from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise fail("is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise fail(f"not a regular file ({_kind(st.st_mode)})")
        # The rename needs only the directory to be writable, so without this check a save
        # would silently replace a file the person made read-only.
        if _read_only(target, st):
            raise fail("the file is read-only")
    if not target.parent.is_dir():
        raise fail(f"directory {shown_path(target.parent)} does not exist")
    if expect != ANY:
        try:
            now = disk_digest(target)
        except OSError as e:
            raise fail(reason(e)) from None
        if now != expect:
            what = "was removed" if now is None else "was made by another program" if expect is None else "changed"
            raise ChangedOnDisk(f"not saved: {shown} {what} on disk since it was read")

    try:
        data = encoded(text, newline, bom)
    except UnicodeEncodeError as e:
        raise fail(f"the text cannot be written as UTF-8 (character {e.start})") from None

    keep = stat.S_IMODE(st.st_mode) if st is not None else mode
    try:
        write_replace(target, data, keep, owner=(st.st_uid, st.st_gid) if st else None)
    except OSError as e:
        raise fail(reason(e)) from None
    return len(data)


def write_replace(target: Path, data: bytes, mode: int | None,
                   owner: tuple[int, int] | None = None) -> None:
    """Write `data` to a temp file beside `target` and rename it over; on failure remove it."""
    # Created 0o666 and left to the kernel: it applies the umask (and a default ACL) exactly as
    # for any new file, with no need to read the umask, which Python can only do by changing it.
    fd, tmp = _create_temp(target, 0o666 if mode is None else 0o600)
    try:
        try:
            if owner is not None:
                _keep_owner(fd, owner)
            if mode is not None:
                os.fchmod(fd, mode)  # after chown: a chown clears the setuid and setgid bits
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)  # the data is on disk before the name points at it
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(target.parent)


def _create_temp(target: Path, mode: int) -> tuple[int, str]:
    # A dot name so that a temp left by a killed process hides from `ls` and most globs.
    # The name cut to fit: a file named near the 255-byte limit must still be savable.
    name = cut_name(target.name, 255 - len(".12345678.tmp") - 1)
    for _ in range(100):
        tmp = str(target.parent / f".{name}.{os.urandom(4).hex()}.tmp")
        try:
            return os.open(tmp, _CREATE_FLAGS, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")


def cut_name(name: str, limit: int) -> str:
    """`name` cut to at most `limit` bytes of UTF-8 (file names are limited in bytes), whole
    characters only."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= limit:
        return name
    return raw[:limit].decode("utf-8", "ignore")


def _keep_owner(fd: int, owner: tuple[int, int]) -> None:
    # Root saving someone's file would otherwise hand it to root. Best effort: only root can
    # give a file away, and a user can only keep a group they belong to.
    st = os.fstat(fd)
    if (st.st_uid, st.st_gid) != owner:
        try:
            os.fchown(fd, *owner)
        except OSError:
            pass


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable. Best effort: some filesystems and platforms refuse to
    # open or fsync a directory, and the data is already safe by then.
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- messages ------------------------------------------------------------------------------

def shown_path(path: Path) -> str:
    # A newline or escape in a file name must not break the one-line message.
    s = str(path)
    return s if s.isprintable() else repr(s)[1:-1]


def reason(e: OSError) -> str:
    reason = e.strerror or str(e) or type(e).__name__
    return reason[:1].lower() + reason[1:]


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"
