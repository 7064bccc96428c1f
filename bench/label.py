"""Labelling speed and memory: finetune/estimator.py's labellers against a reference-style labeller
and the bare forward pass (the tiny memorizer, CPU), the same on real estimators, and a whole
labelling run end to end on 1.24 MB of the standard library.

    python bench/label.py [--files 200] [--max-chars 1000] [--k 8] [--batch 8] [--group 16] [--check]
    python bench/label.py --estimator smollm2-135m [--dtype auto|bf16|float32] [--files 40] [--only raw,bare]
    python bench/label.py --estimator smollm2-135m --dtypes bf16,float32
    python bench/label.py --models memorizer,smollm2-135m [--files 40]
    python bench/label.py --large --estimator smollm2-135m [--limit N]

Each writes a JSON file to bench/out/ (label.json, label-<estimator>.json,
label-<estimator>-dtypes.json, label-models.json, label-large-<estimator>.json; --out to choose).

What the raw labeller reads. A state is read as the editor serves it: the editor's window of the
code before the cursor (`Estimator.window_chars`: 8,000 characters for SmolLM2, 1,909 for the
memorizer), tokenized as the transformers backend serves a completion prompt, then the file's
next 64 tokens; states whose windows start at the same character share one forward pass
(`Estimator.raw_passes`). The header counts the states whose window starts after the file's
start (the window cut them), the tokens read per state (the passes' lengths ÷ states) and the
longest pass beside the model's context (the window is sized on a sample with a 10% margin:
code denser than the sample can make a pass longer).

The files are the standard library's modules (the top-level *.py first, then the packages'
*.py one level down, tests left out), sorted, the first N of 1-60 KB, each cut to its first
--max-chars characters (the cut text is what every labeller reads; tokens/s = the cut texts'
tokens ÷ seconds). K states per file come from `choose_states` (uniform, stable boundaries).

The default cut, 1,000 characters (~490 memorizer tokens), keeps the reproduction's sequence
(the chat prompt with the state's window, then the whole rest of the file) inside the
memorizer's 1,024-token context for almost every state, so the reference does the work the
reproduction does: over the default 200 files 99 of 1,600 were clipped to the context, and at
1,500 characters 574 (counted 2026-12-03; the header counts them). The reference then reads
less than the reproduction would: before the editor's window (the whole state in the chat
prompt) 1,500 characters gave raw ÷ reference 9.7× and chat ÷ reference 1.8× (2026-11-22).
Whole files (--max-chars 0) are many memorizer windows long: most states then need a pass of
their own, as in the editor, and raw ÷ reference falls far below 10×.

The labellers, over the same files and states, timed in one run, interleaved group by group
of --group files (the order rotates with each group, so a noisy neighbour slows them all
alike; one pass each, after an untimed warm-up of each on the two shortest files):
1. `raw`: `Estimator(..., "raw")`: the file's tokens and offsets, `choose_states`, `score`,
   then `label(.., "empower", η)` at η = 0.32, 1 and 4 bits. Its time includes encoding and
   choosing the states (its own work; the others are handed them, which favours them).
2. `chat`: `Estimator(..., "chat")`: `score_many` over the group's files, as
   finetune/label.py calls it (on the CPU each file's states share their prompt's start:
   one KV cache, cropped back for each state; a continuation is read 8 tokens first and on
   only while its NLL is under the largest η, 4 bits, as the dataset does for the empower
   rule) + the same labels.
2b. `chat, batched` (beside, not a target): the same with `share_prompts=False`: the group's
   states pooled and batched by length (--batch), the way a GPU runs it.
3. reference: what the public reproduction does (`construct_logit_threshold_ds.py`, see
   ../shared/notes/facts.md): batch size 1, the chat framing, one forward pass per state over
   the chat prompt + the state's window (prefilled as the assistant turn) + the whole rest of
   the file (as much as the context holds), with the logits of every position. Its prompt is
   the chat estimator's own `chat_prefix`, so its labels must equal the chat labeller's.
3b. reference, capped (reported beside, not a target): the same batch-1 passes cut at the
   labellers' CAP (64) continuation tokens, with logits only where they are needed: exactly
   the work the chat labeller does, one sequence a pass. chat ÷ this is what batching alone
   buys; on a compute-bound 2-core CPU that is about nothing (a GPU is where it pays).
4. bare forward pass: `token_nll([p.seq], [first])` over exactly the passes `raw_passes` returns for
   those states, nothing else: the cost of reading what the raw labeller must read.

Targets (ratios of tokens/s): raw ÷ reference ≥ 10; chat ÷ reference ≥ 2; raw ÷ bare ≥ 0.7.
Also reported: where the raw labeller's time goes, the tokens each labeller feeds the model,
the labels' mean length and share empty (raw vs chat differ by framing; the reference must
agree with chat up to rounding), and how many chat sequences run past the context.

--estimator runs the same on a real model (a spec: the built-in SmolLM2's HF copy, an HF
directory), by default only the raw labeller and the bare forward pass over 40 files (the
reference reads every state's whole rest of the file, minutes a file on a real model on the
CPU). --dtype (default auto) is the estimator's dtype; auto is what `Estimator.load` picks, the
faster of bf16 and float32 here (finetune/machine.py): on this project's 2-core AMD EPYC (AVX2
only) float32, whose SmolLM2 forward passes ran at 420-520 tokens/s against ~70 in bf16
(December 2026); a CPU with AVX-512 BF16 ran bf16 2.1x faster. --dtypes bf16,float32 loads
the model in both and times the raw and bare labellers of each interleaved in one run, beside
each other, with bf16 ÷ float32, and checks that `faster_dtype` (for the model's widths,
`model_dtype`) picks the faster one here.

--models runs the raw labeller of each model over the same files, each in a fresh process (peak
memory is a per-process figure: the worker's ru_maxrss, torch and the model loaded included):
one table of dtype, source tokens/s, tokens read/s, peak RSS, and the labels' mean length and
share empty at η = 0.32, 1 and 4 bits.

--large labels a corpus end to end exactly as `empower-finetune label` does: `label_corpus`
with `Estimator.load(spec)`, η = 0.32, 1, 2 and 4 bits and the rules empower, sft-10, sft-20
and sft-rand, into a fresh directory, in a fresh process. The corpus: the standard library's
top-level modules of 8-48 KB, sorted by name, the first 57, whole files (1,238,395 bytes on
Python 3.11.7). Reported: wall seconds, source tokens, tokens the estimator read (counted at
its forward: the passes' lengths), tokens/s, peak RSS, and the target: about 10 minutes for
1.24 MB on this machine (pro rata for --limit; in December 2026, before the editor's window,
SmolLM2 in its default dtype took over 30 minutes of one core, sharing the machine, facts.md).
Beside it, what the scheme before the editor's window would have read (each file once, in
windows of the model's whole context on a quarter-context grid, BOS first), from token counts
alone. For SmolLM2 (counted 2026-12-03, no forward pass): 328,475 source tokens, 455 states of
which the window cut 244, 237 passes reading 436,341 tokens (the longest 4,422); the old scheme
would read 353,546.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import transformers  # noqa: E402

from finetune.label import LabelConfig, Source, label_corpus  # noqa: E402
from finetune.estimator import Estimator, RawPass  # noqa: E402
from finetune.rules import CAP, Scored, State, choose_states, label  # noqa: E402
from finetune.machine import dtype_name, model_dtype  # noqa: E402
from tests.models import build  # noqa: E402

CHATML = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
          "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
ETAS = (0.32, 1.0, 4.0)
DTYPES = {"bf16": torch.bfloat16, "float32": torch.float32}  # "auto": None, Estimator.load's choice
LABELLERS = ("raw", "chat", "batched", "reference", "capped", "bare")
DESCRIPTIONS = {"raw": "raw (encode + states + score + labels)",
                "chat": "chat, prompts shared (KV cache, file by file)",
                "batched": "chat, batch {batch}, {group} files pooled",
                "reference": "reference (reproduction: chat, batch 1, the rest of the file)",
                "capped": "reference capped at 64 tokens (chat's tokens, batch 1)",
                "bare": "bare forward (raw's passes)"}
PARTS = ("encode", "choose states", "score (forward)", "labels (3 η)")
TARGETS = {  # name: (numerator, denominator, at least)
    "raw ÷ reference": ("raw", "reference", 10.0),
    "chat ÷ reference": ("chat", "reference", 2.0),
    "raw ÷ bare forward": ("raw", "bare", 0.7),
}
INFO = {  # beside the targets: against the capped reference, which reads only what chat reads
    "raw ÷ reference capped": ("raw", "capped"),
    "chat ÷ reference capped": ("chat", "capped"),
    "chat batched ÷ reference capped (batching alone)": ("batched", "capped"),
}
# --large: the corpus, the labelling asked for, and the target
LARGE_FILES, LARGE_LO, LARGE_HI = 57, 8 * 1024, 48 * 1024
LARGE_ETAS = (0.32, 1.0, 2.0, 4.0)
LARGE_RULES = ("empower", "sft-10", "sft-20", "sft-rand")
LARGE_TARGET_S, LARGE_TARGET_BYTES = 600.0, 1_240_000  # about 10 minutes for ~1.24 MB here
MiB = 1 << 20


def stdlib_files(n: int, lo: int = 1024, hi: int = 60 * 1024, packages: bool = True) -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idle_test", "site-packages"}
    candidates = sorted(root.glob("*.py")) + (sorted(
        p for p in root.glob("*/*.py") if p.parent.name not in skip) if packages else [])
    return [p for p in candidates if lo <= p.stat().st_size <= hi][:n]


def read_cut(path: str | Path, max_chars: int) -> str:
    text = Path(path).read_text(encoding="utf-8")
    return text[:max_chars] if max_chars else text


def spec_of(name: str, test_models: Path) -> str:
    """A spec for Estimator.load: "memorizer" is the test models' memorizer (built if missing)."""
    return str(build(test_models).memorizer) if name == "memorizer" else name


