"""How big a run of the experiment is: the default (about an hour on 2 cores), --full (the
report's run), --quick (the test-suite's) and --scale (the GPU-sized run's commands), and the
fields a --set may change. RECIPE names the fields that decide what finished work is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Size:
    """How big a run is. The default is sized for a 2-core CPU: about an hour here (labelling
    ~4 minutes, training ~2 an arm, episodes ~50: docs/results.md has the measured stages).
    --full has the same recipe (the same corpus, labels and trained models) and plays more."""
    name: str
    base: str = "smollm2-135m"  # the model trained and served (and the untrained arms' model)
    estimator: str = "smollm2-135m"  # the pretrained model whose likelihoods make the labels
    train_files: int = 40  # standard-library modules learnt from
    train_bytes: tuple[int, int] = (2_500, 12_000)  # their sizes
    episode_files: int = 18  # held-out modules whose functions are episodes (never labelled): 103 in all
    episode_bytes: tuple[int, int] = (2_500, 7_500)  # under the editor's 8,000-character window
    k: int = 4  # states per file (40 × 4: about twice the rows that training reads)
    steps: int = 20  # optimizer steps, every trained arm
    grad_accum: int = 4  # rows per step (one row per forward pass on a CPU)
    # tokens per row: the end of the served prompt and the label (what empower-finetune plans
    # for a CPU here: bench/train.py --pipeline)
    max_length: int = 128
    lr: float = 1e-3  # few steps: a LoRA that starts at zero needs a larger rate to move
    humaneval_ids: str | None = "bench/humaneval-40.txt"  # the fixed 40 (None: humaneval_limit)
    humaneval_limit: int | None = None
    builtin_limit: int | None = None  # the built-in problems (None: all six)
    files_limit: int | None = None  # functions of the held-out files per arm (None: all)
    # at most, spread over each held-out file: 18 episodes an arm from 18 files (8: all 103
    # functions of the 18, about an hour and a half here: --full)
    files_per_file: int = 1
    # all 164 for the best Empower arm and the best baseline (+7 min here: not in the default hour)
    full_humaneval: bool = False
    concurrency: int = 8  # episodes at once
    # the files dataset's: a file's long start is read once per model in flight (then each of its
    # functions reads on from the last: evals.episode.continues), so few models (llama.cpp
    # generates on one thread of two here: two episodes at once use both cores)
    files_concurrency: int = 2
    llm_human: str | None = "gemma-3-270m"  # the built-in LLM human, for the best arm of each family
    # the first N of the fixed 40 (an episode costs ~12 s of two servers here: 40 add ~25 min
    # for the three arms, so none in the default hour; --set llm_problems=40)
    llm_problems: int = 0
    prefix: str = "evb"  # registered names: evb-empower-eta2, ...


DEFAULT = Size("default")
FULL = replace(DEFAULT, name="full", files_per_file=8, full_humaneval=True, llm_problems=40)
QUICK = replace(DEFAULT, name="quick", train_files=4, train_bytes=(1_500, 4_000), episode_files=1,
                episode_bytes=(1_500, 4_000), k=2, steps=2, grad_accum=2, max_length=64, humaneval_ids=None,
                humaneval_limit=3, builtin_limit=2, files_limit=4, files_per_file=8, full_humaneval=False, concurrency=2,
                llm_human=None, prefix="evbq")
SCALE = replace(DEFAULT, name="scale", train_files=400, train_bytes=(2_000, 40_000), episode_files=60,
                episode_bytes=(2_000, 30_000), k=16, steps=400, grad_accum=16, max_length=2048, lr=2e-4,
                files_per_file=8, full_humaneval=True, concurrency=32, files_concurrency=32, llm_problems=40)


# The fields that decide what finished work is (the corpus, the labels, the trained models): a
# run goes on only with the same. The others (problem counts, the optional stages, concurrency)
# may change between invocations: a rerun plays what is missing.
RECIPE = ("base", "estimator", "train_files", "train_bytes", "episode_files", "episode_bytes", "k", "steps",
          "grad_accum", "max_length", "lr", "prefix")


def with_fields(size: Size, assignments: list[str]) -> Size:
    """`FIELD=VALUE` assignments applied to a Size, each VALUE read as its field's type."""
    fields = {f.name: f for f in dataclasses.fields(Size)}
    changes = {}
    for a in assignments:
        name, sep, raw = a.partition("=")
        if not sep or name not in fields or name == "name":
            raise ValueError(f"{a!r}: give FIELD=VALUE with FIELD one of {', '.join(f for f in fields if f != 'name')}")
        old = getattr(size, name)
        if isinstance(old, bool):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"{name} is true or false, not {raw!r}")
            changes[name] = raw.lower() in ("true", "1")
        elif isinstance(old, tuple):
            changes[name] = tuple(int(x) for x in raw.split(","))
        elif old is None or isinstance(old, str):
            changes[name] = None if raw.lower() == "none" else (int(raw) if raw.isdigit() and name != "base" else raw)
        else:
            changes[name] = type(old)(raw)
    return replace(size, **changes)
