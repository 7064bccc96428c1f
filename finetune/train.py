"""LoRA training: a labelled dataset in, an adapter that the editor serves out.

    empower-finetune train DATASET_DIR --base SPEC --out RUN/train [--resume] [--rank 16 --lr 2e-4 ...]
    torchrun --nproc_per_node 2 -m finetune.train DATASET_DIR --base SPEC --out RUN/train

The base model is any transformers spec that coach resolves (a model directory, a Hub id, a
configured name). The prompts are the ones coach serves in the dataset's format
(finetune/train_data.py); the loss is on the completion and the EOS after it. A LoRA adapter
goes on every linear projection inside the model's blocks (attention and MLP), and the
transformers `Trainer` runs the loop: checkpoints every N steps, exact resume, data parallel
under torchrun (gloo on CPU). With CUDA and unsloth installed, unsloth loads the model and
makes the adapter (`--backend unsloth`; `auto` picks it), and the same Trainer trains it.

The run directory (every file written to a temporary name first, then renamed):
    adapter/        the final PEFT adapter; adapter_config.json names the base (serve it as a spec)
    checkpoints/    the Trainer's checkpoint-N (adapter, optimizer, scheduler, RNG): --resume
    metrics.jsonl   a row per logged step: step, train_loss, eval_loss, lr, tokens_per_s, grad_norm, epoch
    loss.png        train and eval loss against the step
    config.json     the resolved config, base, dataset, format, backend, library versions
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from finetune.base_model import (BACKENDS, enable_checkpointing, load_model, load_tokenizer, model_context, model_shape,
                                 name_base, pick_backend, resolve_base)
from finetune.machine import static_machine, this_machine
from coach.progress import clock
from finetune.schedule import (LENGTHS, MemoryTooSmall, Plan, Speed, check_memory, choose, gb, probe,
                               probe_lengths)
from finetune.run_dir import (base_name, dataset_manifest, last_checkpoint, make_recorder, rank_and_world, read_metrics,
                              save_adapter, step_of, versions)
from finetune.train_data import IGNORE, Collator, Rows, ServedPrompts, TrainError, encode_rows, read_rows, split_by_source
from coach.atomic import write_atomic

KEEP_CHECKPOINTS = 2  # the newest checkpoints kept on disk
# What --resume may change; every other setting must be the one of the run it continues.
RESUMABLE_CHANGES = ("save_every", "log_every", "backend")


@dataclass
class TrainConfig:
    rank: int = 16  # LoRA rank r of each adapted projection
    alpha: float = 32.0  # LoRA scale: the update is multiplied by alpha / rank
    dropout: float = 0.05  # dropout on the input of each LoRA branch
    lr: float = 2e-4  # peak learning rate (linear warmup, then cosine decay to 0)
    warmup: float = 0.05  # share of the steps spent warming up
    minutes: float | None = None  # the training time budget here when steps and epochs are not given; None: 12
    epochs: float | None = None  # passes over the training rows; None: as many as the time budget holds (1-10)
    max_steps: int | None = None  # optimizer steps; overrides epochs when set
    batch_size: int | None = None  # rows per forward pass per process; None: 1 on a CPU, what memory holds on a GPU
    grad_accum: int | None = None  # forward passes per step; None: about 8 rows a step
    max_length: int | None = None  # tokens per example; None: the longest the time budget holds, at most 2048
    eval_share: float = 0.1  # share of the source files held out for the eval loss
    seed: int = 0  # LoRA init, held-out files, data order, dropout
    save_every: int | None = None  # checkpoint (and eval) every N steps; None: about every 3 minutes
    log_every: int | None = None  # log the train loss every N steps; None: ~50 points per run
    backend: str = "auto"  # "auto", "unsloth" (CUDA only) or "transformers"


@dataclass
class TrainResult:
    out_dir: Path
    adapter: Path | None  # None when interrupted
    backend: str
    steps: int  # optimizer steps done
    total_steps: int
    train_loss: float | None  # the last logged training loss
    eval_loss_before: float | None  # on the held-out files, before training (a resume keeps the first attempt's)
    eval_loss: float | None  # on the held-out files, at the end
    tokens_per_s: float | None  # training tokens (no padding) per second of training
    seconds: float
    train_examples: int
    eval_examples: int
    eval_sources: list[str] = field(default_factory=list)
    interrupted: bool = False
    checkpoint: Path | None = None  # the newest complete checkpoint


# ------------------------------------------------------------------ choices


def validate(config: TrainConfig) -> None:
    if config.rank < 1:
        raise TrainError("rank must be at least 1")
    for name in ("batch_size", "grad_accum", "max_length"):
        if getattr(config, name) is not None and getattr(config, name) < 1:
            raise TrainError(f"{name} must be at least 1")
    if not 0 <= config.eval_share < 1:
        raise TrainError("eval_share must be in [0, 1)")
    if config.max_steps is not None and config.max_steps < 1 or config.epochs is not None and config.epochs <= 0:
        raise TrainError("max_steps and epochs must be positive")
    if config.minutes is not None and config.minutes <= 0:
        raise TrainError("minutes must be positive")


# ------------------------------------------------------------------ the run


def train(dataset_dir, base_spec: str, out_dir, config: TrainConfig | None = None, console=None, *,
          resume: bool = False, callbacks=(), speed: Speed | None = None) -> TrainResult:
    """Train a LoRA adapter of `base_spec` on a labelled dataset into `out_dir`.

    `resume`: continue from the newest complete checkpoint in out_dir (with the same config,
    the result equals an uninterrupted run's). Ctrl+C stops after saving nothing new: the
    newest checkpoint stays usable and the result says `interrupted`. `callbacks`: more
    transformers TrainerCallbacks. `speed`: this machine's, measured already (finetune/schedule.py;
    default: measured here, a few steps). Raises TrainError with one line when training cannot
    start, memory that would not suffice included."""
    from rich.console import Console

    config = config or TrainConfig()
    validate(config)
    console = console or Console(stderr=True)
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    rank, world = rank_and_world()
    started = time.perf_counter()

    backend = pick_backend(config.backend)  # before transformers is imported: unsloth patches it
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # rich draws the progress; tqdm bars would interleave with it
    # Imported now, not at the first plot: a Ctrl+C inside matplotlib's first import would leave
    # it half-imported, and the final plot on the interrupted path would then raise.
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401
    rows = read_rows(dataset_dir)
    fmt = rows[0]["format"]
    resolved = resolve_base(base_spec)
    if resolved.format and resolved.format != fmt:
        raise TrainError(f"the dataset is in the {fmt} format and {base_spec} is served in the {resolved.format} "
                         "format: label again with --format " + resolved.format)
    tokenizer = load_tokenizer(resolved.path)
    served = ServedPrompts(tokenizer, resolved)
    if fmt == "chat" and not served.has_chat_template():
        raise TrainError(f"the dataset is in the chat format and {base_spec} has no chat template: "
                         "label again with --format completion, or train an instruct model")
    train_rows, eval_rows, held = split_by_source(rows, config.eval_share, config.seed)
    shape = model_shape(resolved.path, config.rank)
    machine = this_machine() if world == 1 else static_machine()  # every rank must plan alike
    try:
        check_memory(shape, machine, dropout=config.dropout > 0, max_length=config.max_length,
                     batch_size=config.batch_size)
    except MemoryTooSmall as exc:
        raise TrainError(str(exc)) from None
    # Every example as long as its served prompt makes it (at most the longest length planned):
    # the schedule chooses max_length from these.
    cap = config.max_length or min(LENGTHS[0], model_context(resolved.path) or LENGTHS[0])
    train_enc = encode_rows(train_rows, served, fmt, cap)
    eval_enc = encode_rows(eval_rows, served, fmt, cap)
    if not train_enc.examples:
        raise TrainError(f"no training example fits in max_length={cap} tokens")

    # rank 0 checks (the others would see the config.json it writes next), and fails for all
    previous = _check_out_dir(out_dir, resume, config, base_spec, dataset_dir) if rank == 0 else None
    checkpoint = last_checkpoint(out_dir) if resume else None
    # Checkpoints name the base by its directory: PEFT reads the base's config.json when it saves,
    # and a built-in name (not a Hub id) would send it to the Hub. The final adapter names it
    # as the person did (save_adapter below).
    model, precision, targets = load_model(resolved.path, backend, config, cap,
                                           base_name(str(resolved.path), resolved.path))
    planned = (previous or {}).get("resolved") if checkpoint else None
    if planned and planned.get("world") == world:  # a resumed run keeps its plan (its scheduler's steps)
        plan = Plan(**{k: v for k, v in planned.items() if k in Plan.__dataclass_fields__})
    else:
        if speed is None:
            speed = (probe(model, machine.device, probe_lengths(shape, machine, config.dropout > 0)) if world == 1
                     else Speed.nominal(shape, machine.device))
        try:
            plan = choose(config, [len(e.input_ids) for e in train_enc.examples], shape, speed, machine, world,
                          eval_lengths=[len(e.input_ids) for e in eval_enc.examples])
        except MemoryTooSmall as exc:
            raise TrainError(str(exc)) from None
    if plan.max_length != cap:
        train_enc = encode_rows(train_rows, served, fmt, plan.max_length)
        eval_enc = encode_rows(eval_rows, served, fmt, plan.max_length)
        if not train_enc.examples:
            raise TrainError(f"no training example fits in max_length={plan.max_length} tokens")
    if plan.checkpointing and backend == "transformers":
        enable_checkpointing(model)
    record = {"status": "running", "config": asdict(config), "resolved": asdict(plan), "base": base_spec,
              "base_path": str(resolved.path), "dataset": str(dataset_dir.resolve()), "format": fmt,
              "backend": backend, "machine": machine.describe(), "speed": asdict(speed) if speed else None,
              "data": {"train": train_enc.summary(), "eval": eval_enc.summary(), "eval_sources": held,
                       "train_sources": sorted({r["source"] for r in train_rows})},
              "dataset_manifest": dataset_manifest(dataset_dir), "resumed_from": str(checkpoint) if checkpoint else None,
              "versions": versions(backend), "lora_targets": targets, "precision": precision}
    if rank == 0:
        write_atomic(out_dir / "config.json", json.dumps(record, indent=2))

    trainer, recorder = _trainer(model, tokenizer, train_enc, eval_enc, out_dir, config, plan, precision,
                                 console if rank == 0 else None, callbacks,
                                 eval_on_start=bool(eval_enc.examples) and checkpoint is None, backend=backend)
    recorder.rows = read_metrics(out_dir / "metrics.jsonl", step_of(checkpoint)) if checkpoint else {}
    if rank == 0:
        _announce(console, base_spec, backend, fmt, train_enc, eval_enc, held, plan, checkpoint, previous)

    interrupted = False
    try:
        with recorder.live():
            trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        if eval_enc.examples and recorder.rows.get(trainer.state.global_step, {}).get("eval_loss") is None:
            trainer.evaluate()  # the last step was not an eval step
    except KeyboardInterrupt:
        interrupted = True
    state = trainer.state
    # a resumed run finds step 0's evaluation in metrics.jsonl, where the first attempt wrote it
    eval_before = recorder.rows.get(0, {}).get("eval_loss")
    newest = last_checkpoint(out_dir)
    last_row = next((recorder.rows[s] for s in sorted(recorder.rows, reverse=True)
                     if recorder.rows[s].get("train_loss") is not None), {})
    eval_after = recorder.rows.get(state.global_step, {}).get("eval_loss") if not interrupted else None
    result = TrainResult(out_dir, None, backend, state.global_step, plan.steps, last_row.get("train_loss"),
                         eval_before, eval_after, recorder.tokens_per_s(), round(time.perf_counter() - started, 2),
                         len(train_enc.examples), len(eval_enc.examples), held, interrupted, newest)
    if rank == 0:
        if not interrupted:
            name_base(trainer.model, base_name(base_spec, resolved.path))
            result.adapter = save_adapter(trainer.model, out_dir)
        record.update(status="interrupted" if interrupted else "finished", steps=state.global_step,
                      eval_loss_before=eval_before, eval_loss=eval_after, train_loss=result.train_loss,
                      tokens_per_s=result.tokens_per_s, seconds=result.seconds)
        recorder.flush(plot=True)
        write_atomic(out_dir / "config.json", json.dumps(record, indent=2))
        _report(console, result)
    return result


def _check_out_dir(out_dir: Path, resume: bool, config: TrainConfig, base_spec: str, dataset_dir: Path) -> dict | None:
    """The earlier run's config.json when resuming; refuse to mix two runs in one directory."""
    path = out_dir / "config.json"
    previous = json.loads(path.read_text()) if path.is_file() else None
    if not resume:
        if (out_dir / "adapter").exists() or last_checkpoint(out_dir) or previous:
            raise TrainError(f"{out_dir} already holds a training run: pass --resume to continue it, or choose another --out")
        return None
    if previous:
        old = {k: v for k, v in previous["config"].items() if k not in RESUMABLE_CHANGES}
        new = {k: v for k, v in asdict(config).items() if k not in RESUMABLE_CHANGES}
        changed = sorted(k for k in new if old.get(k) != new[k])
        if changed or previous["base"] != base_spec or previous["dataset"] != str(dataset_dir.resolve()):
            what = ", ".join(changed) or "base or dataset"
            raise TrainError(f"--resume with a different run ({what} changed): use the same settings, or another --out")
    return previous


