"""Training speed and memory, on the tiny test model and on the real built-in base; and the whole
`empower-finetune DIR` on real code, as a person runs it.

    python bench/train.py [--models memorizer,smollm2-135m] [--steps 20] [--real-steps 2]
                          [--base SPEC | --random-config NAME_OR_DIR] [--dataset DIR] [--threads N]
    python bench/train.py --pipeline [--files 45] [--keep DIR]
    (results: bench/out/train.json, bench/out/train-pipeline.json and .log)

1. Backends and models (the default). For each model (the tiny memorizer of tests/models.py and
   the built-in smollm2-135m's transformers copy, or --base / --random-config) and each backend,
   `transformers` (+ PEFT) and `unsloth`, one LoRA run through `finetune.train.train` with the
   schedule it chooses here (finetune/schedule.py: rows per pass, length, checkpointing) and
   --steps optimizer steps (--real-steps for a real model: a CPU step of 8 rows takes ~10 s), each
   in a fresh process (`--worker`): unsloth patches transformers when imported, and peak memory is
   a per-process figure. Reported: training tokens (no padding) per second of training steps, the
   peak memory (on CUDA `torch.cuda.max_memory_allocated`, on the CPU the process's maximum
   resident set, `resource.getrusage`) beside the peak the plan states, and measured ÷ stated
   (target ≤ 1: the stated peak is a bound). Where CUDA or unsloth is missing, unsloth's row says
   why. The data: the test corpus labelled by the memorizer (rule empower, η = 0.32), or
   --dataset. --random-config: a randomly initialised model of a real architecture (a preset:
   smollm2-135m, qwen2.5-0.5b; a config.json directory; a cached Hub id), with the test tokenizer,
   for GPU timings without downloading weights.
2. --pipeline: `python -m finetune.cli CODE` with every default (base and estimator smollm2-135m,
   η finetune.rules.DEFAULT_ETA) on the standard library's 45 smallest top-level modules of
   2.5-16 KB (286 KB; issue 17's "45 small files, about 290 KB"), in a subprocess with its own user directories and its
   output sent to a file, as `empower-finetune DIR > log` would be: the wall time and peak
   resident memory of the whole command (os.wait4, what `/usr/bin/time -v` reports), each
   stage's time (pipeline.json) beside the plan's estimate, the stated peak beside the measured
   one, and how many progress lines the log got. Targets (issue 17): peak under 6 GB, about 20
   minutes in all on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python bench/train.py` from anywhere: tests.models, finetune

BACKENDS = ("transformers", "unsloth")
# Architectures for --random-config without a config file (values from the models' config.json).
PRESETS = {
    "smollm2-135m": ("llama", dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                   num_attention_heads=9, num_key_value_heads=3, vocab_size=49152,
                                   max_position_embeddings=8192, rope_theta=100000.0, tie_word_embeddings=True,
                                   rms_norm_eps=1e-5)),
    "qwen2.5-0.5b": ("qwen2", dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                   num_attention_heads=14, num_key_value_heads=2, vocab_size=151936,
                                   max_position_embeddings=32768, rope_theta=1000000.0, tie_word_embeddings=True,
                                   rms_norm_eps=1e-6)),
}
console = Console()


def test_models():
    from tests.models import build

    return build(Path(os.environ.get("EMPOWER_TEST_MODELS", ROOT / ".cache" / "test-models")))


def default_dataset(work: Path) -> Path:
    """The test corpus labelled by the memorizer with the real labeller."""
    from finetune import corpus
    from finetune.label import LabelConfig, Source, label_corpus
    from finetune.estimator import Estimator

    models = test_models()
    code = work / "code"
    code.mkdir(parents=True)
    for p in models.memorized:
        shutil.copy(p, code / f"{p.parent.name if p.name == 'solution.py' else p.stem}.py")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in ("bisect", "colorsys", "fnmatch", "textwrap", "heapq", "shlex"):
        (code / f"{name}_copy.py").write_text((stdlib / f"{name}.py").read_text()[:3000])
    found = corpus.scan(code)
    estimator = Estimator.load(str(models.memorizer), "raw")
    config = LabelConfig(str(models.memorizer), etas=(0.32,), k=8)
    label_corpus([Source(f.rel, f.text, f.sha256) for f in found.files], estimator, config, work / "data")
    return work / "data" / "empower-eta0.32"


def random_model(name: str, work: Path) -> Path:
    """A randomly initialised model of architecture `name`, saved with the test tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, CONFIG_MAPPING

    if name in PRESETS:
        kind, values = PRESETS[name]
        cfg = CONFIG_MAPPING[kind](**values)
    else:
        try:  # a directory, or a Hub id (its config.json only)
            cfg = AutoConfig.from_pretrained(name)
        except Exception as exc:
            raise SystemExit(f"bench/train.py: no config for {name!r} ({type(exc).__name__}); use a directory "
                             f"with a config.json or a preset: {', '.join(PRESETS)}") from None
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16 if torch.cuda.is_available() else torch.float32)
    out = work / "random-model"
    model.save_pretrained(out)
    tokenizer = test_models().tokenizer
    for f in tokenizer.iterdir():
        shutil.copy(f, out / f.name)
    params = sum(p.numel() for p in model.parameters())
    console.print(f"random {name}: {params / 1e6:,.1f}M parameters in {out}")
    return out


