"""The training schedule (finetune/schedule.py): what it chooses for the data, the model and the
machine, and what it refuses. Pure functions on real model configs (SmolLM2-135M's widths, and
the test models'), machines given as records, speeds as measured here (bench/train.py)."""

from __future__ import annotations

import io
import time

import pytest
from rich.console import Console

from finetune.machine import GiB, Machine
from coach.progress import Milestones
from finetune.schedule import (LENGTHS, MemoryTooSmall, Shape, Speed, check_memory, choose, peak_memory)
from finetune.train import TrainConfig

# SmolLM2-135M (its config.json)
SMOLLM2 = Shape.of(type("Cfg", (), dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                        num_attention_heads=9, num_key_value_heads=3, vocab_size=49152,
                                        max_position_embeddings=8192, tie_word_embeddings=True))())
# What the probe measured for it on this project's 2-core CPU: 156 tokens/s at 256 tokens, 107 at 512.
CPU_SPEED = Speed(per_token=0.0055, per_token_sq=7.5e-6, forward_tokens_per_s=500)
LAPTOP = Machine("cpu", "a laptop", 16 * GiB, 2)
GPU = Machine("cuda", "a GPU", 80 * GiB, 16)


def lengths(n=326, mean=900):
    """Served prompt lengths like those of 45 small standard-library files (uniform states)."""
    return [20 + (i * 2 * mean) // n for i in range(n)]


def test_smollm2s_shape_counts_its_parameters():
    assert 134e6 < SMOLLM2.params < 135.5e6  # transformers counts 134.5M (the tied head once)
    assert SMOLLM2.layers == 30 and SMOLLM2.ctx == 8192


def test_on_a_cpu_one_epoch_at_the_longest_length_the_time_budget_holds():
    plan = choose(TrainConfig(), lengths(), SMOLLM2, CPU_SPEED, LAPTOP)
    assert plan.batch_size == 1 and plan.grad_accum == 8 and plan.global_batch == 8  # one row a pass
    # one pass over the data at 512 tokens would take ~25 min here, at 256 ~9
    assert plan.max_length == 256 and plan.epochs == 1 and plan.steps == 41
    assert plan.seconds <= 12 * 60 and not plan.checkpointing
    assert plan.peak_bytes < 3 * GiB
    # a longer budget buys a longer context, not only more epochs
    longer = choose(TrainConfig(minutes=60), lengths(), SMOLLM2, CPU_SPEED, LAPTOP)
    assert longer.max_length > plan.max_length and longer.seconds <= 60 * 60
    # a tiny budget: less than one pass, at the shortest length
    short = choose(TrainConfig(minutes=1), lengths(), SMOLLM2, CPU_SPEED, LAPTOP)
    assert short.max_length == LENGTHS[-1] and short.epochs < 1 and short.seconds <= 60 * 1.2


def test_what_the_person_gives_is_kept():
    plan = choose(TrainConfig(max_steps=3, max_length=1024, batch_size=2), lengths(), SMOLLM2, CPU_SPEED, LAPTOP)
    assert (plan.steps, plan.max_length, plan.batch_size, plan.grad_accum) == (3, 1024, 2, 1)


def test_on_a_gpu_rows_fill_memory_and_about_200_steps():
    fast = Speed(1e-5, 1e-9, 20000)
    plan = choose(TrainConfig(), lengths(), SMOLLM2, fast, GPU)
    assert plan.max_length == 2048 and plan.batch_size == 8 and plan.grad_accum == 1
    assert 150 <= plan.steps <= 210 and plan.epochs <= 10
    small = Machine("cuda", "a small GPU", 4 * GiB, 8)
    tight = choose(TrainConfig(), lengths(), SMOLLM2, fast, small)
    assert tight.batch_size < 8 and tight.global_batch >= 8 and tight.peak_bytes <= 0.8 * small.memory


def test_checkpointing_only_where_memory_needs_it_and_the_stated_peak_fits():
    roomy = choose(TrainConfig(max_length=2048, max_steps=1), lengths(mean=3000), SMOLLM2, CPU_SPEED, LAPTOP)
    assert not roomy.checkpointing
    small = Machine("cpu", "a small laptop", 8 * GiB, 2)
    tight = choose(TrainConfig(max_length=2048, max_steps=1), lengths(mean=3000), SMOLLM2, CPU_SPEED, small)
    assert tight.checkpointing and tight.peak_bytes <= 0.8 * small.memory < roomy.peak_bytes
    assert peak_memory(SMOLLM2, 2048, dropout=True, checkpointing=True) < peak_memory(
        SMOLLM2, 2048, dropout=True, checkpointing=False)


def test_a_machine_that_cannot_hold_it_is_refused_in_one_line():
    tiny = Machine("cpu", "a small board", int(0.9 * GiB), 4)
    with pytest.raises(MemoryTooSmall) as refused:
        check_memory(SMOLLM2, tiny, dropout=True)
    message = str(refused.value)
    assert "\n" not in message and "parameters needs about 1.7 GB" in message and "0.9 GB free" in message
    with pytest.raises(MemoryTooSmall, match="at 64 rows of 2048 tokens .* smaller --max-length or --batch-size"):
        check_memory(SMOLLM2, LAPTOP, dropout=True, max_length=2048, batch_size=64)
    check_memory(SMOLLM2, LAPTOP, dropout=True)  # the default fits a laptop


def test_milestones_in_a_file_say_how_far_and_how_long_is_left():
    out = io.StringIO()
    m = Milestones(Console(file=out, width=200), "label", quiet=0)
    for done in range(1, 46):
        m.update(done, 45, f"file {done}")
        time.sleep(0.001)
    lines = out.getvalue().splitlines()
    assert 9 <= len(lines) <= 11  # a line a tenth, not one per file
    assert lines[0].startswith("label: 5/45  11%") and "left" in lines[0]
    assert lines[-1].startswith("label: 45/45 100%") and "left" not in lines[-1]
