"""coach/atomic.py on real files: a write that fails (a full disk, stood in for by a file-size
limit) leaves the old file and no temp file; a directory replaced whole."""

from __future__ import annotations

import json
import resource
import signal

import pytest

from coach.atomic import replace_dir, write_atomic, write_json


@pytest.fixture
def small_disk():
    """Writes past 4 KB fail with EFBIG, as on a full disk (SIGXFSZ ignored so the write raises)."""
    old_limit, old_handler = resource.getrlimit(resource.RLIMIT_FSIZE), signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, old_limit[1]))
    yield
    resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
    signal.signal(signal.SIGXFSZ, old_handler)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, small_disk):
    path = tmp_path / "registry.json"
    write_json(path, {"models": ["mine"]}, durable=True)
    with pytest.raises(OSError):
        write_atomic(path, "x" * 10_000)
    assert json.loads(path.read_text()) == {"models": ["mine"]}
    assert [p.name for p in tmp_path.iterdir()] == ["registry.json"]


def test_a_directory_is_replaced_whole(tmp_path):
    final, tmp = tmp_path / "adapter", tmp_path / ".adapter.tmp"
    final.mkdir()
    (final / "old.bin").write_text("old")
    tmp.mkdir()
    (tmp / "new.bin").write_text("new")
    replace_dir(tmp, final, durable=True)
    assert [p.name for p in final.iterdir()] == ["new.bin"]
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # neither the temp nor the old copy left
