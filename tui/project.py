"""The project around the file a person edits: its root (the git work tree's top, or the
directory given), the files the picker offers, and the language each is highlighted as.

git is asked through coach/git.py (a repository's config cannot make it run anything); outside
git, a walk that skips hidden and tool directories. Either way the list stops at MAX_FILES: the
picker is for finding a file, and a home directory opened by mistake must not hang the editor.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from coach.git import GitError, listed_files, toplevel

MAX_FILES = 20_000
# Directories a walk outside git never enters: tools' and environments' output, not the person's.
SKIP_DIRS = {"__pycache__", "node_modules", "venv", ".venv", "env", "build", "dist", "site-packages",
             "empower-runs", "target"}
# Textual's tree-sitter languages by suffix; anything else opens as plain text. Not javascript
# or json: with tree-sitter 0.26.1, tree-sitter-javascript 0.25.0 and tree-sitter-json 0.24.8 a
# TextArea given either crashes the process (SIGSEGV, seen here); tests/test_tui_project.py
# opens every language below in a process of its own.
LANGUAGES = {".py": "python", ".pyi": "python", ".md": "markdown", ".toml": "toml", ".yaml": "yaml", ".yml": "yaml",
             ".html": "html", ".htm": "html", ".css": "css", ".sql": "sql", ".rs": "rust", ".go": "go",
             ".java": "java", ".sh": "bash", ".bash": "bash", ".xml": "xml"}


def language_of(path: str | os.PathLike) -> str | None:
    return LANGUAGES.get(Path(path).suffix.lower())


@dataclass(frozen=True)
class Project:
    root: Path

    @classmethod
    def around(cls, path: str | os.PathLike) -> "Project":
        """The project a file or directory belongs to: its git work tree, else the directory itself."""
        p = Path(path).absolute()
        where = p if p.is_dir() else p.parent
        return cls((toplevel(where) or where).resolve())

    def files(self) -> list[str]:
        """The project's files, relative to its root, sorted; at most MAX_FILES."""
        try:
            listed = listed_files(self.root)
        except GitError:
            listed = None
        if listed is not None:
            return [f for f in listed if (self.root / f).is_file()][:MAX_FILES]
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root):  # links to directories not followed
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in SKIP_DIRS)
            here = Path(dirpath).relative_to(self.root)
            found.extend((here / f).as_posix() for f in sorted(filenames) if not f.startswith("."))
            if len(found) >= MAX_FILES:
                break
        return sorted(found)[:MAX_FILES]

    def relative(self, path: str | os.PathLike) -> str:
        p = Path(path).resolve()
        try:
            return p.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(p)
