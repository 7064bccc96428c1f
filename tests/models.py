"""Build the tiny models the test-suite runs on, offline, in well under a minute of CPU.

    python -m tests.models DIR [--force]

No hub is reachable here (nor in CI), so the tests make their own models:
  tokenizer/        SentencePiece BPE trained on a fixed list of standard-library modules
  random/           a random-init LlamaForCausalLM (HF format, with the tokenizer)
  memorizer/        the same model trained until greedy decoding reproduces the built-in
                    problems' reference solutions and a few short stdlib modules line by line
  random.gguf, memorizer.gguf   their f16 GGUFs (finetune/gguf_export.py)
  manifest.json     what was built from what (corpus sha256s), sizes, seed, timings, scores

`build(DIR)` reuses a complete build made from the same inputs (fingerprint of this file, the
exporter and the corpus) and otherwise rebuilds; `--force` always rebuilds.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import random
import shutil
import sys
import sysconfig
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
STDLIB = Path(sysconfig.get_paths()["stdlib"])

SEED = 0
VOCAB_SIZE = 1000  # small enough to train in a second, big enough for ~2.3 chars per token
# The tokenizer's corpus: a fixed list (not a glob) so a new stdlib file changes nothing.
TOKENIZER_MODULES = (
    "argparse", "ast", "bisect", "calendar", "collections/__init__", "colorsys", "contextlib",
    "csv", "dataclasses", "datetime", "difflib", "enum", "fractions", "functools", "heapq",
    "inspect", "json/decoder", "json/encoder", "keyword", "logging/__init__", "os", "pathlib",
    "pprint", "random", "shlex", "statistics", "string", "textwrap", "typing", "unittest/case",
)
# Memorized besides the reference solutions: short modules (~300-550 tokens each).
MEMORIZED_MODULES = ("antigravity", "keyword")
# Hidden sizes are multiples of 256 so K-quants apply without fallbacks (1.7M parameters).
# One epoch over ~4.6k tokens costs ~0.6 s on 2 cores (fp32; bf16 autocast was far slower on
# this CPU), and this size reproduced 100% of lines after ~50 epochs.
MODEL = dict(
    hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=1024, rms_norm_eps=1e-5,
    tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
)
EPOCHS = 60  # one optimizer step per file per epoch; cosine decay to 0 makes memorization stick
LR = 3e-3  # 5e-3 stalled at 17-77% of lines after 50 epochs
WARMUP_EPOCHS = 2
MIN_LINE_SCORE = 0.9  # per file: share of lines greedy decoding reproduces; fail below
PROBE_LINES = 3  # the probe prompt: at least this many first lines of a memorized file
TOKENIZER_CONFIG = {
    "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>",
    "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False,
    # The SentencePiece model adds no dummy prefix (code is not prose); without this line
    # transformers prepends "▁" anyway, and HF and llama.cpp token ids would differ.
    "add_prefix_space": False, "clean_up_tokenization_spaces": False,
    "model_max_length": MODEL["max_position_embeddings"],
}
TOKENIZER_FILES = ("tokenizer.model", "tokenizer_config.json")

console = Console(stderr=True)


@dataclass(frozen=True)
class TestModels:
    """Paths of one complete build."""

    __test__ = False  # not a pytest test class
    dir: Path
    tokenizer: Path
    random: Path
    memorizer: Path
    random_gguf: Path
    memorizer_gguf: Path
    manifest: Path
    memorized: tuple[Path, ...] = field(default=())  # the files the memorizer reproduces

    @classmethod
    def at(cls, root: Path, memorized: tuple[Path, ...] = ()) -> "TestModels":
        return cls(root, root / "tokenizer", root / "random", root / "memorizer",
                   root / "random.gguf", root / "memorizer.gguf", root / "manifest.json", memorized)

    def artifacts(self) -> tuple[Path, ...]:
        return (self.tokenizer, self.random, self.memorizer, self.random_gguf, self.memorizer_gguf)


@dataclass(frozen=True)
class CorpusFile:
    name: str  # as shown: "problems/catalog/lava/solution.py", "stdlib/keyword.py"
    path: Path
    sha256: str
    bytes: int

    @classmethod
    def of(cls, path: Path) -> "CorpusFile":
        data = path.read_bytes()
        name = (f"stdlib/{path.relative_to(STDLIB)}" if path.is_relative_to(STDLIB)
                else str(path.relative_to(REPO)))
        return cls(name, path, hashlib.sha256(data).hexdigest(), len(data))

    def record(self) -> dict:
        return {"name": self.name, "path": str(self.path), "sha256": self.sha256, "bytes": self.bytes}


def tokenizer_corpus() -> list[CorpusFile]:
    paths = [STDLIB / f"{m}.py" for m in TOKENIZER_MODULES]
    return [CorpusFile.of(p) for p in paths if p.is_file()]


def memorized_corpus() -> list[CorpusFile]:
    """Reference solutions that exist now (sorted), then the fixed stdlib modules."""
    paths = sorted((REPO / "problems" / "catalog").glob("*/solution.py"))
    paths += [STDLIB / f"{m}.py" for m in MEMORIZED_MODULES]
    return [CorpusFile.of(p) for p in paths if p.is_file()]


def fingerprint(corpus: list[CorpusFile]) -> str:
    """Changes when the builder, the exporter, the corpus or the libraries change."""
    h = hashlib.sha256()
    for src in (Path(__file__), REPO / "finetune" / "gguf_export.py"):
        h.update(src.read_bytes())
    for f in corpus:
        h.update(f"{f.name}:{f.sha256}\n".encode())
    for lib in ("torch", "transformers", "sentencepiece", "gguf"):
        h.update(f"{lib}={version(lib)}\n".encode())
    return h.hexdigest()


def split_probe(text: str, min_lines: int = PROBE_LINES) -> tuple[str, str]:
    """(the first lines of a file, the next non-blank line): what a memorizer must complete."""
    lines = text.splitlines(keepends=True)
    k = max(1, min(min_lines, len(lines) - 1))  # short files: as many lines as there are
    while k < len(lines) - 1 and not lines[k].strip():
        k += 1
    if len(lines) < 2:
        raise ValueError("a probe needs at least two lines")
    return "".join(lines[:k]), lines[k]


# ------------------------------------------------------------------ the steps

def train_tokenizer(corpus: list[CorpusFile], out: Path) -> None:
    import sentencepiece as spm

    text = "".join(f.path.read_text(encoding="utf-8") for f in corpus)
    model = io.BytesIO()
    # SentencePiece trains on lines, so no piece holds "\n": it is the byte token <0x0A>, and
    # tokenizing a prefix that ends at a line break gives the same ids as the whole file.
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text.splitlines()), model_writer=model,
        vocab_size=VOCAB_SIZE, model_type="bpe", byte_fallback=True, character_coverage=1.0,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=False, allow_whitespace_only_pieces=True,  # indentation as one piece
        split_digits=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        num_threads=1, minloglevel=2)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer.model").write_bytes(model.getvalue())
    (out / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2) + "\n")


def new_model():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    return LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB_SIZE, **MODEL))


def save_model(model, tokenizer: Path, out: Path) -> None:
    model.save_pretrained(out)
    for name in TOKENIZER_FILES:
        shutil.copy(tokenizer / name, out / name)


def encode_files(tokenizer: Path, corpus: list[CorpusFile]) -> tuple[list[list[int]], int]:
    """([BOS] + file + [EOS] per file, cut to the context length; the id of "\\n")."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tokenizer / "tokenizer.model"))
    n_ctx = MODEL["max_position_embeddings"]
    docs = [[sp.bos_id(), *sp.encode(f.path.read_text(encoding="utf-8")), sp.eos_id()] for f in corpus]
    for f, d in zip(corpus, docs):
        if len(d) > n_ctx:
            console.print(f"[yellow]{f.name}: {len(d)} tokens, memorizing the first {n_ctx}")
    return [d[:n_ctx] for d in docs], sp.piece_to_id("<0x0A>")


