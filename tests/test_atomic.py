"""coach/atomic.py on real files: a write that fails (a full disk, stood in for by a file-size
limit) leaves the old file and no temp file; a directory replaced whole."""

from __future__ import annotations

import json
import subprocess
import sys

from coach.atomic import replace_dir, write_json

# The file-size limit is set in a child: in pytest's own process it would also cap pytest's
# output, and a run whose output goes to a long log file (CI's) dies on its first dot.
_WRITE_ON_A_SMALL_DISK = """
import resource, signal, sys
from coach.atomic import write_atomic
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the limit, write() fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
try:
    write_atomic(sys.argv[1], "x" * 10_000)
except OSError as exc:
    print(exc.errno)
"""


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "registry.json"
    write_json(path, {"models": ["mine"]}, durable=True)
    out = subprocess.run([sys.executable, "-c", _WRITE_ON_A_SMALL_DISK, str(path)],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "27"  # EFBIG, as a full disk's ENOSPC: the write did fail
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
