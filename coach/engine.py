"""The coach: context in, suggestion out. The editor and the benchmark both call `Coach.suggest`.

What makes it fast, cheapest first:
- typed-through: when the person types the first characters of the suggestion on screen, the
  rest is served at once, with no model call;
- an LRU cache of suggestions keyed by the prompt's context;
- one request in flight per model: a newer request cancels an older one (its generation
  really stops between two tokens) instead of queueing behind it;
- prefetch: while a suggestion is on screen, the one for the state after it is taken is
  computed into the cache when the model is idle (llama.vim's speculative completion); a request
  for that very state waits for it, any other request cancels it;
- in the backend, the KV cache across keystrokes (llama.cpp, transformers);
- `threshold` ends the generation once what it would show has crossed η (`_past_eta`), instead
  of generating CAP tokens to keep a few.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import replace

from coach import prompts
from coach.backends import Backend, load_backend
from coach.policies import Policy, parse, threshold_length
from coach.specs import resolve
from coach.types import Context, Request, Suggestion

SUFFIX_KEY = 200  # characters after the cursor that take part in the cache key


class Coach:
    def __init__(self, backend: Backend, policy: Policy, fmt: str | None = None, *,
                 max_prompt_chars: int | None = None, cache_size: int = 256,
                 temperature: float = 0.0, top_p: float = 1.0, seed: int = 0):
        self.backend = backend
        self.policy = policy
        self.format = fmt or backend.spec.format or "completion"
        if self.format not in prompts.FORMATS:
            raise ValueError(f"unknown prompt format {self.format!r}; use one of {', '.join(prompts.FORMATS)}")
        # The window of code before the cursor. For a local model it is sized once, on the first
        # long file, to what fits its context (`_fit_window`), so the backend rarely has to cut
        # tokens itself; it never changes afterwards, or the KV cache would miss.
        self.max_prompt_chars = max_prompt_chars or prompts.WINDOW_CHARS
        self._fitted = max_prompt_chars is not None or getattr(backend, "n_ctx", None) is None
        self.temperature, self.top_p, self.seed = temperature, top_p, seed
        self._cache: OrderedDict[tuple, Suggestion] = OrderedDict()
        self._cache_size = cache_size
        self._last: tuple[Context, Suggestion] | None = None
        self._lock = threading.Lock()  # one generation at a time on this model
        self._state = threading.Lock()  # guards the fields below
        self._inflight: threading.Event | None = None
        self._prefetching: tuple[Context, threading.Event] | None = None  # its state; set when it ends
        self.stop_past_eta = True  # threshold: end the generation once η is crossed (_past_eta)

    @classmethod
    def from_spec(cls, spec: str, policy: str = "base", eta: float | None = None, fmt: str | None = None,
                  base: str | None = None, backend_options: dict | None = None, **options) -> "Coach":
        backend = load_backend(resolve(spec, base=base), **(backend_options or {}))
        return cls(backend, parse(policy, eta), fmt, **options)

    @property
    def model(self) -> str:
        return self.backend.spec.label

    def suggest(self, ctx: Context, cancel: threading.Event | None = None) -> Suggestion:
        """A suggestion for `ctx` (its text is empty when there is nothing worth showing)."""
        start = time.perf_counter()
        reused = self._typed_through(ctx)
        if reused is not None:
            return replace(reused, latency_s=time.perf_counter() - start)
        with self._state:
            pending = self._prefetching[1] if self._prefetching and self._prefetching[0] == ctx else None
        if pending is not None:  # the prefetch is computing this very state: wait, don't restart it
            while not pending.wait(0.01) and not (cancel is not None and cancel.is_set()):
                pass
        cached = self._cached(self._key(ctx))
        if cached is not None:
            self._remember(ctx, cached)
            return replace(cached, source="cache", latency_s=time.perf_counter() - start)
        suggestion = self._generate(ctx, cancel or threading.Event(), start)
        self._store(self._key(ctx), ctx, suggestion)  # the key once the window is fitted
        return suggestion

    def prefetch(self, ctx: Context) -> bool:
        """Compute `ctx`'s suggestion into the cache if the model is idle (the editor asks for the
        state after the ghost on screen is taken). Never cancels or waits for a request: False,
        and nothing done, when one is in flight or the answer is already known."""
        with self._state:
            if self._key(ctx) in self._cache or self._inflight is not None or self._prefetching is not None:
                return False
            done, cancel = threading.Event(), threading.Event()
            self._prefetching = (ctx, done)
            self._inflight = cancel  # from now on a request's cancel() reaches it
        try:
            if not self._lock.acquire(blocking=False):
                return False
            try:
                suggestion = self._generate_locked(ctx, cancel, time.perf_counter())
            finally:
                self._lock.release()
            self._store(self._key(ctx), ctx, suggestion, remember=False)
            return suggestion.finish_reason != "cancelled"
        finally:
            with self._state:
                self._prefetching = None
                if self._inflight is cancel:
                    self._inflight = None
            done.set()

    def _cached(self, key: tuple) -> Suggestion | None:
        with self._state:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
            return cached

    def _store(self, key: tuple, ctx: Context, suggestion: Suggestion, remember: bool = True) -> None:
        if suggestion.finish_reason == "cancelled":
            return
        with self._state:
            self._cache[key] = suggestion
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        if remember:
            self._remember(ctx, suggestion)

    def cancel(self) -> None:
        """Stop the generation in flight, if any."""
        with self._state:
            if self._inflight is not None:
                self._inflight.set()

    def forget(self) -> None:
        """Drop every remembered suggestion (the cache and the typed-through one): the next
        request asks the model, as a fresh Coach would (a benchmark's runs start cold)."""
        with self._state:
            self._cache.clear()
            self._last = None

    def replica(self) -> "Coach | None":
        """Another coach on the same model, policy, format and window with a backend of its own,
        where the backend can make one cheaply (llama.cpp in process: its KV cache), else None.
        Two conversations on one llama.cpp model evict each other's KV cache at every turn, so
        a benchmark playing several episodes of one assistant at once gives each its own."""
        clone = getattr(self.backend, "clone", None)
        if clone is None:
            return None
        twin = Coach(clone(), self.policy, self.format, max_prompt_chars=self.max_prompt_chars if self._fitted else None,
                     cache_size=self._cache_size, temperature=self.temperature, top_p=self.top_p, seed=self.seed)
        twin._fitted = self._fitted
        return twin

    def close(self) -> None:
        self.cancel()
        self.backend.close()

    # ------------------------------------------------------------ internals
    def fit_window(self, sample: str) -> None:
        """Size the prompt window now, on `sample` (at least 2,000 characters of code), instead
        of on the first long file asked about: a benchmark's suggestions then do not depend on
        which episode came first."""
        self._fit_window(sample)

    def _fit_window(self, prefix: str) -> None:
        if self._fitted or len(prompts.window(prefix, self.max_prompt_chars)) < 2000:
            return
        room = prompts.code_room(self.backend.n_ctx, self.policy.max_tokens)
        self.max_prompt_chars = prompts.fitted_chars(self.backend.count_tokens, room, prefix, self.max_prompt_chars)
        self._fitted = True

    def _generate(self, ctx: Context, cancel: threading.Event, start: float) -> Suggestion:
        self.cancel()  # latest wins: an older request would only be stale when it finished
        with self._lock:
            return self._generate_locked(ctx, cancel, start)

    def _generate_locked(self, ctx: Context, cancel: threading.Event, start: float) -> Suggestion:
        self._fit_window(ctx.prefix)
        with self._state:
            self._inflight = cancel
        try:
            prompt = prompts.build(ctx, self.format, self.backend, self.max_prompt_chars)
            stop = ("\n",) if ctx.mid_line else ()
            if self.format == "chat":
                stop += (prompts.FENCE,)
            request = Request(prompt, self.policy.max_tokens, stop, self.temperature, self.top_p,
                              self.seed, cancel, self._past_eta(prompt, ctx))
            gen = self.backend.generate(request)
        finally:
            with self._state:
                self._inflight = None
        begin, end, dropped = prompts.extract(gen.text, prompt, ctx)
        tokens, logprobs = _tokens_in(gen.tokens, gen.logprobs, begin, end)
        n = self.policy.keep(logprobs, len(tokens))
        if tokens and n == 0:
            dropped = f"even the first token is over η = {self.policy.eta_bits:g} bits"
        tokens = tokens[:n]
        text = "".join(tokens)
        if not text.strip():
            text, n, tokens, dropped = "", 0, [], dropped or "blank"
        if gen.finish_reason == "cancelled":
            dropped = "cancelled"
        return Suggestion(
            text=text, n_tokens=n, tokens=tuple(tokens), dropped=dropped,
            logprobs=tuple(logprobs[:n]) if logprobs is not None else None, model=self.model,
            policy=str(self.policy), finish_reason=gen.finish_reason, latency_s=time.perf_counter() - start,
            timings={"prompt_s": gen.prompt_s, "generate_s": gen.generate_s, "prompt_tokens": gen.prompt_tokens,
                     "evaluated_tokens": gen.evaluated_tokens, "generated_tokens": len(gen.tokens)})

    def _past_eta(self, prompt, ctx: Context):
        """For `threshold`: a check that ends the generation once the suggestion it would show
        has crossed η (everything after that is cut anyway): a few tokens instead of CAP.
        It waits until `extract`'s start is settled and the crossing token ends 3 characters
        before the text does (a closing fence could still form there and end the suggestion
        before it), so the suggestion is the one the whole generation would give."""
        if self.policy.eta_bits is None or not self.stop_past_eta:
            return None
        eta = self.policy.eta_bits

        def enough(tokens: list[str], logprobs: list[float]) -> bool:
            if threshold_length((-lp for lp in logprobs), eta) == len(logprobs):  # the suggestion's part is under too
                return False
            text = "".join(tokens)
            if not prompts.settled(text, prompt):
                return False
            begin, end, _ = prompts.extract(text, prompt, ctx)
            span, lps = _tokens_in(tuple(tokens), logprobs, begin, end)
            kept = threshold_length((-lp for lp in lps), eta)
            if kept == len(lps):
                return False
            crossed_at = begin + sum(len(piece) for piece in span[:kept + 1])  # the crossing token's end
            return crossed_at <= len(text) - 3
        return enough

    def _typed_through(self, ctx: Context) -> Suggestion | None:
        with self._state:
            last = self._last
        if last is None:
            return None
        before, shown = last
        if ctx.suffix != before.suffix or not ctx.prefix.startswith(before.prefix):
            return None
        typed = ctx.prefix[len(before.prefix):]
        if not typed or not shown.text.startswith(typed) or len(typed) >= len(shown.text):
            return None
        tokens, logprobs, used = list(shown.tokens), shown.logprobs, 0
        while tokens and used + len(tokens[0]) <= len(typed):  # whole tokens typed away
            used += len(tokens.pop(0))
            logprobs = logprobs[1:] if logprobs is not None else None
        if tokens:
            tokens[0] = tokens[0][len(typed) - used:]
        return replace(shown, text=shown.text[len(typed):], tokens=tuple(tokens), logprobs=logprobs,
                       n_tokens=len(tokens), source="typed-through")

    def _remember(self, ctx: Context, suggestion: Suggestion) -> None:
        with self._state:
            self._last = (ctx, suggestion) if suggestion.text else None

    def _key(self, ctx: Context) -> tuple:
        return (prompts.window(ctx.prefix, self.max_prompt_chars), ctx.suffix[:SUFFIX_KEY], ctx.related,
                str(self.policy), self.format, self.temperature, self.top_p, self.seed)


def _tokens_in(tokens: tuple[str, ...], logprobs, begin: int, end: int):
    """The generated tokens that fall in text[begin:end], the first and last cut to fit."""
    out, lps, pos = [], [], 0
    for i, tok in enumerate(tokens):
        lo, hi = max(pos, begin), min(pos + len(tok), end)
        if hi > lo:
            out.append(tok[lo - pos:hi - pos])
            if logprobs is not None:
                lps.append(logprobs[i])
        pos += len(tok)
    return out, (lps if logprobs is not None else None)
