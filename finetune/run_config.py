"""What a run of `empower-finetune DIR` is, before anything loads: its options, its resolved
config (local specs as absolute paths, the training settings, the name it registers) and its
run directory, checked cheaply first (the machine's memory, the model's shape, a run directory
made with other settings). The stages themselves run in finetune/pipeline.py.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from finetune.rules import DEFAULT_ETA

RUNS = Path("empower-runs")  # the default parent of RUN_DIR, in the current directory


class PipelineError(Exception):
    """Bad input or a stage that cannot go on: one line that says why."""


@dataclass
class PipelineConfig:
    """Everything a run depends on, resolved (local specs as absolute paths)."""
    dir: str  # the code
    base: str  # the model to adapt
    estimator: str  # the model that labels (default: the base)
    rule: str = "empower"  # empower, sft-N, sft-rand
    eta: float = DEFAULT_ETA  # bits, for the empower rule
    framing: str = "raw"  # how the estimator reads a state (raw code, or chat)
    format: str = "completion"  # the prompt format trained and served (the base's, from its spec)
    k: int = 8  # states per file
    langs: tuple[str, ...] = ("python",)
    train: dict = field(default_factory=dict)  # TrainConfig fields
    name: str = ""  # the registered name
    quants: tuple[str, ...] = ("f16", "q4_k_m")  # the GGUFs written


def valid_rule(rule: str) -> bool:
    from finetune.rules import RULES

    return rule in RULES or (rule.startswith("sft-") and rule[4:].isdigit() and int(rule[4:]) > 0)


# The built-in model that is trained (and measures what is obvious) when none is named: a Llama,
# so its trained GGUF can be exported (Gemma 3 has no GGUF writer here).
DEFAULT_BASE = "smollm2-135m"


def local_spec(spec: str) -> str:
    """A spec that names a local file or directory, as an absolute path (the run works from any
    directory later); any other spec as it is."""
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


def stem(code_dir: Path) -> str:
    """The directory's name, as a name can hold it."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", code_dir.resolve().name).strip("-.") or "code"


def default_name(code_dir: Path, rule: str, eta: float) -> str:
    return f"{stem(code_dir)}-eta{eta:g}" if rule == "empower" else f"{stem(code_dir)}-{rule}"


def as_saved(data) -> object:
    """As it reads back from JSON (tuples become lists), for comparisons with saved configs."""
    return json.loads(json.dumps(data))


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def parser() -> argparse.ArgumentParser:
    from finetune.train import TrainConfig, _field_comments

    p = argparse.ArgumentParser(
        prog="empower-finetune",
        usage="empower-finetune DIR --base SPEC [--estimator SPEC] [--eta BITS] [--rule RULE] [--out RUN_DIR] "
              "[--name NAME] [options]",
        description="Train an assistant on your own code: scan DIR, label it, LoRA-train the base model, "
                    "export it (GGUF) and register it under a name for empower-tui --model NAME.")
    p.add_argument("dir", metavar="DIR", help="your code: a git repository or any directory")
    p.add_argument("--base", default=DEFAULT_BASE, metavar="SPEC",
                   help="the model to train (a transformers model: a directory, a Hub id, a configured name, "
                        f"or a built-in model; default {DEFAULT_BASE})")
    p.add_argument("--estimator", metavar="SPEC", help="the model that measures what is obvious (default: the base)")
    p.add_argument("--eta", type=float, default=DEFAULT_ETA, metavar="BITS",
                   help=f"η: suggest the longest continuation under η bits (default {DEFAULT_ETA:g}, measured: "
                        "docs/results.md)")
    p.add_argument("--rule", default="empower", help="empower (default), sft-N or sft-rand: the SFT baselines")
    p.add_argument("--out", metavar="RUN_DIR", help="the run directory (default: ./empower-runs/<DIR's name>)")
    p.add_argument("--name", metavar="NAME", help="the registered name (default: <DIR's name>-eta<η>)")
    g = p.add_argument_group("data")
    g.add_argument("--lang", nargs="+", default=["python"], metavar="LANG", help="languages (default: python)")
    g.add_argument("--k", type=int, default=8, help="states labelled per file (default 8)")
    g.add_argument("--framing", choices=["raw", "chat"], default="raw",
                   help="how the estimator reads a state: raw code (one pass per file) or the paper's chat")
    g.add_argument("--format", choices=["completion", "chat"],
                   help="the prompt format trained and served (default: the base's, else completion)")
    g = p.add_argument_group("training (default: what finetune/train.py chooses for the data)")
    comments = _field_comments()
    defaults = TrainConfig()
    for name, kind in (("minutes", float), ("max_steps", int), ("epochs", float), ("lr", float), ("rank", int),
                       ("batch_size", int), ("max_length", int), ("seed", int)):
        default = getattr(defaults, name)
        g.add_argument("--" + name.replace("_", "-"), type=kind, metavar="N",
                       help=f"{comments.get(name, '')} (default: {'auto' if default is None else default})"
                       .replace("%", "%%"))
    return p


