"""Labelling speed: finetune/labels.py's labellers against a reference-style labeller and
against the bare forward pass, on the tiny memorizer (float32, CPU) and local Python files.

    python bench/label.py [--files 200] [--max-chars 1000] [--k 8] [--batch 8] [--group 16] [--check]
                          [--out bench/out/label.json]
    python bench/label.py --estimator smollm2-135m [--dtype bf16] [--files 40] [--only raw,bare]

--estimator runs the same on a real model (a spec: the built-in SmolLM2's HF copy, an HF
directory) in --dtype (bf16 by default, as issue 9 asks; float32 beside it is a flag away), by
default only the raw labeller and the bare forward pass over 40 files: the reference labeller
reads every state's whole rest of the file in one pass each, minutes a file on a real model on
the CPU. Its target is raw ÷ bare forward ≥ 0.7 (labelling costs little beyond reading the
code once). The output goes to bench/out/label-<estimator>.json.

The files are the standard library's modules (the top-level *.py first, then the packages'
*.py one level down, tests left out), sorted, the first N of 1-60 KB, each cut to its first
--max-chars characters (the cut text is what every labeller reads; tokens/s = the cut texts'
tokens ÷ seconds). K states per file come from `choose_states` (uniform, stable boundaries).

The cut stands in for what a real estimator's context holds. The default, 1,000 characters
(~470 tokens), is the longest at which the reproduction's sequence (the chat prompt, the state
and the whole file) still fits the memorizer's 1,024-token context for almost every state,
so the reference does the work the reproduction does (the header line counts the sequences
clipped to the context). At 1,500 characters (~700 tokens) a third of them are clipped: the
reference then reads less than the reproduction would and the chat states are cut to fit,
which shares less of their prompts; on 2026-11-22 that run gave raw ÷ reference 9.7× and
chat ÷ reference 1.8×. The ratios rest on files fitting: the reference reads about K
sequences of the prompt, the state and the file, the raw labeller each file once; on files
many contexts long both need a window per state and raw ÷ reference falls towards 1
(`--max-chars 0` reads whole files).

The labellers, over the same files and states, timed in one run, interleaved group by group
of --group files (the order rotates with each group, so a noisy neighbour slows them all
alike; one pass each, after an untimed warm-up of each on the two shortest files):
1. `raw`: `Estimator(..., "raw")`: the file's tokens and offsets, `choose_states`, `score`,
   then `label(.., "empower", η)` at η = 0.32, 1 and 4 bits. Its time includes encoding and
   choosing the states (its own work; the others are handed them, which favours them).
2. `chat`: `Estimator(..., "chat")`: `score_many` over the group's files, as
   finetune/dataset.py calls it (on the CPU each file's states share their prompt's start:
   one KV cache, cropped back for each state; a continuation is read 8 tokens first and on
   only while its NLL is under the largest η, 4 bits, as the dataset does for the empower
   rule) + the same labels.
2b. `chat, batched` (beside, not a target): the same with `share_prompts=False`: the group's
   states pooled and batched by length (--batch), the way a GPU runs it.
3. reference: what the public reproduction does (`construct_logit_threshold_ds.py`, see
   ../shared/notes/facts.md): batch size 1, the chat framing, one forward pass per state over
   the chat prompt + the state (prefilled as the assistant turn) + the whole rest of the file
   (as much as the context holds), with the logits of every position. Its prompt is the chat
   estimator's own `chat_prefix`, so its labels must equal the chat labeller's.
3b. reference, capped (reported beside, not a target): the same batch-1 passes cut at the
   labellers' CAP (64) continuation tokens, with logits only where they are needed: exactly
   the work the chat labeller does, one sequence a pass. chat ÷ this is what batching alone
   buys; on a compute-bound 2-core CPU that is about nothing (a GPU is where it pays).
4. bare forward pass: `token_nll([bos + ids])` over the very windows `_score_raw` reads for
   those states (one pass when the file fits the context; on the quarter-context grid when it
   does not), nothing else: the cost of reading the code once, as the raw labeller must.

Targets (ratios of tokens/s): raw ÷ reference ≥ 10; chat ÷ reference ≥ 2; raw ÷ bare ≥ 0.7.
Also reported: where the raw labeller's time goes, the tokens each labeller feeds the model,
the labels' mean length and share empty (raw vs chat differ by framing; the reference must
agree with chat up to float32 rounding), and how many chat sequences run past the context.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from finetune.labels import CAP, Estimator, Scored, State, choose_states, label  # noqa: E402
from tests.models import build  # noqa: E402

CHATML = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
          "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
ETAS = (0.32, 1.0, 4.0)
LABELLERS = ("raw", "chat", "batched", "reference", "capped", "bare")
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


def stdlib_files(n: int, lo: int = 1024, hi: int = 60 * 1024) -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idle_test", "site-packages"}
    candidates = sorted(root.glob("*.py")) + sorted(
        p for p in root.glob("*/*.py") if p.parent.name not in skip)
    return [p for p in candidates if lo <= p.stat().st_size <= hi][:n]


def reference_score(est: Estimator, text: str, ids, states, *, capped: bool = False) -> list[Scored]:
    """Batch size 1, chat framing: one forward pass per state, nothing shared. The
    reproduction's way reads the whole rest of the file and computes every logit; `capped`
    reads only CAP continuation tokens and computes only their logits."""
    out = []
    for st in states:
        prefix = est.chat_prefix(text, ids, st)  # the prompt, then the state's tokens
        if capped:
            cont = list(ids[st.cut:st.cut + est.cap])
            (nll,) = est.token_nll([prefix + cont], [len(prefix) - 1])
        else:
            cont = list(ids[st.cut:st.cut + max(est.cap, est.n_ctx - len(prefix))])
            (nll,) = est.token_nll([prefix + cont])
            nll = nll[len(prefix) - 1:]
        out.append(Scored(st, tuple(cont[:est.cap]), tuple(nll[:est.cap])))
    return out


def raw_windows(est: Estimator, ids, states) -> list[list[int]]:
    """The sequences `_score_raw` feeds the model for these states."""
    by_window: dict[int, list[int]] = {}
    for st in states:
        by_window.setdefault(est.window_start(st.cut), []).append(st.cut)
    return [est.bos + list(ids[start:min(len(ids), max(cuts) + est.cap)])
            for start, cuts in sorted(by_window.items())]


def bare_forward(est: Estimator, windows: list[list[int]]) -> None:
    for seq in windows:
        est.token_nll([seq])


def labels_of(scored: list[Scored]) -> dict[float, list[int]]:
    return {eta: [label(s, "empower", eta).n_tokens for s in scored] for eta in ETAS}


@dataclass
class Doc:
    path: Path
    text: str
    ids: list[int]
    offsets: list
    states: list[State]
    windows: list[list[int]]
    chat_lengths: list[int] = field(default_factory=list)  # prompt + state + CAP continuation
    clipped: int = 0  # states whose reference sequence (prompt + state + the rest) overflows the context


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--max-chars", type=int, default=1000,
                        help="cut each file to its first N characters (0: whole files)")
    parser.add_argument("--k", type=int, default=8, help="states per file")
    parser.add_argument("--batch", type=int, default=8, help="the chat labeller's batch size")
    parser.add_argument("--group", type=int, default=16,
                        help="files scored together by score_many (finetune/dataset.py groups 16)")
    parser.add_argument("--models", type=Path, default=ROOT / ".cache/test-models")
    parser.add_argument("--estimator", metavar="SPEC", help="a real model instead of the memorizer (e.g. smollm2-135m)")
    parser.add_argument("--dtype", choices=["bf16", "float32"], help="the estimator's dtype (default bf16; the memorizer float32)")
    parser.add_argument("--only", metavar="NAMES", help=f"these labellers (comma-separated, of {','.join(LABELLERS)}; "
                        "default all; raw,bare with --estimator)")
    parser.add_argument("--out", type=Path, help="default bench/out/label.json (label-<estimator>.json)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    console = Console()
    transformers.logging.set_verbosity_error()  # "sequence longer than the context": counted below
    transformers.utils.logging.disable_progress_bar()

    only = args.only or ("raw,bare" if args.estimator else ",".join(LABELLERS))
    labellers = tuple(n for n in LABELLERS if n in only.split(","))
    if not labellers or set(only.split(",")) - set(LABELLERS):
        parser.error(f"--only takes names of {', '.join(LABELLERS)}")
    dtype = {"bf16": torch.bfloat16, "float32": torch.float32}[args.dtype or ("bf16" if args.estimator else "float32")]
    if args.estimator:
        from coach.specs import resolve

        path = resolve(args.estimator, engine="hf").path
        args.files = 40 if args.files == parser.get_default("files") else args.files
        args.out = args.out or ROOT / f"bench/out/label-{Path(args.estimator).name}.json"
    else:
        path = build(args.models).memorizer
    args.out = args.out or ROOT / "bench/out/label.json"
    what = f"{args.estimator or 'memorizer'} {str(dtype).removeprefix('torch.')}"
    tokenizer = AutoTokenizer.from_pretrained(path)
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = CHATML  # the memorizer has none
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).eval()
    raw = Estimator(model, tokenizer, "raw")
    # As finetune/dataset.py sets it when the empower rule alone is asked for: reading stops past
    # the largest η (the labels at every η are unchanged; the check below compares them).
    chat = Estimator(model, tokenizer, "chat", share_prompts=True, stop_bits=max(ETAS))
    batched = Estimator(model, tokenizer, "chat", batch_size=args.batch, share_prompts=False)
    ref = Estimator(model, tokenizer, "chat", batch_size=1)
    assert raw.cap == chat.cap == ref.cap == CAP

    # ---- the files, their tokens and states (untimed: the chat labellers are handed them)
    docs = []
    for path in stdlib_files(args.files):
        text = path.read_text(encoding="utf-8")
        text = text[:args.max_chars] if args.max_chars else text
        ids, offsets = raw.encode(text)
        states = choose_states(str(path), text, tokenizer, args.k, ids=ids, offsets=offsets)
        doc = Doc(path, text, ids, offsets, states, raw_windows(raw, ids, states))
        prefixes = [len(chat.chat_prefix(text, ids, st)) for st in states]
        doc.chat_lengths = [n + min(CAP, len(ids) - st.cut) for n, st in zip(prefixes, states)]
        doc.clipped = sum(n + len(ids) - st.cut > raw.n_ctx for n, st in zip(prefixes, states))
        docs.append(doc)
    groups = [docs[i:i + args.group] for i in range(0, len(docs), args.group)]
    n_tokens = sum(len(d.ids) for d in docs)
    n_states = sum(len(d.states) for d in docs)
    # What each labeller feeds the model (padding included), counted at the model's forward.
    fed, passes, running = dict.fromkeys(labellers, 0), dict.fromkeys(labellers, 0), [""]
    forward = model.forward

    def counted(input_ids, **kw):
        fed[running[0]] += input_ids.numel()
        passes[running[0]] += 1
        return forward(input_ids=input_ids, **kw)
    model.forward = counted
    over_ctx_chat = sum(n > raw.n_ctx for d in docs for n in d.chat_lengths)
    over_ctx_files = sum(any(raw.window_start(st.cut) > 0 for st in d.states) for d in docs)
    cut = f"first {args.max_chars} characters of each" if args.max_chars else "whole files"
    console.print(f"{len(docs)} files ({cut}), {n_tokens} tokens, "
                  f"{n_states} states (K = {args.k}); context {raw.n_ctx}: {over_ctx_files} files read in "
                  f"windows, {over_ctx_chat} of {n_states} chat sequences longer than it, "
                  f"{sum(d.clipped for d in docs)} reference sequences clipped to it; "
                  f"torch threads {torch.get_num_threads()}")

    # ---- the labellers, one group of files at a time
    part = {"encode": 0.0, "choose states": 0.0, "score (forward)": 0.0, "labels (3 η)": 0.0}

    def run_raw(d: Doc):
        t0 = time.perf_counter()
        ids, offsets = raw.encode(d.text)
        t1 = time.perf_counter()
        states = choose_states(str(d.path), d.text, tokenizer, args.k, ids=ids, offsets=offsets)
        t2 = time.perf_counter()
        scored = raw.score(d.text, states, ids)
        t3 = time.perf_counter()
        out = labels_of(scored)
        t4 = time.perf_counter()
        return scored, out, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)

    def run_group(name: str, group: list[Doc]):
        """Per file: (scored, labels) and, for raw, the parts' seconds; None for bare."""
        if name == "raw":
            return [run_raw(d) for d in group]
        if name in ("chat", "batched"):
            many = (chat if name == "chat" else batched).score_many([(d.text, d.ids, d.states) for d in group])
            return [(scored, labels_of(scored)) for scored in many]
        if name == "reference":
            return [(s := reference_score(ref, d.text, d.ids, d.states), labels_of(s)) for d in group]
        if name == "capped":
            return [(s := reference_score(ref, d.text, d.ids, d.states, capped=True), labels_of(s)) for d in group]
        for d in group:
            bare_forward(raw, d.windows)
        return None

    warm = sorted(docs, key=lambda d: len(d.ids))[:2]
    for name in labellers:  # untimed warm-up: the two shortest files, once each
        running[0] = name
        run_group(name, warm)
    for name in labellers:
        fed[name] = passes[name] = 0

    seconds = dict.fromkeys(labellers, 0.0)
    got: dict[str, list[dict[float, list[int]]]] = {name: [] for name in labellers if name != "bare"}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("labelling (interleaved)", total=len(docs))
        for i, group in enumerate(groups):
            for name in labellers[i % len(labellers):] + labellers[:i % len(labellers)]:
                running[0] = name
                t0 = time.perf_counter()
                results = run_group(name, group)
                seconds[name] += time.perf_counter() - t0
                if results is None:
                    continue
                for d, result in zip(group, results, strict=True):
                    scored, labs = result[:2]
                    if name == "raw":
                        assert [s.state for s in scored] == d.states, "choose_states is not reproducible"
                        for key, t in zip(part, result[2]):
                            part[key] += t
                    full = [min(CAP, len(d.ids) - s.state.cut) for s in scored]
                    assert [s.state for s in scored] == d.states and all(
                        len(s.nll) == len(s.token_ids) and (len(s.nll) <= n if name == "chat" else len(s.nll) == n)
                        for s, n in zip(scored, full)), name
                    assert all(len(v) == len(d.states) for v in labs.values()), name
                    got[name].append(labs)
            progress.advance(task, len(group))

    # ---- results
    tps = {name: n_tokens / seconds[name] for name in labellers}
    ratios = {key: tps[a] / tps[b] for key, (a, b, _) in TARGETS.items() if a in tps and b in tps}
    info = {key: tps[a] / tps[b] for key, (a, b) in INFO.items() if a in tps and b in tps}
    passed = {key: ratios[key] >= TARGETS[key][2] for key in ratios}

    table = Table(title=f"Labelling {len(docs)} stdlib files ({cut}, {n_tokens} tokens), K = {args.k}, "
                        f"{what}, {torch.get_num_threads()} threads")
    for col in ("labeller", "seconds", "tokens/s", "forward passes", "tokens fed to the model"):
        table.add_column(col, justify="left" if col == "labeller" else "right")
    names = {"raw": "raw (encode + states + score + labels)",
             "chat": "chat, prompts shared (KV cache, file by file)",
             "batched": f"chat, batch {args.batch}, {args.group} files pooled",
             "reference": "reference (reproduction: chat, batch 1, the rest of the file)",
             "capped": "reference capped at 64 tokens (chat's tokens, batch 1)", "bare": "bare forward (raw's windows)"}
    for name in labellers:
        table.add_row(names[name], f"{seconds[name]:.2f}", f"{tps[name]:,.0f}", str(passes[name]), f"{fed[name]:,}")
    console.print(table)

    targets = Table(title=f"Targets (one run, timed interleaved by groups of {args.group} files)")
    for col in ("ratio of tokens/s", "measured", "target", ""):
        targets.add_column(col, justify="left" if col == "ratio of tokens/s" else "right")
    for key in ratios:
        at_least = TARGETS[key][2]
        targets.add_row(key, f"{ratios[key]:.2f}×", f"≥ {at_least:g}×",
                        "[green]PASS[/]" if passed[key] else "[red]FAIL[/]")
    for key, value in info.items():
        targets.add_row(f"[dim]{key}[/]", f"[dim]{value:.2f}×[/]", "[dim]—[/]", "")
    console.print(targets)

    spent = sum(part.values())
    breakdown = Table(title="Where the raw labeller's time goes")
    for col in ("part", "seconds", "share"):
        breakdown.add_column(col, justify="left" if col == "part" else "right")
    for key, t in part.items():
        breakdown.add_row(key, f"{t:.3f}", f"{100 * t / spent:.1f}%")
    console.print(breakdown)

    def summary(name: str, eta: float) -> dict:
        lengths = [n for labs in got[name] for n in labs[eta]]
        return {"mean_tokens": statistics.fmean(lengths), "share_empty": sum(n == 0 for n in lengths) / len(lengths),
                "share_capped": sum(n == CAP for n in lengths) / len(lengths)}
    stats = {name: {str(eta): summary(name, eta) for eta in ETAS} for name in got}
    agree = {str(eta): statistics.fmean(a == b for labs_c, labs_r in zip(got["chat"], got["reference"])
                                        for a, b in zip(labs_c[eta], labs_r[eta])) for eta in ETAS} \
        if "chat" in got and "reference" in got else {}
    labels = Table(title=f"Labels ({n_states} states; raw and chat differ by framing)")
    shown = [n for n in ("raw", "chat") if n in stats]
    labels.add_column("η bits", justify="right")
    for name in shown:
        labels.add_column(f"{name}: mean tokens", justify="right")
        labels.add_column(f"{name}: empty", justify="right")
    if agree:
        labels.add_column("reference = chat", justify="right")
    for eta in ETAS:
        cells = [f"{eta:g}"]
        for name in shown:
            st = stats[name][str(eta)]
            cells += [f"{st['mean_tokens']:.2f}", f"{100 * st['share_empty']:.0f}%"]
        labels.add_row(*cells, *([f"{100 * agree[str(eta)]:.1f}%"] if agree else []))
    console.print(labels)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "ratios": ratios, "ratios_beside": info, "targets": {k: v[2] for k, v in TARGETS.items()}, "passed": passed,
        "seconds": seconds, "tokens_per_s": tps, "forward_passes": passes, "tokens_fed": fed,
        "raw_breakdown_s": part, "labels": stats, "reference_agrees_with_chat": agree,
        "estimator": args.estimator or "memorizer", "dtype": str(dtype), "files": len(docs), "max_chars": args.max_chars, "tokens": n_tokens, "states": n_states, "k": args.k,
        "batch": args.batch, "group": args.group, "cap": CAP, "n_ctx": raw.n_ctx, "files_over_context": over_ctx_files, "reference_clipped": sum(d.clipped for d in docs),
        "chat_sequences_over_context": over_ctx_chat, "torch_threads": torch.get_num_threads(),
        "timing": "one pass, interleaved group by group (order rotated), after a warm-up of each"}, indent=2))
    console.print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    if args.check and not all(passed.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
