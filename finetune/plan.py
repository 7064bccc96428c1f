"""What `empower-finetune DIR` will do and about how long it will take here, before it starts.

    empower-finetune DIR        # the plan is the second row of its display, and printed above it

From the scanned files and the settings, with no labelling done yet: the states the labeller
will choose (the same function, the estimator's tokenizer), the tokens it will read with the
editor's window, the training examples those states make (their served prompts, tokenized as
the trainer will) and the schedule finetune/schedule.py chooses for them on this machine: its
speed measured by a few training steps of the base model (seconds; kept in pipeline.json and
reused while the machine and the base are the same), its memory read from the system. A
schedule the machine cannot hold is refused in one line, before any labelling.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from finetune.schedule import Plan, Shape, Speed

EXPORT_SECONDS_PER_M_PARAMS = 0.1  # merge, f16 and q4_k_m GGUF: measured 9 s for SmolLM2's 135M on 2 cores
COMPLETION_TOKENS = 3  # a label's tokens and its EOS, on average (measured: 1-3 at η 0.32-4 bits)


@dataclass
class RunPlan:
    machine: str
    files: int
    states: int
    window_chars: int  # the editor's window the labeller reads each state with
    label_tokens: int  # tokens the estimator will read
    label_seconds: float
    train_examples: int
    eval_examples: int
    train: Plan
    export_seconds: float
    speed: Speed
    measured: bool = True  # False: the speed was measured by an earlier run of this directory
    notes: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.label_seconds + self.train.seconds + self.export_seconds

    def summary(self) -> str:
        from coach.progress import clock
        from finetune.schedule import gb

        return (f"about {clock(self.seconds)} here: label {clock(self.label_seconds)}, train "
                f"{clock(self.train.seconds)}, export {clock(self.export_seconds)}; peak memory about "
                f"{gb(self.train.peak_bytes)} of {gb(self.train.memory_bytes)} free")

    def lines(self) -> list[str]:
        from coach.progress import clock
        from finetune.train import describe_plan

        t = self.train
        speed = (f"training {self.speed.train_tokens_per_s(min(t.max_length, 512)):,.0f} tokens/s at "
                 f"{min(t.max_length, 512)} tokens, reading {self.speed.forward_tokens_per_s:,.0f} tokens/s"
                 + ("" if self.measured else ", measured by an earlier run"))
        return [f"plan, on {self.machine} ({speed}):",
                f"  label:  {self.states} states of {self.files} files, {self.label_tokens:,} tokens read with the "
                f"editor's window ({self.window_chars:,} characters): about {clock(self.label_seconds)}",
                f"  train:  {self.train_examples} examples ({self.eval_examples} held out): {describe_plan(t)}",
                f"  export: about {clock(self.export_seconds)}",
                f"  in all: {self.summary()}", *self.notes]

    def record(self) -> dict:
        return {"speed": asdict(self.speed), "train": asdict(self.train), "seconds": round(self.seconds, 1),
                "label_seconds": round(self.label_seconds, 1), "export_seconds": round(self.export_seconds, 1),
                "label_tokens": self.label_tokens, "window_chars": self.window_chars}


def speed_key(machine, base: str, config) -> list:
    """What a measured speed depends on."""
    return [machine.device, machine.name, machine.threads, base, config.rank, config.dropout > 0]


def make(config, files, train_config, saved: dict | None) -> tuple[RunPlan, dict]:
    """The plan of a run (`config`: the PipelineConfig; `files`: the scanned files; `saved`: what
    an earlier run of this directory recorded). Returns it and what to record. Raises
    finetune.train_data.TrainError (one line) where the machine cannot hold training."""
    from transformers import AutoConfig, AutoTokenizer

    from coach import prompts
    from finetune.estimator import window_chars
    from finetune.rules import CAP, choose_states
    from finetune.machine import this_machine
    from finetune.schedule import MemoryTooSmall, choose, peak_memory, probe_lengths
    from finetune.schedule import probe
    from finetune.base_model import load_model, load_tokenizer, model_context, model_shape, resolve_base
    from finetune.train_data import TrainError, ServedPrompts, split_by_source

    base = resolve_base(config.base)
    shape = model_shape(base.path, train_config.rank)
    machine = this_machine()  # what it cannot hold at all was refused before the scan (finetune/run_config.py: configure)

    # the states, as the labeller will choose them
    estimator_path = _hf_path(config.estimator)
    est_tokenizer = AutoTokenizer.from_pretrained(estimator_path)
    est_config = AutoConfig.from_pretrained(estimator_path)
    n_ctx = int(getattr(getattr(est_config, "text_config", None) or est_config, "max_position_embeddings", 2048) or 2048)
    chars = window_chars(est_tokenizer, n_ctx, config.framing)
    seed = train_config.seed
    tokens_read, rows = 0, []
    tokenizer = load_tokenizer(base.path)
    served = ServedPrompts(tokenizer, base)
    for f in files:
        enc = est_tokenizer(f.text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        states = choose_states(f.rel, f.text, est_tokenizer, config.k, seed=seed, ids=enc["input_ids"],
                               offsets=enc["offset_mapping"])
        starts: dict[int, int] = {}
        for st in states:
            code = prompts.window(f.text[:st.char], chars)
            start = st.char - len(code)
            starts[start] = max(starts.get(start, 0), st.char)
            prompt = served.prompt(f.text[:st.char], config.format, prompts.WINDOW_CHARS)
            rows.append({"source": f.rel, "length": len(served.ids(prompt)) + COMPLETION_TOKENS})
        if config.framing == "raw":
            tokens_read += sum(_count(est_tokenizer, f.text[start:end]) + CAP for start, end in starts.items())
        else:  # a pass per state, the window twice
            tokens_read += sum(2 * _count(est_tokenizer, prompts.window(f.text[:st.char], chars)) + CAP for st in states)
    train_rows, eval_rows, _ = split_by_source(rows, train_config.eval_share, seed)
    if not train_rows:
        raise TrainError("no state to learn from: the files are too short")

    key = speed_key(machine, config.base, train_config)
    measured = not (saved and saved.get("speed_key") == key and saved.get("speed"))
    if measured:
        cap = train_config.max_length or min(2048, model_context(base.path) or 2048)
        model, _, _ = load_model(base.path, "transformers", train_config, cap, str(base.path))
        lengths = probe_lengths(shape, machine, train_config.dropout > 0)
        speed = probe(model, machine.device, lengths)
        del model
        _release(machine.device)
    else:
        speed = Speed(**saved["speed"])
    try:
        schedule = choose(train_config, [r["length"] for r in train_rows], shape, speed, machine,
                          eval_lengths=[r["length"] for r in eval_rows])
    except MemoryTooSmall as exc:
        raise TrainError(str(exc)) from None
    # what the command holds at its peak: training, or the probe's longer rows where it measured
    if measured:
        schedule.peak_bytes = max(schedule.peak_bytes, peak_memory(shape, lengths[1], dropout=train_config.dropout > 0,
                                                                   checkpointing=False, device=machine.device))
    est_shape = Shape.of(est_config)
    # the estimator reads at the base's measured pace, scaled by their sizes
    reading = speed.forward_tokens_per_s * shape.params / max(1, est_shape.params)
    run = RunPlan(machine.describe(), len(files), len(rows), chars, tokens_read, tokens_read / reading,
                  len(train_rows), len(eval_rows), schedule, EXPORT_SECONDS_PER_M_PARAMS * shape.params / 1e6,
                  speed, measured)
    return run, {"speed_key": key, "speed": asdict(speed), **run.record()}


def _release(device: str) -> None:
    """Hand the probe's model back before the estimator and the trainer load theirs."""
    import gc

    gc.collect()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def _count(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def _hf_path(spec: str) -> Path:
    from coach.specs import resolve

    resolved = resolve(spec, engine="hf")
    return resolved.base.path if resolved.kind == "adapter" else resolved.path