def configure(args) -> tuple[PipelineConfig, Path]:
    """The resolved config and run directory, checking cheap things first (no model loaded)."""
    from dataclasses import asdict as as_dict

    from coach import registry
    from coach.types import CoachError
    from finetune import corpus
    from finetune.machine import this_machine
    from finetune.schedule import MemoryTooSmall, check_memory
    from finetune.base_model import load_tokenizer, model_context, model_shape, resolve_base
    from finetune.train import TrainConfig, TrainError, validate

    code = Path(args.dir).expanduser()
    if not code.exists():
        raise PipelineError(f"{args.dir}: no such directory")
    if not code.is_dir():
        raise PipelineError(f"{args.dir}: not a directory")
    if not valid_rule(args.rule):
        from finetune.rules import RULES

        raise PipelineError(f"unknown rule {args.rule!r}: use {', '.join(RULES)} (or sft-N)")
    if args.eta <= 0:
        raise PipelineError("η must be a positive number of bits")
    if args.k < 1:
        raise PipelineError("--k must be at least 1")
    unknown = [lang for lang in args.lang if lang not in corpus.LANGS]
    if unknown:
        raise PipelineError(f"unknown language {unknown[0]!r}: use {', '.join(corpus.LANGS)}")
    name = args.name or default_name(code, args.rule, args.eta)
    try:
        registry.check_name(name)
    except ValueError as exc:
        raise PipelineError(str(exc)) from None
    changes = {k: getattr(args, k) for k in ("minutes", "max_steps", "epochs", "lr", "rank", "batch_size", "max_length", "seed")
               if getattr(args, k) is not None}
    train_config = TrainConfig(**changes)
    try:
        validate(train_config)
        base = resolve_base(args.base)  # a transformers model: its config and tokenizer load
        model_context(base.path)
        tokenizer = load_tokenizer(base.path)
        # what the machine cannot hold is refused now, before any work (the plan refines it)
        check_memory(model_shape(base.path, train_config.rank), this_machine(), dropout=train_config.dropout > 0,
                     max_length=train_config.max_length, batch_size=train_config.batch_size)
    except MemoryTooSmall as exc:
        raise PipelineError(str(exc)) from None
    except TrainError as exc:
        raise PipelineError(str(exc)) from None
    except CoachError as exc:
        raise PipelineError(f"the base model does not load: {exc}") from None
    fmt = args.format or base.format or "completion"
    if fmt == "chat" and not getattr(tokenizer, "chat_template", None):
        raise PipelineError(f"--format chat: {args.base} has no chat template; train it in the completion format")
    if args.estimator:
        from coach.specs import resolve

        try:
            kind = resolve(args.estimator, engine="hf").kind
        except CoachError as exc:
            raise PipelineError(f"the estimator does not load: {exc}") from None
        if kind not in ("hf", "adapter"):
            raise PipelineError(f"the estimator {args.estimator!r} must be a transformers model, not a {kind} model")
    estimator = local_spec(args.estimator) if args.estimator else local_spec(args.base)
    config = PipelineConfig(str(code.resolve()), local_spec(args.base), estimator, args.rule, args.eta, args.framing,
                            fmt, args.k, tuple(args.lang),
                            as_dict(train_config), name)
    run_dir = Path(args.out).expanduser() if args.out else RUNS / stem(code)
    return config, run_dir


def keep_out_of_git(runs: Path) -> None:
    """The default runs directory sits in the current directory, often the code being scanned: a
    `.gitignore` of `*` inside it (as pytest's and ruff's caches have) keeps git status clean and
    keeps a later `empower-finetune .` from reading a run's files as the person's code."""
    marker = runs / ".gitignore"
    if not marker.exists():
        runs.mkdir(parents=True, exist_ok=True)
        marker.write_text("# made by empower-finetune: runs are outputs, not code\n*\n")


def check_run_dir(config: PipelineConfig, run_dir: Path) -> None:
    """One run directory holds one model: refuse settings that would change what it is."""
    from finetune.train import RESUMABLE_CHANGES

    saved = read_json(run_dir / "pipeline.json")
    if not saved:
        if run_dir.is_dir() and any(run_dir.iterdir()):
            raise PipelineError(f"{run_dir} is not empty and holds no run of empower-finetune: choose another --out")
        return
    if "train" not in saved.get("stages", {}):  # nothing trained yet: any settings may change
        return
    old, new = saved.get("config", {}), as_saved(asdict(config))
    changed = [k for k in ("base", "rule", "eta", "format") if old.get(k) != new.get(k)]
    changed += [k for k in new["train"] if k not in RESUMABLE_CHANGES and old.get("train", {}).get(k) != new["train"][k]]
    if changed:
        what = ", ".join(f"{k} {old.get(k, old.get('train', {}).get(k))} → {new.get(k, new['train'].get(k))}"
                         for k in changed)
        raise PipelineError(f"{run_dir} holds a model made with other settings ({what}): choose another --out, "
                            f"or delete {run_dir} to start over")
