"""Benchmark runs: episodes/minute with the oracle and with an LLM human, and resuming a killed run.

    python bench/evals.py [--episodes 24] [--llm-episodes 24] [--think 256] [--rounds 4] [--repeats 3]
                          [--he-episodes 12] [--he-repeats 2] [--files-files 3] [--files-per-file 4]
                          [--files-rounds 4] [--parts oracle,llm,resume,humaneval,files]
                          [--quick] [--check] [--out bench/out/evals.json]
    python bench/evals.py --llm-human [--lh-problems 2] [--lh-rounds 4] [--lh-policy base-10] [--no-lh-full]

The assistant is tests/models.py's memorizer GGUF in process (one Coach per part, shared by the
episodes of a run as run_all shares it, built and warmed up untimed; its suggestion cache is
emptied before each timed run). The 6 built-in problems are copied under new ids (bank#0,
bank#1, ...) to make more episodes: run_all takes one seed a call, each call with its own
semaphore, so 4 seeds would be 4 calls of 6 episodes, never 8 in flight. Four figures, one run:

1. oracle human, policy base: episodes/minute at concurrency 8 ÷ at 1, timed interleaved (1, 8,
   then 8, 1, ...). No target: it is judge-bound. The assistant is one model behind a lock; what
   overlaps is the judge (each program's tests in a sandboxed subprocess): its share of episode
   time at concurrency 1 is printed beside. On 2 cores there is little room to overlap into.
2. LLM human (make_human("llm"), model "memorizer"), concurrency 8: two llama.cpp servers ÷ one
   (target ≥ 1.6), timed interleaved (1, 2, then 2, 1, ...). Each server is `python -m
   llama_cpp.server` on the memorizer with --n_threads 1 --n_threads_batch 1: one core each, 2
   servers on this 2-core machine against 1. The human thinks up to --think tokens a decision
   so that its servers' time dominates; the assistant is base-8 with n_threads=1 (llama.cpp's
   prompt threads stay at its default); episodes stop after --rounds rounds. The memorizer's
   1,024-token context cannot hold a statement (1,000-1,700 tokens), so the human reads only the
   title; the tiny model's nonsense counts as reject, and its code fails to compile (a cheap
   judge). Beside: the tokens the servers generated a second, and the cores kept busy by this
   process with the judge's workers, by the servers and by other processes (/proc/stat).
3. resume: a child process (`--child`) runs the oracle episodes at concurrency 1 into a run
   directory; once 2 are stored its process group gets SIGKILL. The same run_all then runs again
   in this process: it must run exactly the episodes not stored, leave every stored row as it
   was (same `created`) and end with each episode stored once. Target: 0 redone.
4. HumanEval (issue 9): the oracle human on the first --he-episodes problems of
   bench/humaneval-40.txt, starting from each prompt, with the built-in smollm2-135m (policy
   base) in process: episodes/min at concurrency 4 ÷ 1, interleaved (1, 4, then 4, 1). No
   target; each episode in flight has its own replica of the coach (a KV cache of its own).

5. files (issue 18): the files dataset (`--dataset files DIR`: each episode a function of a
   held-out file, started from the file up to it) on --files-files standard-library modules,
   --files-per-file functions each, the oracle human, smollm2-135m in process with policy
   threshold η=2 (short suggestions: reading the file's start is most of the cost),
   concurrency 2, at most --files-rounds rounds: episodes/min when an idle coach takes the next
   function of the file its KV cache holds (run_all's affinity) ÷ when it takes the next
   episode in order, interleaved (off, on, then on, off), and the prompt tokens llama.cpp
   evaluated (the rest came from a KV cache). Target: affinity evaluates ≤ 0.85× the tokens
   (the count is deterministic; episodes/min is the same work with the noise of the machine).
   On 2026-12-04 (2 cores, nothing else running; `python bench/evals.py --parts files`, ~2 min):
   7,168 vs 8,798 prompt tokens, 0.81×; 28.8 vs 22.1 episodes/min, 1.30×; the same code played.

6. --llm-human (not in the default --parts): the built-in gemma-3-270m human (completion mode)
   on the first --lh-problems of bench/humaneval-40.txt, no oracle anywhere, the assistant
   smollm2-135m (--lh-policy) in process, concurrency 1. "before": its server as empower-evals
   started it until now (`python -m llama_cpp.server`, logits_all true, n_ctx 8192, one server
   for both roles); "after": as it starts it now (evals/llama_server.py: no logits table, its
   cached prefix reused only in aligned groups; one server a role). Both capped at --lh-rounds
   rounds, where they must play alike (same decisions, same code); then "after" with full
   episodes (--max-rounds, default empower-evals' 50). Each episode's wall time, each server's
   peak RSS (VmHWM) and CPU seconds.

On 2026-11-23 (2 cores, nothing else running; `python bench/evals.py --llm-human`, 2m20s):
before 32.5 and 26.6 s for 4 rounds (7.4 s a round), the server's peak RSS 3,489 MB; after 5.5
and 5.2 s (1.34 s a round; 5.5× less wall time, 76 → 15 server CPU seconds), 566 + 573 MB for
its two servers; both played the same. Full episodes after: 12.4 s (HumanEval/0, 12 rounds) and
11.2 s (HumanEval/4, 11 rounds), 611 + 586 MB peak. Much of "after"'s first round is the cold
prompt (~450 tokens a server); later rounds cost ~0.25 s a request. The before server's RSS
grows with the positions its logits table has touched (1 MB each, up to 8.6 GB at 8k); the
after servers' is bounded by the model, an 8k KV cache (~150 MB) and the compute buffers.

On 2026-11-22 (2 cores, nothing else running; 3 minutes): oracle 230 vs 153 episodes/min, 1.50×
(the judge 80% of episode time at 1; 1.37× before run_all had a thread per episode in flight);
LLM human 94 vs 58, 1.62× (1.74× in an earlier run); redone 0 of 2. Two servers fall short of
2× because the machine is full: they kept 1.68 cores busy, this process with the judge's
workers 0.19, and each server generates ~7% fewer tokens per CPU second beside the other.
Single-server runs vary by ±6% from run to run; --quick runs too few episodes (one batch of 8)
for the ratio to be held to its target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from coach.engine import Coach  # noqa: E402
from evals.episode import run_all  # noqa: E402
from evals.humans import make_human  # noqa: E402
from evals.metrics import summarize  # noqa: E402
from problems.datasets import load  # noqa: E402
from evals.store import Store  # noqa: E402
from tests.models import build  # noqa: E402
from evals.local_server import serve_gguf  # noqa: E402

LLM_TARGET = 1.6
FILES_TARGET = 0.85
TICK = os.sysconf("SC_CLK_TCK")


def copies(n: int, short: bool = False) -> list:
    """n episodes' problems: the built-in ones, copied under ids NAME#k (short: title as statement)."""
    base = load("builtin")
    if short:
        base = [dataclasses.replace(p, statement=p.title, starter="") for p in base]
    return [dataclasses.replace(p, id=f"{p.id}#{i // len(base)}") for i, p in
            enumerate(base * -(-n // len(base)))][:n]


def cpu_s(pid: int | None = None) -> float:
    """CPU seconds (user + system) of a process; pid None: this one's threads and its reaped
    children (the judge's sandboxed workers)."""
    if pid is None:
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def busy_s() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores, all processes)."""
    t = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (t[0] + t[1] + t[2] + t[5] + t[6]) / TICK  # user, nice, system, irq, softirq


def count_usage(human) -> dict:
    """Count the requests and tokens of the servers' answers to `human` (each answer's usage),
    chat and plain completions."""
    counts = {"requests": 0, "completion_tokens": 0, "prompt_tokens": 0}
    for client in human.clients:
        for api in (client.chat.completions, client.completions):
            async def counted(*args, _create=api.create, **kwargs):
                r = await _create(*args, **kwargs)
                counts["requests"] += 1
                if r.usage is not None:
                    counts["completion_tokens"] += r.usage.completion_tokens
                    counts["prompt_tokens"] += r.usage.prompt_tokens
                return r
            api.create = counted
    return counts


async def timed(problems, key, coach, human, concurrency: int, **kw) -> dict:
    """One run into a fresh temporary store: its wall time, CPU and episodes (an LLM human's
    clients are closed after it)."""
    coach.forget()  # a run starts cold: no suggestion served from an earlier run's cache
    with tempfile.TemporaryDirectory() as d:
        store = Store.open(d)
        t0, c0, b0 = time.perf_counter(), cpu_s(), busy_s()
        n_run, _ = await run_all(problems, [key], human, store, concurrency=concurrency, coaches={key: coach}, **kw)
        seconds, cpu, busy = time.perf_counter() - t0, cpu_s() - c0, busy_s() - b0
        eps = store.episodes()
        store.close()
    if hasattr(human, "aclose"):  # an LLM human's clients: closed in their own event loop
        await human.aclose()
    assert n_run == len(eps) == len(problems), (n_run, len(eps))
    return {"seconds": seconds, "episodes": len(eps), "per_minute": 60 * len(eps) / seconds, "cpu_s": cpu,
            "machine_busy_s": busy,
            "errored": sum(e.errored for e in eps), "correct": sum(e.correct for e in eps),
            "rounds": sum(len(e.rounds) for e in eps), "episode_s": sum(e.seconds for e in eps),
            "judge_s": sum(e.seconds - sum(r.seconds for r in e.rounds) for e in eps),
            "errors": sorted({e.error for e in eps if e.errored})[:3], "summary": dataclasses.asdict(summarize(eps)),
            "episodes_played": [{"problem": e.problem_id, "seconds": e.seconds, "rounds": len(e.rounds),
                                 "actions": [r.action for r in e.rounds], "thoughts": [r.thoughts for r in e.rounds],
                                 "code": e.code, "correct": e.correct}
                                for e in sorted(eps, key=lambda e: e.problem_id)]}


def pooled(runs: list[dict]) -> float:
    return 60 * sum(r["episodes"] for r in runs) / sum(r["seconds"] for r in runs)


def bench_oracle(args, spec: str) -> dict:
    problems, key = copies(args.episodes), (spec, "base", None)
    coach, human = Coach.from_spec(*key), make_human("oracle")
    try:
        asyncio.run(timed(copies(6), key, coach, human, 8))  # warm-up: model, judge, the coach's window
        runs = {1: [], 8: []}
        for i in range(args.repeats):
            for c in ((1, 8) if i % 2 == 0 else (8, 1)):
                runs[c].append(asyncio.run(timed(problems, key, coach, human, c)))
    finally:
        coach.close()
    one, eight = pooled(runs[1]), pooled(runs[8])
    judge_share = sum(r["judge_s"] for r in runs[1]) / sum(r["episode_s"] for r in runs[1])
    return {"per_minute_c1": one, "per_minute_c8": eight, "ratio": eight / one, "judge_share_c1": judge_share,
            "episodes": len(problems), "runs": {str(c): r for c, r in runs.items()}}


def bench_llm(args, gguf: Path, logdir: Path) -> dict:
    problems, key = copies(args.llm_episodes, short=True), (str(gguf), "base-8", None)
    with contextlib.ExitStack() as stack:
        # one core each (prompt threads too), so that two servers on 2 cores compare with one
        servers = [stack.enter_context(serve_gguf(gguf, "memorizer", 1024, logdir / f"server{i}.log", extra=(
            "--interrupt_requests", "False", "--n_threads", "1", "--n_threads_batch", "1"))) for i in range(2)]
        urls, pids = [s.url for s in servers], [s.pid for s in servers]
        coach = Coach.from_spec(*key, backend_options={"n_threads": 1})
        kw = dict(max_rounds=args.rounds, human_name="llm-memorizer")

        def human(n: int):
            return make_human("llm", model="memorizer", urls=urls[:n], think_tokens=args.think)

        try:
            asyncio.run(timed(copies(4, short=True), key, coach, human(2), 8, **kw))  # warm-up: both servers
            runs = {1: [], 2: []}
            for i in range(args.repeats):
                for n in ((1, 2) if i % 2 == 0 else (2, 1)):
                    h = human(n)
                    usage, s0 = count_usage(h), [cpu_s(p) for p in pids]
                    r = asyncio.run(timed(problems, key, coach, h, 8, **kw))
                    r.update(usage, servers_cpu_s=[cpu_s(p) - s for p, s in zip(pids, s0)])
                    runs[n].append(r)
        finally:
            coach.close()
    one, two = pooled(runs[1]), pooled(runs[2])
    tokens = {n: sum(r["completion_tokens"] for r in rs) / sum(r["seconds"] for r in rs) for n, rs in runs.items()}
    return {"per_minute_1": one, "per_minute_2": two, "ratio": two / one, "target": LLM_TARGET,
            "passed": two / one >= LLM_TARGET, "tokens_per_s": {str(n): t for n, t in tokens.items()},
            "cores_busy": {str(n): cores(rs) for n, rs in runs.items()}, "episodes": len(problems),
            "runs": {str(n): r for n, r in runs.items()}}


def bench_humaneval(args) -> dict:
    """HumanEval with the oracle human and the built-in smollm2-135m in process: episodes/min at
    concurrency 4 ÷ 1. Each episode in flight gets its own replica of the coach (run_all), so the
    four do not evict each other's KV cache; what is left to overlap on 2 cores is the judge
    and llama.cpp's one-thread generation."""
    from evals.cli import start_of

    ids = (ROOT / "bench/humaneval-40.txt").read_text().split()[:args.he_episodes]
    problems, key = load("humaneval", ids=ids), ("smollm2-135m", "base", None)
    coach, human = Coach.from_spec(*key), make_human("oracle")
    kw = dict(start=lambda p: start_of(p, "auto"))
    try:
        asyncio.run(timed(problems[:4], key, coach, human, 4, **kw))  # warm-up: replicas, judge, window
        runs = {1: [], 4: []}
        for i in range(args.he_repeats):
            for c in ((1, 4) if i % 2 == 0 else (4, 1)):
                runs[c].append(asyncio.run(timed(problems, key, coach, human, c, **kw)))
    finally:
        coach.close()
    one, four = pooled(runs[1]), pooled(runs[4])
    return {"per_minute_c1": one, "per_minute_c4": four, "ratio": four / one, "episodes": len(problems),
            "policy": key[1], "runs": {str(c): r for c, r in runs.items()}}


def held_out_files(n: int, per_file: int, dest: Path) -> Path:
    """The first n standard-library modules (by name) of 3-7.5 KB with at least per_file
    functions the files dataset takes, copied into dest."""
    import sysconfig

    from problems.files import file_problems

    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        if n and 3_000 <= f.stat().st_size <= 7_500 and len(file_problems(f.name, f.read_text(), per_file)) >= per_file:
            (dest / f.name).write_text(f.read_text())
            n -= 1
    return dest


def bench_files(args, tmp: Path) -> dict:
    """The files dataset with the oracle: episodes/min with run_all's cache affinity ÷ without,
    concurrency 2 (a coach and its replica), smollm2-135m at threshold η=2."""
    root = held_out_files(args.files_files + 1, args.files_per_file, tmp / "files")
    problems = load("files", path=root, per_file=args.files_per_file)
    warm = [p for p in problems if p.id.startswith(problems[-1].id.split("::")[0] + "::")]
    timed_set = [p for p in problems if p not in warm]
    from coach.backends import llamacpp

    key, human = ("smollm2-135m", "threshold", 2.0), make_human("oracle")
    coach = Coach.from_spec(*key)
    evaluated = [0]  # prompt tokens llama.cpp computed, over the coach and its replicas
    real = llamacpp.LlamaCppBackend._generate

    def counted(self, request):
        g = real(self, request)
        evaluated[0] += g.evaluated_tokens
        return g
    from evals.cli import start_of

    kw = dict(start=lambda p: start_of(p, "auto"), max_rounds=args.files_rounds)
    try:
        asyncio.run(timed(warm, key, coach, human, 2, **kw))  # warm-up: model, replica, judge
        runs = {"off": [], "on": []}
        llamacpp.LlamaCppBackend._generate = counted
        for i in range(args.he_repeats):
            for mode in (("off", "on") if i % 2 == 0 else ("on", "off")):
                coach.backend.llm.reset()  # each run starts with the first coach's cache empty too
                evaluated[0] = 0
                r = asyncio.run(timed(timed_set, key, coach, human, 2, affinity=mode == "on", **kw))
                runs[mode].append({**r, "prompt_tokens_evaluated": evaluated[0]})
    finally:
        llamacpp.LlamaCppBackend._generate = real
        coach.close()
    on, off = pooled(runs["on"]), pooled(runs["off"])
    tokens = {m: sum(r["prompt_tokens_evaluated"] for r in rs) for m, rs in runs.items()}
    same = all(a["code"] == b["code"] for r_on, r_off in zip(runs["on"], runs["off"])
               for a, b in zip(r_on["episodes_played"], r_off["episodes_played"]))
    return {"per_minute_on": on, "per_minute_off": off, "ratio": on / off, "target": FILES_TARGET,
            "tokens_on": tokens["on"], "tokens_off": tokens["off"], "token_ratio": tokens["on"] / tokens["off"],
            "passed": tokens["on"] / tokens["off"] <= FILES_TARGET, "episodes": len(timed_set),
            "files": args.files_files, "same_code": same, "runs": runs}


# The built-in base-model human's server settings: llama-cpp-python's server as it is, with its
# defaults (logits_all true) and empower-evals' old 8k context, one server for both roles; and
# evals/local_server.py's now: no logits table, one server a role.
LH_SETUPS = {
    "before": {"module": "llama_cpp.server", "extra": ("--logits_all", "True"), "n_ctx": 8192, "servers": 1},
    "after": {"module": "evals.llama_server", "extra": (), "n_ctx": 8192, "servers": 2},
}


def bench_llm_human(args, logdir: Path) -> dict:
    """The built-in gemma-3-270m human (completion mode, its llama.cpp servers started as
    empower-evals starts them) on the first --lh-problems problems of bench/humaneval-40.txt at
    concurrency 1, the assistant smollm2-135m in process: each episode's wall time and each
    server's peak RSS, with the old server settings (before) and the new (after), both capped at
    --lh-rounds rounds, which they must play identically (same actions, same code); then the
    new settings again with the full --max-rounds, for what an episode costs."""
    from coach.builtin import BUILTINS
    from evals.cli import start_of
    from evals.episode import MAX_ROUNDS
    from evals.local_server import peak_rss

    gguf, name = BUILTINS["gemma-3-270m"].gguf(), "gemma-3-270m"
    ids = (ROOT / "bench/humaneval-40.txt").read_text().split()[:args.lh_problems]
    problems, key = load("humaneval", ids=ids), ("smollm2-135m", args.lh_policy, None)
    coach = Coach.from_spec(*key)
    out: dict = {"problems": ids, "assistant": list(key), "rounds_capped": args.lh_rounds, "setups": LH_SETUPS}

    def play(setup: str, rounds: int) -> dict:
        cfg = LH_SETUPS[setup]
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(serve_gguf(gguf, name, cfg["n_ctx"], logdir / f"{setup}-{rounds}-{i}.log",
                                                      extra=cfg["extra"], module=cfg["module"]))
                       for i in range(cfg["servers"])]
            h = make_human("llm", model=name, urls=[servers[0].url], mode="completion",
                           decide_urls=[s.url for s in servers[1:]] or None)
            usage, s0 = count_usage(h), [cpu_s(s.pid) for s in servers]
            r = asyncio.run(timed(problems, key, coach, h, 1, max_rounds=rounds, human_name=name,
                                  start=lambda p: start_of(p, "auto")))
            r.update(usage, servers_cpu_s=[cpu_s(s.pid) - c for s, c in zip(servers, s0)],
                     servers_peak_rss=[peak_rss(s.pid) for s in servers], setup=setup, max_rounds=rounds)
        return r

    try:
        for setup in ("before", "after"):
            out[setup] = play(setup, args.lh_rounds)
        if args.lh_full:
            out["after_full"] = play("after", args.max_rounds or MAX_ROUNDS)
    finally:
        coach.close()
    b, a = out["before"], out["after"]
    same = [(x["actions"], x["code"]) for x in b["episodes_played"]] == \
           [(x["actions"], x["code"]) for x in a["episodes_played"]]
    out.update(same_play=same, speedup=b["seconds"] / a["seconds"],
               per_round_s={k: out[k]["seconds"] / max(1, out[k]["rounds"]) for k in ("before", "after", "after_full")
                            if k in out})
    return out