def load_estimator(spec: str, dtype: str) -> Estimator:
    """The raw estimator as the labeller loads it (`Estimator.load`; auto: its own dtype)."""
    est = Estimator.load(spec, "raw", dtype=DTYPES.get(dtype))
    if not getattr(est.tokenizer, "chat_template", None):
        est.tokenizer.chat_template = CHATML  # the memorizer has none; the chat labellers need one
    return est


def dtype_of(est: Estimator) -> str:
    return dtype_name(next(est.model.parameters()).dtype)


class Meter:
    """Counts what each model is fed (padding included) at its forward, per running labeller."""

    def __init__(self, models):
        self.running = ""
        self.fed: Counter[str] = Counter()
        self.passes: Counter[str] = Counter()
        self.longest: Counter[str] = Counter()  # the longest sequence fed
        for model in {id(m): m for m in models}.values():
            self._wrap(model)

    def _wrap(self, model) -> None:
        forward = model.forward

        def counted(input_ids, **kw):
            self.fed[self.running] += input_ids.numel()
            self.passes[self.running] += 1
            self.longest[self.running] = max(self.longest[self.running], input_ids.shape[-1])
            return forward(input_ids=input_ids, **kw)
        model.forward = counted

    def reset(self) -> None:
        self.fed.clear()
        self.passes.clear()
        self.longest.clear()


