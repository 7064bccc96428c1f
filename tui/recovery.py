"""Crash-recovery copies of the text a person has not saved yet: `Recovery(path)` keeps each
editor's unsaved buffer as JSON under `recovery_dir()` (written like a save: temp file, fsync,
rename) until the editor clears it after a save, and offers a copy that an editor no longer
running left behind. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from coach.config import data_dir
from tui.files import SaveFailed, cut_name, reason, shown_path, write_replace


def recovery_dir() -> Path:
    """`$EMPOWER_RECOVERY_DIR`, else `data_dir()/recovery`."""
    if os.environ.get("EMPOWER_RECOVERY_DIR"):
        return Path(os.environ["EMPOWER_RECOVERY_DIR"]).expanduser()
    return data_dir() / "recovery"


@dataclass(frozen=True)
class Recovered:
    text: str
    saved_at: float   # time.time() when the recovery copy was written
    path: Path        # the file it is a copy of


class Recovery:
    """The crash-recovery copies of one file's unsaved text: each editor writes its own
    (FILE-HASH-PID.json), so two editors on one file never overwrite or delete each other's.
    `read()` offers the newest copy that an editor no longer running left behind."""

    def __init__(self, path: str | os.PathLike, directory: str | os.PathLike | None = None,
                 pid: int | None = None):
        self._path = Path(path).absolute()
        self._dir = Path(directory) if directory is not None else recovery_dir()
        # The hash tells apart files with the same name; the name lets a person find theirs.
        key = str(self._path).encode("utf-8", "surrogateescape")
        self._stem = f"{cut_name(self._path.name, 100)}-{hashlib.sha256(key).hexdigest()[:16]}"
        self._pid = os.getpid() if pid is None else pid
        self._file = self._dir / f"{self._stem}-{self._pid}.json"
        self._found: Path | None = None  # the left-behind copy read() offered

    @property
    def file(self) -> Path:
        return self._file

    def write(self, text: str) -> None:
        """Replace this editor's copy with `text` (atomically: a crash mid-write keeps the previous copy)."""
        record = {"path": str(self._path), "saved_at": time.time(), "text": text, "pid": self._pid}
        # ensure_ascii: a lone surrogate in the buffer is escaped instead of failing to encode.
        data = json.dumps(record).encode("ascii")
        try:
            # Private: the copy holds whatever the person typed, secrets included.
            self._file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Synced like a save so a power cut keeps it too: call this at a pause in typing.
            write_replace(self._file, data, 0o600)
        except OSError as e:
            raise SaveFailed(f"cannot write the recovery copy {shown_path(self._file)} "
                             f"of {shown_path(self._path)}: {reason(e)}") from None

    def read(self) -> Recovered | None:
        """The newest copy left by an editor of this file that is not running any more (or
        this one's own), None when there is none that can be used (those are left alone)."""
        best: tuple[float, Path, Recovered] | None = None
        for f in self._candidates():
            found = self._load(f)
            if found is not None and (best is None or found.saved_at > best[0]):
                best = (found.saved_at, f, found)
        self._found = best[1] if best else None
        return best[2] if best else None

    def clear(self) -> None:
        """Remove this editor's copy and the left-behind one it offered (best effort: a copy
        that outlives this is only offered again). Other running editors' copies stay."""
        for f in {self._file, self._found} - {None}:
            try:
                f.unlink()
            except OSError:
                pass
        self._found = None

    def _candidates(self) -> list[Path]:
        try:
            names = os.listdir(self._dir)
        except OSError:
            return []
        out = []
        for name in names:
            if not (name.startswith(self._stem) and name.endswith(".json")):
                continue
            rest = name[len(self._stem):-len(".json")]
            if rest == "":  # a copy from before copies were per editor
                out.append(self._dir / name)
            elif rest.startswith("-") and rest[1:].isdigit():
                pid = int(rest[1:])
                if pid == self._pid or not _running(pid):
                    out.append(self._dir / name)
        return out

    def _load(self, f: Path) -> Recovered | None:
        try:
            record = json.loads(f.read_bytes())
        except (OSError, ValueError):  # ValueError: bad JSON or bad UTF-8
            return None
        if not isinstance(record, dict):
            return None
        text, saved_at, path = record.get("text"), record.get("saved_at"), record.get("path")
        if not (isinstance(text, str) and isinstance(path, str)
                and isinstance(saved_at, (int, float)) and not isinstance(saved_at, bool)):
            return None
        if path != str(self._path):  # a copy of another file whose hash prefix collides
            return None
        return Recovered(text, float(saved_at), Path(path))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: running
        return True
    return True
