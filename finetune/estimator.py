"""The estimator π̂: a pretrained causal LM that scores the file's own next tokens after each
state, which is all the rules of finetune/rules.py need to label it.

    empower-finetune label DIR --estimator SPEC --eta 0.32 [--rule empower|sft-10|sft-20|sft-rand]

A state is a file cut at a token boundary (the code before the cursor). Its label under the
logit-threshold rule (the paper's Algorithm 1) is the longest continuation of the person's own
code whose cumulative negative log-likelihood under a pretrained estimator π̂ stays below η
bits; the SFT baselines take the next N tokens, or a uniform 1..30.

Two estimators, both exact against the literal Algorithm 1 loop (tests/test_finetune_estimator.py):
- `raw`: π̂ reads a state as the editor serves it: the window of code before the cursor
  (`coach.prompts.window`, at the size the editor gives this model, `fitted_chars`), tokenized
  as the transformers backend tokenizes a completion prompt, then the file's own next tokens.
  The window starts on a grid (a quarter of it), so the states whose windows start at the same
  place share one forward pass, which gives every token's conditional log-probability: each of
  their labels is then a search in the cumulative sums, no forward pass per state or length.
  A file shorter than the window is one pass, as before; in a long file the context of a state
  is what the served model will see, never more (on SmolLM2 8,000 characters, ~2.3k tokens,
  where its 8,192 positions would hold 3.5 times that).
- `chat`: the paper's framing: π̂ sees a "finish this code" conversation holding the state's
  window, with the assistant turn prefilled with it, and scores the rest of the file as the
  assistant's continuation. One forward pass per state (the prompt differs per state).

The token boundary: a state ends where the file's own tokenization has a boundary, and only
where tokenizing the state's text alone gives the same tokens (`are_stable`). So the state a
model is trained on is exactly the token sequence the editor will serve for that text, and the
continuation's tokens are the file's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from coach import prompts
from coach.policies import threshold_length
from coach.types import Prompt, Request
from finetune.rules import CAP, LN2, Scored, State

@dataclass(frozen=True)
class RawPass:
    """One forward pass of the raw framing: the sequence, and each state it scores with where
    that state's continuation starts in it."""
    seq: list[int]
    members: tuple[tuple[State, int], ...]


# --------------------------------------------------------------------------- estimators

def chat_start(tokenizer, shown: str) -> list[int]:
    """The ids of the chat prompt the editor serves for the code `shown` (coach.prompts: the same
    system prompt, examples and fences), up to where the assistant's prefilled code begins."""
    prompt = tokenizer.apply_chat_template(prompts.chat_messages(shown), tokenize=False, add_generation_prompt=True)
    return tokenizer(prompt + prompts.fenced(""), add_special_tokens=False, verbose=False)["input_ids"]


def window_chars(tokenizer, n_ctx: int, framing: str = "raw", cap: int = CAP) -> int:
    """The editor's window for a model of `n_ctx` positions (see Estimator.window_chars)."""
    if framing == "raw":
        room = prompts.code_room(n_ctx, cap)
    else:  # the code is shown twice (the user's turn, the prefill): half of what the chat leaves each
        room = (n_ctx - cap - len(chat_start(tokenizer, "")) - 8) // 2
    return prompts.fitted_chars(lambda text: len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]),
                                room)


