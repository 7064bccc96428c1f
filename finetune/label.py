"""A labelling run: a corpus in, one dataset per rule and η out.

    empower-finetune label DIR --estimator SPEC [--eta 0.32 1 4] [--rule empower sft-10 ...] --out DATASET_DIR

Scoring (the forward passes) is the expensive part and does not depend on the rule or η, so it
is done once per file and kept in a shard (`DATASET_DIR/.shards/`, one JSON file per source file
and configuration): a killed run resumes where it stopped, and every (rule, η) is labelled from
the same shards. Under `torchrun` / `accelerate launch` each rank scores every WORLD_SIZE-th
file; rank 0 waits for the others and writes the datasets.

Each dataset is `DATASET_DIR/RULE[-etaX]/data.jsonl`, a row per example, and `manifest.json`
(the resolved config, counts, a histogram of completion lengths, the share of empty ones).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from coach.atomic import write_json
from finetune.estimator import Estimator
from finetune.rules import CAP, DEFAULT_ETA, Scored, State, choose_states, label
from finetune.scan import corpus_options, fail, load_corpus

FILES_PER_GROUP = 16
BINS = ((0, 0), (1, 1), (2, 4), (5, 8), (9, 16), (17, 32), (33, 64), (65, 10**9))


@dataclass
class LabelConfig:
    estimator: str
    framing: str = "raw"            # how the estimator reads a state: raw code, or chat
    format: str = "completion"      # the prompt format of the model that will be trained
    rules: tuple[str, ...] = ("empower",)
    etas: tuple[float, ...] = (DEFAULT_ETA,)
    k: int = 8
    where: str = "uniform"
    seed: int = 0
    cap: int = CAP

    def stop_bits(self) -> float | None:
        """Where the chat estimator may stop reading a continuation: when only the empower rule
        is asked for, past the largest η nothing changes a label (the SFT rules need every token)."""
        return max(self.etas) if self.framing == "chat" and set(self.rules) == {"empower"} else None

    def fingerprint(self) -> str:
        """What the shards depend on (not the rules or η: those are applied afterwards, except
        that the continuations are cut at stop_bits)."""
        # "served-window": states are read with the editor's window (estimator.py), not the model's
        # whole context as before; shards made the old way are not reused.
        parts = [self.estimator, self.framing, self.k, self.where, self.seed, self.cap, "served-window"]
        if (stop := self.stop_bits()) is not None:
            parts.append(stop)
        key = json.dumps(parts)
        return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass
class Source:
    rel: str
    text: str
    sha256: str


@dataclass
class RunSummary:
    datasets: dict[str, dict] = field(default_factory=dict)  # name -> manifest
    files: int = 0
    resumed: int = 0
    tokens: int = 0
    seconds: float = 0.0


def dataset_name(rule: str, eta: float | None) -> str:
    return f"{rule}-eta{eta:g}" if rule == "empower" else rule


def rank_and_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def shard_path(out: Path, config: LabelConfig, source: Source) -> Path:
    key = hashlib.sha256(f"{source.rel}\0{source.sha256}".encode()).hexdigest()[:24]
    return out / ".shards" / config.fingerprint() / f"{key}.json"


def score_files(estimator: Estimator, config: LabelConfig, sources: Sequence[Source]) -> list[dict]:
    """The shards of some files: their states and the NLL of the tokens after each."""
    estimator.stop_bits = config.stop_bits()
    items, encoded = [], []
    for source in sources:
        ids, offsets = estimator.encode(source.text)
        states = choose_states(source.rel, source.text, estimator.tokenizer, config.k, seed=config.seed,
                               where=config.where, ids=ids, offsets=offsets)
        items.append((source.text, ids, states))
        encoded.append(offsets)
    shards = []
    for source, (_, ids, _), offsets, scored in zip(sources, items, encoded, estimator.score_many(items)):
        shards.append({"rel": source.rel, "sha256": source.sha256, "tokens": len(ids), "states": [
            {"cut": s.state.cut, "char": s.state.char, "token_ids": list(s.token_ids), "nll": list(s.nll),
             # where each continuation token ends, in characters: the completion's text is
             # the file's own text, not a decoding of its tokens
             "ends": [offsets[t][1] for t in range(s.state.cut, s.state.cut + len(s.token_ids))]}
            for s in scored]})
    return shards


def label_corpus(sources: Sequence[Source], estimator: Estimator, config: LabelConfig, out: Path,
                 progress: Callable[[int, int, str], None] | None = None) -> RunSummary:
    """Score every file not already in a shard (this rank's share), then write the datasets
    (rank 0, once every shard is there)."""
    start = time.perf_counter()
    rank, world = rank_and_world()
    mine = [s for i, s in enumerate(sources) if i % world == rank]
    summary = RunSummary(files=len(sources))
    todo = []
    for source in mine:
        if shard_path(out, config, source).exists():
            summary.resumed += 1
        else:
            todo.append(source)
    done = summary.resumed
    # A few files at a time: the chat framing batches their states together; each file's shard
    # is written as soon as its group is scored.
    # raw: files are scored one by one anyway, so each is kept (and shown) as soon as it is done
    per_group = FILES_PER_GROUP if config.framing == "chat" else 1
    for i in range(0, len(todo), per_group):
        group = todo[i:i + per_group]
        for source, shard in zip(group, score_files(estimator, config, group)):
            write_json(shard_path(out, config, source), shard, indent=None)  # a kill leaves no half shard
        done += len(group)
        if progress:
            progress(done, len(mine), group[-1].rel)
    if world > 1:
        _barrier()
        if rank != 0:
            summary.seconds = time.perf_counter() - start
            return summary
    shards = [json.loads(shard_path(out, config, s).read_text()) for s in sources]
    summary.tokens = sum(sh["tokens"] for sh in shards)
    summary.seconds = time.perf_counter() - start
    summary.datasets = write_datasets(sources, shards, estimator, config, out, summary)
    return summary


def _barrier() -> None:
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    dist.barrier()


def write_datasets(sources: Sequence[Source], shards: list[dict], estimator: Estimator,
                   config: LabelConfig, out: Path, summary: RunSummary) -> dict[str, dict]:
    stop = estimator.tokenizer.eos_token or ""
    manifests = {}
    for rule in config.rules:
        for eta in (config.etas if rule == "empower" else (None,)):
            name = dataset_name(rule, eta)
            rows = []
            for source, shard in zip(sources, shards):
                for st in shard["states"]:
                    scored = Scored(State(source.rel, st["cut"], st["char"]), tuple(st["token_ids"]),
                                    tuple(st["nll"]))
                    lab = label(scored, rule, eta, seed=config.seed)
                    end = st["ends"][lab.n_tokens - 1] if lab.n_tokens else st["char"]
                    rows.append({"source": source.rel, "state": source.text[:st["char"]],
                                 "completion": source.text[st["char"]:end],
                                 "completion_tokens": lab.n_tokens,
                                 "completion_token_ids": list(lab.token_ids),
                                 "nll_bits": round(lab.nll_bits, 6), "rule": rule, "eta": eta,
                                 "estimator": config.estimator, "framing": config.framing,
                                 "format": config.format, "stop": stop,
                                 "cut_token": st["cut"], "cut_char": st["char"]})
            directory = out / name
            directory.mkdir(parents=True, exist_ok=True)
            tmp = directory / ".data.jsonl.tmp"
            with tmp.open("w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
            os.replace(tmp, directory / "data.jsonl")
            manifest = _manifest(rows, config, rule, eta, summary)
            manifest["window_chars"] = estimator.window_chars  # the editor's window each state was read with
            manifest["dtype"] = str(next(estimator.model.parameters()).dtype).removeprefix("torch.")
            write_json(directory / "manifest.json", manifest, indent=None)
            manifests[name] = manifest
    return manifests


def _manifest(rows: list[dict], config: LabelConfig, rule: str, eta: float | None,
              summary: RunSummary) -> dict:
    lengths = [r["completion_tokens"] for r in rows]
    histogram = Counter()
    for n in lengths:
        lo, hi = next(b for b in BINS if b[0] <= n <= b[1])
        histogram[f"{lo}" if lo == hi else f"{lo}-{hi}" if hi < 10**9 else f"{lo}+"] += 1
    return {
        "rule": rule, "eta": eta, "config": asdict(config),
        "examples": len(rows), "files": len({r["source"] for r in rows}),
        "mean_completion_tokens": statistics.fmean(lengths) if lengths else 0.0,
        "share_empty": sum(n == 0 for n in lengths) / len(lengths) if lengths else 0.0,
        "histogram": {label: histogram.get(label, 0) for label in
                      [f"{lo}" if lo == hi else f"{lo}-{hi}" if hi < 10**9 else f"{lo}+" for lo, hi in BINS]},
        "source_tokens": summary.tokens, "seconds": round(summary.seconds, 3),
        "tokens_per_s": round(summary.tokens / summary.seconds, 1) if summary.seconds else None,
    }


# ---------------------------------------------------------------- the command
def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="empower-finetune label",
        description="Label states of your code: the longest continuation whose cumulative NLL "
                    "under the estimator stays below η bits (rule empower), or the next N tokens "
                    "(sft-N), or 1..30 of them (sft-rand).")
    corpus_options(parser)
    parser.add_argument("--estimator", default="smollm2-135m", metavar="SPEC",
                        help="the pretrained model that measures what is obvious (a transformers model or a "
                             "built-in one; default smollm2-135m)")
    parser.add_argument("--framing", choices=["raw", "chat"], default="raw",
                        help="raw: the estimator reads plain code (one pass per file); chat: a "
                             "'finish this code' conversation per state, as in the paper")
    parser.add_argument("--eta", type=float, nargs="+", default=[DEFAULT_ETA], metavar="BITS",
                        help=f"η in bits, one dataset each (default {DEFAULT_ETA:g})")
    parser.add_argument("--rule", nargs="+", default=["empower"], metavar="RULE",
                        help="empower, sft-N (e.g. sft-10 sft-20), sft-rand (default: empower)")
    parser.add_argument("--k", type=int, default=8, help="states per file (default 8)")
    parser.add_argument("--where", choices=["uniform", "pauses"], default="uniform",
                        help="cut uniformly over the file's tokens, or only where a person pauses")
    parser.add_argument("--format", choices=["completion", "chat"], default=None,
                        help="the prompt format of the model to be trained (default: completion)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, metavar="DATASET_DIR")
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from coach.types import CoachError
    from coach.progress import Milestones
    from finetune import corpus
    from finetune.rules import RULES

    for rule in args.rule:
        if rule not in RULES and not (rule.startswith("sft-") and rule[4:].isdigit() and int(rule[4:]) > 0):
            return fail(f"unknown rule {rule!r}: use {', '.join(RULES)} (or sft-N)")
    if any(eta <= 0 for eta in args.eta):
        return fail("η must be a positive number of bits")
    if args.k < 1:
        return fail("--k must be at least 1")
    console = Console(stderr=True)
    try:
        found = load_corpus(args, console)
    except corpus.ScanError as e:
        return fail(str(e))
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # tqdm's "Loading weights" bar would cut into the status line, or a log
    try:
        with console.status(f"loading the estimator {args.estimator}…"):
            estimator = Estimator.load(args.estimator, args.framing)
    except (CoachError, ValueError, OSError) as e:
        return fail(f"the estimator does not load: {e}")
    config = LabelConfig(args.estimator, args.framing, args.format or "completion", tuple(args.rule),
                         tuple(args.eta), args.k, args.where, args.seed)
    sources = [Source(f.rel, f.text, f.sha256) for f in found.files]
    out = Path(args.out)
    lines = None if console.is_terminal else Milestones(console, "labelling")  # a file: lines, not a bar

    def progress(n, total, rel):
        bar.update(task, completed=n, total=total, description=rel)
        if lines:
            lines.update(n, total, rel, " files")

    with Progress(TextColumn("labelling"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.description}"), console=console) as bar:
        task = bar.add_task("", total=None)
        summary = label_corpus(sources, estimator, config, out, progress=progress)
    print_summary(summary, out, Console())
    return 0


def print_summary(summary, out: Path, console) -> None:
    from rich.table import Table

    if not summary.datasets:  # a rank other than 0: rank 0 writes the datasets
        console.print(f"scored {summary.files} files' share in {summary.seconds:.1f} s")
        return
    table = Table(title=f"{summary.files} files, {summary.tokens:,} tokens in {summary.seconds:.1f} s "
                        f"({summary.tokens / max(summary.seconds, 1e-9):,.0f} tokens/s"
                        + (f"; {summary.resumed} from an earlier run" if summary.resumed else "") + ")")
    for column in ("dataset", "examples", "mean tokens", "empty", "path"):
        table.add_column(column, justify="left" if column in ("dataset", "path") else "right")
    for name, m in summary.datasets.items():
        table.add_row(name, str(m["examples"]), f"{m['mean_completion_tokens']:.1f}",
                      f"{100 * m['share_empty']:.0f}%", str(out / name / "data.jsonl"))
    console.print(table)