def completion_trainer():
    """The Trainer with the loss computed from the logits of the positions that predict a
    target only: the completion and its EOS, a few tokens of a row of hundreds. The output layer
    is what a small model's vocabulary makes expensive (SmolLM2: 49,152 x 576, a fifth of its
    forward pass, and a [tokens x 49,152] float32 tensor kept for the backward pass): measured,
    a 512-token row trained at 107 tokens/s this way and 39 with every position's logits. No
    attention mask is passed: padding is on the right and attention is causal, so no real token
    sees a pad, and attention keeps its fast path (no [length x length] mask)."""
    import torch.nn.functional as F
    from transformers import Trainer

    class CompletionTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            targets = inputs["labels"][:, 1:]  # position j predicts token j + 1
            keep = (targets != IGNORE).any(0).nonzero().squeeze(1)  # positions any row needs
            out = model(input_ids=inputs["input_ids"], logits_to_keep=keep)
            picked = targets[:, keep]
            loss = F.cross_entropy(out.logits.float().flatten(0, 1), picked.flatten(), ignore_index=IGNORE,
                                   reduction="sum")
            if num_items_in_batch is None:  # evaluation, or a Trainer that does not count: this batch's mean
                loss = loss / (picked != IGNORE).sum().clamp(min=1)
            else:  # the mean over the whole step's targets (all passes and processes), as transformers does
                loss = loss / num_items_in_batch
                if self.args.average_tokens_across_devices:
                    loss = loss * self.accelerator.num_processes
            return (loss, out) if return_outputs else loss

    return CompletionTrainer