class Estimator:
    """π̂: a causal LM (transformers) that scores continuations. `framing` is "raw" or "chat"."""

    def __init__(self, model, tokenizer, framing: str = "raw", *, cap: int = CAP, batch_size: int = 8,
                 share_prompts: bool | None = None, stop_bits: float | None = None,
                 window_chars: int | None = None):
        if framing not in ("raw", "chat"):
            raise ValueError(f"unknown estimator framing {framing!r}: raw or chat")
        if framing == "chat" and not getattr(tokenizer, "chat_template", None):
            raise ValueError("the chat estimator needs a model with a chat template; use --framing raw")
        self.model, self.tokenizer, self.framing = model, tokenizer, framing
        self.cap, self.batch_size = cap, batch_size
        # chat: a file's states share their prompt's start (see `_score_shared`); that pays where
        # the forward pass is compute-bound (the CPU), batching by length where it is not (a GPU).
        self.share_prompts = share_prompts
        # chat, prompts shared: a continuation is read only until its cumulative NLL reaches
        # stop_bits. The empower rule at any η <= stop_bits stops there too, so its labels are
        # unchanged; the SFT rules need every token (None).
        self.stop_bits = stop_bits
        self.n_ctx = int(getattr(model.config, "max_position_embeddings", 2048) or 2048)
        self._window_chars = window_chars
        from finetune.train_data import ServedPrompts

        self.served = ServedPrompts(tokenizer, None)  # how the transformers backend tokenizes a prompt
        # ... and cuts one that its context cannot hold with the answer (code denser than the
        # sample the window was sized on), as the editor's backend does
        self.served.n_ctx = self.n_ctx

    @property
    def window_chars(self) -> int:
        """The code before the cursor a state's context holds, in characters: the editor's window
        for this model (coach.prompts.fitted_chars on the same sample as the editor and the
        benchmark); in the chat framing the code is shown twice, so half the room each time."""
        if self._window_chars is None:
            self._window_chars = window_chars(self.tokenizer, self.n_ctx, self.framing, self.cap)
        return self._window_chars

    @window_chars.setter
    def window_chars(self, chars: int) -> None:
        self._window_chars = chars

    @classmethod
    def load(cls, spec: str, framing: str = "raw", *, device: str | None = None, dtype=None,
             **options) -> "Estimator":
        """From a model spec (an HF directory, a Hub id, a configured name), in `dtype` (default:
        the faster of bfloat16 and float32 here, measured: finetune/machine.py)."""
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        from finetune.machine import model_dtype

        from coach.specs import resolve
        from coach.types import ModelNotFound

        resolved = resolve(spec, engine="hf")
        if resolved.kind not in ("hf", "adapter") or resolved.path is None:
            raise ModelNotFound(f"the estimator {spec!r} must be a transformers model (an HF "
                                f"directory, a Hub id or a configured name), not {resolved.kind}")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        path = resolved.base.path if resolved.kind == "adapter" else resolved.path
        dtype = dtype or model_dtype(AutoConfig.from_pretrained(path), device)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
        if resolved.kind == "adapter":
            from peft import PeftModel
            model = PeftModel.from_pretrained(model, resolved.path).eval()
        return cls(model, tokenizer, framing, **options)

    @property
    def device(self):
        return next(self.model.parameters()).device

    # ---- the file's tokens
    def encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        # verbose=False: a file longer than the context is fine here (it is read in windows).
        # split_special_tokens: "<|endoftext|>" written in code is text, as the editor serves it
        enc = self.tokenizer(text, add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True,
                             verbose=False)
        return list(enc["input_ids"]), list(enc["offset_mapping"])

    # ---- scoring
    def score(self, text: str, states: Sequence[State], ids: Sequence[int] | None = None) -> list[Scored]:
        if ids is None:
            ids, _ = self.encode(text)
        if self.framing == "raw":
            return self._score_raw(text, ids, states)
        return self._score_chat(text, ids, states)

    def token_nll(self, sequences: Sequence[Sequence[int]], first: Sequence[int] | None = None) -> list[list[float]]:
        """For each sequence, the NLL (nats) of every token after position `first[i]` (default
        0: every token after the first) given the ones before it: one batched forward pass,
        right-padded.

        The output layer runs only from the earliest `first` on (`logits_to_keep`): a state's
        prompt needs hidden states but no logits, and the logits are what a real estimator's
        vocabulary makes large (Gemma 3: 262k floats a position)."""
        import torch

        first = [0] * len(sequences) if first is None else list(first)
        longest = max(len(s) for s in sequences)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        batch = torch.full((len(sequences), longest), pad, dtype=torch.long)
        for i, s in enumerate(sequences):
            batch[i, :len(s)] = torch.tensor(s)
        batch = batch.to(self.device)
        lo = min(first)
        with torch.inference_mode():
            # No attention mask: the padding is on the right and the model is causal, so no real
            # token sees a pad; a mask only sends attention down a slower path (5x on CPU).
            # logits[:, j] predicts token lo + j + 1.
            logits = self.model(input_ids=batch, logits_to_keep=longest - lo).logits
            nll = _nll(logits, batch[:, lo + 1:])
        return [nll[i, f - lo:len(s) - 1 - lo].tolist() for i, (s, f) in enumerate(zip(sequences, first))]

    def window(self, text: str, state: State) -> tuple[int, str]:
        """(where the state's window starts in the text, the window): the code before the
        cursor the editor puts in its prompt at this state."""
        code = prompts.window(text[:state.char], self.window_chars)
        return state.char - len(code), code

    def raw_prompt(self, text: str, state: State) -> list[int]:
        """The ids of the completion prompt served at this state (BOS where the tokenizer adds one;
        cut to the context, with room for CAP tokens, as the backend cuts it)."""
        return self.served.tokenize_prompt(Request(Prompt("completion", self.window(text, state)[1]), self.cap))

    def raw_passes(self, text: str, ids: Sequence[int], states: Sequence[State]) -> list[RawPass]:
        """The forward passes the raw framing needs for these states. States whose windows start
        at the same character share a pass: the prompt of the last of them, then the file's
        tokens after it. An earlier state reads the same pass where its own prompt and
        continuation are that sequence's start (tokenization is local: they almost always are);
        where not, it gets a pass of its own."""
        by_start: dict[int, list[State]] = {}
        for st in states:
            by_start.setdefault(self.window(text, st)[0], []).append(st)
        passes = []
        for _, group in sorted(by_start.items()):
            pending = sorted(group, key=lambda st: st.cut)
            while pending:
                last = pending.pop()
                cont = list(ids[last.cut:last.cut + self.cap])
                prompt = self.raw_prompt(text, last)
                seq = prompt + cont
                members = [(last, len(prompt))]
                # Where that prompt is the file's own first tokens (after a BOS), nothing cut, each
                # earlier state's prompt is its start: a state ends where tokenizing its text alone
                # gives the file's tokens (are_stable). No need to tokenize those again.
                lead = len(prompt) - last.cut
                own = lead >= 0 and prompt[lead:] == list(ids[:last.cut])
                for st in pending[:]:
                    prompt = seq[:lead + st.cut] if own else self.raw_prompt(text, st)
                    cont = list(ids[st.cut:st.cut + self.cap])
                    if seq[:len(prompt)] == prompt and seq[len(prompt):len(prompt) + len(cont)] == cont:
                        members.append((st, len(prompt)))
                        pending.remove(st)
                passes.append(RawPass(seq, tuple(members)))
        return passes

    def _score_raw(self, text: str, ids: Sequence[int], states: Sequence[State]) -> list[Scored]:
        scored: dict[State, Scored] = {}
        for p in self.raw_passes(text, ids, states):
            first = min(n for _, n in p.members) - 1
            (nll,) = self.token_nll([p.seq], [first])
            for st, n in p.members:  # nll[j] scores seq[first + 1 + j]; st's continuation starts at seq[n]
                k = len(ids[st.cut:st.cut + self.cap])
                scored[st] = Scored(st, tuple(ids[st.cut:st.cut + k]), tuple(nll[n - first - 1:n - first - 1 + k]))
        return [scored[st] for st in states]

    def chat_prefix(self, text: str, ids: Sequence[int], state: State) -> list[int]:
        """The chat framing of a state: the conversation the editor serves in the chat format
        (coach.prompts.chat_messages) holding the state's window (the editor's, at half the room:
        the code is shown twice), then the assistant turn prefilled with the same code's tokens,
        so that the file's continuation tokens follow exactly where the state stops. Neighbouring
        states whose windows start at the same place share their prompt's start (`_score_shared`)."""
        start, shown = self.window(text, state)
        prompt_ids = chat_start(self.tokenizer, shown)
        # the whole state shown: its tokens are the file's (are_stable); else the window's own
        code = ids[:state.cut] if start == 0 else self.tokenizer(
            shown, add_special_tokens=False, split_special_tokens=True, verbose=False)["input_ids"]
        return list(prompt_ids) + list(code)

    def score_many(self, items: Sequence[tuple[str, Sequence[int], Sequence[State]]]) -> list[list[Scored]]:
        """Several files at once. In the chat framing, either each file's states share their
        prompt's start (`_score_shared`), or all the files' states are pooled and batched by
        length, so that a batch holds sequences of nearly the same length from any file
        (padding is what batching costs; within one file the states' lengths spread from
        nothing to the whole file)."""
        if self.framing == "raw":
            return [self._score_raw(text, ids, states) for text, ids, states in items]
        seqs = [[(st, self.chat_prefix(text, ids, st), list(ids[st.cut:st.cut + self.cap])) for st in states]
                for text, ids, states in items]
        share = self.share_prompts if self.share_prompts is not None else self.device.type == "cpu"
        if share:
            return [self._score_shared(file_seqs) for file_seqs in seqs]
        pooled = [(n, seq) for n, file_seqs in enumerate(seqs) for seq in file_seqs]
        out: list[list[Scored]] = [[] for _ in items]
        for (n, _), scored in zip(pooled, self._score_sequences([seq for _, seq in pooled])):
            out[n].append(scored)
        return out

    def _score_chat(self, text: str, ids: Sequence[int], states: Sequence[State]) -> list[Scored]:
        return self.score_many([(text, ids, states)])[0]

    def _score_sequences(self, seqs: list[tuple[State, list[int], list[int]]]) -> list[Scored]:
        """Score continuation tokens after their prefixes, batched by length (shortest first,
        so padding stays small)."""
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][1]) + len(seqs[i][2]))
        result: dict[int, Scored] = {}
        for b in range(0, len(order), self.batch_size):
            chunk = order[b:b + self.batch_size]
            nlls = self.token_nll([seqs[i][1] + seqs[i][2] for i in chunk], [len(seqs[i][1]) - 1 for i in chunk])
            for i, nll in zip(chunk, nlls):
                st, _, cont = seqs[i]
                result[i] = Scored(st, tuple(cont), tuple(nll))
        return [result[i] for i in range(len(seqs))]

    def _score_shared(self, seqs: list[tuple[State, list[int], list[int]]]) -> list[Scored]:
        """One file's states, reading what their sequences have in common once.

        The chat prompt of a state holds the file up to the state in its user turn, so a
        state's sequence starts with the same tokens as a later state's, up to about where the
        earlier state stops: a third to a half of each sequence. States are read from the last
        to the first with one KV cache: each crops the cache back to what it shares with the
        state before and reads only the rest. Models whose cache cannot be cropped
        (sliding-window layers) are batched by length instead."""
        import torch

        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][1]), reverse=True)
        result: dict[int, Scored] = {}
        cache, held = None, []  # the KV cache and the tokens it holds
        with torch.inference_mode():
            for n, i in enumerate(order):
                st, prefix, cont = seqs[i]
                seq = prefix + cont
                # Position len(prefix) - 1 predicts the first continuation token: it is read anew.
                skip = min(_common_prefix(seq, held), len(prefix) - 1)
                if cache is not None and skip < cache.get_seq_length():
                    if not getattr(cache, "is_croppable", False):
                        rest = order[n:]
                        result.update(zip(rest, self._score_sequences([seqs[j] for j in rest])))
                        break
                    if skip == 0:
                        cache = None
                    else:  # a negative count (tokens to drop) means the same in every version
                        cache.crop(skip - cache.get_seq_length())
                nll, cache, fed = self._read_continuation(seq, len(prefix), skip, cache)
                held = seq[:fed]
                result[i] = Scored(st, tuple(cont[:len(nll)]), tuple(nll))
        return [result[i] for i in range(len(seqs))]

    FIRST_READ = 8  # continuation tokens read before checking stop_bits (most labels are shorter)

    def _read_continuation(self, seq: list[int], lo: int, skip: int, cache):
        """Feed seq[skip:] after a cache holding seq[:skip] and score seq[lo:] (lo > skip), in
        two reads when stop_bits is set: the first FIRST_READ continuation tokens, then the rest
        only while the cumulative NLL is under stop_bits. Returns (the NLLs, the cache, tokens fed)."""
        import torch

        nll: list[float] = []
        pos = skip
        end = len(seq) if self.stop_bits is None else min(len(seq), lo + self.FIRST_READ)
        while True:
            keep = end - max(pos, lo - 1)  # logits from the one predicting seq[max(pos, lo - 1) + 1]
            out = self.model(input_ids=torch.tensor([seq[pos:end]], device=self.device),
                             past_key_values=cache, use_cache=True, logits_to_keep=keep)
            cache = out.past_key_values
            targets = seq[end - keep + 1:end + 1]  # the last logit predicts seq[end], if there is one
            if targets:
                nll += _nll(out.logits, torch.tensor([targets], device=self.device))[0].tolist()
            pos = end
            if end == len(seq) or threshold_length(nll, self.stop_bits) < len(nll):
                return nll, cache, pos
            end = len(seq)


