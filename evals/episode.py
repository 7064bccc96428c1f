"""One benchmark episode: the paper's MDP between an assistant (a Coach) and a simulated human.

    from evals.episode import run_episode, run_all
    ep = await run_episode(problem, coach, make_human("oracle"), seed=0)   # an Episode record
    n_run, n_skipped = await run_all(problems, [("model.gguf", "base", None)], human, store,
                                     contexts=("files", "none"))   # both arms, paired by the report

Each round the assistant proposes a completion of the code so far (it sees only the code, never
the problem). With context "files", chunks of the package's other files go ahead of it, chosen
each round by coach/related.py as the editor chooses them among its other open buffers (the
files dataset's problems know their package: `Problem.others()`; other problems have none).
An empty suggestion is not shown: the round counts no suggestion and the human just writes.
Otherwise the human accepts (the suggestion is appended), rejects, or finishes. Unless it
finished, the human then writes at most k_h tokens; a Written with done=True also ends the
episode. At most max_rounds rounds. Then the final code is judged; correct = every test passed.

Tokens are counted with the human's own tokenizer (`human.tokenizer`, else RegexTokenizer), the
same one for reading and writing. tokens_read counts every suggestion SHOWN to the human, accepted
or not (the paper's DPR charges the effort of checking a suggestion); tokens_accepted counts the
accepted ones only.

A HumanError, or any exception of the assistant, ends the episode as errored (one-line message):
run_episode never raises for them. The judge's own failures are not caught.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from coach import prompts, related
from coach.policies import policy_name
from coach.types import Context
from evals.humans import K_H, HumanError, RegexTokenizer

MAX_ROUNDS = 50  # the paper's limit on rounds per problem
# What the assistant is shown besides the code: "files", chunks of the problem's package's other
# files (as the editor shows its other open buffers), or "none", the code alone.
CONTEXTS = ("files", "none")


@dataclass(frozen=True)
class Round:
    index: int
    suggestion: str  # "" when the assistant had nothing to show
    suggestion_tokens: int  # in the human's tokenizer (0 when nothing was shown)
    action: str  # "accept", "reject", "finish", or "none" (nothing shown: the human just wrote)
    parsed: bool = True
    thoughts: str = ""
    written: str = ""
    written_tokens: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class Episode:
    problem_id: str
    assistant: str  # the assistant's model spec
    policy: str
    human: str
    seed: int = 0
    start: str = ""  # the code the episode started from
    rounds: tuple[Round, ...] = ()
    code: str = ""  # the final code
    correct: bool = False
    verdict: str = ""  # the judge's first failing verdict, "passed", or "" when not judged
    errored: bool = False
    error: str = ""
    tokens_read: int = 0  # suggested tokens shown to the human
    tokens_written: int = 0
    tokens_accepted: int = 0
    accepted: int = 0
    suggested: int = 0
    seconds: float = 0.0
    context: str = "none"  # one of CONTEXTS; an episode stored before there was a choice: "none"

    @property
    def key(self) -> tuple[str, str, str, str, int, str]:
        return (self.problem_id, self.assistant, self.policy, self.human, self.seed, self.context)

    def replay(self) -> str:
        """The code the transcript builds: start, then each round's accepted suggestion and text."""
        code = self.start
        for r in self.rounds:
            if r.action == "accept":
                code += r.suggestion
            code += r.written
        return code

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Episode":
        d = dict(d)
        d["rounds"] = tuple(Round(**r) for r in d.get("rounds", ()))
        return cls(**d)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:500]


# Coach cancels the generation in flight when a new one starts ("latest wins", right for an
# editor). Episodes sharing a Coach must not cancel each other: one lock per assistant object.
_LOCKS: "weakref.WeakKeyDictionary[object, threading.Lock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _lock_for(assistant) -> threading.Lock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(assistant)
        if lock is None:
            lock = _LOCKS[assistant] = threading.Lock()
        return lock


class AssistantError(Exception):
    """The assistant gave no usable answer (its generation was cancelled)."""


def _suggest(assistant, code: str, others: dict[str, str]):
    # the chunks are chosen in the episode's thread, before the lock: a few ms over a package
    chunks = related.choose(others, code) if others else ()
    with _lock_for(assistant):
        s = assistant.suggest(Context(prefix=code, related=chunks))
    if getattr(s, "finish_reason", "") == "cancelled":
        raise AssistantError("the generation was cancelled")
    return s


def _describe(assistant) -> tuple[str, str]:
    backend = getattr(assistant, "backend", None)
    spec = getattr(getattr(backend, "spec", None), "raw", None) or repr(assistant)
    return spec, str(getattr(assistant, "policy", ""))