def _trainer(model, tokenizer, train_enc, eval_enc, out_dir, config, plan, precision, console, callbacks,
             eval_on_start: bool, backend: str = "transformers"):
    import torch
    from transformers import PrinterCallback, Trainer, TrainingArguments

    cuda = torch.cuda.is_available()
    options = dict(
        output_dir=str(out_dir / "checkpoints"), per_device_train_batch_size=plan.batch_size,
        per_device_eval_batch_size=plan.batch_size, gradient_accumulation_steps=plan.grad_accum,
        learning_rate=config.lr, weight_decay=0.0, max_grad_norm=1.0, lr_scheduler_type="cosine",
        warmup_steps=plan.warmup_steps, max_steps=plan.steps, logging_strategy="steps",
        logging_steps=plan.log_every, eval_strategy="steps" if eval_enc.examples else "no",
        eval_steps=plan.eval_every or plan.save_every, eval_on_start=eval_on_start, save_strategy="steps",
        save_steps=plan.save_every, prediction_loss_only=True,
        save_total_limit=KEEP_CHECKPOINTS, seed=config.seed, data_seed=config.seed,
        use_cpu=not cuda, bf16=precision == "bf16", fp16=precision == "fp16", report_to="none",
        disable_tqdm=True, remove_unused_columns=False, label_names=["labels"], dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
        include_num_input_tokens_seen="non_padding")
    # The eval loss before training comes from eval_on_start, inside train(): a trainer.evaluate()
    # before train() registers the model with accelerate unwrapped, and under torchrun it then
    # trains without DistributedDataParallel, each process on its own gradients (transformers 5.23).
    if plan.world > 1 and not cuda:
        options["ddp_backend"] = "gloo"
    try:
        args = TrainingArguments(**options)
    except (TypeError, ValueError):  # transformers 4.x: a boolean, counting padding too
        options["include_num_input_tokens_seen"] = True
        args = TrainingArguments(**options)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    recorder = make_recorder(out_dir, plan.steps, console)
    # unsloth computes its own loss (fused, chunked over the vocabulary); transformers + PEFT: ours
    trainer_class = Trainer if backend == "unsloth" else completion_trainer()
    trainer = trainer_class(model=model, args=args, train_dataset=Rows(train_enc.examples),
                      eval_dataset=Rows(eval_enc.examples) if eval_enc.examples else None,
                      data_collator=Collator(pad, 8 if cuda else 1), callbacks=[recorder, *callbacks])
    trainer.remove_callback(PrinterCallback)  # it prints every log as a dict: the recorder shows them
    return trainer, recorder


