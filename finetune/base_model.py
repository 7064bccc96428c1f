"""The model a training run adapts: its spec resolved to a transformers model, its shape,
context and tokenizer, and the model loaded with a LoRA adapter on the linear layers inside its
blocks, by unsloth on a GPU where it imports (`auto`), by transformers + PEFT elsewhere.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from coach.types import first_line
from finetune.schedule import Shape
from finetune.run_dir import rank_and_world
from finetune.train_data import TrainError

if TYPE_CHECKING:  # the run's config (finetune/train.py) is read, never built here
    from finetune.train import TrainConfig

BACKENDS = ("auto", "unsloth", "transformers")


def choose_backend(requested: str, *, cuda: bool, unsloth_problem: str | None, world: int = 1) -> str:
    """The training backend. `unsloth_problem`: why `import unsloth` failed (None: it works)."""
    if requested not in BACKENDS:
        raise TrainError(f"unknown backend {requested!r}: use {', '.join(BACKENDS)}")
    if requested == "transformers":
        return "transformers"
    if requested == "unsloth":
        if not cuda:
            raise TrainError("--backend unsloth needs a CUDA GPU and this machine has none: use --backend transformers")
        if world > 1:
            raise TrainError("unsloth trains on one GPU: run it without torchrun, or use --backend transformers")
        if unsloth_problem:
            raise TrainError(f"unsloth does not import here ({unsloth_problem}): install the gpu extra or use --backend transformers")
        return "unsloth"
    return "unsloth" if cuda and not unsloth_problem and world == 1 else "transformers"


def probe_unsloth() -> str | None:
    """None when unsloth imports; otherwise why not, in a line. Without a GPU, `import unsloth`
    raises NotImplementedError, not ImportError. Import it before transformers: it patches it."""
    try:
        import unsloth  # noqa: F401  (imported for its patches and to see that it works)
    except Exception as exc:  # ImportError, NotImplementedError, version clashes
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return None


def pick_backend(requested: str) -> str:
    """choose_backend on this machine (it imports unsloth only where it could be used)."""
    import torch

    cuda = torch.cuda.is_available()
    world = rank_and_world()[1]
    problem = probe_unsloth() if cuda and requested != "transformers" and world == 1 else "not tried"
    return choose_backend(requested, cuda=cuda, unsloth_problem=problem, world=world)


def lora_targets(model) -> list[str]:
    """Names of the linear layers inside the model's repeated blocks (a path with a layer
    number: `model.layers.3.self_attn.q_proj`): attention and MLP projections under whatever
    names the architecture gives them (q_proj…down_proj, c_attn/c_fc, qkv_proj, dense…). Not
    the output head, nor anything outside the blocks."""
    import torch

    kinds: tuple[type, ...] = (torch.nn.Linear,)
    try:
        from transformers.pytorch_utils import Conv1D  # GPT-2's linear layers
        kinds += (Conv1D,)
    except ImportError:
        pass
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names = set()
    for name, module in model.named_modules():
        if module is head or not (isinstance(module, kinds) or type(module).__name__ in ("Linear4bit", "Linear8bitLt")):
            continue
        parts = name.split(".")
        if any(p.isdigit() for p in parts[:-1]):
            names.add(parts[-1])
    if not names:
        raise TrainError("the model has no linear layers inside numbered blocks: no place for a LoRA adapter")
    return sorted(names)



def resolve_base(spec: str):
    from coach.specs import resolve
    from coach.types import CoachError

    try:
        resolved = resolve(spec, engine="hf")
    except CoachError as exc:
        raise TrainError(f"the base model does not load: {exc}") from None
    if resolved.kind != "hf" or resolved.path is None:
        raise TrainError(f"the base model {spec!r} must be a transformers model (a directory, a Hub id or a "
                         f"configured name), not a {resolved.kind} model")
    return resolved


def model_context(path: Path) -> int | None:
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(path)
    except Exception as exc:
        raise TrainError(f"the base model {path} does not load ({first_line(exc)})") from None
    cfg = getattr(cfg, "text_config", None) or cfg
    return getattr(cfg, "max_position_embeddings", None)


def load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path)
    except Exception as exc:
        raise TrainError(f"the base model's tokenizer does not load ({first_line(exc)})") from None


def load_model(path: Path, backend: str, config: "TrainConfig", max_length: int, base: str):
    """(the model with its LoRA adapter, the dtype it trains in, the adapted layer names).
    `base`: how the adapter names its base model; `max_length`: the longest row (unsloth)."""
    import torch

    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    torch.manual_seed(config.seed)  # the LoRA init: the same on every rank and every run
    if backend == "unsloth":
        from unsloth import FastLanguageModel

        try:
            model, _ = FastLanguageModel.from_pretrained(model_name=str(path), max_seq_length=max_length,
                                                         dtype=None, load_in_4bit=False)
        except Exception as exc:
            raise TrainError(f"the base model {path} does not load in unsloth ({first_line(exc)})") from None
        targets = lora_targets(model)
        model = FastLanguageModel.get_peft_model(
            model, r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
            target_modules=targets, bias="none", use_gradient_checkpointing="unsloth",
            random_state=config.seed, max_seq_length=max_length)
        name_base(model, base)
        return model, ("bf16" if bf16 else "fp16"), targets
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if bf16 else torch.float32  # CPU: float32 (bf16 autocast is slower here)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except Exception as exc:
        raise TrainError(f"the base model {path} does not load ({first_line(exc)})") from None
    targets = lora_targets(model)
    torch.manual_seed(config.seed)
    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                      target_modules=targets, bias="none", task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # PEFT 0.21 reads a property that transformers 5 deprecates
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
        model = get_peft_model(model, lora)
    name_base(model, base)
    return model, ("bf16" if bf16 else "fp32"), targets


def enable_checkpointing(model) -> None:
    """Gradient checkpointing: each block's activations recomputed in the backward pass instead
    of kept (non-reentrant: the frozen embeddings need not require a gradient)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*is_gradient_checkpointing", FutureWarning)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False


def model_shape(path: Path, rank: int) -> Shape:
    from transformers import AutoConfig

    try:
        return Shape.of(AutoConfig.from_pretrained(path), rank)
    except Exception as exc:
        raise TrainError(f"the base model {path} does not load ({first_line(exc)})") from None


def name_base(model, base: str) -> None:
    """What adapter_config.json says the base is, in checkpoints and in the final adapter."""
    for cfg in getattr(model, "peft_config", {}).values():
        cfg.base_model_name_or_path = base
