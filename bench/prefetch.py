"""The model working ahead, with it (the default) and without: Tab → the next ghost, and the first
ghost in a file just opened.

    python bench/prefetch.py [--model SPEC] [--accepts 8] [--read-ms 1000] [--rounds 2] [--out bench/out/prefetch.json]
    python bench/prefetch.py --open [--look-ms 3000] [--rounds 2]   # the warm-up instead

--open: the first ghost in a file just opened. The editor opens the first 6,000 characters of
the standard library's shlex.py (a file nobody here wrote) with the model loaded; the person
looks at it for --look-ms, jumps to its end (a click) and types the next 12 characters of the
module; the run measures from the last key to the first ghost. With the warm-up the model reads
the file while it is looked at (a prefetch at its end); without, it reads it at the first pause.

Runs the real editor (`EmpowerApp`, headless, through Textual's pilot) with the default
assistant's model (the built-in smollm2-135m, llama.cpp; policy base-10, so that every Tab is
followed by a ghost) on the lava problem's first lines. A person reads each ghost for
--read-ms, takes it with Tab, and waits for the next one; the run measures from Tab to the next ghost on screen, --accepts times, as the editor's
own events stamp them (its "suggestion_accepted", then the next "suggestion_shown"). With the prefetch
the model computes the state after the ghost while it is read (coach.Coach.prefetch), and the
editor asks at once after Tab; without, it waits out its pause (100 ms) and then the model.
Both arms take the same greedy ghosts, so they walk the same states: paired. Arms alternate
(on, off, off, on, ...) so that the machine's drift falls on both; the figure is the median
with ÷ the median without, in this one run (target: well under 1).

On 2026-12-04 (2 cores, nothing else running): Tab → next ghost 21 ms with, 296 ms without
(16 accepts each way), 0.07×; --open: 333 ms with, 11,352 ms without (2 runs each way), 0.03×.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `import tui` must find the package, not bench/tui.py

from coach.backends import load_backend  # noqa: E402
from coach.builtin import DEFAULT_ASSISTANT  # noqa: E402
from coach.engine import Coach  # noqa: E402
from coach.policies import parse  # noqa: E402
from coach.specs import resolve  # noqa: E402
from tui.app import EmpowerApp, Settings  # noqa: E402
from tui.files import open_file  # noqa: E402
from tui.screen import EditorScreen  # noqa: E402


async def until(pilot, predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await pilot.pause(0.005)
    return True


async def one_run(spec, policy, fmt: str, text: str, prefetch: bool, accepts: int, read_s: float,
                  workdir: Path) -> list[float]:
    """Tab → next ghost, in seconds, for each accept of one editor session (its own model: the
    editor closes it on exit)."""
    path = workdir / "lava.py"
    workdir.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    coach = Coach(load_backend(spec), policy, fmt)
    settings = Settings(model=None, delay_s=0.1, prefetch=prefetch, log_db=str(workdir / "log.db"))
    app = EmpowerApp(open_file(path), settings, None, coach=coach)
    waits = []
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, EditorScreen), 30)
        editor = app.screen.editor
        logged, stamps = editor.log_writer, {}

        def recorder(kind: str, fields: dict) -> int:  # the editor's own events, stamped
            stamps[kind] = time.perf_counter()
            return logged(kind, fields)

        editor.log_writer = recorder
        editor.move_cursor(editor.document.end)
        if not await until(pilot, lambda: editor.ghost is not None, 60):
            return waits
        for _ in range(accepts):
            await asyncio.sleep(read_s)  # the person reads the ghost
            await pilot.press("tab")
            if not await until(pilot, lambda: editor.ghost is not None, 30):
                break  # the model has nothing more here
            # from the Tab taking the ghost to the next one on screen, as the editor logged them
            waits.append(stamps["suggestion_shown"] - stamps["suggestion_accepted"])
    return waits


async def open_run(spec, policy, fmt: str, text: str, typed: str, warm: bool, look_s: float,
                   workdir: Path) -> list[float]:
    """The last key → the first ghost, in seconds, in a file just opened (one value, or none)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "opened.py"
    path.write_text(text)
    coach = Coach(load_backend(spec), policy, fmt)
    settings = Settings(model=None, delay_s=0.1, prefetch=warm, log_db=str(workdir / "log.db"))
    app = EmpowerApp(open_file(path), settings, None, coach=coach)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, EditorScreen), 30)
        editor = app.screen.editor
        editor.auto_indent = False
        logged, stamps = editor.log_writer, {}

        def recorder(kind: str, fields: dict) -> int:
            stamps[kind] = time.perf_counter()
            return logged(kind, fields)

        editor.log_writer = recorder
        await asyncio.sleep(look_s)  # the person reads the file
        editor.move_cursor(editor.document.end)  # the person clicks at the end of the file
        for ch in typed:
            await pilot.press("enter" if ch == "\n" else "space" if ch == " " else ch)
        if not await until(pilot, lambda: editor.ghost is not None and "suggestion_shown" in stamps, 120):
            return []
        return [stamps["suggestion_shown"] - stamps["insert"]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_ASSISTANT.model)
    # base-10, not the default assistant's threshold: a chain of accepts needs a ghost after each
    # Tab, and threshold often has nothing to say at a line's end (then the run would stop there)
    parser.add_argument("--policy", default="base-10")
    parser.add_argument("--eta", type=float, default=DEFAULT_ASSISTANT.eta)
    parser.add_argument("--format", default=DEFAULT_ASSISTANT.format)
    parser.add_argument("--accepts", type=int, default=8)
    parser.add_argument("--read-ms", type=float, default=1000)
    parser.add_argument("--open", action="store_true", help="measure the warm-up: the first ghost in a file just opened")
    parser.add_argument("--look-ms", type=float, default=3000)
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs each way (on, off, off, on, ...)")
    parser.add_argument("--out", type=Path, help="default bench/out/prefetch.json (--open: prefetch-open.json)")
    args = parser.parse_args()
    args.out = args.out or ROOT / "bench/out" / ("prefetch-open.json" if args.open else "prefetch.json")
    console = Console()
    solution = (ROOT / "problems/catalog/lava/solution.py").read_text()
    text = "".join(solution.splitlines(keepends=True)[:12])
    spec = resolve(args.model)
    policy = parse(args.policy, args.eta)
    waits: dict[bool, list[float]] = {True: [], False: []}
    order = [p for i in range(args.rounds) for p in ((True, False) if i % 2 == 0 else (False, True))]
    if args.open:
        module = Path(shlex.__file__).read_text()
        cut = module.rfind("\n", 0, 6000) + 1
        text, typed = module[:cut], module[cut:cut + 12]
    with tempfile.TemporaryDirectory() as tmp:
        for i, prefetch in enumerate(order):
            if args.open:
                got = asyncio.run(open_run(spec, policy, args.format, text, typed, prefetch, args.look_ms / 1000,
                                           Path(tmp) / str(i)))
            else:
                got = asyncio.run(one_run(spec, policy, args.format, text, prefetch, args.accepts,
                                          args.read_ms / 1000, Path(tmp) / str(i)))
            waits[prefetch] += got
            console.print(f"run {i + 1}/{len(order)}: prefetch {'on ' if prefetch else 'off'} "
                          f"{len(got)} ghosts, median {1000 * statistics.median(got):.0f} ms" if got else "no ghost")
    on, off = (statistics.median(waits[p]) if waits[p] else float("nan") for p in (True, False))
    what = (f"last key → first ghost in a file just opened, looked at {args.look_ms:g} ms" if args.open
            else f"Tab → next ghost, read {args.read_ms:g} ms")
    table = Table(title=f"{what} ({args.model}, {policy})")
    for col in ("prefetch", "ghosts", "median ms", "p90 ms"):
        table.add_column(col, justify="right")
    for p in (True, False):
        w = sorted(waits[p])
        table.add_row("on" if p else "off", str(len(w)), f"{1000 * statistics.median(w):.0f}" if w else "–",
                      f"{1000 * w[int(0.9 * (len(w) - 1))]:.0f}" if w else "–")
    console.print(table)
    console.print(f"with ÷ without: {on / off:.2f}×")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": args.model, "policy": str(policy), "part": "open" if args.open else "tab",
                                    "read_ms": args.read_ms, "look_ms": args.look_ms,
                                    "waits_s": {"on": waits[True], "off": waits[False]},
                                    "median_on_s": on, "median_off_s": off, "ratio": on / off}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
