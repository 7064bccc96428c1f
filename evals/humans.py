"""Simulated humans for the benchmark: each one decides on a suggestion and writes code.

    from evals.humans import make_human
    h = make_human("oracle")                                   # replays problem.reference
    h = make_human("llm", model="gemma-3-27b", urls=["http://gpu1:8000/v1", "http://gpu2:8000/v1"])
    d = await h.decide(problem, code, suggestion)              # Decision: accept / reject / finish
    w = await h.write(problem, code, max_tokens=K_H)           # Written: the text appended

The paper's protocol: per round the human accepts, rejects or finishes, then writes at most
K_H = 10 tokens. Tokens are counted with ONE stated tokenizer per human (`tokenizer=`): by default
`RegexTokenizer`, an offline word/punctuation splitter (a run of letters/digits/underscores with
at most one leading space, one newline with the indentation after it, a run of spaces or tabs, or
one other character). `tokenizer="hf:NAME_OR_DIR"` counts with a Hugging Face tokenizer instead.

Humans are registered by name (`HUMANS`, `@human("name")`). An infrastructure failure (server
down, HTTP 5xx after the retries) raises `HumanError`: the episode is recorded as errored. An
answer that cannot be read is not an error: it counts as reject with `parsed=False`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import re
from dataclasses import dataclass
from typing import Callable, Literal, Protocol

from evals import human_prompts as prompts

K_H = 10  # tokens the human writes per round at most (the paper's K_H)
MODES = ("chat", "completion")  # how an LLM human is asked: a chat model, or a base model
TOP_LOGPROBS = 20  # the next-token alternatives a base-model acceptor's answer is read from

Action = Literal["accept", "reject", "finish"]


class HumanError(Exception):
    """The human could not answer (server down, HTTP errors after the retries, bad options)."""


@dataclass(frozen=True)
class Decision:
    action: Action
    thoughts: str = ""
    parsed: bool = True  # False: the answer could not be read and counts as "reject"
    raw: str = ""  # the whole answer, as the human gave it


@dataclass(frozen=True)
class Written:
    text: str  # appended to the code as is
    tokens: int  # in the human's tokenizer
    done: bool = False  # the human says the program is complete


class Human(Protocol):
    async def decide(self, problem, code: str, suggestion: str) -> Decision: ...

    async def write(self, problem, code: str, max_tokens: int = K_H) -> Written: ...


HUMANS: dict[str, Callable[..., Human]] = {}


def human(name: str):
    """Register a Human class (or factory) under `name`."""
    def register(cls):
        HUMANS[name] = cls
        return cls
    return register


def make_human(name: str, **options) -> Human:
    try:
        factory = HUMANS[name]
    except KeyError:
        raise HumanError(f"unknown human {name!r}; the humans are: {', '.join(sorted(HUMANS))}") from None
    try:
        return factory(**options)
    except TypeError as exc:
        raise HumanError(f"human {name!r}: {exc}") from None


# ------------------------------------------------------------------ tokenizers
class Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


class RegexTokenizer:
    """Offline and lossless: decode(encode(t)) == t. Ids are given in order of first sight."""

    PATTERN = re.compile(r" ?\w+|\n[ \t]*|[ \t]+|[^\w\s]|\s")

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.pieces: list[str] = []

    def encode(self, text: str) -> list[int]:
        out = []
        for piece in self.PATTERN.findall(text):
            if piece not in self.ids:
                self.ids[piece] = len(self.pieces)
                self.pieces.append(piece)
            out.append(self.ids[piece])
        return out

    def decode(self, ids: list[int]) -> str:
        return "".join(self.pieces[i] for i in ids)


class HFTokenizer:
    """A Hugging Face tokenizer without special tokens (loaded from a local dir or the cache)."""

    def __init__(self, name: str) -> None:
        from transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(name)

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        return self.tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)


def load_tokenizer(spec: str | Tokenizer | None = None) -> Tokenizer:
    """None or "regex": RegexTokenizer; "hf:NAME_OR_DIR": HFTokenizer; an object is used as is."""
    if spec is None or spec == "regex":
        return RegexTokenizer()
    if isinstance(spec, str):
        if spec.startswith("hf:"):
            return HFTokenizer(spec[3:])
        raise HumanError(f"unknown tokenizer {spec!r}: use 'regex' or 'hf:NAME_OR_DIR'")
    return spec


def take(tokenizer: Tokenizer, text: str, max_tokens: int) -> tuple[str, int]:
    """The longest prefix of `text` of at most max_tokens tokens, and its token count."""
    ids = tokenizer.encode(text)
    if len(ids) <= max_tokens:
        return text, len(ids)
    piece = tokenizer.decode(ids[:max_tokens])
    if not text.startswith(piece):  # a tokenizer whose decode is not exact (spaces, markers)
        piece = os.path.commonprefix([piece, text])
        if not piece and max_tokens > 0:
            raise HumanError(f"the tokenizer's first {max_tokens} tokens of {text[:40]!r} decode to no prefix of it")
    return piece, max_tokens


# ------------------------------------------------------------------ the oracle
@human("oracle")
class Oracle:
    """Replays a reference program K_H tokens at a time; deterministic, no server.

    Accepts a suggestion exactly when code + suggestion is a prefix of the reference (an empty
    one is rejected), finishes when the code is the reference (or it without trailing space).
    If the code has left the reference, the oracle cannot reach it any more: it finishes.
    """

    def __init__(self, reference: str | None = None, tokenizer: str | Tokenizer | None = None) -> None:
        self.reference = reference
        self.tokenizer = load_tokenizer(tokenizer)

    def target(self, problem) -> str:
        ref = self.reference if self.reference is not None else problem.reference
        if ref is None:
            raise HumanError(f"oracle: problem {problem.id} has no reference solution")
        return ref

    async def decide(self, problem, code: str, suggestion: str) -> Decision:
        ref = self.target(problem)
        if code in (ref, ref.rstrip()) or not ref.startswith(code):
            why = "the code is the reference" if ref.startswith(code) else "the code left the reference"
            return Decision("finish", why, raw="finish")
        if suggestion and ref.startswith(code + suggestion):
            return Decision("accept", "the suggestion continues the reference", raw="accept")
        return Decision("reject", "the suggestion is empty" if not suggestion
                        else "the suggestion leaves the reference", raw="reject")

    async def write(self, problem, code: str, max_tokens: int = K_H) -> Written:
        ref = self.target(problem)
        if not ref.startswith(code):
            return Written("", 0, done=True)
        text, n = take(self.tokenizer, ref[len(code):], max_tokens)
        return Written(text, n, done=code + text in (ref, ref.rstrip()) or not text)


# ------------------------------------------------------------------ reading an answer
_WORDS = "accept|reject|finish"
_ANSWER = re.compile(rf"^[\W_]*(?:final\s+)?(?:answer|decision|action)[\W_]*?(?:is\s*)?[:=\-]?[\W_]*({_WORDS})[\W_]*$",
                     re.IGNORECASE)
_BARE = re.compile(rf"^[\W_]*({_WORDS})[\W_]*$", re.IGNORECASE)


def parse_decision(raw: str) -> Decision:
    """The action in an acceptor's answer: the last `ANSWER: <action>` line (any case, markdown,
    quotes), else a last line that is only the action word; otherwise reject with parsed=False."""
    text = re.sub(r"<think>.*?</think>", "", raw or "", flags=re.DOTALL)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for i in range(len(lines) - 1, -1, -1):
        if m := _ANSWER.match(lines[i]):
            return Decision(m[1].lower(), "\n".join(lines[:i]), raw=raw)
    if lines and (m := _BARE.match(lines[-1])):
        return Decision(m[1].lower(), "\n".join(lines[:-1]), raw=raw)
    return Decision("reject", text.strip(), parsed=False, raw=raw)


def clean_code(reply: str, code: str, opened: bool = False) -> tuple[str, bool]:
    """(the text to append, whether the human closed the code block) from an appender's reply.

    opened: the answer was prefilled inside a code block, so a leading bare ``` closes it; an
    opening fence (```python) is still stripped, for servers that ignore the prefill."""
    text, closed = reply, False
    m = re.match(r"\s*```([\w+-]*)[ \t]*(\n|$)", text)
    if m and opened and not m[1]:
        return "", True
    if m:
        text = text[m.end():]
    if (end := text.find("```")) >= 0:
        text, closed = text[:end], True
        if m or opened:  # the newline before the closing fence ends the block, not the code
            text = text[:-1] if text.endswith("\n") else text
    if code and text.startswith(code):  # the model repeated the code so far
        text = text[len(code):]
    return text, closed


# ------------------------------------------------------------------ an LLM human
MODELS = {  # short names for the simulated humans the paper used; any other name is passed as is
    "gemma-3-27b": "google/gemma-3-27b-it",
    "llama-3.3-70b": "meta-llama/Llama-3.3-70B-Instruct",
    "llama-3.1-8b": "meta-llama/Llama-3.1-8B-Instruct",
}


@human("llm")
class LLMHuman:
    """A language model behind OpenAI-compatible servers, asked round robin.

    mode "chat" (an instruct model): the appender and the acceptor are conversations; the
    acceptor reasons, then answers. mode "completion" (a base model, no chat template): the
    prompts are plain text; the appender continues the code block, and the acceptor's answer is
    the likeliest of the three words after "Decision (accept, reject or finish):", read from the
    next token's log-probabilities (`decision_from_logprobs`).

    model: a name (MODELS aliases resolve); urls: base URLs (".../v1"); decide_urls: other servers
    for the acceptor's requests (default: urls), so that each role's prompt prefix stays in its
    own server's KV cache (the two prompts part after the statement: on one llama.cpp sequence
    each request re-reads the program); api_key_env: where the key is read (none needed by a local
    server); temperature, seed: sampling; think_tokens: budget of
    the acceptor's answer; prefill: start the appender's answer inside the code block (sent as
    vLLM's continue_final_message; servers that ignore it still get the code in the user turn);
    attempts, base_delay, timeout: retries with exponential backoff on connection errors,
    timeouts, HTTP 429 and 5xx, then HumanError.
    """

    def __init__(self, model: str = "gemma-3-27b", urls: str | list[str] = "http://127.0.0.1:8000/v1", *,
                 decide_urls: str | list[str] | None = None, api_key_env: str = "OPENAI_API_KEY",
                 temperature: float = 0.0, seed: int | None = 0,
                 think_tokens: int = 1024, prefill: bool = True, attempts: int = 4,
                 base_delay: float = 0.5, timeout: float = 120.0,
                 tokenizer: str | Tokenizer | None = None, mode: str = "chat") -> None:
        from openai import AsyncOpenAI

        if mode not in MODES:
            raise HumanError(f"llm human: unknown mode {mode!r}: use {' or '.join(MODES)}")
        self.mode = mode
        urls = [urls] if isinstance(urls, str) else list(urls)
        decide_urls = [decide_urls] if isinstance(decide_urls, str) else list(decide_urls or [])
        if not urls:
            raise HumanError("llm human: no server URL")
        if attempts < 1:
            raise HumanError("llm human: attempts must be at least 1")
        self.model = MODELS.get(model, model)
        key = os.environ.get(api_key_env, "none") if api_key_env else "none"
        # max_retries=0: the retries are ours, so that the count and the delays are the ones given
        writers = [AsyncOpenAI(base_url=u, api_key=key, max_retries=0, timeout=timeout) for u in urls]
        deciders = [AsyncOpenAI(base_url=u, api_key=key, max_retries=0, timeout=timeout) for u in decide_urls]
        self.clients = writers + deciders  # every server, the writer's first
        # each role's servers, asked round robin
        self._pools = {"write": (writers, itertools.cycle(range(len(writers)))),
                       "decide": (deciders, itertools.cycle(range(len(deciders))))} if deciders else \
            dict.fromkeys(("write", "decide"), (writers, itertools.cycle(range(len(writers)))))
        self.temperature, self.seed, self.think_tokens, self.prefill = temperature, seed, think_tokens, prefill
        self.attempts, self.base_delay = attempts, base_delay
        self.tokenizer = load_tokenizer(tokenizer)

    async def _request(self, call, role: str = "write"):
        """`await call(client)` on the role's next server, with retries (each on the next server)."""
        import openai

        retry = (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError)
        last: Exception | None = None
        # Round robin over the servers; a retry goes to the next server after the one that
        # failed (a shared cycle could hand one request the dead server every time).
        clients, cycle = self._pools[role]
        first = next(cycle)
        for attempt in range(self.attempts):
            client = clients[(first + attempt) % len(clients)]
            try:
                return await call(client)
            except retry as exc:
                last = exc
                if attempt + 1 < self.attempts:
                    await asyncio.sleep(self.base_delay * 2 ** attempt)
            except openai.APIError as exc:  # 4xx: a retry would get the same answer
                raise HumanError(f"{self.model} at {client.base_url}: {type(exc).__name__}: {exc}") from exc
        raise HumanError(f"{self.model}: no answer after {self.attempts} attempts "
                         f"({type(last).__name__}: {last})") from last

    async def _chat(self, messages: list[dict], max_tokens: int, role: str = "write", **extra) -> tuple[str, str]:
        """(text, finish_reason) of one chat completion."""
        r = await self._request(lambda c: c.chat.completions.create(
            model=self.model, messages=messages, max_tokens=max_tokens, temperature=self.temperature,
            seed=self.seed, **extra), role)
        choice = r.choices[0]
        return choice.message.content or "", choice.finish_reason or ""

    async def _complete(self, prompt: str, max_tokens: int, role: str = "write", **extra):
        """The first choice of one (plain) completion."""
        r = await self._request(lambda c: c.completions.create(
            model=self.model, prompt=prompt, max_tokens=max_tokens, temperature=self.temperature,
            seed=self.seed, **extra), role)
        return r.choices[0]

    async def aclose(self) -> None:
        """Close the HTTP clients, in the event loop that used them (left to the garbage
        collector, they would be closed in a later loop, which fails)."""
        for client in self.clients:
            await client.close()

    async def decide(self, problem, code: str, suggestion: str) -> Decision:
        if self.mode == "completion":
            # one token: only the last position's distribution is read (a server keeps no more)
            choice = await self._complete(prompts.acceptor_completion(problem, code, suggestion), 1, "decide",
                                          logprobs=TOP_LOGPROBS)
            top = (choice.logprobs.top_logprobs or [{}])[0] if choice.logprobs else {}
            return decision_from_logprobs(top or {})
        text, _ = await self._chat(prompts.acceptor(problem, code, suggestion), self.think_tokens, "decide")
        return parse_decision(text)

    async def write(self, problem, code: str, max_tokens: int = K_H) -> Written:
        if self.mode == "completion":
            # the prompt ends inside the code block: the continuation is code until the fence closes
            choice = await self._complete(prompts.appender_completion(problem, code), max_tokens, stop=["```"])
            text, n = take(self.tokenizer, choice.text or "", max_tokens)
            return Written(text, n, done=choice.finish_reason == "stop")
        extra = {}
        if self.prefill:
            extra["extra_body"] = {"continue_final_message": True, "add_generation_prompt": False}
        reply, finish = await self._chat(prompts.appender(problem, code, self.prefill), max_tokens, **extra)
        text, closed = clean_code(reply, code, opened=self.prefill)
        text, n = take(self.tokenizer, text, max_tokens)
        return Written(text, n, done=closed or (not text and finish == "stop"))


def decision_from_logprobs(top: dict[str, float]) -> Decision:
    """A base model's answer after "Decision (accept, reject or finish):": the action whose word
    the likeliest next token starts (" acc" counts for accept; tokens shorter than 3 letters
    are too ambiguous to count). None of them among the top tokens: reject, parsed=False."""
    best: dict[str, float] = {}
    for token, lp in top.items():
        t = token.strip().lower()
        if len(t) < 3:
            continue
        for word in ("accept", "reject", "finish"):
            if word.startswith(t) and lp > best.get(word, -math.inf):
                best[word] = lp
    raw = json.dumps(top, sort_keys=True)
    if not best:
        return Decision("reject", "no answer word among the likeliest next tokens", parsed=False, raw=raw)
    action = max(best, key=best.get)
    return Decision(action, ", ".join(f"{w} {lp:.2f}" for w, lp in sorted(best.items())), raw=raw)
