"""One command: from a directory of your code to an assistant trained on it, ready in the editor.

    empower-finetune DIR --base SPEC [--estimator SPEC] [--eta BITS] [--rule RULE] [--out RUN_DIR] [--name NAME]

scan -> label -> train -> export -> register, one row per stage in one display. The base is the
transformers model to adapt; the estimator (default: the base) measures what is obvious in your
code. RUN_DIR (default ./empower-runs/<DIR's name>) keeps every stage's output:

    corpus.json     scan: the files learnt from (path, sha256), and what was left out and why
    data/           label: data/<rule[-etaX]>/data.jsonl + manifest.json (finetune/label.py);
                    data/.shards/ the estimator's scores, reused by any rule and η
    train/          train: finetune/train.py's run (adapter/, checkpoints/, metrics.jsonl, loss.png)
    export/         export: adapter/, merged/, model-f16.gguf, model-q4_k_m.gguf (finetune/export.py)
    pipeline.json   the resolved config, and the inputs each stage ran on

The model is then registered under NAME (default <DIR's name>-eta<η>, coach/registry.py), so
`empower-tui FILE --model NAME` serves it, in the prompt format it was trained in. What is
registered: the f16 GGUF for a small model (its f16 file under 1 GB: quantization costs a small
model most and saves it least), the q4_k_m GGUF for a larger one, the adapter where no GGUF can
be written (an architecture the GGUF writer does not know).

Run it again and every stage whose output is there and still valid is kept: label when its
manifest holds this run's config and the corpus is the one it labelled, train when its
config.json says finished on these labels with these settings (an unfinished run is resumed
from its newest checkpoint), export when each file was made from this adapter. Changed code is
labelled and trained again (the old training run is moved to train.previous). Settings that
change what the name means (η, the rule, the base, the training settings) need another
--out. Ctrl+C exits 130 and says what was kept; the same command goes on from there.
"""

from __future__ import annotations

import gc
import hashlib
import os
import resource
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

from coach.atomic import write_json
from coach.types import first_line
from finetune.board import Board, LineSink, train_callback
from finetune.run_config import (RUNS, PipelineConfig, PipelineError, as_saved, check_run_dir, configure,
                                 keep_out_of_git, parser, read_json)

STAGES = ("scan", "plan", "label", "train", "export", "register")
SMALL_MODEL_BYTES = 1_000_000_000  # an f16 GGUF under this is registered as it is, larger: q4_k_m


def dataset_name(rule: str, eta: float) -> str:
    from finetune.label import dataset_name as name

    return name(rule, eta if rule == "empower" else None)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------ the run