async def run_episode(problem, assistant, human, *, k_h: int = K_H, max_rounds: int = MAX_ROUNDS,
                      start: str = "", seed: int = 0, assistant_spec: str | None = None,
                      policy: str | None = None, human_name: str | None = None, executor=None,
                      context: str = "none") -> Episode:
    """Play one episode and judge its code. The labels default to the coach's spec and policy
    and the human's class name. The assistant and the judge run in `executor`'s threads (None:
    the event loop's default pool). context: one of CONTEXTS."""
    if context not in CONTEXTS:
        raise ValueError(f"context {context!r}: choose {' or '.join(CONTEXTS)}")
    loop = asyncio.get_running_loop()
    spec, pol = _describe(assistant)
    labels = dict(problem_id=problem.id, assistant=assistant_spec or spec, policy=policy or pol,
                  human=human_name or type(human).__name__.lower(), seed=seed, start=start, context=context)
    others = problem.others() if context == "files" else {}
    tok = getattr(human, "tokenizer", None) or RegexTokenizer()
    began = time.perf_counter()
    code, rounds = start, []
    read = written = taken = accepted = suggested = 0
    try:
        for i in range(max_rounds):
            t0 = time.perf_counter()
            s = await loop.run_in_executor(executor, _suggest, assistant, code, others)
            text = s.text
            n_read = len(tok.encode(text)) if text else 0
            action, parsed, thoughts = "none", True, ""
            if text:
                d = await human.decide(problem, code, text)
                action, parsed, thoughts = d.action, d.parsed, d.thoughts
                suggested += 1
                read += n_read
                if action == "accept":
                    code += text
                    accepted += 1
                    taken += n_read
            w = None
            if action != "finish":
                w = await human.write(problem, code, max_tokens=k_h)
                code += w.text
                written += w.tokens
            rounds.append(Round(i, text, n_read, action, parsed, thoughts, w.text if w else "",
                                w.tokens if w else 0, round(time.perf_counter() - t0, 4)))
            if action == "finish" or (w is not None and w.done):
                break
    except HumanError as exc:
        return _errored(labels, rounds, code, exc, read, written, taken, accepted, suggested, began)
    except Exception as exc:  # the assistant: a backend down, a model that fails
        return _errored(labels, rounds, code, exc, read, written, taken, accepted, suggested, began)
    report = await loop.run_in_executor(executor, problem.judge, code)
    failure = report.first_failure
    verdict = ("passed" if report.passed else "compile error" if report.compile_error
               else failure.verdict.value if failure else "not run")
    return Episode(**labels, rounds=tuple(rounds), code=code, correct=report.passed, verdict=verdict,
                   tokens_read=read, tokens_written=written, tokens_accepted=taken, accepted=accepted,
                   suggested=suggested, seconds=round(time.perf_counter() - began, 3))


def _errored(labels, rounds, code, exc, read, written, taken, accepted, suggested, began) -> Episode:
    return Episode(**labels, rounds=tuple(rounds), code=code, errored=True, error=_one_line(exc),
                   tokens_read=read, tokens_written=written, tokens_accepted=taken, accepted=accepted,
                   suggested=suggested, seconds=round(time.perf_counter() - began, 3))


def continues(cached: str | None, start: str, head: int = 256) -> bool:
    """Whether an episode starting from `start` would find its prompt's beginning in the KV
    cache of a coach whose last episode ended with `cached`: both begin alike (the same file's
    head). The files dataset's episodes are a file's functions in order, each starting where the
    file's text goes on past the one before: played on the coach that holds the file, an episode
    reads only what lies between the two functions instead of the whole file again (on 2 cores,
    a few seconds each: the files dataset's largest cost after generating)."""
    return bool(cached) and len(start) >= head and cached[:head] == start[:head]