def cores(runs: list[dict]) -> dict:
    """Cores kept busy over the runs (CPU seconds ÷ wall seconds): this process with the judge's
    workers, the servers, and the rest of the machine (other processes)."""
    wall = sum(r["seconds"] for r in runs)
    out = {"bench": sum(r["cpu_s"] for r in runs) / wall,
           "servers": sum(sum(r.get("servers_cpu_s", ())) for r in runs) / wall,
           "machine": sum(r["machine_busy_s"] for r in runs) / wall}
    return {**out, "others": max(0.0, out["machine"] - out["bench"] - out["servers"])}


def stored(db: Path) -> dict[tuple, float]:
    """The keys of the episodes in a run's SQLite file and their `created` (read as sqlite3 reads)."""
    if not db.exists():
        return {}
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return {tuple(r[:5]): r[5] for r in conn.execute(
            "select problem_id, assistant, policy, human, seed, created from episodes")}
    except sqlite3.OperationalError:  # the table is not created yet
        return {}
    finally:
        conn.close()


def child(run_dir: str, n: int, spec: str) -> None:
    """The resume figure's victim: the oracle episodes at concurrency 1 into run_dir, until killed."""
    asyncio.run(run_all(copies(n), [(spec, "base", None)], make_human("oracle"), Store.open(run_dir), concurrency=1))