def train_memorizer(model, docs: list[list[int]], progress: Progress) -> list[float]:
    """Plain torch loop: one file per step (no padding), cosine LR; returns the loss per epoch."""
    import torch

    torch.manual_seed(SEED)
    order_rng = random.Random(SEED)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.98), weight_decay=0.0)
    total, warmup = EPOCHS * len(docs), WARMUP_EPOCHS * len(docs)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    task = progress.add_task("train memorizer", total=EPOCHS)
    losses = []
    model.train()
    for _ in range(EPOCHS):
        order = list(range(len(docs)))
        order_rng.shuffle(order)
        epoch_loss = 0.0
        for i in order:
            x = torch.tensor([docs[i]])
            loss = model(input_ids=x, labels=x).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            epoch_loss += loss.item()
        losses.append(epoch_loss / len(docs))
        progress.update(task, advance=1, description=f"train memorizer (loss {losses[-1]:.3f})")
    model.eval()
    return losses


def line_scores(model, docs: list[list[int]], newline_id: int) -> list[float]:
    """Per file, the share of lines after the first that greedy decoding reproduces exactly.

    Greedy decoding from the true prefix reproduces a line iff the argmax at every position of
    the line is the next true token, so one forward pass per file scores all its lines.
    """
    import torch

    scores = []
    with torch.no_grad():
        for d in docs:
            x = torch.tensor([d])
            ok = (model(input_ids=x).logits[0, :-1].argmax(-1) == x[0, 1:]).tolist()
            starts = [i + 1 for i, t in enumerate(d[:-1]) if t == newline_id] + [len(d)]
            lines = [all(ok[a - 1:b - 1]) for a, b in zip(starts, starts[1:])]
            scores.append(sum(lines) / max(1, len(lines)))
    return scores


def probe_memorizer(model_dir: Path, corpus: list[CorpusFile]) -> dict[str, bool]:
    """Generate greedily from each file's first lines with transformers; is the next line right?"""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    results = {}
    for f in corpus:
        prompt, expected = split_probe(f.path.read_text(encoding="utf-8"))
        ids = tok(prompt, return_tensors="pt")["input_ids"]
        n_new = len(tok(expected, add_special_tokens=False)["input_ids"]) + 2
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=n_new, do_sample=False, pad_token_id=tok.eos_token_id)
        text = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
        results[f.name] = text.startswith(expected)
    return results


