"""A blind A/B in the real editor, in a real terminal, with a scripted person: the run behind the
A/B's Done-when in issue 21, and a way to see the study's report on real models before sitting
one yourself.

    python -m experiments.ab_tmux smollm2-135m evb-empower-eta4 --minutes 0.5 --out /tmp/ab

It starts `empower-tui DIR --ab A B` in tmux on an empty file and writes TARGET (default: this
repository's coach/related.py) into it as a person who reads the grey text: they take a
suggestion word by word (Ctrl+Right) as far as it is what they were going to write, a whole line
(Ctrl+Down) when the ghost's line is the rest of theirs, and otherwise type on, a word at a time.
Enter's indentation is corrected as a person would. At the end they save, quit, and answer the
preference question (`--prefer`: X, Y or same; by default the assistant whose text they took more
of, which is what such a person would feel). Then `empower-tui stats --ab` prints the study.
The panes are polled with `tmux capture-pane`; the ghost is what follows the person's text on
their line, and the italic lines under it.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).with_name("empower-tui")
WIDTH, HEIGHT = 140, 40
_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_WORD = re.compile(r"\s*(\w+|[^\w\s]+)|\s+")  # as the editor's Ctrl+Right takes a word (tui/editor.py)
_CURSOR = re.compile(r"  (\d+):(\d+)  ")


class Terminal:
    def __init__(self, conf: Path) -> None:
        self.socket = f"empower-ab-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.conf = conf
        conf.write_text("set -g status off\n")  # from the start: no resize as the editor starts

    def tmux(self, *args: str) -> str:
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}
        return subprocess.run(["tmux", "-L", self.socket, "-f", str(self.conf), *args], env=env,
                              capture_output=True, text=True, check=True, timeout=30).stdout

    def start(self, command: str) -> None:
        self.tmux("new-session", "-d", "-s", "ab", "-x", str(WIDTH), "-y", str(HEIGHT), command)

    def keys(self, *keys: str, literal: bool = False) -> None:
        if literal:  # tmux reads an argument's last ";" as the end of its command: escape it
            keys = tuple(k[:-1] + "\\;" if k.endswith(";") else k for k in keys)
        self.tmux("send-keys", "-t", "ab", *(["-l"] if literal else []), *keys)

    def pane(self, escapes: bool = False) -> str:
        return self.tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "ab")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        socket = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / self.socket
        socket.unlink(missing_ok=True)  # tmux leaves it behind


def ghost_lines(pane: str) -> list[str]:
    """The italic text of each row that has some: the ghost's lines, top to bottom."""
    rows = []
    for line in pane.splitlines():
        italic, out, i = False, [], 0
        for m in _SGR.finditer(line):
            if italic:
                out.append(line[i:m.start()])
            params = [p for p in m.group(1).split(";")] or ["0"]
            k = 0
            while k < len(params):
                p = params[k] or "0"
                if p in ("38", "48", "58"):  # a colour: 5;N or 2;R;G;B follow
                    k += 3 if params[k + 1:k + 2] == ["5"] else 5
                    continue
                if p == "0":
                    italic = False
                elif p == "3":
                    italic = True
                elif p == "23":
                    italic = False
                k += 1
            i = m.end()
        if italic:
            out.append(line[i:])
        text = "".join(out)
        if text.strip():
            rows.append(text.rstrip())
    return rows


_GUTTER = re.compile(r"\s*(\d+)  (.*)$")  # a buffer line: its number, two spaces, its text


def ghost_at(pane: str, row: int, typed: str) -> list[str]:
    """The ghost at the end of line `row`, whose text so far is `typed`: the rest of that line on
    screen, then the lines drawn under it with no number (italic: the ghost's). Found by the line
    number, not by style alone: highlighting draws some code (`True`, `__future__`) italic too."""
    rows = pane.splitlines()
    for i, line in enumerate(rows):
        m = _GUTTER.match(_SGR.sub("", line))
        if not m or int(m.group(1)) != row:
            continue
        shown = m.group(2).rstrip()
        if len(shown) <= len(typed.rstrip()) or not shown.startswith(typed):
            return []
        out = [shown[len(typed):]]
        for below in rows[i + 1:]:
            if _GUTTER.match(_SGR.sub("", below)):
                break
            more = ghost_lines(below)
            if not more:
                break
            out.append(more[0])
        return out
    return []


