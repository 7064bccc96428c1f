"""Files written whole or not at all: every small file Empower keeps (a registry, a run's config and
results, a label shard, a plot) goes through here, so a kill or a full disk mid-write leaves the
old file (or none), never half of one.

The temp file sits beside its target (the same filesystem, so `os.replace` is one atomic rename),
is named per process (two writers never share one), and is removed when the write fails.
A whole directory (an adapter, merged weights) is written beside its target and renamed onto it
(`replace_dir`). A person's own source file has its own path (tui/files.py): it keeps mode and
owner, and refuses to overwrite changes made on disk.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path


def write_atomic(path: str | os.PathLike, data: str | bytes, *, durable: bool = False) -> None:
    """Replace `path` with `data` (str: UTF-8). `durable`: fsync before the rename, for a file
    whose loss after a power cut would cost a person something (the model registry)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, data, *, indent: int | None = 2, durable: bool = False, **dumps) -> None:
    """`data` as JSON (ending in a newline when indented), written whole or not at all."""
    text = json.dumps(data, indent=indent, **dumps)
    write_atomic(path, text + "\n" if indent is not None else text, durable=durable)


def replace_dir(tmp: str | os.PathLike, final: str | os.PathLike, *, durable: bool = False) -> None:
    """Put the complete directory `tmp` in place of `final` (replacing an older one). Two renames,
    not one (a directory cannot be renamed onto a non-empty one): in between, `final` is missing,
    never half-written. `durable`: every file is fsynced first."""
    tmp, final = Path(tmp), Path(final)
    if durable:
        for p in tmp.rglob("*"):
            if p.is_file():
                with open(p, "rb") as f:
                    os.fsync(f.fileno())
    old = final.with_name(f".{final.name}.{os.getpid()}.old")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def save_figure(fig, path: str | os.PathLike, **savefig) -> None:
    """A matplotlib figure as a PNG, written whole or not at all."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", **savefig)
    write_atomic(path, buffer.getvalue())
