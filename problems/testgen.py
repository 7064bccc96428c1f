"""What every problem's gen.py shares: save a generated large test with its expected output.

The expected output comes from running the reference solution (`solution.py` beside gen.py);
both files are gzipped with mtime=0 so a regenerated test is byte-for-byte the same.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path


def write_gz(path: Path, data: bytes) -> None:
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(data)


def save_large(problem_dir: Path, name: str, text: str) -> None:
    """Write tests/NAME.in.gz and tests/NAME.out.gz (the reference solution's answer)."""
    out = subprocess.run([sys.executable, str(problem_dir / "solution.py")], input=text.encode(),
                         capture_output=True, check=True).stdout
    write_gz(problem_dir / "tests" / f"{name}.in.gz", text.encode())
    write_gz(problem_dir / "tests" / f"{name}.out.gz", out)