@contextmanager
def progress(console: Console, what: str, total: int):
    """Yields advance(done, note): a bar on a terminal; a line every ~10% when the output goes
    to a file (a long run must show it is alive in a log too)."""
    if console.is_terminal:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(what, total=total)
            yield lambda done, note="": bar.update(task, completed=done, description=f"{what} {note}".rstrip())
        return
    start, shown = time.perf_counter(), [0]

    def advance(done: int, note: str = "") -> None:
        if 10 * done // max(1, total) > shown[0]:
            shown[0] = 10 * done // max(1, total)
            console.print(f"{what}: {done}/{total} in {time.perf_counter() - start:.0f} s {note}".rstrip(),
                          markup=False, highlight=False)
    yield advance


# --------------------------------------------------------------------------- the labellers

def reference_score(est: Estimator, text: str, ids, states, *, capped: bool = False) -> list[Scored]:
    """Batch size 1, chat framing: one forward pass per state, nothing shared. The
    reproduction's way reads the whole rest of the file and computes every logit; `capped`
    reads only CAP continuation tokens and computes only their logits."""
    out = []
    for st in states:
        prefix = est.chat_prefix(text, ids, st)  # the prompt, then the state's window
        if capped:
            cont = list(ids[st.cut:st.cut + est.cap])
            (nll,) = est.token_nll([prefix + cont], [len(prefix) - 1])
        else:
            cont = list(ids[st.cut:st.cut + max(est.cap, est.n_ctx - len(prefix))])
            (nll,) = est.token_nll([prefix + cont])
            nll = nll[len(prefix) - 1:]
        out.append(Scored(st, tuple(cont[:est.cap]), tuple(nll[:est.cap])))
    return out


def labels_of(scored: list[Scored]) -> dict[float, list[int]]:
    return {eta: [label(s, "empower", eta).n_tokens for s in scored] for eta in ETAS}


def run_raw(est: Estimator, source: str, text: str, k: int):
    """The raw labeller on one file: (scored, labels, the parts' seconds)."""
    t0 = time.perf_counter()
    ids, offsets = est.encode(text)
    t1 = time.perf_counter()
    states = choose_states(source, text, est.tokenizer, k, ids=ids, offsets=offsets)
    t2 = time.perf_counter()
    scored = est.score(text, states, ids)
    t3 = time.perf_counter()
    labs = labels_of(scored)
    return scored, labs, (t1 - t0, t2 - t1, t3 - t2, time.perf_counter() - t3)


def label_stats(got: list[dict[float, list[int]]]) -> dict[str, dict]:
    """Per η: the labels' mean length, share empty and share at the cap."""
    out = {}
    for eta in ETAS:
        lengths = [n for labs in got for n in labs[eta]]
        out[str(eta)] = {"mean_tokens": statistics.fmean(lengths),
                         "share_empty": sum(n == 0 for n in lengths) / len(lengths),
                         "share_capped": sum(n == CAP for n in lengths) / len(lengths)}
    return out


@dataclass
class Doc:
    path: Path
    text: str
    ids: list[int]
    states: list[State]
    passes: list[RawPass]  # what the raw labeller reads for these states
    window_cut: int  # states whose window starts after the file's start
    chat_lengths: list[int] = field(default_factory=list)  # prompt + window + CAP continuation
    clipped: int = 0  # states whose reference sequence (prompt + window + the rest) overflows the context


def make_doc(raw: Estimator, chat: Estimator | None, path: Path, text: str, k: int) -> Doc:
    ids, offsets = raw.encode(text)
    states = choose_states(str(path), text, raw.tokenizer, k, ids=ids, offsets=offsets)
    doc = Doc(path, text, ids, states, raw.raw_passes(text, ids, states),
              sum(raw.window(text, st)[0] > 0 for st in states))
    if chat is not None:
        prefixes = [len(chat.chat_prefix(text, ids, st)) for st in states]
        doc.chat_lengths = [n + min(CAP, len(ids) - st.cut) for n, st in zip(prefixes, states)]
        doc.clipped = sum(n + len(ids) - st.cut > chat.n_ctx for n, st in zip(prefixes, states))
    return doc


@dataclass
class Labeller:
    name: str  # the kind, and the dtype where several are timed
    kind: str  # one of LABELLERS
    est: Estimator


def labellers_of(raw: Estimator, kinds, batch: int, suffix: str = "") -> list[Labeller]:
    """The labellers of `kinds` on raw's model, which they share."""
    m, t = raw.model, raw.tokenizer
    made = {"raw": raw, "bare": raw}
    if {"chat", "batched", "reference", "capped"} & set(kinds):
        # As finetune/label.py sets it when the empower rule alone is asked for: reading stops past
        # the largest η (the labels at every η are unchanged; the check below compares them).
        made["chat"] = Estimator(m, t, "chat", share_prompts=True, stop_bits=max(ETAS))
        made["batched"] = Estimator(m, t, "chat", batch_size=batch, share_prompts=False)
        made["reference"] = made["capped"] = Estimator(m, t, "chat", batch_size=1)
    return [Labeller(kind + suffix, kind, made[kind]) for kind in kinds]