class Pipeline:
    def __init__(self, config: PipelineConfig, run_dir: Path, console, out=None):
        from rich.console import Console

        self.config, self.run_dir, self.console = config, run_dir, console
        self.out = out or Console()  # stdout: how to use the model
        self.board = Board(console, STAGES)
        self.state = read_json(run_dir / "pipeline.json")
        self.state.setdefault("stages", {})
        self.kept: list[str] = []  # what an interrupted run leaves, in words
        self.corpus = None
        self.dataset: Path | None = None
        self.exported: dict[str, Path] = {}
        self.trained = None  # the finished run, as finetune/export.py reads it
        self.registered: tuple[str, Path] | None = None  # name, spec
        self.notices: list[str] = []
        self.run_plan = None  # finetune/plan.py's RunPlan, once made
        self.where = ""  # how the run directory was chosen, when not by --out

    # ---- bookkeeping
    def save(self) -> None:
        self.state["config"] = as_saved(asdict(self.config))
        write_json(self.run_dir / "pipeline.json", self.state)

    def record(self, stage: str, **values) -> None:
        self.state["stages"].setdefault(stage, {}).update(as_saved(values))
        self.save()

    def notice(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

    # ---- the stages
    def run(self) -> None:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the rows show the progress; tqdm bars would cut into them
        try:
            with self.board.live:
                try:
                    for stage in STAGES:
                        started = time.perf_counter()
                        getattr(self, f"stage_{stage}")()
                        gc.collect()  # a stage's models go before the next one loads its own
                        # peak_rss: the process's peak resident memory so far (bench/train.py reads both)
                        self.record(stage, seconds=round(time.perf_counter() - started, 1),
                                    peak_rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
                except KeyboardInterrupt:
                    self.board.stop_running("interrupted")
                    raise
                except BaseException:
                    self.board.stop_running("failed")
                    raise
        finally:
            if self.corpus is not None:
                self.console.print(self.board)

    def stage_scan(self) -> None:
        from finetune import corpus

        b = self.board
        b.start("scan", f"reading {self.config.dir}")
        try:
            found = corpus.scan(self.config.dir, langs=self.config.langs,
                                progress=lambda n, total: b.update("scan", done=n, total=total))
        except corpus.ScanError as exc:
            b.finish("scan", "failed", str(exc))
            raise PipelineError(str(exc)) from None
        self.corpus = found
        self.notice(f"run directory: [bold]{self.run_dir}[/]{self.where}; the model's name: [bold]{self.config.name}[/]")
        listing = {"root": str(found.root), "source": found.source,
                   "files": [{"rel": f.rel, "sha256": f.sha256} for f in found.files],
                   "skipped": [{"rel": s.rel, "reason": s.reason, "detail": s.detail} for s in found.skipped]}
        previous = read_json(self.run_dir / "corpus.json")
        write_json(self.run_dir / "corpus.json", listing)
        lines = sum(len(f.text.splitlines()) for f in found.files)
        what = (f"{len(found.files)} file{'s' * (len(found.files) != 1)}, {lines:,} lines"
                + (f"; {len(found.skipped)} left out ({', '.join(f'{n} {r}' for r, n in found.counts().items())})"
                   if found.skipped else ""))
        b.finish("scan", "kept" if previous.get("files") == listing["files"] else "done",
                 what + (" (unchanged)" if previous.get("files") == listing["files"] else ""))

    def stage_plan(self) -> None:
        from finetune import plan
        from finetune.train import TrainConfig
        from finetune.train_data import TrainError

        b = self.board
        saved = self.state.get("plan")
        b.start("plan", "measuring this machine" if not saved else "")
        try:
            run, record = plan.make(self.config, self.corpus.files, TrainConfig(**self.config.train), saved)
        except TrainError as exc:
            b.finish("plan", "failed")
            raise PipelineError(str(exc)) from None
        self.run_plan = run
        self.state["plan"] = record
        self.save()
        for line in run.lines():
            self.notice(line)
        b.planned.update(label=run.label_seconds, train=run.train.seconds, export=run.export_seconds)
        # kept: this machine's speed was measured by an earlier run of this directory
        b.finish("plan", "done" if run.measured else "kept", run.summary())

    def corpus_fingerprint(self) -> str:
        h = hashlib.sha256()
        for f in self.corpus.files:
            h.update(f"{f.rel}\0{f.sha256}\n".encode())
        return h.hexdigest()

    def label_config(self):
        from finetune.label import LabelConfig

        c = self.config
        return LabelConfig(c.estimator, c.framing, c.format, (c.rule,), (c.eta,), c.k, "uniform", c.train.get("seed", 0))

    def stage_label(self) -> None:
        from finetune.label import Source, label_corpus, shard_path
        from finetune.estimator import Estimator

        b, c = self.board, self.config
        config = self.label_config()
        data = self.run_dir / "data"
        self.dataset = data / dataset_name(c.rule, c.eta)
        inputs = {"label_config": asdict(config), "corpus": self.corpus_fingerprint()}
        manifest = read_json(self.dataset / "manifest.json")
        if (self.state["stages"].get("label", {}).get("inputs") == as_saved(inputs)
                and manifest.get("config") == as_saved(asdict(config)) and (self.dataset / "data.jsonl").is_file()):
            b.start("label")
            b.finish("label", "kept", self._label_summary(manifest))
            return
        b.start("label", f"loading the estimator {c.estimator}")
        self.record("label", inputs=inputs, status="running")
        sources = [Source(f.rel, f.text, f.sha256) for f in self.corpus.files]
        try:
            estimator = Estimator.load(c.estimator, c.framing)
        except Exception as exc:  # any library's error while loading: one line
            b.finish("label", "failed")
            what = "the base model" if c.estimator == c.base else "the estimator"
            raise PipelineError(f"{what} {c.estimator} does not load ({first_line(exc)})") from None
        b.update("label", detail="scoring", done=0, total=len(sources))
        try:
            summary = label_corpus(sources, estimator, config, data,
                                   progress=lambda n, total, rel: b.update("label", f"scoring {rel}", n, total))
        except KeyboardInterrupt:
            scored = sum(shard_path(data, config, s).exists() for s in sources)
            self.kept.append(f"the estimator's scores of {scored} of {len(sources)} files ({data / '.shards'})")
            raise
        del estimator
        manifest = summary.datasets[self.dataset.name]
        self.record("label", status="finished", dataset=str(self.dataset), examples=manifest["examples"])
        b.finish("label", "done", self._label_summary(manifest))

    @staticmethod
    def _label_summary(m: dict) -> str:
        return (f"{m['examples']} examples, {m['mean_completion_tokens']:.1f} tokens on average, "
                f"{100 * m['share_empty']:.0f}% empty")

    def train_inputs(self) -> dict:
        return {"config": self.config.train, "base": self.config.base, "dataset": str(self.dataset.resolve()),
                "data_sha256": sha256_file(self.dataset / "data.jsonl")}

    def stage_train(self) -> None:
        from rich.console import Console

        from finetune.train import TrainConfig, TrainError, train
        from finetune.run_dir import last_checkpoint, step_of

        b = self.board
        out = self.run_dir / "train"
        inputs = self.train_inputs()
        previous = read_json(out / "config.json")
        same_inputs = self.state["stages"].get("train", {}).get("inputs") == as_saved(inputs)
        if same_inputs and previous.get("status") == "finished" and (out / "adapter" / "adapter_config.json").is_file():
            b.start("train")
            b.finish("train", "kept", self._train_summary(previous))
            return
        resume = same_inputs and bool(previous)
        if previous and not resume:  # trained on other labels: this run replaces it
            moved = out.with_name("train.previous")
            shutil.rmtree(moved, ignore_errors=True)
            os.replace(out, moved)
            self.notice(f"the labels changed since {out} was trained: training again ({out} moved to {moved})")
        b.start("train", "resuming" if resume else "loading the base model")
        self.record("train", inputs=inputs, status="running")
        # in a file, lines as long as they are (a terminal's width where there is one)
        width = self.console.width if self.console.is_terminal else 1000
        sink = Console(file=LineSink(self.console), width=width, no_color=True, highlight=False)
        try:
            result = train(self.dataset, self.config.base, out, TrainConfig(**self.config.train), sink,
                           resume=resume, callbacks=[train_callback(b)],
                           speed=self.run_plan.speed if self.run_plan else None)
        except TrainError as exc:
            b.finish("train", "failed")
            raise PipelineError(str(exc)) from None
        except KeyboardInterrupt:  # while loading, before the Trainer's loop catches it
            self._kept_training(out, last_checkpoint(out), step_of)
            raise
        if result.interrupted:
            self._kept_training(out, result.checkpoint, step_of)
            raise KeyboardInterrupt
        self.record("train", status="finished", adapter=str(result.adapter))
        b.finish("train", "done", self._train_summary(read_json(out / "config.json")))

    def _kept_training(self, out: Path, checkpoint: Path | None, step_of) -> None:
        if checkpoint:
            self.kept.append(f"the checkpoint of step {step_of(checkpoint)} ({checkpoint}): the same command resumes from it")
        else:
            self.kept.append(f"no training checkpoint yet ({out} starts over)")

    @staticmethod
    def _train_summary(config: dict) -> str:
        before, after = config.get("eval_loss_before"), config.get("eval_loss")
        evals = f", eval loss {before:.3f} → {after:.3f}" if before is not None and after is not None else (
            f", eval loss {after:.3f}" if after is not None else "")
        return f"{config.get('steps')} steps{evals}" + (f", {config['seconds']:.0f} s" if config.get("seconds") else "")

    def stage_export(self) -> None:
        from finetune.export import (ExportError, can_quantize, check_gguf_arch, export_adapter, export_gguf,
                                     open_run, size)
        from finetune.gguf_export import UnsupportedModelError

        b = self.board
        b.start("export", "the adapter")
        outputs: list = []
        try:
            run = open_run(self.run_dir)
            outputs.append(export_adapter(run))
            try:
                check_gguf_arch(run)
                gguf = True
            except UnsupportedModelError as exc:
                gguf = False
                self.notices.append(f"no GGUF: {exc} (the adapter is registered: it runs in transformers)")
            for quant in self.config.quants if gguf else ():
                if not can_quantize(quant):
                    self.notices.append(f"no {quant} GGUF: it needs llama-cpp-python (pip install 'empower[editor]')")
                    continue
                b.update("export", f"{'the merged model, then ' if not (self.run_dir / 'export' / 'merged').exists() else ''}"
                                   f"the {quant} GGUF")
                outputs.append(export_gguf(run, quant))
        except (ExportError, UnsupportedModelError, RuntimeError, OSError) as exc:
            b.finish("export", "failed")
            raise PipelineError(f"export: {str(exc).splitlines()[0]}") from None
        except KeyboardInterrupt:
            if outputs:
                self.kept.append("the exports finished before it: " + ", ".join(o.path.name for o in outputs))
            raise
        for o in outputs:
            self.exported[o.what if o.what != "gguf" else o.path.name] = o.path
        ggufs = [o for o in outputs if o.what == "gguf"]
        detail = ", ".join(f"{o.path.name} {size(o.bytes)}" for o in ggufs) or "adapter/"
        self.record("export", status="finished", outputs=[str(o.path) for o in outputs])
        b.finish("export", "kept" if all(o.kept for o in outputs) else "done", detail)
        self.trained = run

    def chosen(self) -> Path:
        """What to register: see the module's docstring."""
        f16, q4 = self.exported.get("model-f16.gguf"), self.exported.get("model-q4_k_m.gguf")
        if f16 and (f16.stat().st_size < SMALL_MODEL_BYTES or not q4):
            return f16
        return q4 or next((p for k, p in self.exported.items() if k.endswith(".gguf")), self.exported["adapter"])

    def stage_register(self) -> None:
        from coach import registry
        from coach.config import load_config

        b, c = self.board, self.config
        b.start("register")
        spec = self.chosen()
        entry, old = registry.register(c.name, spec, self.trained.format, base=c.base, run=self.run_dir,
                                       eta=c.eta if c.rule == "empower" else None, rule=c.rule)
        unchanged = old is not None and registry.same(old, entry)
        if old is not None and not unchanged and old.run != entry.run:
            self.notices.append(f"{c.name} named the model of {old.run} before; it names this one now")
        if c.name in load_config().get("models", {}):
            self.notices.append(f"{c.name} is also a name in config.toml, which wins: use the path below, or --name")
        self.registered = (c.name, spec)
        self.record("register", name=c.name, spec=str(spec))
        b.finish("register", "kept" if unchanged else "done", f"{c.name} → {spec.relative_to(self.run_dir)}")

    # ---- the end
    def print_usage(self) -> None:
        from rich.markup import escape

        from finetune.export import size

        name, spec = self.registered
        fmt = f" --format {self.trained.format}" if self.trained.format != "completion" else ""
        for text in self.notices:
            self.console.print(f"[yellow]{escape(text)}[/]", highlight=False)
        laptop = spec if spec.suffix == ".gguf" else None  # the registered GGUF: see chosen()
        self.out.print(f"\n[green]ready:[/] [bold]{escape(name)}[/] ({self.trained.format} prompts; "
                       f"{escape(str(spec))})", highlight=False, soft_wrap=True)
        self.out.print(f"  in the editor:  empower-tui FILE --model {escape(name)}", highlight=False, soft_wrap=True)
        if laptop:
            self.out.print(f"  on a laptop:    copy {escape(str(laptop))} ({size(laptop.stat().st_size)}), then "
                           f"empower-tui FILE --model {escape(laptop.name)}{fmt}", highlight=False, soft_wrap=True)
        self.out.print(f"  other exports:  empower-finetune export {escape(str(self.run_dir))} --to "
                       "merged|gguf|gguf-lora [--quant q8_0]", highlight=False, soft_wrap=True)
        trained = read_json(self.run_dir / "train" / "config.json")
        before, after = trained.get("eval_loss_before"), trained.get("eval_loss")
        held = trained.get("data", {}).get("eval_sources", [])
        if after is not None:
            change = (f"{before:.3f} → {after:.3f} nats per completion token ({100 * (after - before) / before:+.0f}%)"
                      if before is not None else f"{after:.3f} nats per completion token")
            self.out.print(f"  held-out loss:  {change} on {len(held)} file{'s' * (len(held) != 1)} it never trained "
                           f"on; the curve: {escape(str(self.run_dir / 'train' / 'loss.png'))}",
                           highlight=False, soft_wrap=True)


# ------------------------------------------------------------------ the command


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from rich.console import Console

    console = Console(stderr=True)
    pipeline = None
    try:
        config, run_dir = configure(args)
        check_run_dir(config, run_dir)
        if not args.out:
            keep_out_of_git(RUNS)
        pipeline = Pipeline(config, run_dir, console)
        pipeline.where = "" if args.out else " (the default: --out chooses another)"
        pipeline.run()
    except PipelineError as exc:
        for text in pipeline.notices if pipeline else ():
            console.print(f"[yellow]{text}[/]", highlight=False)
        print(f"empower-finetune: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        finished = [n for n, row in pipeline.board.rows.items() if row.status in ("done", "kept")] if pipeline else []
        kept = ([f"what {', '.join(finished)} made, in {pipeline.run_dir}"] if finished else []) + (
            pipeline.kept if pipeline else [])
        print(f"empower-finetune: interrupted. Kept: {'; '.join(kept) or 'nothing yet'}. "
              "Run the same command to go on.", file=sys.stderr)
        return 130
    pipeline.print_usage()
    return 0


