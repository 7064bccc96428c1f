"""git, called on a directory nobody here vouches for: a person's project (the editor's file
picker) or the code `empower-finetune` learns from.

A repository's own config can make git run commands (core.fsmonitor runs on `ls-files
--others`; hooks): those are switched off for every call, and listing never takes the index lock.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SAFE = ("-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-c", "core.untrackedCache=false")
ENV_DROP = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX")  # set inside hooks


class GitError(Exception):
    """git answered, with an error (one line)."""


def git(root: str | os.PathLike, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ENV_DROP}
    env["GIT_OPTIONAL_LOCKS"] = "0"  # listing never writes to the person's index
    return subprocess.run(["git", *SAFE, "-C", str(root), *args], capture_output=True, env=env, timeout=timeout)


def toplevel(path: str | os.PathLike) -> Path | None:
    """The work tree `path` (a directory) is in; None where there is none or no git."""
    try:
        out = git(path, "rev-parse", "--show-toplevel", timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(os.fsdecode(out.stdout.strip())) if out.returncode == 0 and out.stdout.strip() else None


def listed_files(root: str | os.PathLike) -> list[str] | None:
    """What git lists under root (tracked, and untracked that no ignore rule excludes), relative to
    it, sorted; None where git is missing or root is in no work tree."""
    try:
        if git(root, "rev-parse", "--show-toplevel").returncode != 0:
            return None
        out = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    except (OSError, subprocess.SubprocessError):  # no git, or it hangs
        return None
    if out.returncode != 0:
        first = out.stderr.decode(errors="replace").strip().splitlines()[:1]
        raise GitError(f"git ls-files failed in {root}: {first[0] if first else 'no message'}")
    # a set: a file in a merge conflict is listed once per stage
    return sorted({os.fsdecode(p) for p in out.stdout.split(b"\0") if p})
