"""llama-cpp-python's OpenAI-compatible server, with completion log-probabilities that need no
`logits_all` (run as `python -m evals.llama_server`, with `python -m llama_cpp.server`'s options).

llama-cpp-python (0.3.36) computes a completion's `logprobs` from a table of logits it keeps for
every position of the context (`logits_all=True`, its server's default): n_ctx × n_vocab floats,
and the whole output layer for every prompt token. For Gemma 3 (262,144-token vocabulary) that
is 1 MB a position, gigabytes at an 8k context, and a prompt evaluated ~10× slower; its answer
also takes a log-softmax over the table's every row. Only the sampled positions' distributions
are returned, so this server runs the model with `logits_all=False` (the default here) and reads
each sampled position's logits as the sampler sees them, in a logits processor: the same numbers
(the raw logits before any other processor), the same response fields, at the cost of one
log-softmax a generated token. Everything else is llama-cpp-python's own server, unchanged;
a streamed (or echoed) completion with logprobs is refused as the library refuses it without its
table (the human asks for neither: its requests are not streamed).
"""

from __future__ import annotations

import os
import signal
import sys


# Where a cached prompt prefix is reused, a multiple of ALIGN tokens. llama.cpp's CPU kernels for
# repacked K-quants multiply a batch's rows in groups of 4 and its last rows one by one, with
# sums rounded differently; on Gemma 3 270M an acceptor prompt continued from a cache cut at
# token 349 moved the answer's log-probs by 0.33 nats, where a cut at any multiple of 4 left
# them bit for bit those of the prompt evaluated whole. Reusing only whole aligned groups (of a
# prompt, not of sampled tokens, which are evaluated one at a time) makes every answer that of
# a cold evaluation, whatever was asked before: the same on one server or two, in any order.
ALIGN = 32


def last_position_llama():
    """A `llama_cpp.Llama` whose create_completion answers `logprobs` with logits_all=False."""
    import llama_cpp
    import numpy as np

    base = llama_cpp.Llama

    class Llama(base):
        _sampled: list | None = None  # during a completion with logprobs: (token, top, its logprob)
        _pending: list | None = None  # the distribution of the position being sampled

        _clean = 0  # the cached tokens evaluated as a cold evaluation would have them (see ALIGN)

        def generate(self, tokens, *args, **kwargs):
            tokens = list(tokens)
            if kwargs.get("reset", True):
                # reuse at most the aligned part of the last prompt's cache: the rest is evaluated
                # in the row groups a cold evaluation of these tokens would use
                common = 0
                for a, b in zip(self.input_ids[:min(self.n_tokens, self._clean)].tolist(), tokens):
                    if a != b:
                        break
                    common += 1
                cap = ALIGN * (min(common, len(tokens) - 1) // ALIGN)
                if cap < self.n_tokens:
                    self.n_tokens, self._requires_eval = cap, True
                self._clean = ALIGN * (len(tokens) // ALIGN)  # sampled tokens are evaluated one by one
            for token in super().generate(tokens, *args, **kwargs):
                if self._sampled is not None and self._pending:
                    self._sampled.append((token, self._pending.pop()))
                yield token

        def create_completion(self, prompt, *args, **kwargs):
            k = kwargs.get("logprobs")
            if k is None or self._logits_all or kwargs.get("stream") or kwargs.get("echo") or args:
                return super().create_completion(prompt, *args, **kwargs)
            kwargs["logprobs"] = None

            def capture(input_ids, scores):
                self._pending = [np.asarray(base.logits_to_logprobs(scores), dtype=np.single)]
                return scores

            kwargs["logits_processor"] = llama_cpp.LogitsProcessorList(
                [capture, *(kwargs.get("logits_processor") or [])])
            self._sampled = []
            try:
                out = super().create_completion(prompt, **kwargs)
                sampled = self._sampled
            finally:
                self._sampled = self._pending = None
            out["choices"][0]["logprobs"] = self._logprobs(prompt, sampled, int(k))
            return out

        def _logprobs(self, prompt, sampled, k: int) -> dict:
            """The fields llama-cpp-python fills from its logits table (create_completion, not
            streamed, no echo), from the sampled positions: every completion token's string, text
            offset and log-prob, and the k likeliest strings, ties and duplicates as it has them."""
            start = len(prompt) if isinstance(prompt, str) else 0
            tokens, offsets, token_lps, tops, done = [], [], [], [], []
            for token, lps in sampled:
                if llama_cpp.llama_vocab_is_eog(self._model.vocab, token):
                    break  # not a completion token (the library stops before it)
                s = self.detokenize([token], prev_tokens=done).decode("utf-8", errors="ignore")
                # its order: sorted((logprob, id), reverse=True)[:k], among the few ≥ the k-th
                cut = np.partition(lps, len(lps) - k)[len(lps) - k] if k < len(lps) else -np.inf
                best = sorted(((float(lps[i]), int(i)) for i in np.flatnonzero(lps >= cut)), reverse=True)[:k]
                top = {self.detokenize([i], prev_tokens=done).decode("utf-8", errors="ignore"): lp for lp, i in best}
                top.update({s: float(lps[token])})
                tokens.append(s)
                offsets.append(start + len(self.detokenize(done).decode("utf-8", errors="ignore")))
                token_lps.append(float(lps[token]))
                tops.append(top)
                done.append(token)
            return {"tokens": tokens, "text_offset": offsets, "token_logprobs": token_lps, "top_logprobs": tops}

    return Llama


def end_with_parent() -> None:
    """Get SIGKILL when the process (thread) that started this one ends, however it ends (Linux;
    evals/local_server.py names its pid in EMPOWER_SERVER_PARENT); exit at once if it is gone.
    SIGKILL, not SIGTERM: a server whose benchmark is gone has nothing to finish, and uvicorn's
    graceful shutdown waits out the generation in flight (over 6 s once, on a loaded machine)."""
    parent = os.environ.get("EMPOWER_SERVER_PARENT")
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != int(parent):  # it ended before the signal was asked for
        sys.exit(f"evals.llama_server: the process that started it ({parent}) has ended")


def main(argv: list[str] | None = None) -> None:
    import llama_cpp
    from llama_cpp.server.__main__ import main as serve

    end_with_parent()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a.split("=", 1)[0] == "--logits_all" for a in argv):
        argv += ["--logits_all", "False"]
    llama_cpp.Llama = last_position_llama()  # the server's model loader looks the class up here
    sys.argv = [sys.argv[0], *argv]
    serve()


if __name__ == "__main__":
    main()