def run_group(lab: Labeller, group: list[Doc], k: int):
    """Per file: (scored, labels) and, for raw, the parts' seconds; None for bare."""
    est = lab.est
    if lab.kind == "raw":
        return [run_raw(est, str(d.path), d.text, k) for d in group]
    if lab.kind in ("chat", "batched"):
        return [(s, labels_of(s)) for s in est.score_many([(d.text, d.ids, d.states) for d in group])]
    if lab.kind in ("reference", "capped"):
        return [(s := reference_score(est, d.text, d.ids, d.states, capped=lab.kind == "capped"), labels_of(s))
                for d in group]
    for d in group:  # the same passes, the output layer where raw needs it: reading the code, nothing else
        for p in d.passes:
            est.token_nll([p.seq], [min(n for _, n in p.members) - 1])
    return None


@dataclass
class Timing:
    seconds: dict[str, float]
    meter: Meter
    parts: dict[str, dict[str, float]]  # per raw labeller: part -> seconds
    got: dict[str, list[dict[float, list[int]]]]  # per labeller but bare: each file's labels


def record(lab: Labeller, group: list[Doc], results, timing: Timing) -> None:
    """Checks a labeller's output on a group of files, and keeps its labels (and raw's parts)."""
    for d, result in zip(group, results, strict=True):
        scored, labs = result[:2]
        full = [min(CAP, len(d.ids) - st.cut) for st in d.states]
        assert [s.state for s in scored] == d.states, f"{lab.name}: other states (choose_states not reproducible?)"
        assert all(len(s.nll) == len(s.token_ids) and (len(s.nll) <= n if lab.kind == "chat" else len(s.nll) == n)
                   for s, n in zip(scored, full)), lab.name
        assert all(len(v) == len(d.states) for v in labs.values()), lab.name
        if lab.kind == "raw":
            for key, t in zip(PARTS, result[2]):
                timing.parts[lab.name][key] += t
        timing.got[lab.name].append(labs)


def time_labellers(labellers: list[Labeller], docs: list[Doc], k: int, group_size: int,
                   console: Console) -> Timing:
    meter = Meter([lab.est.model for lab in labellers])
    for lab in labellers:  # untimed warm-up: the two shortest files, once each
        run_group(lab, sorted(docs, key=lambda d: len(d.ids))[:2], k)
    meter.reset()
    timing = Timing({lab.name: 0.0 for lab in labellers}, meter,
                    {lab.name: dict.fromkeys(PARTS, 0.0) for lab in labellers if lab.kind == "raw"},
                    {lab.name: [] for lab in labellers if lab.kind != "bare"})
    groups = [docs[i:i + group_size] for i in range(0, len(docs), group_size)]
    with progress(console, "labelling (interleaved)", len(docs)) as advance:
        for i, group in enumerate(groups):
            turn = i % len(labellers)
            for lab in labellers[turn:] + labellers[:turn]:
                meter.running = lab.name
                t0 = time.perf_counter()
                results = run_group(lab, group, k)
                timing.seconds[lab.name] += time.perf_counter() - t0
                if results is not None:
                    record(lab, group, results, timing)
            advance(min(len(docs), (i + 1) * group_size))
    return timing


# --------------------------------------------------------------------------- the labellers' report

def pairs(table: dict, dtypes: list[str]):
    """(key, numerator, denominator, rest) of a ratio table, for each dtype's labellers."""
    for dtype in dtypes:
        tail = f" {dtype}" if len(dtypes) > 1 else ""
        for key, (a, b, *rest) in table.items():
            yield key + tail, a + tail, b + tail, rest


def docs_line(docs: list[Doc], raw: Estimator, chat_on: bool, k: int, cut: str) -> str:
    n_states = sum(len(d.states) for d in docs)
    lengths = [len(p.seq) for d in docs for p in d.passes]
    line = (f"{len(docs)} files ({cut}), {sum(len(d.ids) for d in docs)} tokens, {n_states} states (K = {k}); "
            f"the editor's window {raw.window_chars} characters: {sum(d.window_cut for d in docs)} of {n_states} "
            f"states' windows cut, {sum(lengths) / max(1, n_states):.0f} tokens read per state in {len(lengths)} "
            f"passes, the longest {max(lengths, default=0)} (context {raw.n_ctx})")
    if chat_on:
        over = sum(n > raw.n_ctx for d in docs for n in d.chat_lengths)
        line += (f"; {over} of {n_states} chat sequences longer than the context, "
                 f"{sum(d.clipped for d in docs)} reference sequences clipped to it")
    return line + f"; torch threads {torch.get_num_threads()}"


def speed_table(labellers: list[Labeller], timing: Timing, tps: dict, args, title: str) -> Table:
    table = Table(title=title)
    for col in ("labeller", "seconds", "tokens/s", "forward passes", "tokens fed to the model"):
        table.add_column(col, justify="left" if col == "labeller" else "right")
    for lab in labellers:
        desc = DESCRIPTIONS[lab.kind].format(batch=args.batch, group=args.group) + lab.name[len(lab.kind):]
        table.add_row(desc, f"{timing.seconds[lab.name]:.2f}", f"{tps[lab.name]:,.0f}",
                      str(timing.meter.passes[lab.name]), f"{timing.meter.fed[lab.name]:,}")
    return table