def bench_resume(args, spec: str, run_dir: Path) -> dict:
    db, total = run_dir / "run.sqlite", args.episodes
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(run_dir), "--episodes", str(total),
                             "--model", spec], start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while len(stored(db)) < 2:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the child run ended ({proc.returncode}) before 2 episodes were stored")
            time.sleep(0.02)
    finally:
        with contextlib.suppress(ProcessLookupError):  # kill -9: the child and what it started in its group
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = stored(db)
    store = Store.open(run_dir)
    t0 = time.perf_counter()
    n_run, n_skipped = asyncio.run(run_all(copies(total), [(spec, "base", None)], make_human("oracle"), store,
                                           concurrency=1))
    seconds = time.perf_counter() - t0
    keys = [e.key for e in store.episodes()]
    store.close()
    after = stored(db)
    changed = sum(after.get(k) != t for k, t in before.items())
    redone = changed + max(0, n_run - (total - len(before)))
    ok = (n_run == total - len(before) and n_skipped == len(before) and changed == 0
          and len(keys) == len(set(keys)) == total)
    return {"total": total, "stored_at_kill": len(before), "run_after": n_run, "skipped_after": n_skipped,
            "rows_changed": changed, "redone": redone, "final_episodes": len(keys), "final_unique": len(set(keys)),
            "child_returncode": proc.returncode, "resume_s": seconds, "passed": ok and redone == 0}