def cursor(pane: str) -> tuple[int, int] | None:
    m = _CURSOR.search(pane.splitlines()[-2] if len(pane.splitlines()) >= 2 else "")
    return (int(m.group(1)), int(m.group(2))) if m else None


class Person:
    """Writes `target` into the editor through `term`, reading the ghost after every word. Before
    each look they wait until the status bar's cursor is where their text ends: under load the
    editor lags behind the keys, and a ghost read too early belongs to an older state."""

    def __init__(self, term: Terminal, target: str, read_s: float) -> None:
        self.term, self.target, self.read_s = term, target, read_s
        self.pos = 0  # the buffer holds target[:pos]
        self.took = self.typed = self.retyped = 0

    def expected(self) -> tuple[int, int]:
        done = self.target[:self.pos]
        return done.count("\n") + 1, len(done) - (done.rfind("\n") + 1) + 1

    def sync(self, want: tuple[int, int] | None = None, timeout: float = 30.0) -> str:
        """The pane (with escapes) once the cursor is at `want` (default: the end of the text so far)."""
        want = want or self.expected()
        deadline = time.monotonic() + timeout
        while True:
            pane = self.term.pane(escapes=True)
            if cursor(_SGR.sub("", pane)) == want:
                return pane
            if time.monotonic() > deadline:
                raise RuntimeError(f"the editor's cursor is at {cursor(_SGR.sub('', pane))}, not {want}")
            time.sleep(0.05)

    def look(self) -> list[str]:
        self.sync()
        time.sleep(self.read_s)
        done = self.target[:self.pos]
        return ghost_at(self.sync(), self.expected()[0], done[done.rfind("\n") + 1:])

    def write(self, on_progress=None) -> None:
        while self.pos < len(self.target):
            rest = self.target[self.pos:]
            line_rest = rest.split("\n", 1)[0]
            ghost = self.look() if line_rest.strip() else []
            if ghost and self._take(ghost, rest, line_rest):
                pass
            elif rest.startswith("\n"):
                self._newline()
            else:
                word = _WORD.match(line_rest).group(0)
                self.term.keys(word, literal=True)
                self.pos += len(word)
                self.typed += len(word)
            if on_progress:
                on_progress(self.pos, len(self.target))
        self.sync()

    def _take(self, ghost: list[str], rest: str, line_rest: str) -> bool:
        first = ghost[0]
        if len(ghost) > 1 and rest.startswith(first + "\n"):
            self.term.keys("C-Down")  # the ghost's line is the rest of mine, newline and all
            self.pos += len(first) + 1
            self.took += len(first) + 1
            return True
        taken = 0
        for m in _WORD.finditer(first):
            if not line_rest.startswith(first[:m.end()]):
                break
            taken = m.end()
            self.term.keys("C-Right")
        self.pos += taken
        self.took += taken
        return taken > 0

    def settle(self) -> None:
        """Before Enter, make sure the line is all there: a key the editor lost (rarely, a
        Ctrl+Right taken just before Enter) is typed again, as a person would who sees it missing."""
        row, col = self.expected()
        deadline = time.monotonic() + 3
        while (at := cursor(self.term.pane())) != (row, col):
            if time.monotonic() > deadline:
                if at is None or at[0] != row or at[1] > col:
                    raise RuntimeError(f"the editor's cursor is at {at}, not {(row, col)}")
                done = self.target[:self.pos]
                line = done[done.rfind("\n") + 1:]
                missing = line[at[1] - 1:]
                self.term.keys(missing, literal=True)
                self.retyped += len(missing)
                self.sync()
                return
            time.sleep(0.05)

    def _newline(self) -> None:
        """Enter, then the indentation the next line needs (the editor guesses one)."""
        self.settle()
        self.term.keys("Enter")
        self.pos += 1
        line = self.target[self.pos:].split("\n", 1)[0]
        want = len(line) - len(line.lstrip(" ")) if line.strip() else 0
        row = self.expected()[0]
        deadline = time.monotonic() + 30
        while (at := cursor(self.term.pane())) is None or at[0] != row:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Enter did not reach line {row}")
            time.sleep(0.05)
        have = at[1] - 1
        if have > want:
            self.term.keys(*["BSpace"] * (have - want))
        elif have < want:
            self.term.keys(" " * (want - have), literal=True)
        self.sync((row, want + 1))
        if line.strip():
            self.pos += want
        elif want == 0 and line:  # a line of spaces only: the person leaves it empty
            self.target = self.target[:self.pos] + self.target[self.pos + len(line):]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--target", type=Path, default=ROOT / "coach" / "related.py")
    p.add_argument("--lines", type=int, default=80, help="the first N lines of TARGET")
    p.add_argument("--minutes", type=float, default=0.5, help="--ab-block")
    p.add_argument("--read", type=float, default=0.6, help="seconds the person looks before each word")
    p.add_argument("--prefer", choices=["X", "Y", "same"])
    p.add_argument("--out", type=Path, default=Path("empower-runs/ab-tmux"))
    args = p.parse_args(argv)
    if shutil.which("tmux") is None:
        print("ab_tmux: needs tmux", file=sys.stderr)
        return 2
    from rich.console import Console
    from rich.progress import Progress

    from coach.progress import Milestones

    out = args.out.resolve()
    project = out / "project"
    project.mkdir(parents=True, exist_ok=True)
    target = "".join(args.target.read_text().splitlines(keepends=True)[:args.lines])
    name = args.target.name
    (project / name).write_text("")
    db = out / "interactions.db"
    term = Terminal(out / "tmux.conf")
    command = (f"cd {shlex.quote(str(project))} && {shlex.quote(str(EXE))} {shlex.quote(name)} --ab "
               f"{shlex.quote(args.a)} {shlex.quote(args.b)} --ab-block {args.minutes} --db {shlex.quote(str(db))}")
    term.start(command)
    try:
        deadline = time.monotonic() + 600  # two models loading on a busy machine
        while "assistant " not in (pane := term.pane()):
            if "Restore it?" in pane:  # an earlier run was killed mid-file: start from the file on disk
                term.keys("Tab", "Enter")
            if time.monotonic() > deadline or "no suggestions" in pane:
                print(f"ab_tmux: the editor did not load both assistants; the pane:\n{term.pane()}", file=sys.stderr)
                return 1
            time.sleep(0.5)
        person = Person(term, target, args.read)
        console = Console()
        lines = None if console.is_terminal else Milestones(console, f"writing {name}")  # a file: lines, not a bar
        with Progress(console=console, disable=lines is not None) as progress:
            task = progress.add_task(f"writing {name} in the editor", total=len(target))
            person.write(lambda done, total: lines.update(done, total, unit=" chars") if lines
                         else progress.update(task, completed=done))
        term.keys("C-s")
        time.sleep(1)
        written = (project / name).read_text()
        term.keys("C-q")
        deadline = time.monotonic() + 20
        while "Which felt more helpful?" not in term.pane():
            if time.monotonic() > deadline:
                print(f"ab_tmux: no preference question; the pane:\n{term.pane()}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        (out / "pane-question.txt").write_text(term.pane())
        choice = args.prefer or _felt(db)
        term.keys(*["Tab"] * ["X", "Y", "same"].index(choice), "Enter")  # the buttons: X, Y, No difference
        time.sleep(2)
    finally:
        term.kill()
    print(f"wrote {name}: {'as the target' if written == target else 'DIFFERENT from the target'}; "
          f"taken from suggestions {person.took} chars, typed {person.typed}, typed again after a lost key "
          f"{person.retyped}; said: {choice}")
    return subprocess.run([str(EXE), "stats", "--ab", "--db", str(db)]).returncode


def _felt(db: Path) -> str:
    """What a person who took more of one assistant's text would say: that one."""
    import sqlite3

    # an accept names its suggestion; the suggestion says whose it was
    rows = sqlite3.connect(db).execute(
        "SELECT json_extract(s.data, '$.ab_arm'), sum(length(a.text)) FROM events a JOIN events s "
        "ON s.session = a.session AND s.seq = json_extract(a.data, '$.suggestion') "
        "WHERE a.kind = 'suggestion_accepted' GROUP BY 1").fetchall()
    by = {label: n for label, n in rows if label}
    if not by or by.get("X", 0) == by.get("Y", 0):
        return "same"
    return max(by, key=by.get)


if __name__ == "__main__":
    sys.exit(main())