def print_targets(console: Console, tps: dict, dtypes: list[str], group: int) -> tuple[dict, dict, dict]:
    ratios, floors = {}, {}
    for key, a, b, (at_least,) in pairs(TARGETS, dtypes):
        if a in tps and b in tps:
            ratios[key], floors[key] = tps[a] / tps[b], at_least
    info = {key: tps[a] / tps[b] for key, a, b, _ in pairs(INFO, dtypes) if a in tps and b in tps}
    passed = {key: ratios[key] >= floors[key] for key in ratios}
    table = Table(title=f"Targets (one run, timed interleaved by groups of {group} files)")
    for col in ("ratio of tokens/s", "measured", "target", ""):
        table.add_column(col, justify="left" if col == "ratio of tokens/s" else "right")
    for key in ratios:
        table.add_row(key, f"{ratios[key]:.2f}×", f"≥ {floors[key]:g}×",
                      "[green]PASS[/]" if passed[key] else "[red]FAIL[/]")
    for key, value in info.items():
        table.add_row(f"[dim]{key}[/]", f"[dim]{value:.2f}×[/]", "[dim]—[/]", "")
    console.print(table)
    return ratios, info, passed


def print_breakdown(console: Console, parts: dict[str, dict[str, float]]) -> None:
    table = Table(title="Where the raw labeller's time goes")
    table.add_column("part")
    for name in parts:
        table.add_column(f"{name}: seconds", justify="right")
        table.add_column("share", justify="right")
    for key in PARTS:
        cells = [key]
        for spent in parts.values():
            cells += [f"{spent[key]:.3f}", f"{100 * spent[key] / max(1e-9, sum(spent.values())):.1f}%"]
        table.add_row(*cells)
    console.print(table)


def print_labels(console: Console, stats: dict, agree: dict, n_states: int) -> None:
    table = Table(title=f"Labels ({n_states} states; raw and chat differ by framing)")
    shown = [n for n in stats if n.split()[0] in ("raw", "chat")]
    table.add_column("η bits", justify="right")
    for name in shown:
        table.add_column(f"{name}: mean tokens", justify="right")
        table.add_column(f"{name}: empty", justify="right")
    if agree:
        table.add_column("reference = chat", justify="right")
    for eta in map(str, ETAS):
        cells = [f"{float(eta):g}"]
        for name in shown:
            cells += [f"{stats[name][eta]['mean_tokens']:.2f}", f"{100 * stats[name][eta]['share_empty']:.0f}%"]
        table.add_row(*cells, *([f"{100 * agree[eta]:.1f}%"] if agree else []))
    console.print(table)


def print_dtypes(console: Console, tps: dict, kinds: list[str], raw: Estimator) -> dict:
    """bf16 beside float32, and whether faster_dtype (for the model's widths) picks the faster."""
    table = Table(title="bf16 beside float32 (the same run, interleaved)")
    for col in ("labeller", "bf16 tokens/s", "float32 tokens/s", "bf16 ÷ float32"):
        table.add_column(col, justify="left" if col == "labeller" else "right")
    ratio = {}
    for kind in kinds:
        ratio[kind] = tps[f"{kind} bf16"] / tps[f"{kind} float32"]
        table.add_row(kind, f"{tps[f'{kind} bf16']:,.0f}", f"{tps[f'{kind} float32']:,.0f}", f"{ratio[kind]:.2f}×")
    console.print(table)
    picked = dtype_name(model_dtype(raw.model.config, raw.device.type))
    faster = "bf16" if ratio[kinds[0]] > 1 else "float32"
    right = picked == faster
    console.print(f"faster_dtype here (model_dtype, this model's widths) picks {picked}; the {kinds[0]} labeller "
                  f"ran faster in {faster}: " + ("[green]right[/]" if right else "[red]WRONG[/]"))
    return {"bf16_over_float32": ratio, "faster_dtype_picks": picked, "measured_faster": faster, "picks_right": right}