def _announce(console, base_spec, backend, fmt, train_enc, eval_enc, held, plan, checkpoint, previous) -> None:
    console.print(f"training a LoRA adapter of [bold]{base_spec}[/] ({backend}, {fmt} prompts): "
                  f"{len(train_enc.examples)} examples, {len(eval_enc.examples)} held out "
                  f"({len(held)} file{'s' * (len(held) != 1)})", highlight=False)
    console.print(f"  {describe_plan(plan)}", highlight=False)
    if train_enc.windowed:
        console.print(f"  {train_enc.windowed} prompts served from a shorter window of their state to fit "
                      f"{plan.max_length} tokens", highlight=False)
    if train_enc.dropped or eval_enc.dropped:
        console.print(f"[yellow]{train_enc.dropped + eval_enc.dropped} examples left out: their completion "
                      f"does not fit in {plan.max_length} tokens")
    if checkpoint:
        console.print(f"resuming from {checkpoint}")
    elif previous:
        console.print("[yellow]--resume: no complete checkpoint yet, starting from the beginning")


def describe_plan(plan: Plan) -> str:
    """The schedule in a line: steps, rows, length, epochs, time and memory here."""
    rows = f"{plan.global_batch} rows" + (f" ({plan.grad_accum} passes of {plan.batch_size})" if plan.grad_accum > 1 else "")
    text = (f"{plan.steps} steps of {rows} of up to {plan.max_length} tokens ({plan.epochs:.3g} epoch{'' if plan.epochs == 1 else 's'})"
            f"{', gradient checkpointing' if plan.checkpointing else ''}, a checkpoint every {plan.save_every}")
    if plan.seconds:
        text += f"; about {clock(plan.seconds)} here"
    if plan.peak_bytes:
        text += f", peak memory about {gb(plan.peak_bytes)} of {gb(plan.memory_bytes)} free"
    return text


