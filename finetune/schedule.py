"""The training schedule, chosen from the data, the model and this machine, before any step.

    speed = probe(model, device)                  # a few training steps, timed (seconds)
    plan = choose(config, lengths, shape, speed, machine, world)

What `choose` decides where the config leaves it open (every choice can be given instead):
- rows per forward pass (`batch_size`) and passes per optimizer step (`grad_accum`), for about
  ROWS_PER_STEP rows a step: on a CPU one row a pass (a batch only adds padding and memory; on
  SmolLM2 256-token rows trained at 156 tokens/s one at a time, 148 four at a time), on a GPU
  as many rows as the memory budget holds;
- tokens per example (`max_length`): the longest of LENGTHS at which one pass over the data fits
  the time budget (`minutes`); a longer prompt is served from a shorter window of its state
  (train_data.encode_row), so an example keeps its completion and the code just before it;
- passes over the data (`epochs`, or `max_steps`): as many as the time budget holds, at most
  AUTO_MAX_EPOCHS and about AUTO_STEPS steps; less than one pass only when even the shortest
  length does not fit (then the steps the budget holds);
- gradient checkpointing: only where memory needs it (it costs a third more time);
- checkpoints five times a run and at least every CHECKPOINT_MINUTES, the held-out loss at the
  start, the middle and the end (each is a pass over the held-out examples).

Peak memory is stated in the plan, and a schedule the machine cannot hold is refused before any
work (`MemoryTooSmall`, one line). The estimate (`peak_memory`): the process's runtime, the
weights, the LoRA weights with their gradients and Adam state, and the activations autograd keeps
per token of a pass, from the model's widths. Measured on SmolLM2-135M in float32 on the CPU
(single training steps of one row of 256-2,048 tokens, peak RSS, December 2026): 2.5 MB a token
of activations without LoRA dropout, 3.1 MB with it, which 15·hidden + 8·intermediate (+
6·hidden + intermediate for dropout's copies) floats a layer match; with checkpointing 1.06 MB a
token, not the 0.15 MB the layer inputs would need (glibc keeps what autograd frees in pieces it
cannot hand back), so checkpointing counts as halving the activations, as measured. Whole runs
stay under the stated peak: bench/train.py prints measured ÷ stated (0.53-0.79 here).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from finetune.machine import GiB, Machine

ROWS_PER_STEP = 8  # rows per optimizer step, all passes and processes together
LENGTHS = (2048, 1024, 512, 256, 128)  # max_length candidates, longest first
AUTO_MINUTES = 12.0  # the training time budget when neither steps nor epochs are given
AUTO_STEPS = 200  # ... and at most about this many optimizer steps ...
AUTO_MAX_EPOCHS = 10  # ... in at most this many passes over the data
CHECKPOINT_MINUTES = 3.0  # a checkpoint about this often (what a kill can lose)
MEMORY_SHARE = 0.8  # of the memory free now, what training may plan to use
RUNTIME_BYTES = 0.7 * GiB  # Python, torch, transformers, the tokenizer and the data (CPU, measured)
MARGIN = 1.15  # on the estimate, for what it leaves out (eval batches, allocator slack)


class MemoryTooSmall(Exception):
    """The machine cannot hold training even at its smallest: one line that says why."""


@dataclass(frozen=True)
class Shape:
    """The widths of a model that memory and time depend on."""
    params: int
    layers: int
    hidden: int
    intermediate: int
    vocab: int
    ctx: int | None
    lora_params: int  # at rank 16 on every projection inside the blocks

    @classmethod
    def of(cls, config, rank: int = 16) -> "Shape":
        """From a transformers config (no weights loaded)."""
        cfg = getattr(config, "text_config", None) or config
        h = cfg.hidden_size
        i = getattr(cfg, "intermediate_size", None) or 4 * h
        layers = cfg.num_hidden_layers
        heads = cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or h // heads
        kv = (getattr(cfg, "num_key_value_heads", None) or heads) * head_dim
        q = heads * head_dim
        attn = h * q + 2 * h * kv + q * h
        mlp = 3 * h * i
        embed = cfg.vocab_size * h * (1 if getattr(cfg, "tie_word_embeddings", True) else 2)
        lora = layers * rank * ((h + q) + 2 * (h + kv) + (q + h) + 2 * (h + i) + (i + h))
        return cls(embed + layers * (attn + mlp), layers, h, i, cfg.vocab_size,
                   getattr(cfg, "max_position_embeddings", None), lora)


@dataclass(frozen=True)
class Speed:
    """Training time of one row of n tokens: n·(per_token + per_token_sq·n) seconds (the second
    term is attention, which grows with the row), and inference tokens/s (labelling)."""
    per_token: float
    per_token_sq: float
    forward_tokens_per_s: float

    @classmethod
    def nominal(cls, shape: "Shape", device: str) -> "Speed":
        """Without a measurement (torchrun: every process must plan alike): 6 FLOPs a parameter a
        token for a LoRA training step, at a rate typical of a laptop CPU (2e10 FLOP/s, about what
        SmolLM2 trains at on this project's 2 cores) or of a GPU (2e13)."""
        rate = 2e13 if device == "cuda" else 2e10
        per_token = 6 * shape.params / rate
        return cls(per_token, per_token / 4096, rate / (2 * shape.params))

    def row(self, n: int) -> float:
        return n * (self.per_token + self.per_token_sq * n)

    def train_tokens_per_s(self, n: int) -> float:
        return n / self.row(n)


@dataclass
class Plan:
    """The config resolved against the data, the model and the machine."""
    world: int  # processes (torchrun)
    global_batch: int  # rows per optimizer step, all processes together
    steps_per_epoch: int
    epochs: float
    steps: int
    warmup_steps: int
    save_every: int
    log_every: int
    max_length: int
    batch_size: int = 1  # rows per forward pass per process
    grad_accum: int = 1  # forward passes per optimizer step
    checkpointing: bool = False  # gradient checkpointing
    eval_every: int = 0  # 0: with every checkpoint
    peak_bytes: int = 0  # the stated peak memory (0: not estimated)
    memory_bytes: int = 0  # what the machine had free when planned
    seconds: float = 0.0  # the estimated training time (0: not estimated)
    device: str = "cpu"


def activation_bytes(shape: Shape, dropout: bool, checkpointing: bool, dtype_bytes: int) -> float:
    """Bytes autograd keeps per token of a forward pass (see the module's docstring)."""
    floats = 15 * shape.hidden + 8 * shape.intermediate + (6 * shape.hidden + shape.intermediate if dropout else 0)
    per_token = shape.layers * floats * dtype_bytes
    return per_token / 2 if checkpointing else per_token


def peak_memory(shape: Shape, tokens: int, *, dropout: bool, checkpointing: bool, device: str = "cpu") -> int:
    """The peak memory of training with `tokens` tokens in a forward pass: on the CPU the
    process's resident set, on a GPU what torch allocates (activations and weights in bf16)."""
    dtype_bytes = 2 if device == "cuda" else 4
    fixed = (RUNTIME_BYTES if device == "cpu" else 0) + shape.params * dtype_bytes + shape.lora_params * 16
    return int(MARGIN * (fixed + tokens * activation_bytes(shape, dropout, checkpointing, dtype_bytes)))


def gb(n: float) -> str:
    return f"{n / GiB:.1f} GB"


def check_memory(shape: Shape, machine: Machine, *, dropout: bool, max_length: int | None = None,
                 batch_size: int | None = None) -> None:
    """Refuse, before any work, what the machine cannot hold at the smallest schedule (or at the
    length and rows given)."""
    budget = MEMORY_SHARE * machine.memory
    rows, length = batch_size or 1, max_length or LENGTHS[-1]
    need = peak_memory(shape, rows * length, dropout=dropout, checkpointing=True, device=machine.device)
    if need > budget:
        given = f" at {rows} row{'s' * (rows > 1)} of {length} tokens" if max_length or batch_size else ""
        hint = ("a smaller --max-length or --batch-size" if max_length or batch_size
                else "a smaller base model, or free memory")
        raise MemoryTooSmall(f"training {shape.params / 1e6:,.0f}M parameters{given} needs about {gb(need)} "
                             f"and this machine has {gb(machine.memory)} free: use {hint}")


def choose(config, lengths: list[int], shape: Shape, speed: Speed, machine: Machine, world: int = 1,
           eval_lengths: list[int] = ()) -> Plan:
    """The plan for `config` (a TrainConfig) on training examples of these token lengths (each
    as long as its served prompt and completion make it, before any cut)."""
    if not lengths:
        raise ValueError("no training examples")
    dropout = config.dropout > 0
    budget_bytes = MEMORY_SHARE * machine.memory
    ctx = min(shape.ctx or LENGTHS[0], LENGTHS[0])
    longest = max(lengths)

    def fits(rows: int, length: int, ckpt: bool) -> bool:
        return peak_memory(shape, rows * length, dropout=dropout, checkpointing=ckpt, device=machine.device) <= budget_bytes

    def rows_for(length: int) -> tuple[int, bool] | None:
        """Rows per pass and checkpointing at this length, or None where one row does not fit."""
        if config.batch_size:
            for ckpt in (False, True):
                if fits(config.batch_size, length, ckpt):
                    return config.batch_size, ckpt
            return None
        per_step = max(1, math.ceil(ROWS_PER_STEP / world))
        for ckpt in (False, True):
            if machine.device == "cpu":
                if fits(1, length, ckpt):
                    return 1, ckpt
                continue
            rows = next((r for r in range(per_step, 0, -1) if fits(r, length, ckpt)), 0)
            if rows:
                return rows, ckpt
        return None

    def epoch_seconds(length: int, ckpt: bool = False) -> float:
        # checkpointing recomputes each block's forward pass: measured 1.25-1.6x the time (CPU)
        return sum(speed.row(min(n, length)) for n in lengths) / world * (1.4 if ckpt else 1.0)

    def eval_seconds(length: int) -> float:
        return sum(min(n, length) for n in eval_lengths) / max(speed.forward_tokens_per_s, 1e-9) / world

    timed = config.max_steps is None and config.epochs is None
    budget_s = 60 * (config.minutes if config.minutes is not None else AUTO_MINUTES)
    if config.max_length:
        candidates = [config.max_length]
    else:
        candidates = [n for n in LENGTHS if n <= ctx]
        # no longer than the longest example needs (rounded up to a candidate)
        candidates = [n for n in candidates if n < longest * 2] or [candidates[-1]]
    chosen = None
    for length in candidates:
        sizing = rows_for(length)
        if sizing is None:
            continue
        chosen = (length, *sizing)
        if not timed or epoch_seconds(length, sizing[1]) + 3 * eval_seconds(length) <= budget_s:
            break
    if chosen is None:
        check_memory(shape, machine, dropout=dropout, max_length=config.max_length, batch_size=config.batch_size)
        raise MemoryTooSmall(f"no length of {', '.join(map(str, candidates))} tokens fits in "
                             f"{gb(budget_bytes)}: use a smaller base model")
    max_length, rows, ckpt = chosen
    # rows given: a step is those rows in every process (as the Trainer counts); else about ROWS_PER_STEP
    grad_accum = config.grad_accum or (1 if config.batch_size else max(1, math.ceil(ROWS_PER_STEP / (rows * world))))
    global_batch = rows * world * grad_accum
    batches = math.ceil(len(lengths) / (rows * world))
    per_epoch = max(1, math.ceil(batches / grad_accum))  # as the Trainer counts them
    step_s = epoch_seconds(max_length, ckpt) / per_epoch
    if config.max_steps:
        steps = config.max_steps
        epochs = steps / per_epoch
    elif config.epochs:
        epochs = config.epochs
        steps = max(1, math.ceil(epochs * per_epoch))
    else:
        room = budget_s - 3 * eval_seconds(max_length)
        affordable = max(1, int(room / max(step_s, 1e-9)))
        if affordable < per_epoch:  # not even one pass: the steps the budget holds
            steps = affordable
            epochs = steps / per_epoch
        else:
            epochs = max(1, min(AUTO_MAX_EPOCHS, math.ceil(AUTO_STEPS / per_epoch), affordable // per_epoch))
            steps = max(1, math.ceil(epochs * per_epoch))
    # at least 5 checkpoints a run (each is the adapter and its optimizer state: a fraction of a
    # second), and one about every CHECKPOINT_MINUTES
    save_every = config.save_every or max(1, min(math.ceil(steps / 5), 200,
                                                 round(60 * CHECKPOINT_MINUTES / max(step_s, 1e-9))))
    eval_every = save_every if config.save_every else max(1, math.ceil(steps / 2))
    log_every = config.log_every or max(1, min(save_every, steps // 50))
    seconds = steps * step_s + (1 + steps // eval_every) * eval_seconds(max_length)
    return Plan(world, global_batch, per_epoch, epochs, steps, math.ceil(config.warmup * steps), save_every,
                log_every, max_length, rows, grad_accum, ckpt, eval_every,
                peak_memory(shape, rows * max_length, dropout=dropout, checkpointing=ckpt, device=machine.device),
                machine.memory, seconds, machine.device)


PROBE_LENGTHS = (128, 512)  # the rows `probe` times (its peak memory is that of training on the longer)


def probe_lengths(shape: Shape, machine: Machine, dropout: bool) -> tuple[int, int]:
    """PROBE_LENGTHS, or shorter rows where the machine could not hold the longer."""
    fits = peak_memory(shape, PROBE_LENGTHS[1], dropout=dropout, checkpointing=False,
                       device=machine.device) <= MEMORY_SHARE * machine.memory
    return PROBE_LENGTHS if fits else (LENGTHS[-1] // 2, LENGTHS[-1])


def probe(model, device: str, lengths: tuple[int, int] = PROBE_LENGTHS, vocab: int | None = None) -> Speed:
    """Time training steps (forward, backward; no optimizer step: the weights do not change)
    of one row at two lengths, and a forward pass, on the model as it will train (its LoRA
    adapter, its checkpointing). Seconds on a CPU, a fraction of one on a GPU. The gradients
    it leaves are cleared; it draws no random numbers but the tokens (from its own generator)."""
    import torch

    model.to(device)  # where it will train (the Trainer would move it there next)
    vocab = vocab or model.get_input_embeddings().weight.shape[0]
    gen = torch.Generator().manual_seed(0)
    rows = {n: torch.randint(0, vocab, (1, n), generator=gen).to(device) for n in lengths}
    was_training = model.training
    model.train()

    def step(x) -> float:
        start = time.perf_counter()
        out = model(input_ids=x, logits_to_keep=8)
        out.logits.float().logsumexp(-1).mean().backward()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    # dropout draws random numbers: keep the caller's stream where it was
    cpu_state = torch.random.get_rng_state()
    cuda_state = torch.cuda.get_rng_state_all() if device == "cuda" else None
    try:
        step(rows[lengths[0]])  # the first pass pays for kernel selection and allocations
        # the faster of two: a neighbour's burst of work slows one, rarely both
        short, long_ = (min(step(rows[n]) for _ in range(2)) for n in lengths)
        model.eval()
        with torch.inference_mode():
            start = time.perf_counter()
            model(input_ids=rows[lengths[1]], logits_to_keep=8)
            if device == "cuda":
                torch.cuda.synchronize()
            forward = lengths[1] / (time.perf_counter() - start)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        torch.random.set_rng_state(cpu_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)
    a_n, b_n = lengths
    # t(n) = a·n + b·n²: two lengths, two unknowns; b >= 0 (noise can make it negative)
    b = max(0.0, (short / a_n - long_ / b_n) / (a_n - b_n))
    a = max(1e-9, short / a_n - b * a_n)
    return Speed(a, b, forward)