def bench_labellers(args, console: Console) -> None:
    """The labellers over the same files, timed interleaved, with the targets."""
    dtypes = args.dtypes.split(",") if args.dtypes else [args.dtype]
    only = args.only or ("raw,bare" if args.estimator or args.dtypes else ",".join(LABELLERS))
    kinds = [n for n in LABELLERS if n in only.split(",")]
    spec = spec_of(args.estimator or "memorizer", args.test_models)
    with console.status(f"loading {args.estimator or 'the memorizer'} ({', '.join(dtypes)})…"):
        raws = [load_estimator(spec, dtype) for dtype in dtypes]
    labellers = [lab for raw, dtype in zip(raws, dtypes)
                 for lab in labellers_of(raw, kinds, args.batch, f" {dtype}" if len(dtypes) > 1 else "")]
    chat = next((lab.est for lab in labellers if lab.est.framing == "chat"), None)  # their windows are the same
    # The files, their tokens, states and passes (untimed: the labellers but raw are handed them).
    docs = [make_doc(raws[0], chat, p, read_cut(p, args.max_chars), args.k) for p in stdlib_files(args.files)]
    cut = f"first {args.max_chars} characters of each" if args.max_chars else "whole files"
    console.print(docs_line(docs, raws[0], chat is not None, args.k, cut))

    timing = time_labellers(labellers, docs, args.k, args.group, console)
    n_tokens, n_states = sum(len(d.ids) for d in docs), sum(len(d.states) for d in docs)
    tps = {name: n_tokens / s for name, s in timing.seconds.items()}
    what = f"{args.estimator or 'memorizer'} {' + '.join(dtype_of(raw) for raw in raws)}"
    console.print(speed_table(labellers, timing, tps, args, title=f"Labelling {len(docs)} stdlib files ({cut}, "
                              f"{n_tokens} tokens), K = {args.k}, {what}, {torch.get_num_threads()} threads"))
    ratios, info, passed = print_targets(console, tps, dtypes, args.group)
    if timing.parts:
        print_breakdown(console, timing.parts)
    stats = {name: label_stats(got) for name, got in timing.got.items()}
    agree = {str(eta): statistics.fmean(a == b for c, r in zip(timing.got["chat"], timing.got["reference"])
                                        for a, b in zip(c[eta], r[eta])) for eta in ETAS} \
        if "chat" in stats and "reference" in stats else {}
    if stats:
        print_labels(console, stats, agree, n_states)
    compared = print_dtypes(console, tps, [k for k in ("raw", "bare") if k in kinds], raws[0]) \
        if len(dtypes) > 1 and "raw" in kinds else {}

    write(console, args.out, {
        "ratios": ratios, "ratios_beside": info, "targets": {key: at for key, _, _, (at,) in pairs(TARGETS, dtypes)},
        "passed": passed, "seconds": timing.seconds, "tokens_per_s": tps, "forward_passes": timing.meter.passes,
        "tokens_fed": timing.meter.fed, "raw_breakdown_s": timing.parts, "labels": stats,
        "reference_agrees_with_chat": agree, "dtypes_compared": compared,
        "estimator": args.estimator or "memorizer", "dtype": [dtype_of(raw) for raw in raws],
        "files": len(docs), "max_chars": args.max_chars, "tokens": n_tokens, "states": n_states, "k": args.k,
        "batch": args.batch, "group": args.group, "cap": CAP, "n_ctx": raws[0].n_ctx,
        "window_chars": raws[0].window_chars, "states_window_cut": sum(d.window_cut for d in docs),
        "raw_passes": sum(len(d.passes) for d in docs),
        "longest_raw_pass": max((len(p.seq) for d in docs for p in d.passes), default=0),
        "tokens_read_per_state": sum(len(p.seq) for d in docs for p in d.passes) / max(1, n_states),
        "reference_clipped": sum(d.clipped for d in docs),
        "chat_sequences_over_context": sum(n > raws[0].n_ctx for d in docs for n in d.chat_lengths),
        "torch_threads": torch.get_num_threads(),
        "timing": "one pass, interleaved group by group (order rotated), after a warm-up of each"})
    if args.check and not all(passed.values()):
        sys.exit(1)


# --------------------------------------------------------------------------- one model per process

def in_subprocess(job: dict) -> dict:
    """Runs a job in a fresh Python (`--worker`): peak memory is a per-process figure."""
    with tempfile.TemporaryDirectory() as tmp:
        job = {**job, "result": str(Path(tmp) / "result.json")}
        (Path(tmp) / "job.json").write_text(json.dumps(job))
        subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(Path(tmp) / "job.json")],
                       check=True, cwd=ROOT)
        return json.loads(Path(job["result"]).read_text())