# ------------------------------------------------------------------ one backend, in its own process


def worker(args) -> int:
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    from finetune.train import TrainConfig, TrainError, train

    config = TrainConfig(max_steps=args.steps, batch_size=args.batch_size, max_length=args.max_length,
                         eval_share=0.0, save_every=args.steps, backend=args.worker, seed=0)
    import torch

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    try:
        result = train(args.dataset, args.base, args.run, config, Console(stderr=True, quiet=True))
    except TrainError as exc:
        args.result.write_text(json.dumps({"backend": args.worker, "error": str(exc)}))
        return 0
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    plan = json.loads((args.run / "config.json").read_text())["resolved"]
    args.result.write_text(json.dumps({
        "backend": args.worker, "device": torch.cuda.get_device_name() if cuda else f"cpu ({torch.get_num_threads()} threads)",
        "tokens_per_s": result.tokens_per_s, "peak_memory_bytes": peak, "stated_peak_bytes": plan["peak_bytes"],
        "peak_memory_kind": "cuda max_memory_allocated" if cuda else "max RSS",
        "plan": {k: plan[k] for k in ("batch_size", "grad_accum", "max_length", "checkpointing")},
        "steps": result.steps, "train_loss": result.train_loss, "examples": result.train_examples,
        "wall_s": round(time.perf_counter() - start, 2)}))
    return 0


def run_backend(backend: str, base, steps: int, args, work: Path) -> dict:
    tag = f"{backend}-{Path(str(base)).name}"
    result = work / f"{tag}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", backend, "--dataset", str(args.dataset),
           "--base", str(base), "--run", str(work / f"run-{tag}"), "--result", str(result), "--steps", str(steps)]
    for flag, value in (("--batch-size", args.batch_size), ("--max-length", args.max_length), ("--threads", args.threads)):
        if value:
            cmd += [flag, str(value)]
    with console.status(f"training {base} with {backend} ({steps} steps)…"):
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0 or not result.is_file():
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        return {"backend": backend, "error": f"the worker failed: {tail}"}
    return json.loads(result.read_text())


def unsloth_here() -> str | None:
    """None when the unsloth backend can run here; otherwise why not."""
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU"
    from finetune.base_model import probe_unsloth

    return probe_unsloth()