def _report(console, result: TrainResult) -> None:
    if result.interrupted:
        if result.checkpoint:
            console.print(f"[yellow]interrupted at step {result.steps}: the checkpoint of step "
                          f"{step_of(result.checkpoint)} ({result.checkpoint}) is complete; --resume continues from it")
        else:
            console.print(f"[yellow]interrupted at step {result.steps}, before the first checkpoint: nothing to resume from")
        return
    before = f"{result.eval_loss_before:.3f} → " if result.eval_loss_before is not None else ""
    after = f"eval loss {before}{result.eval_loss:.3f}, " if result.eval_loss is not None else ""
    speed = f"{result.tokens_per_s:,.0f} tokens/s, " if result.tokens_per_s else ""
    console.print(f"[green]trained[/] {result.steps} steps: {after}{speed}{result.seconds:.0f} s; "
                  f"adapter in [bold]{result.adapter}[/]")


# ------------------------------------------------------------------ the command


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="empower-finetune train",
                                description="Train a LoRA adapter on a labelled dataset (empower-finetune label).")
    p.add_argument("dataset", metavar="DATASET_DIR", help="a dataset directory (its data.jsonl)")
    p.add_argument("--base", required=True, metavar="SPEC", help="the model to adapt (a transformers model)")
    p.add_argument("--out", required=True, metavar="DIR", help="the run directory (adapter/, checkpoints/, ...)")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    defaults, comments = TrainConfig(), _field_comments()
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        help = f"{comments.get(f.name, '')} (default: {'auto' if default is None else default})"
        if f.name == "backend":
            p.add_argument(flag, choices=BACKENDS, default=default, help=help)
            continue
        kind = int if f.name in ("rank", "max_steps", "batch_size", "grad_accum", "max_length", "seed",
                                 "save_every", "log_every") else float
        p.add_argument(flag, type=kind, default=default, metavar="N", help=help.replace("%", "%%"))
    return p


def _field_comments() -> dict[str, str]:
    """Each TrainConfig field's comment: the options' help says what the config says."""
    import inspect
    import re

    return dict(re.findall(r"^    (\w+): [^#\n]*#\s*(.*)$", inspect.getsource(TrainConfig), re.M))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    from rich.console import Console

    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    try:
        result = train(args.dataset, args.base, args.out, config, Console(stderr=True), resume=args.resume)
    except TrainError as exc:
        print(f"empower-finetune train: {exc}", file=sys.stderr)
        return 2
    return 130 if result.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