def _nll(logits, targets):
    """NLL (nats) of `targets` [batch, n] under `logits` [batch, >= n + 1, vocab], whose
    position j predicts targets[:, j] (the last position predicts nothing). cross_entropy, not
    a kept log_softmax: a [batch, length, vocab] float32 copy is gigabytes for a real
    estimator's vocabulary."""
    import torch.nn.functional as F

    n = targets.shape[1]
    logits = logits[:, :n]
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
                           reduction="none").view(targets.shape[0], n)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def literal_algorithm_1(estimator: Estimator, text: str, ids: Sequence[int], state: State,
                        eta_bits: float) -> int:
    """The paper's Algorithm 1 as written: for i = 1, 2, ..., score the continuation of length
    i with a fresh forward pass, and stop at the first whose cumulative NLL reaches η. Slow on
    purpose: it is what the fast labellers are tested against, so it keeps its own comparison
    instead of calling coach.policies.threshold_length."""
    limit = eta_bits * LN2
    if estimator.framing == "raw":
        prefix = estimator.raw_prompt(text, state)
    else:
        prefix = estimator.chat_prefix(text, ids, state)
    longest = min(estimator.cap, len(ids) - state.cut)
    for i in range(1, longest + 1):
        cont = list(ids[state.cut:state.cut + i])
        (nll,) = estimator.token_nll([prefix + cont])  # every token: Algorithm 1 as written
        if not sum(nll[len(prefix) - 1:]) < limit:
            return i - 1
    return longest