def backends(args, work: Path) -> int:
    if args.random_config:
        models = [(args.random_config, random_model(args.random_config, work), args.steps)]
    elif args.base:
        models = [(args.base, args.base, args.steps)]
    else:
        models = [(name, test_models().memorizer if name == "memorizer" else name,
                   args.steps if name == "memorizer" else args.real_steps) for name in args.models.split(",")]
    given = args.dataset is not None
    if not given:
        with console.status("labelling the test corpus with the memorizer…"):
            args.dataset = default_dataset(work / "labels")
    examples = sum(1 for _ in (Path(args.dataset) / "data.jsonl").open())
    why = unsloth_here()
    results = []
    for name, base, steps in models:
        for backend in BACKENDS:
            row = (run_backend(backend, base, steps, args, work) if backend == "transformers" or why is None
                   else {"backend": backend, "error": f"not available here ({why})"})
            results.append({"model": name, **row})
    table = Table(title=f"LoRA training on {examples} examples (the test corpus), the schedule's rows and length")
    for column in ("model", "backend", "device", "rows × length", "tokens/s", "peak memory", "stated peak",
                   "measured ÷ stated", "steps", "wall s"):
        table.add_column(column, justify="left" if column in ("model", "backend", "device") else "right")
    for r in results:
        if "error" in r:
            table.add_row(r["model"], r["backend"], f"[yellow]{r['error']}", *[""] * 7)
            continue
        plan = r["plan"]
        table.add_row(r["model"], r["backend"], r["device"],
                      f"{plan['batch_size']}×{plan['grad_accum']} × {plan['max_length']}"
                      + (" ckpt" if plan["checkpointing"] else ""),
                      f"{r['tokens_per_s']:,.0f}" if r["tokens_per_s"] else "?",
                      f"{r['peak_memory_bytes'] / 2**20:,.0f} MiB", f"{r['stated_peak_bytes'] / 2**20:,.0f} MiB",
                      f"{r['peak_memory_bytes'] / r['stated_peak_bytes']:.2f}", str(r["steps"]), f"{r['wall_s']:.1f}")
    console.print(table)
    for name, _, _ in models:
        ok = [r for r in results if r["model"] == name and "error" not in r and r.get("tokens_per_s")]
        if len(ok) == 2:
            console.print(f"{name}: unsloth ÷ transformers: {ok[1]['tokens_per_s'] / ok[0]['tokens_per_s']:.2f}× "
                          f"tokens/s, {ok[1]['peak_memory_bytes'] / ok[0]['peak_memory_bytes']:.2f}× peak memory")
    write(args.out, {"models": [m[0] for m in models], "random_init": bool(args.random_config),
                     "dataset": str(args.dataset) if given else "the test corpus, labelled by the memorizer (η = 0.32)",
                     "examples": examples, "steps": args.steps, "real_steps": args.real_steps,
                     "threads": args.threads, "results": results})
    return 0


# ------------------------------------------------------------------ the whole command on real code


