"""transformers backend: an HF model directory, optionally with a PEFT LoRA adapter on top.

Our own token loop (not `model.generate`): per-token log-probabilities of the raw (temperature 1)
distribution, cancellation between tokens, and a KV cache kept across calls so that a keystroke
re-evaluates only the tokens after the longest prefix shared with the last call.
"""

from __future__ import annotations

import inspect
import threading
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from coach.backends import fit_to_context
from coach.specs import ModelSpec
from coach.types import BackendError, Generation, Request, first_line

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# (prefix, suffix, middle) markers: StarCoder / SantaCoder, then Qwen2.5-Coder / CodeGemma.
FIM_MARKERS = (("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
               ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"))
END_OF_TURN = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>", "<|endoftext|>")
DECODE_CONTEXT = 4  # prompt tokens decoded in front of the generated ones (SentencePiece spaces)



class HFBackend:
    def __init__(self, spec: ModelSpec, device: str = "cpu", dtype: str = "float32", threads: int | None = None):
        """`threads`: torch's CPU threads, for the whole process. Fewer than the cores can be
        much faster when other work shares them: on 2 busy cores, 600 prompt tokens took
        0.74 s with 2 threads and 0.04 s with 1 (spinning OpenMP workers lose their cores)."""
        if threads:
            torch.set_num_threads(threads)
        if spec.kind not in ("hf", "adapter"):
            raise BackendError(f"the transformers backend cannot load a {spec.kind!r} model")
        if dtype not in DTYPES:
            raise BackendError(f"dtype {dtype!r}: use one of {', '.join(DTYPES)}")
        self.spec = spec
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self._lock = threading.Lock()
        base = spec if spec.kind == "hf" else spec.base
        if base is None or base.kind != "hf" or base.path is None:
            raise BackendError(f"{spec.path}: an adapter needs a transformers base model directory")
        model = self._load_model(base.path, DTYPES[dtype], "" if base is spec else f"base model of {spec.path}: ")
        tok_dir = spec.path if (spec.path / "tokenizer_config.json").is_file() else base.path
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(tok_dir)
        except Exception as exc:
            raise BackendError(f"{tok_dir}: cannot load its tokenizer ({first_line(exc)})") from None
        if spec.kind == "adapter":
            try:
                from peft import PeftModel
                model = PeftModel.from_pretrained(model, spec.path)
            except Exception as exc:
                raise BackendError(f"{spec.path}: cannot load the LoRA adapter ({first_line(exc)})") from None
        self.model = model.eval()
        core = model.get_base_model() if hasattr(model, "get_base_model") else model
        # Compute the output layer for the last position only (a 262k vocab costs seconds per prompt).
        self._logits_to_keep = "logits_to_keep" in inspect.signature(core.forward).parameters
        self.n_ctx = getattr(core.config, "max_position_embeddings", None)
        vocab = self.tokenizer.get_vocab()
        self._stop_ids = self._special_stop_ids(core, vocab)
        self._fim = next((m for m in FIM_MARKERS if all(t in vocab for t in m)), None)
        self._ids: list[int] = []  # the tokens whose keys/values are in self._cache
        self._cache: DynamicCache | None = None

    def _load_model(self, path, dtype, what: str):
        if not path.is_dir():
            raise BackendError(f"{what}{path}: no such model directory")
        try:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
            return model.to(self.device)
        except Exception as exc:  # missing files, garbage config.json, unknown architecture, OOM
            raise BackendError(f"{what}{path}: cannot load a transformers model ({first_line(exc)})") from None

    def _special_stop_ids(self, core, vocab: dict[str, int]) -> frozenset[int]:
        """EOS (tokenizer and generation config), end-of-turn, and every other special token
        (BOS, pad, FIM markers): none of them is code, so generation stops at any of them."""
        tok = self.tokenizer
        ids = set(tok.all_special_ids)
        eos = getattr(getattr(core, "generation_config", None), "eos_token_id", None)
        ids.update(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
        ids.update(vocab[t] for t in END_OF_TURN if t in vocab)
        return frozenset(i for i in ids if i is not None)

    # ------------------------------------------------------------------ the protocol

    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def render_chat(self, messages: list[dict]) -> str:
        if not self.has_chat_template():
            raise BackendError(f"{self.spec.label}: the tokenizer has no chat template")
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def fim_tokens(self) -> tuple[str, str, str] | None:
        return self._fim

    def count_tokens(self, text: str) -> int:
        """Tokens of the text as code (no BOS; "<|endoftext|>" in it is text), as llama.cpp counts."""
        ids = self.tokenizer(text, add_special_tokens=False, split_special_tokens=True, verbose=False)
        return len(ids["input_ids"])

    def close(self) -> None:
        with self._lock:
            self.model = self._cache = None
            self._ids = []
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def tokenize_prompt(self, request: Request) -> list[int]:
        """The prompt's ids as for plain text (BOS if the tokenizer adds one), as llama.cpp does:
        - special tokens written in the text count only in the chat and FIM formats (code that
          contains "<|endoftext|>" is text); a chat template that wrote the BOS gets no second;
        - an empty prompt without a BOS starts from the EOS (GPT-2-style document separator);
        - past the context, the start of the code is cut on a grid of a quarter context, so
          that the next keystrokes cut at the same token and the KV cache still serves them."""
        tok, bos = self.tokenizer, self.tokenizer.bos_token_id
        special = request.prompt.format in ("chat", "fim")
        ids = tok(request.prompt.text, split_special_tokens=not special, verbose=False)["input_ids"]
        if bos is not None and ids[:2] == [bos, bos] and special:
            ids = ids[1:]
        start = bos if bos is not None else tok.eos_token_id
        if not ids and start is None:
            raise BackendError(f"{self.spec.label}: an empty prompt, and no BOS or EOS token to start from")
        ids = ids or [start]
        if not self.n_ctx:
            return ids
        room = self.n_ctx - min(request.max_tokens, self.n_ctx // 2) - 1
        return fit_to_context(ids, room, keep_first=ids[0] == bos)

    @torch.inference_mode()
    def generate(self, request: Request) -> Generation:
        with self._lock:
            if self.model is None:
                raise BackendError(f"{self.spec.label}: the backend is closed")
            try:
                return self._generate(request)
            except (BackendError, KeyboardInterrupt):
                raise
            except Exception as exc:  # a half-updated cache cannot be trusted any more
                self._cache, self._ids = None, []
                raise BackendError(f"{self.spec.label}: generation failed ({first_line(exc)})") from None

    # ------------------------------------------------------------------ the loop

    def _generate(self, request: Request) -> Generation:
        ids = self.tokenize_prompt(request)

        def cancelled() -> bool:
            return request.cancel is not None and request.cancel.is_set()

        if cancelled():
            return Generation("", finish_reason="cancelled", prompt_tokens=len(ids))
        start = time.perf_counter()
        logits, evaluated = self._prefill(ids)
        prompt_s = time.perf_counter() - start
        rng = None
        if request.temperature > 0:
            rng = torch.Generator(device=logits.device).manual_seed(request.seed)
        out, pieces, logprobs = [], [], []
        detok = _Detokenizer(self.tokenizer, ids[-DECODE_CONTEXT:])
        finish, cut = "length", None
        while len(out) < request.max_tokens and (not self.n_ctx or len(ids) + len(out) < self.n_ctx):
            if out:
                if cancelled():
                    finish = "cancelled"
                    break
                logits = self._forward([out[-1]])
            token = _pick(logits, request.temperature, request.top_p, rng)
            if token in self._stop_ids:  # EOS / end of turn: not part of the text
                finish = "stop"
                break
            out.append(token)
            logprobs.append(float(torch.log_softmax(logits.float(), -1)[token]))
            pieces.append(detok.add(token))
            cut = _stop_cut(pieces, request.stop)
            if cut is not None:
                pieces = cut
                del out[len(cut):], logprobs[len(cut):]
                finish = "stop"
                break
            if request.enough is not None and request.enough(pieces, logprobs):
                finish = "enough"
                break
        if cut is None and pieces:  # bytes of an unfinished character go to the last token
            pieces[-1] += detok.rest()
        return Generation(
            text="".join(pieces), tokens=tuple(pieces), logprobs=tuple(logprobs), token_ids=tuple(out),
            finish_reason=finish, prompt_tokens=len(ids), evaluated_tokens=evaluated, prompt_s=prompt_s,
            generate_s=time.perf_counter() - start - prompt_s)

    def _prefill(self, ids: list[int]) -> tuple[torch.Tensor, int]:
        """Reuse the cached keys/values of the longest common prefix; compute the rest."""
        n = 0
        for a, b in zip(self._ids, ids):
            if a != b:
                break
            n += 1
        n = min(n, len(ids) - 1)  # the last prompt token is always fed: we need its logits
        if self._cache is not None and 0 < n < len(self._ids):
            try:  # a negative count removes that many tokens from the end
                self._cache.crop(n - len(self._ids))
            except Exception:  # a layer that cannot go back (recurrent state): start afresh
                self._cache = None
        if self._cache is None or n == 0:
            self._cache, n = self._new_cache(), 0
        self._ids = self._ids[:n]
        return self._forward(ids[n:]), len(ids) - n

    def _new_cache(self) -> DynamicCache:
        """Full-length layers, also for sliding-window attention (Gemma 3): the attention mask
        still applies the window, and only a full layer can be cropped back to any length (a
        sliding layer past its window cannot). Hybrid models with recurrent layers need theirs."""
        types = set(getattr(self.model.config, "layer_types", None) or ())
        if types <= {"full_attention", "sliding_attention"}:
            return DynamicCache()
        return DynamicCache(config=self.model.config)

    def _forward(self, new_ids: list[int]) -> torch.Tensor:
        """Feed tokens after the cached ones; the logits of the last position."""
        kwargs = {"logits_to_keep": 1} if self._logits_to_keep else {}
        x = torch.tensor([new_ids], device=self.device)
        result = self.model(input_ids=x, past_key_values=self._cache, use_cache=True, **kwargs)
        self._cache = result.past_key_values
        self._ids.extend(new_ids)
        return result.logits[0, -1]


def _pick(logits: torch.Tensor, temperature: float, top_p: float, rng) -> int:
    if temperature <= 0:
        return int(logits.argmax())
    probs = torch.softmax(logits.float() / temperature, -1)
    sorted_p, order = probs.sort(descending=True)
    if top_p < 1.0:  # the smallest head whose mass reaches top_p (the first token always stays)
        sorted_p = sorted_p * ((sorted_p.cumsum(-1) - sorted_p) < top_p)
    return int(order[torch.multinomial(sorted_p, 1, generator=rng)])


def _stop_cut(pieces: list[str], stops: tuple[str, ...]) -> list[str] | None:
    """The pieces cut before the earliest stop string, or None when the text has none.

    Tokens that start at or after the stop string are dropped: at a token boundary, the token
    that begins with the stop string goes with everything after it. A stop string that starts
    mid-token (the token ")\n", the stop "\n") keeps that token's head (")") as its last piece,
    with the token's id and log-prob, as the llama.cpp backend does: the text is exactly the
    text before the stop string, "".join(tokens) == text, and the log-probs only ever
    overcount (the whole token's, for part of its text). Bytes of a character that the stop
    string starts with (pieces "" until the character is complete) go with it.
    """
    text = "".join(pieces)
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    if not hits:
        return None
    at, pos, kept = min(hits), 0, []
    for piece in pieces:
        if pos >= at:
            break
        kept.append(piece[: at - pos])
        pos += len(piece)
    return kept


class _Detokenizer:
    """Text of each new token: decode (a few prompt tokens + all generated ids) and take the
    difference with what was already given out. The prompt tokens in front keep SentencePiece's
    leading spaces right; a trailing U+FFFD (a character whose bytes are not all there yet) is
    held back until the token that completes it, so multi-byte characters come out whole."""

    def __init__(self, tokenizer, context: list[int]):
        self.tokenizer, self.context, self.ids, self.given = tokenizer, list(context), [], ""
        self.base = self._raw(self.context)

    def _raw(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def _decode(self, ids: list[int]) -> str:
        text = self._raw(self.context + ids)
        return text[len(self.base):] if text.startswith(self.base) else self._raw(ids)

    def add(self, token: int) -> str:
        self.ids.append(token)
        text = self._decode(self.ids).rstrip("\ufffd")
        if not text.startswith(self.given):  # never seen; keep join(tokens) == text regardless
            return ""
        piece, self.given = text[len(self.given):], text
        return piece

    def rest(self) -> str:
        """What is still held back (an incomplete character at the end)."""
        text = self._decode(self.ids)
        return text[len(self.given):] if text.startswith(self.given) else ""
