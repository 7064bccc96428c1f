"""llama.cpp in-process (llama-cpp-python): a GGUF model, optionally with a GGUF LoRA adapter.

We drive the token loop ourselves (`eval` + the last position's logits) instead of
`create_completion`: it gives the log-probability of every generated token without
`logits_all=True` (which computes the output layer for every prompt token: 26 s instead of
2 s for a 560-token prompt with Gemma's 262k vocabulary), it checks the cancel flag between
tokens, and it reuses the KV cache across calls: a keystroke re-evaluates only the tokens after
the longest common prefix with the previous prompt.
"""

from __future__ import annotations

import ctypes
import threading
import time

import numpy as np

from coach.backends import fit_to_context
from coach.specs import ModelSpec
from coach.types import BackendError, Generation, Request

# llama-cpp-python quiets a model's load by pointing fds 1 and 2 at /dev/null and back again
# (`suppress_stdout_stderr`). Two loads overlapping in threads (evals loads replicas that way)
# interleave those swaps, and the last to finish puts /dev/null back for good: the process
# then prints nothing. One load at a time.
_LOAD_LOCK = threading.Lock()


class LlamaCppBackend:
    def __init__(self, spec: ModelSpec, n_ctx: int = 4096, n_threads: int | None = None, seed: int = 0):
        try:
            import llama_cpp
            from llama_cpp import Llama
        except ImportError:
            raise BackendError("the llama.cpp backend needs llama-cpp-python: pip install 'empower[editor]'") from None
        self.spec = spec
        self._options = dict(n_ctx=n_ctx, n_threads=n_threads, seed=seed)
        self._lib = llama_cpp
        self._lock = threading.Lock()
        self._closed = False
        if spec.lora is not None and not spec.lora.is_file():
            raise BackendError(f"{spec.lora}: LoRA adapter not found")
        n_ctx = min(n_ctx, _trained_context(spec.path) or n_ctx)
        try:
            # Threads: llama.cpp's defaults (half the cores for one token at a time, all of
            # them for a prompt) beat all cores for both on a 2-core machine.
            with _LOAD_LOCK:
                self.llm = Llama(str(spec.path), n_ctx=n_ctx, n_threads=n_threads,
                                 lora_path=str(spec.lora) if spec.lora else None, seed=seed,
                                 logits_all=False, verbose=False)
        except (ValueError, RuntimeError, OSError) as exc:
            raise BackendError(f"{spec.path}: cannot load this GGUF ({exc})") from None
        self.n_ctx = self.llm.n_ctx()
        self._vocab = self._lib.llama_model_get_vocab(self.llm._model.model)
        self.n_vocab = self.llm.n_vocab()
        self._bos_text = self._piece(self.llm.token_bos())
        self._token_bytes: dict[int, bytes] = {}  # detokenizing one token is a call into C each time
        ids = [self.llm._model.token_prefix(), self.llm._model.token_suffix(), self.llm._model.token_middle()]
        self._fim = None if min(ids) < 0 else tuple(self._piece(i) for i in ids)

    def clone(self) -> "LlamaCppBackend":
        """The same model with a KV cache of its own (the weights are mmapped: shared, not
        copied), for a second conversation that would otherwise evict this one's cache."""
        return type(self)(self.spec, **self._options)

    # ------------------------------------------------------------ protocol
    def has_chat_template(self) -> bool:
        return "tokenizer.chat_template" in self.llm.metadata

    def render_chat(self, messages: list[dict]) -> str:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        if not self.has_chat_template():
            raise BackendError(f"{self.spec.label} has no chat template; use the completion format")
        fmt = Jinja2ChatFormatter(self.llm.metadata["tokenizer.chat_template"],
                                  eos_token=self._piece(self.llm.token_eos()), bos_token=self._bos_text)
        return fmt(messages=messages).prompt

    def fim_tokens(self) -> tuple[str, str, str] | None:
        return self._fim

    def count_tokens(self, text: str) -> int:
        with self._lock:
            if self._closed:
                raise BackendError(f"{self.spec.label}: the model was closed")
            return len(self.llm.tokenize(text.encode(), add_bos=False, special=False))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.llm.close()

    # ------------------------------------------------------------ generation
    def tokenize_prompt(self, request: Request) -> list[int]:
        fmt = request.prompt.format
        text = request.prompt.text
        special = fmt in ("chat", "fim")  # chat templates and FIM markers are special tokens
        add_bos = not (self._bos_text and text.startswith(self._bos_text))
        ids = self.llm.tokenize(text.encode(), add_bos=add_bos, special=special)
        if not ids:  # an empty file, and a model that adds no BOS (SmolLM2): as the HF backend
            start = self.llm.token_bos() if self.llm.token_bos() >= 0 else self.llm.token_eos()
            if start < 0:
                raise BackendError(f"{self.spec.label}: an empty prompt, and no BOS or EOS token to start from")
            return [start]
        return fit_to_context(ids, self.n_ctx - request.max_tokens - 1, keep_first=add_bos)

    def generate(self, request: Request) -> Generation:
        with self._lock:
            # A worker thread may still ask after the editor closed the model: llama.cpp's freed
            # context would crash the process, this says so instead.
            if self._closed:
                raise BackendError(f"{self.spec.label}: the model was closed")
            return self._generate(request)

    def _generate(self, request: Request) -> Generation:
        llm = self.llm
        start = time.perf_counter()
        ids = self.tokenize_prompt(request)
        reuse = _common_prefix(llm.input_ids[: llm.n_tokens], ids)
        if reuse == len(ids):  # the whole prompt is cached, but its last logits may be stale
            reuse -= 1
        llm.n_tokens = reuse  # eval() drops the KV entries past this point itself
        try:
            llm.eval(ids[reuse:])
        except RuntimeError as exc:
            raise BackendError(f"llama.cpp failed to evaluate the prompt: {exc}") from None
        prompt_s = time.perf_counter() - start
        rng = np.random.default_rng(request.seed)
        out_ids: list[int] = []
        pieces: list[bytes] = []
        logprobs: list[float] = []
        finish = "length"
        while len(out_ids) < request.max_tokens:
            if request.cancel is not None and request.cancel.is_set():
                finish = "cancelled"
                break
            logits = self._last_logits()
            token, logprob = _pick(logits, request.temperature, request.top_p, rng)
            if self._lib.llama_vocab_is_eog(self._vocab, token):
                finish = "stop"
                break
            out_ids.append(token)
            pieces.append(self._bytes(token))
            logprobs.append(logprob)
            if request.stop and _hits_stop(b"".join(pieces), request.stop):
                finish = "stop"
                break
            if request.enough is not None and request.enough(
                    [p.decode("utf-8", errors="ignore") for p in pieces], logprobs):
                finish = "enough"
                break
            if len(out_ids) < request.max_tokens:  # the last token's logits are never needed
                llm.eval([token])
        text, tokens, logprobs = _cut_at_stop(pieces, logprobs, request.stop)
        return Generation(text=text, tokens=tuple(tokens), logprobs=tuple(logprobs), finish_reason=finish,
                          token_ids=tuple(out_ids[: len(tokens)]),
                          prompt_tokens=len(ids), evaluated_tokens=len(ids) - reuse,
                          prompt_s=prompt_s, generate_s=time.perf_counter() - start - prompt_s)

    # ------------------------------------------------------------ helpers
    def _last_logits(self) -> np.ndarray:
        ptr = self._lib.llama_get_logits_ith(self.llm._ctx.ctx, -1)
        return np.ctypeslib.as_array(ctypes.cast(ptr, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,))

    def _bytes(self, token: int) -> bytes:
        piece = self._token_bytes.get(token)
        if piece is None:
            piece = self._token_bytes[token] = self.llm.detokenize([token], special=False)
        return piece

    def _piece(self, token: int) -> str:
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="replace") if token >= 0 else ""