def worker(job_path: Path, console: Console) -> None:
    job = json.loads(job_path.read_text())
    result = {"raw": raw_job, "large": large_job}[job["kind"]](job, console)
    result["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    Path(job["result"]).write_text(json.dumps(result))


def raw_job(job: dict, console: Console) -> dict:
    """--models, in the worker: the raw labeller over the files, timed after a warm-up."""
    t0 = time.perf_counter()
    est = load_estimator(job["spec"], job["dtype"])
    loaded = time.perf_counter() - t0
    files = [(p, read_cut(p, job["max_chars"])) for p in job["files"]]
    meter = Meter([est.model])
    for path, text in sorted(files, key=lambda f: len(f[1]))[:2]:  # untimed warm-up
        run_raw(est, path, text, job["k"])
    meter.reset()
    got, tokens, states, seconds = [], 0, 0, 0.0
    with progress(console, f"{job['name']}: labelling", len(files)) as advance:
        for i, (path, text) in enumerate(files, 1):
            t0 = time.perf_counter()
            scored, labs, _ = run_raw(est, path, text, job["k"])
            seconds += time.perf_counter() - t0
            got.append(labs)
            tokens += len(est.encode(text)[0])  # untimed: raw's own encoding is in its time
            states += len(scored)
            advance(i, Path(path).name)
    return {"model": job["name"], "dtype": dtype_of(est), "n_ctx": est.n_ctx, "window_chars": est.window_chars,
            "load_s": loaded, "seconds": seconds, "files": len(files), "tokens": tokens, "states": states,
            "tokens_read": meter.fed[""], "forward_passes": meter.passes[""], "labels": label_stats(got)}


def compare_models(args, console: Console) -> None:
    files = [str(p) for p in stdlib_files(args.files)]
    rows = []
    for name in args.models.split(","):
        console.print(f"{name}: the raw labeller over {len(files)} files in a fresh process")
        rows.append(in_subprocess({"kind": "raw", "name": name, "spec": spec_of(name, args.test_models),
                                   "dtype": args.dtype, "files": files, "max_chars": args.max_chars, "k": args.k}))
    cut = f"first {args.max_chars} characters of each" if args.max_chars else "whole files"
    table = Table(title=f"The raw labeller, {len(files)} stdlib files ({cut}), K = {args.k}, one process a model",
                  caption="tokens/s: the source's (in each model's own tokens); read/s: what the model read; "
                          "η: mean label tokens, share empty")
    for col in ("model", "dtype", "window", "tokens/s", "read/s", "peak RSS", *(f"η {eta:g}" for eta in ETAS)):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        table.add_row(r["model"], r["dtype"], f"{r['window_chars']:,}", f"{r['tokens'] / r['seconds']:,.0f}",
                      f"{r['tokens_read'] / r['seconds']:,.0f}", f"{r['peak_rss'] / MiB:,.0f} MiB",
                      *(f"{s['mean_tokens']:.2f}, {100 * s['share_empty']:.0f}%" for s in r["labels"].values()))
    console.print(table)
    write(console, args.out, {"models": rows, "files": len(files), "max_chars": args.max_chars, "k": args.k,
                              "torch_threads": torch.get_num_threads(),
                              "timing": "the raw labeller (encode + states + score + labels), one process a "
                                        "model, after a warm-up on the two shortest files; peak RSS: ru_maxrss"})


# --------------------------------------------------------------------------- the large corpus

def source_of(path: Path) -> Source:
    text = path.read_text(encoding="utf-8")
    return Source(path.name, text, hashlib.sha256(text.encode()).hexdigest())


def old_bos(est: Estimator) -> int:
    """The tokens the old scheme put first: a BOS wherever the tokenizer has one."""
    return int(est.tokenizer.bos_token_id is not None)


def old_window_start(est: Estimator, cut: int) -> int:
    """Where the scheme before the editor's window started reading a state at token `cut`: 0 when
    BOS + the state + CAP fit the context, else the first quarter-context grid point that does."""
    room = est.n_ctx - old_bos(est) - est.cap
    quarter = max(1, est.n_ctx // 4)
    return 0 if cut <= room else -(-(cut - room) // quarter) * quarter


def reading(est: Estimator, sources: list[Source], config: LabelConfig) -> dict:
    """From token counts alone: the states, how many the editor's window cut, and what the old
    scheme would have read for them (BOS + the file from each window's start to its last state's
    continuation, one pass per window)."""
    states = window_cut = old = 0
    for s in sources:
        ids, offsets = est.encode(s.text)
        chosen = choose_states(s.rel, s.text, est.tokenizer, config.k, seed=config.seed, where=config.where,
                               ids=ids, offsets=offsets)
        ends: dict[int, int] = {}
        for st in chosen:
            start = old_window_start(est, st.cut)
            ends[start] = max(ends.get(start, 0), min(len(ids), st.cut + est.cap))
        states += len(chosen)
        window_cut += sum(est.window(s.text, st)[0] > 0 for st in chosen)
        old += sum(old_bos(est) + end - start for start, end in ends.items())
    return {"states": states, "states_window_cut": window_cut, "old_scheme_tokens": old}


def large_job(job: dict, console: Console) -> dict:
    """--large, in the worker: label_corpus as `empower-finetune label` runs it, into a fresh directory."""
    t0 = time.perf_counter()
    est = Estimator.load(job["spec"], dtype=DTYPES.get(job["dtype"]))
    loaded = time.perf_counter() - t0
    sources = [source_of(Path(p)) for p in job["files"]]
    config = LabelConfig(job["spec"], rules=LARGE_RULES, etas=LARGE_ETAS)
    meter = Meter([est.model])
    with tempfile.TemporaryDirectory() as out, progress(console, "labelling", len(sources)) as advance:
        t0 = time.perf_counter()
        summary = label_corpus(sources, est, config, Path(out), progress=lambda n, total, rel: advance(n, rel))
        wall = time.perf_counter() - t0
    datasets = {name: {"examples": m["examples"], "mean_tokens": m["mean_completion_tokens"],
                       "share_empty": m["share_empty"]} for name, m in summary.datasets.items()}
    return {"model": job["name"], "dtype": dtype_of(est), "n_ctx": est.n_ctx, "window_chars": est.window_chars,
            "load_s": loaded, "seconds": wall, "source_tokens": summary.tokens, "tokens_read": meter.fed[""],
            "forward_passes": meter.passes[""], "longest_pass": meter.longest[""], "datasets": datasets,
            **reading(est, sources, config)}


def large_corpus(args, console: Console) -> None:
    files = stdlib_files(LARGE_FILES, LARGE_LO, LARGE_HI, packages=False)[:args.limit or None]
    size = sum(p.stat().st_size for p in files)
    name = args.estimator or "memorizer"
    console.print(f"{len(files)} files, {size:,} bytes: the standard library's top-level modules of "
                  f"{LARGE_LO // 1024}-{LARGE_HI // 1024} KB by name, whole; {name} in a fresh process")
    r = in_subprocess({"kind": "large", "name": name, "spec": spec_of(name, args.test_models),
                       "dtype": args.dtype, "files": [str(p) for p in files]})
    target = LARGE_TARGET_S * size / LARGE_TARGET_BYTES
    read_s = r["tokens_read"] / r["seconds"]
    etas = ", ".join(f"{eta:g}" for eta in LARGE_ETAS)
    table = Table(show_header=False, title=f"Labelling {len(files)} files end to end (label_corpus: η {etas}; "
                  f"{', '.join(LARGE_RULES)}), {name} {r['dtype']}, {torch.get_num_threads()} threads")
    table.add_column()
    table.add_column(justify="right")
    for key, value in (
            ("files, bytes", f"{len(files)}, {size:,}"),
            ("source tokens, states", f"{r['source_tokens']:,}, {r['states']:,}"),
            ("the editor's window (context)", f"{r['window_chars']:,} characters ({r['n_ctx']:,} tokens)"),
            ("states' windows cut by it", f"{r['states_window_cut']:,}"),
            ("model load", f"{r['load_s']:.1f} s"),
            ("labelling, wall", f"{r['seconds']:.1f} s"),
            ("source tokens/s", f"{r['source_tokens'] / r['seconds']:,.0f}"),
            ("tokens the estimator read", f"{r['tokens_read']:,} in {r['forward_passes']:,} passes, "
                                          f"the longest {r['longest_pass']:,}"),
            ("tokens read/s, per state", f"{read_s:,.0f}, {r['tokens_read'] / max(1, r['states']):,.0f}"),
            ("peak RSS", f"{r['peak_rss'] / MiB:,.0f} MiB"),
            ("target: 10 min for 1.24 MB, pro rata", f"{target:.0f} s"),
            ("measured ÷ target", f"{r['seconds'] / target:.2f}×"),
            ("before the editor's window it would read",
             f"{r['old_scheme_tokens']:,} tokens, {r['old_scheme_tokens'] / r['tokens_read']:.2f}× of now, "
             f"~{r['old_scheme_tokens'] / read_s:.0f} s at this read speed")):
        table.add_row(key, value)
    console.print(table)
    datasets = Table(title="The datasets")
    for col in ("dataset", "examples", "mean tokens", "empty"):
        datasets.add_column(col, justify="left" if col == "dataset" else "right")
    for dataset, m in r["datasets"].items():
        datasets.add_row(dataset, str(m["examples"]), f"{m['mean_tokens']:.2f}", f"{100 * m['share_empty']:.0f}%")
    console.print(datasets)
    write(console, args.out, {**r, "files": len(files), "bytes": size, "rule": f"stdlib top-level *.py of "
                              f"{LARGE_LO}-{LARGE_HI} bytes, by name, first {LARGE_FILES}",
                              "target_s": target, "measured_over_target": r["seconds"] / target,
                              "torch_threads": torch.get_num_threads()})


# --------------------------------------------------------------------------- main

def write(console: Console, out: Path, data: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2))
    console.print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, help="files (default 200; 40 with a real model)")
    parser.add_argument("--max-chars", type=int, default=1000,
                        help="cut each file to its first N characters (0: whole files)")
    parser.add_argument("--k", type=int, default=8, help="states per file")
    parser.add_argument("--batch", type=int, default=8, help="the chat labeller's batch size")
    parser.add_argument("--group", type=int, default=16,
                        help="files scored together by score_many (finetune/label.py groups 16)")
    parser.add_argument("--test-models", type=Path, default=ROOT / ".cache/test-models")
    parser.add_argument("--estimator", metavar="SPEC", help="a real model instead of the memorizer (e.g. smollm2-135m)")
    parser.add_argument("--dtype", choices=["auto", *DTYPES], default="auto",
                        help="the estimator's dtype (auto: what Estimator.load picks, the faster here)")
    parser.add_argument("--dtypes", metavar="bf16,float32", help="time raw and bare in both, interleaved")
    parser.add_argument("--only", metavar="NAMES", help=f"these labellers (comma-separated, of {','.join(LABELLERS)}; "
                        "default all; raw,bare with --estimator or --dtypes)")
    parser.add_argument("--models", metavar="NAMES", help="the raw labeller of each (memorizer or a spec), "
                        "a fresh process each, e.g. memorizer,smollm2-135m")
    parser.add_argument("--large", action="store_true", help=f"label {LARGE_FILES} whole stdlib modules end to end")
    parser.add_argument("--limit", type=int, help="--large: only the first N files (a smoke check)")
    parser.add_argument("--out", type=Path, help="default bench/out/label[-<what>].json")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # a job of --models or --large
    args = parser.parse_args(argv)
    if args.dtypes and set(args.dtypes.split(",")) != set(DTYPES):
        parser.error(f"--dtypes takes {','.join(DTYPES)}")
    only = set(args.only.split(",")) if args.only else set()
    if only - set(LABELLERS):
        parser.error(f"--only takes names of {', '.join(LABELLERS)}")
    real = args.estimator or any(name != "memorizer" for name in (args.models or "memorizer").split(","))
    args.files = args.files or (40 if real else 200)
    estimator = Path(args.estimator or "memorizer").name
    args.out = args.out or ROOT / "bench/out" / (
        "label-models.json" if args.models else f"label-large-{estimator}.json" if args.large
        else f"label-{estimator}-dtypes.json" if args.dtypes
        else f"label-{estimator}.json" if args.estimator else "label.json")
    return args


def main() -> None:
    args = parse_args()
    transformers.logging.set_verbosity_error()  # "sequence longer than the context": counted instead
    transformers.utils.logging.disable_progress_bar()
    console = Console()
    if not console.is_terminal:
        console.width = 150  # a log file: wide enough for the tables, which 80 columns would wrap
    if args.worker:
        worker(args.worker, console)
    elif args.models:
        compare_models(args, console)
    elif args.large:
        large_corpus(args, console)
    else:
        bench_labellers(args, console)


if __name__ == "__main__":
    main()