def small_stdlib_files(n: int) -> list[Path]:
    """The standard library's n smallest top-level modules of 2.5-16 KB (by size, then name)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    found = [p for p in root.glob("*.py") if 2500 <= p.stat().st_size <= 16 * 1024]
    return sorted(found, key=lambda p: (p.stat().st_size, p.name))[:n]


def pipeline(args, work: Path) -> int:
    from coach.progress import clock

    code = work / "stdlib"
    code.mkdir()
    files = small_stdlib_files(args.files)
    for f in files:
        shutil.copy(f, code / f.name)
    size = sum(f.stat().st_size for f in files)
    run, log = (args.keep or work) / "run", work / "run.log"
    env = {**os.environ, "EMPOWER_CONFIG": str(work / "user" / "config.toml"),
           "XDG_DATA_HOME": str(work / "user" / "data"), "COLUMNS": "160"}
    console.print(f"empower-finetune {code} --out {run}: {len(files)} files, {size / 1000:,.0f} KB; the output "
                  f"goes to {log} (a few lines a minute)")
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "finetune.cli", str(code), "--out", str(run)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    text = log.read_text()
    args.out.parent.mkdir(parents=True, exist_ok=True)  # bench/out/ is not in a fresh clone
    shutil.copy(log, args.out.with_suffix(".log"))
    if os.waitstatus_to_exitcode(status) != 0:
        console.print(text[-3000:])
        raise SystemExit(f"bench/train.py: empower-finetune failed ({os.waitstatus_to_exitcode(status)})")
    state = json.loads((run / "pipeline.json").read_text())
    plan = state["plan"]
    trained = json.loads((run / "train" / "config.json").read_text())
    peak = usage.ru_maxrss * 1024
    table = Table(title=f"empower-finetune on {len(files)} stdlib files ({size / 1000:,.0f} KB), defaults, output to a file")
    for column in ("stage", "measured", "planned", "measured ÷ planned", "what"):
        table.add_column(column, justify="left" if column in ("stage", "what") else "right")
    planned = {"label": plan.get("label_seconds"), "train": plan["train"]["seconds"], "export": plan.get("export_seconds")}
    for stage in ("scan", "plan", "label", "train", "export", "register"):
        took = state["stages"].get(stage, {}).get("seconds")
        est = planned.get(stage)
        table.add_row(stage, clock(took) if took is not None else "?", clock(est) if est else "",
                      f"{took / est:.2f}" if took and est else "", STAGE_NOTES.get(stage, ""))
    console.print(table)
    lines = sum(1 for line in text.splitlines() if "left" in line)
    results = {
        "files": len(files), "bytes": size, "wall_s": round(wall, 1), "peak_rss_bytes": peak,
        "stated_peak_bytes": plan["train"]["peak_bytes"], "planned_s": plan["seconds"],
        "stages_s": {k: v.get("seconds") for k, v in state["stages"].items()},
        "plan": plan["train"], "progress_lines": lines,
        "eval_loss_before": trained.get("eval_loss_before"), "eval_loss": trained.get("eval_loss"),
        # The run's one label set, whatever the default η is now.
        "labels": {m.parent.name: json.loads(m.read_text())["share_empty"]
                   for m in sorted((run / "data").glob("*/manifest.json"))}}
    console.print(f"wall {clock(wall)} (planned {clock(plan['seconds'])}; target about 20 min: "
                  f"{wall / 1200:.2f}× of it); peak resident memory {peak / 2**30:.2f} GB (stated "
                  f"{plan['train']['peak_bytes'] / 2**30:.2f} GB: measured ÷ stated {peak / plan['train']['peak_bytes']:.2f}; "
                  f"target under 6 GB: {peak / (6 * 2**30):.2f}× of it); {lines} progress lines with a time left in the log")
    console.print(f"held-out loss {trained.get('eval_loss_before'):.3f} → {trained.get('eval_loss'):.3f} nats per "
                  f"completion token ({len(trained['data']['eval_sources'])} files never trained on)")
    write(args.out, results)
    return 0


STAGE_NOTES = {"plan": "states, served prompts, a few timed training steps",
               "label": "the estimator reads each state's editor window", "train": "LoRA, the schedule planned",
               "export": "merge, f16 and q4_k_m GGUF"}


def write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    console.print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="memorizer,smollm2-135m",
                   help="models to train side by side: memorizer (the tiny test model) and model specs")
    p.add_argument("--base", help="one model to adapt instead of --models")
    p.add_argument("--random-config", metavar="NAME_OR_DIR",
                   help=f"a randomly initialised model of this config ({', '.join(PRESETS)}, a directory or Hub id)")
    p.add_argument("--dataset", type=Path, help="a labelled dataset directory (default: the test corpus, labelled)")
    p.add_argument("--steps", type=int, default=20, help="optimizer steps (the tiny model; --base; --random-config)")
    p.add_argument("--real-steps", type=int, default=2, help="optimizer steps of a real model in --models")
    p.add_argument("--batch-size", type=int, default=None, help="rows per pass (default: the schedule's)")
    p.add_argument("--max-length", type=int, default=None, help="tokens per row (default: the schedule's)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--pipeline", action="store_true", help="the whole empower-finetune DIR on real code instead")
    p.add_argument("--files", type=int, default=45, help="--pipeline: how many standard-library files")
    p.add_argument("--keep", type=Path, help="--pipeline: keep the run directory here")
    p.add_argument("--out", type=Path)
    p.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    p.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.base and args.random_config:
        p.error("--base or --random-config, not both")
    args.out = args.out or ROOT / ("bench/out/train-pipeline.json" if args.pipeline else "bench/out/train.json")
    with tempfile.TemporaryDirectory(prefix="empower-bench-train-") as tmp:
        return pipeline(args, Path(tmp)) if args.pipeline else backends(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
