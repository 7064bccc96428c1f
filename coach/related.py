"""Context from the project's other files: a few chunks, chosen by how many names they share with
the code around the cursor, put ahead of the current file in the prompt (as llama.vim's ring of
chunks and Tabby's repository context do). A name defined only in another open file can then be
suggested.

The choice is made per line, not per keystroke (the editor asks again when the cursor's line
changes), and the chunks are laid out in a stable order (by file, then line): while the person
types on a line the prompt's start stays the same, and the KV cache serves it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CHUNK_LINES = 16     # a chunk: this many lines, starting every CHUNK_LINES // 2
AROUND_LINES = 12    # the code around the cursor the chunks are compared with
MAX_CHUNKS = 3
MAX_CHARS = 1500     # all chunks together, in characters (a quarter of a small model's window)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")  # names of 3+ characters: `i`, `x` match everything
_COMMON = frozenset({"def", "return", "self", "import", "from", "for", "and", "not", "None", "True", "False",
                     "class", "while", "else", "elif", "with", "the", "try", "except", "pass", "lambda", "yield"})


@dataclass(frozen=True)
class Chunk:
    path: str      # as shown in the prompt: relative to the project
    start: int     # its first line, 0-based
    text: str

    def rendered(self) -> str:
        return f"# {self.path}\n{self.text.rstrip()}\n\n"


def names(text: str) -> set[str]:
    return set(_NAME.findall(text)) - _COMMON


def chunks(path: str, text: str) -> list[Chunk]:
    lines = text.splitlines(keepends=True)
    step = CHUNK_LINES // 2
    return [Chunk(path, i, "".join(lines[i:i + CHUNK_LINES])) for i in range(0, max(1, len(lines) - step), step)
            if "".join(lines[i:i + CHUNK_LINES]).strip()]


def choose(files: dict[str, str], around: str, max_chunks: int = MAX_CHUNKS, max_chars: int = MAX_CHARS) -> tuple[str, ...]:
    """The rendered chunks of `files` (path -> text; the current file left out by the caller) that
    share the most names with `around`, best first until the budget is spent, then laid out by
    file and line. Empty when nothing shares a name."""
    want = names("\n".join(around.splitlines()[-AROUND_LINES:]))
    if not want:
        return ()
    scored = []
    for path, text in files.items():
        for c in chunks(path, text):
            have = names(c.text)
            shared = len(want & have)
            if shared:
                scored.append((shared / len(want | have), c))
    scored.sort(key=lambda sc: (-sc[0], sc[1].path, sc[1].start))
    picked, used = [], 0
    for _, c in scored:
        if len(picked) == max_chunks:
            break
        if any(p.path == c.path and abs(p.start - c.start) < CHUNK_LINES for p in picked):
            continue  # overlapping windows of one place: one is enough
        size = len(c.rendered())
        if used + size > max_chars:
            continue
        picked.append(c)
        used += size
    return tuple(c.rendered() for c in sorted(picked, key=lambda c: (c.path, c.start)))