# ------------------------------------------------------------------ the build

@contextmanager
def _locked(root: Path):
    """One builder per DIR at a time (several test runs may share a clone's cache)."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _reusable(models: TestModels, fp: str) -> dict | None:
    if not models.manifest.is_file():
        return None
    manifest = json.loads(models.manifest.read_text())
    ok = manifest.get("fingerprint") == fp and all(p.exists() for p in models.artifacts())
    return manifest if ok else None


def _size(path: Path) -> int:
    files = path.rglob("*") if path.is_dir() else [path]
    return sum(p.stat().st_size for p in files if p.is_file())


def build(root: Path | str, force: bool = False) -> TestModels:
    """Build the test models into root, or reuse a complete build from the same inputs."""
    root = Path(root).resolve()
    tok_corpus, mem_corpus = tokenizer_corpus(), memorized_corpus()
    fp = fingerprint(tok_corpus + mem_corpus)
    models = TestModels.at(root, tuple(f.path for f in mem_corpus))
    with _locked(root):
        # The files as this checkout has them: the fingerprint says their contents match, and the
        # paths recorded at build time may be another clone's (a shared cache), since removed.
        if not force and _reusable(models, fp):
            return models
        _build(models, tok_corpus, mem_corpus, fp)
    return models


def _build(models: TestModels, tok_corpus: list[CorpusFile], mem_corpus: list[CorpusFile], fp: str) -> None:
    from transformers.utils import logging as hf_logging

    from finetune.gguf_export import export_gguf

    hf_logging.disable_progress_bar()  # rich draws the progress; tqdm bars would interleave
    if not mem_corpus:
        raise RuntimeError("nothing to memorize: no problems/catalog/*/solution.py and no stdlib modules")
    models.manifest.unlink(missing_ok=True)  # no manifest = incomplete build
    for path in models.artifacts():
        if path.is_dir():
            shutil.rmtree(path)
        path.unlink(missing_ok=True)
        Path(f"{path}.json").unlink(missing_ok=True)

    seconds: dict[str, float] = {}
    start = time.perf_counter()

    @contextmanager
    def step(name: str):
        t = time.perf_counter()
        yield
        seconds[name] = round(time.perf_counter() - t, 2)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        with step("tokenizer"):
            train_tokenizer(tok_corpus, models.tokenizer)
        with step("random"):
            save_model(new_model(), models.tokenizer, models.random)
        with step("memorizer"):
            model = new_model()
            docs, newline_id = encode_files(models.tokenizer, mem_corpus)
            losses = train_memorizer(model, docs, progress)
            save_model(model, models.tokenizer, models.memorizer)
        with step("verify"):
            scores = dict(zip((f.name for f in mem_corpus), line_scores(model, docs, newline_id)))
            probes = probe_memorizer(models.memorizer, mem_corpus)
        with step("gguf"):
            export_gguf(models.random, models.random_gguf, "f16")
            export_gguf(models.memorizer, models.memorizer_gguf, "f16")
    seconds["total"] = round(time.perf_counter() - start, 2)

    _report(scores, probes, seconds)
    poor = [n for n, s in scores.items() if s < MIN_LINE_SCORE] + [n for n, ok in probes.items() if not ok]
    if poor:
        raise RuntimeError(f"the memorizer did not memorize {sorted(set(poor))} (line scores {scores}, probes {probes})")

    manifest = {
        "fingerprint": fp,
        "seed": SEED,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": seconds,
        "config": {"vocab_size": VOCAB_SIZE, "model": MODEL, "epochs": EPOCHS, "lr": LR,
                   "warmup_epochs": WARMUP_EPOCHS, "tokenizer_config": TOKENIZER_CONFIG,
                   "gguf_ftype": "f16"},
        "corpus": {"tokenizer": [f.record() for f in tok_corpus],
                   "memorized": [f.record() for f in mem_corpus]},
        "memorization": {"line_scores": scores, "probes": probes, "final_loss": round(losses[-1], 4),
                         "tokens": sum(map(len, docs))},
        "artifacts": {p.name: {"bytes": _size(p)} for p in models.artifacts()},
        "versions": {lib: version(lib) for lib in ("torch", "transformers", "sentencepiece", "gguf")},
    }
    models.manifest.write_text(json.dumps(manifest, indent=2) + "\n")  # written last: complete


def _report(scores: dict[str, float], probes: dict[str, bool], seconds: dict[str, float]) -> None:
    table = Table(title="memorizer: lines reproduced greedily")
    table.add_column("file")
    table.add_column("line score", justify="right")
    table.add_column("probe")
    for name, score in scores.items():
        table.add_row(name, f"{score:.1%}", "ok" if probes[name] else "[red]wrong")
    console.print(table)
    console.print("seconds: " + ", ".join(f"{k} {v}" for k, v in seconds.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.models", description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="where to build (e.g. .cache/test-models)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a complete build is there")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    models = build(args.dir, force=args.force)
    console.print(f"test models in {models.dir} ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