def print_llm_human(console, lh: dict) -> None:
    t = Table(title=f"The gemma-3-270m human on {len(lh['problems'])} HumanEval problems, concurrency 1 "
                    f"(assistant {' '.join(str(x) for x in lh['assistant'] if x)})")
    for col in ("server settings", "max rounds", "episode s (each)", "rounds", "s/round", "requests",
                "servers CPU s", "servers peak RSS"):
        t.add_column(col, justify="left" if col == "server settings" else "right")
    labels = {"before": "before: llama_cpp.server, logits_all, one server",
              "after": "after: evals.llama_server, no logits table, a server a role",
              "after_full": "after, full episodes"}
    for k in ("before", "after", "after_full"):
        if k not in lh:
            continue
        r = lh[k]
        t.add_row(labels[k], str(r["max_rounds"]), " + ".join(f"{e['seconds']:.1f}" for e in r["episodes_played"]),
                  str(r["rounds"]), f"{lh['per_round_s'][k]:.2f}", str(r["requests"]),
                  " + ".join(f"{c:.0f}" for c in r["servers_cpu_s"]),
                  " + ".join(f"{(m or 0) / 2**20:.0f} MB" for m in r["servers_peak_rss"]))
    console.print(t)
    console.print(f"before ÷ after, the capped episodes' wall time: {lh['speedup']:.1f}×; played the same "
                  f"(actions and code): {'[green]yes[/]' if lh['same_play'] else '[red]no[/]'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=24, help="oracle episodes a run (and the resume run)")
    parser.add_argument("--llm-episodes", type=int, default=24, help="LLM-human episodes a run")
    parser.add_argument("--think", type=int, default=256, help="the LLM human's think_tokens")
    parser.add_argument("--rounds", type=int, default=4, help="max_rounds of an LLM-human episode")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each setting (interleaved)")
    parser.add_argument("--he-episodes", type=int, default=12, help="HumanEval episodes a run (from bench/humaneval-40.txt)")
    parser.add_argument("--he-repeats", type=int, default=2, help="timed runs of each HumanEval setting")
    parser.add_argument("--files-files", type=int, default=3, help="standard-library modules for the files figure")
    parser.add_argument("--files-per-file", type=int, default=4, help="functions of each (episodes: files × this)")
    parser.add_argument("--files-rounds", type=int, default=4, help="max_rounds of a files episode")
    parser.add_argument("--parts", default="oracle,llm,resume,humaneval,files",
                        help="which figures (comma-separated: oracle, llm, resume, humaneval, files, llm-human)")
    parser.add_argument("--llm-human", action="store_true", help="only the built-in gemma-3-270m human's figure "
                        "(--parts llm-human): episode time and server memory, old server settings and new")
    parser.add_argument("--lh-problems", type=int, default=2, help="HumanEval problems for --llm-human")
    parser.add_argument("--lh-rounds", type=int, default=4, help="rounds per episode of the before/after pair")
    parser.add_argument("--lh-policy", default="base-10", help="the assistant's policy for --llm-human")
    parser.add_argument("--no-lh-full", dest="lh_full", action="store_false",
                        help="skip the new settings' full episodes (--max-rounds)")
    parser.add_argument("--max-rounds", type=int, help="rounds of a full --llm-human episode (default: empower-evals')")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 12 and 8 episodes, 1 repeat (too few for the LLM target)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--model", help="the memorizer GGUF (default: tests/models.py's)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out/evals.json")
    parser.add_argument("--child", metavar="RUN_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.episodes, args.model)
    if args.quick:
        args.episodes, args.llm_episodes, args.repeats = 12, 8, 1
    console = Console(width=None if sys.stdout.isatty() else 132)
    gguf = Path(args.model) if args.model else build(ROOT / ".cache/test-models").memorizer_gguf
    spec, began, load0 = str(gguf), time.perf_counter(), os.getloadavg()
    if args.llm_human and args.out == ROOT / "bench/out/evals.json":
        args.out = ROOT / "bench/out/evals-llm-human.json"
    parts = {"llm-human"} if args.llm_human else set(args.parts.split(","))
    oracle = llm = resume = he = lh = fl = None
    with tempfile.TemporaryDirectory(prefix="bench-evals-") as tmp:
        if "oracle" in parts:
            with console.status("oracle: concurrency 1 and 8"):
                oracle = bench_oracle(args, spec)
        if "llm" in parts:
            with console.status("LLM human: one llama.cpp server and two"):
                llm = bench_llm(args, gguf, Path(tmp))
        if "resume" in parts:
            with console.status("resume: a run killed with SIGKILL, then run again"):
                resume = bench_resume(args, spec, Path(tmp) / "resume")
        if "humaneval" in parts:
            with console.status("HumanEval, oracle, smollm2-135m: concurrency 1 and 4"):
                he = bench_humaneval(args)
        if "files" in parts:
            with console.status("files dataset, oracle, smollm2-135m: cache affinity off and on"):
                fl = bench_files(args, Path(tmp))
        if "llm-human" in parts:
            with console.status("the gemma-3-270m human: old server settings, then new"):
                lh = bench_llm_human(args, Path(tmp))
    took = time.perf_counter() - began

    runs = Table(title=f"Timed runs ({os.cpu_count()} cores; load average {load0[0]:.2f} at the start)")
    for col in ("setting", "runs", "episodes", "seconds", "episodes/min", "errored", "cores busy: bench",
                "servers", "others"):
        runs.add_column(col, justify="left" if col == "setting" else "right")
    rows = [(f"oracle, concurrency {c}", oracle["runs"][str(c)]) for c in (1, 8) if oracle] + \
           [(f"LLM human, {n} server{'s' * (n > 1)}", llm["runs"][str(n)]) for n in (1, 2) if llm] + \
           [(f"HumanEval, oracle, smollm2-135m, concurrency {c}", he["runs"][str(c)]) for c in (1, 4) if he] + \
           [(f"files, oracle, smollm2-135m threshold η=2, affinity {m}", fl["runs"][m]) for m in ("off", "on") if fl]
    for label, rs in rows:
        busy = cores(rs)
        runs.add_row(label, str(len(rs)), str(sum(r["episodes"] for r in rs)), f"{sum(r['seconds'] for r in rs):.1f}",
                     f"{pooled(rs):.1f}", str(sum(r["errored"] for r in rs)), f"{busy['bench']:.2f}",
                     f"{busy['servers']:.2f}", f"{busy['others']:.2f}")
    if rows:
        console.print(runs)
    if lh:
        print_llm_human(console, lh)
    others = llm["cores_busy"]["2"]["others"] if llm else 0
    if others > 0.2:
        console.print(f"[yellow]other processes kept {others:.2f} cores busy during the two-server runs: "
                      "the servers could not have both cores, and the ratio reads low[/]")
    figures = Table(title="Figures (one run, interleaved)")
    for col in ("figure", "measured", "side by side", "target", ""):
        figures.add_column(col, justify="left" if col == "figure" else "right")
    if oracle:
        figures.add_row("oracle: episodes/min at concurrency 8 ÷ 1 (judge-bound)", f"{oracle['ratio']:.2f}×",
                        f"{oracle['per_minute_c8']:.1f} vs {oracle['per_minute_c1']:.1f}; judge "
                        f"{100 * oracle['judge_share_c1']:.0f}% of episode time at 1", "—", "")
    if llm:
        tps = llm["tokens_per_s"]
        figures.add_row("LLM human: episodes/min, two servers ÷ one", f"{llm['ratio']:.2f}×",
                        f"{llm['per_minute_2']:.1f} vs {llm['per_minute_1']:.1f}; server tokens/s "
                        f"{tps['2']:.0f} vs {tps['1']:.0f}", f"≥ {LLM_TARGET:g}×",
                        "[green]PASS[/]" if llm["passed"] else "[red]FAIL[/]")
    if resume:
        figures.add_row("resume after kill -9: finished episodes redone", f"{resume['redone']} of {resume['stored_at_kill']}",
                        f"run again {resume['run_after']}, skipped {resume['skipped_after']}, rows changed "
                        f"{resume['rows_changed']}, final {resume['final_unique']}/{resume['total']}", "0",
                        "[green]PASS[/]" if resume["passed"] else "[red]FAIL[/]")
    if he:
        figures.add_row("HumanEval, oracle, smollm2-135m: episodes/min at concurrency 4 ÷ 1", f"{he['ratio']:.2f}×",
                        f"{he['per_minute_c4']:.1f} vs {he['per_minute_c1']:.1f} ({he['episodes']} problems, "
                        f"policy {he['policy']})", "—", "")
    if fl:
        figures.add_row("files, oracle, smollm2-135m: prompt tokens evaluated, cache affinity ÷ in order",
                        f"{fl['token_ratio']:.2f}×", f"{fl['tokens_on']:,} vs {fl['tokens_off']:,} ({fl['episodes']} "
                        f"functions of {fl['files']} files; same code: {'yes' if fl['same_code'] else 'no'})",
                        f"≤ {FILES_TARGET:g}×", "[green]PASS[/]" if fl["passed"] else "[red]FAIL[/]")
        figures.add_row("files: episodes/min, cache affinity ÷ in order", f"{fl['ratio']:.2f}×",
                        f"{fl['per_minute_on']:.1f} vs {fl['per_minute_off']:.1f}", "—", "")
    if figures.row_count:
        console.print(figures)
    if resume:
        console.print(f"redone: {resume['redone']} of {resume['stored_at_kill']} finished; took {took:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "oracle": oracle, "llm": llm, "resume": resume, "humaneval": he, "files": fl, "llm_human": lh,
        "cores": os.cpu_count(),
        "load_average_start": load0,
        "load_average_end": os.getloadavg(), "seconds": took, "model": spec,
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "child", "check")},
        "timing": "interleaved: oracle 1, 8, 8, 1, ...; LLM 1 server, 2, 2, 1, ...; HumanEval 1, 4, 4, 1, ...; "
                  "files off, on, on, off, ...; "
                  "each after an untimed warm-up"},
        indent=2, default=str))
    console.print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    if args.check and not all((x or {"passed": True})["passed"] for x in (llm, resume, fl)):
        sys.exit(1)


if __name__ == "__main__":
    main()