async def run_all(problems, assistants, human, store, *, concurrency: int = 8, seed: int = 0,
                  human_name: str | None = None, k_h: int = K_H, max_rounds: int = MAX_ROUNDS,
                  start: str | Callable[[object], str] = "", progress=None, coaches: dict | None = None,
                  retry_errored: bool = False, affinity: bool = True,
                  contexts: Sequence[str] = ("none",)) -> tuple[int, int]:
    """Every problem with every assistant (spec, policy, eta) in every context (CONTEXTS: each an
    arm of its own, played after the one before); episodes already in `store` are skipped (a
    killed run resumes), each finished one is stored at once. Returns (run, skipped).

    One Coach per (spec, policy, eta), shared by its episodes; `coaches` may hold prebuilt ones
    under that key. `start`: the code every episode starts from, or a function of the problem
    giving it (its starter code). `progress(episode)` is called after each stored episode. retry_errored=True
    runs again the episodes stored as errored (their rows are replaced). affinity=False: an idle
    coach takes the next episode in order, not one that `continues` its cache (bench/evals.py)."""
    from coach.engine import Coach

    name = human_name or type(human).__name__.lower()
    for ctx in contexts:
        if ctx not in CONTEXTS:
            raise ValueError(f"context {ctx!r}: choose {' or '.join(CONTEXTS)}")
    done = store.done_keys(include_errored=not retry_errored)
    prebuilt, coaches = coaches, dict(coaches or {})
    todo = []  # (problem, assistant key, policy label, the code it starts from, context)
    for spec, pol, eta in assistants:
        key = (spec, pol, eta)
        label = policy_name(pol, eta)
        for ctx in contexts:
            for p in problems:
                if (p.id, spec, label, name, seed, ctx) not in done:
                    todo.append((p, key, label, start(p) if callable(start) else start, ctx))
    skipped = len(problems) * len(assistants) * len(contexts) - len(todo)
    failed: dict[tuple, str] = {}
    for key in {t[1] for t in todo}:
        if key not in coaches:
            try:
                coaches[key] = await asyncio.to_thread(Coach.from_spec, key[0], key[1], key[2])
            except Exception as exc:  # cannot load: every episode of it is recorded as errored
                failed[key] = _one_line(exc)
    for c in coaches.values():
        c.fit_window(prompts.window_sample())  # before the first episode: see Coach.fit_window
    # Each episode in flight holds a thread while it waits for the assistant or the judge: the
    # default pool (cores + 4 threads) would cap concurrency 8 at 6 on 2 cores.
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="episode")
    # Episodes in flight go to different coaches where they can: two episodes on one llama.cpp
    # model evict each other's KV cache every round (each round then re-reads the whole
    # prompt: 10x slower) and wait on one lock. So an episode takes an idle coach of its
    # assistant first, else a replica made for it (a backend of its own; llama.cpp in process:
    # the weights are shared), else an episode of another assistant with an idle coach goes
    # first, else it shares a busy coach (a server's coach, which serves many at once).
    coaches_of = {key: [c] for key, c in coaches.items()}
    busy: dict = {c: 0 for c in coaches.values()}
    pending = dict.fromkeys(coaches_of, 0)  # replicas being loaded
    single: set = set()  # assistants whose backend makes no replica
    replicas: list = []

    # What each coach's KV cache holds: its episode's (context, start) while it plays, its final
    # code after; what replicas being loaded will hold. Episodes that `continues` a coach's cache
    # in the same context go to it (the other context's prompts begin otherwise), and a coach with
    # none to continue starts a file no other coach holds (affinity=False: in order).
    holds: dict = {}
    claimed: dict = {key: [] for key in coaches_of}

    def on(state, ctx, code) -> bool:
        return state is not None and state[0] == ctx and continues(state[1], code)

    def held(key, ctx, code) -> bool:
        return any(on(holds.get(c), ctx, code) for c in coaches_of[key]) or \
            any(on(x, ctx, code) for x in claimed[key])

    def pick():
        first = fresh = None
        for i, (_, key, _, code, ctx) in enumerate(todo):
            if key in failed:
                return i, None
            idle = [c for c in coaches_of[key] if not busy[c]]
            if affinity and any(on(holds.get(c), ctx, code) for c in idle):
                return i, next(c for c in idle if on(holds.get(c), ctx, code))
            if idle:
                first = first or (i, idle[0])
                if affinity and fresh is None and not held(key, ctx, code):
                    fresh = (i, idle[0])
        if fresh or first:
            return fresh or first
        first = fresh = None
        for i, (_, key, _, code, ctx) in enumerate(todo):
            if key not in single and len(coaches_of[key]) + pending[key] < concurrency:
                first = first or (i, "replica")
                if not affinity or not held(key, ctx, code):
                    fresh = (i, "replica")
                    break
        if fresh or first:
            return fresh or first
        key = todo[0][1]
        return 0, min(coaches_of[key], key=busy.get)

    async def coach_for(key, choice, state):
        if choice != "replica":
            return choice
        pending[key] += 1
        claimed[key].append(state)
        try:
            twin = await asyncio.to_thread(coaches_of[key][0].replica)
        except Exception:  # out of memory for one more: share the coach instead
            twin = None
        finally:
            pending[key] -= 1
            claimed[key].remove(state)
        if twin is None:
            single.add(key)
            return min(coaches_of[key], key=busy.get)
        replicas.append(twin)
        coaches_of[key].append(twin)
        busy[twin] = 0
        return twin

    async def worker():
        while todo:
            i, choice = pick()
            p, key, label, code, ctx = todo.pop(i)
            if key in failed:
                ep = Episode(p.id, key[0], label, name, seed, code, errored=True, error=failed[key], context=ctx)
            else:
                coach = await coach_for(key, choice, (ctx, code))
                busy[coach] += 1
                holds[coach] = (ctx, code)
                try:
                    ep = await run_episode(p, coach, human, k_h=k_h, max_rounds=max_rounds, start=code,
                                           seed=seed, assistant_spec=key[0], policy=label, human_name=name,
                                           executor=pool, context=ctx)
                finally:
                    busy[coach] -= 1
                holds[coach] = (ctx, ep.code)
            store.add(ep)
            if progress is not None:
                progress(ep)

    n_todo = len(todo)
    try:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, n_todo))))
    finally:
        # Waits for the threads in flight (a suggestion, a judge's run): a coach must not be
        # closed under a generation.
        pool.shutdown(wait=True, cancel_futures=True)
        for c in replicas:
            c.close()
        for key, c in coaches.items():
            if key not in (prebuilt or {}):
                c.close()
    return n_todo, skipped