def _trained_context(path) -> int | None:
    """The context length the model was trained with (past it, it degrades), from the header."""
    try:
        from gguf import GGUFReader

        reader = GGUFReader(path)
        arch = reader.fields["general.architecture"].contents()
        return int(reader.fields[f"{arch}.context_length"].contents())
    except Exception:  # no gguf package, or an unusual header: let llama.cpp decide
        return None


def _common_prefix(a, b) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.nonzero(np.asarray(a[:n]) != np.asarray(b[:n]))[0]
    return int(diff[0]) if len(diff) else n


def _pick(logits: np.ndarray, temperature: float, top_p: float, rng) -> tuple[int, float]:
    """The next token (greedy at temperature 0) and its log-probability under the raw model."""
    shifted = logits - logits.max()
    logz = np.log(np.exp(shifted).sum())
    if temperature <= 0:
        token = int(shifted.argmax())
    else:
        p = np.exp(shifted / temperature)
        p /= p.sum()
        order = np.argsort(-p)
        keep = order[: int(np.searchsorted(np.cumsum(p[order]), top_p)) + 1]
        token = int(rng.choice(keep, p=p[keep] / p[keep].sum()))
    return token, float(shifted[token] - logz)


def _hits_stop(text: bytes, stops: tuple[str, ...]) -> bool:
    return any(s.encode() in text for s in stops)


def _cut_at_stop(pieces: list[bytes], logprobs: list[float], stops: tuple[str, ...]):
    """Text up to the first stop string, with the tokens that start before it (the token in
    which the stop string starts is kept, cut short, with its log-prob), so that text, tokens
    and log-probs always agree: `"".join(tokens) == text`."""
    raw = b"".join(pieces)
    cut = min((raw.find(s.encode()) for s in stops if s.encode() in raw), default=len(raw))
    kept, pos = [], 0
    for piece in pieces:
        if pos >= cut:
            break
        kept.append(piece[: cut - pos])
        pos += len(piece)
    text = raw[:cut].decode("utf-8", errors="replace")
    return text, _split_utf8(kept), logprobs[: len(kept)]


def _split_utf8(pieces: list[bytes]) -> list[str]:
    out, carry = [], b""
    for p in pieces:
        data = carry + p
        for cut in range(len(data), max(len(data) - 4, -1), -1):
            try:
                out.append(data[:cut].decode("utf-8"))
                carry = data[cut:]
                break
            except UnicodeDecodeError:
                continue
        else:  # not UTF-8 at all: show it as the replacement character
            out.append(data.decode("utf-8", errors="replace"))
            carry = b""
    if carry and out:
        out[-1] += carry.decode("utf-8", errors="replace")
    return out
