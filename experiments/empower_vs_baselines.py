"""Does training on logit-threshold labels of code help more than the baselines? One command
trains every arm and measures it with the simulated human, through Empower's own commands.

    python -m experiments.empower_vs_baselines              # the default run: about an hour on 2 cores
    python -m experiments.empower_vs_baselines --full       # docs/results.md's run: ≥100 held-out-code
                                                            # episodes an arm, all 164 HumanEval problems
                                                            # for two arms, the LLM human (~3 h; goes on
                                                            # from a default run's work)
    python -m experiments.empower_vs_baselines --quick      # tiny models, a few problems (the test-suite's)
    python -m experiments.empower_vs_baselines --report     # docs/results.md again from docs/results/
    python -m experiments.empower_vs_baselines --scale      # the GPU-sized run's commands, printed

Stages, each resumable (run the command again after a crash or Ctrl+C: finished work is kept):
  corpus   standard-library modules through `empower-finetune scan`'s filters, split into files
           to learn from and held-out files whose functions become episodes; the list, with
           each file's sha256, in RESULTS/corpus.json
  label    one pass of the estimator labels every rule: empower at each η, SFT-10, SFT-20,
           SFT-RAND (`empower-finetune label`); per-arm statistics in RESULTS/labels.json
  train    each trained arm with the same recipe, seed, examples and optimizer steps
           (`empower-finetune train`), exported to GGUF and registered (`export --to gguf
           --name`); validation losses in RESULTS/train.json
  evals    every arm, paired on the same problems, with the oracle human (`empower-evals`):
           HumanEval's fixed 40, the built-in problems, functions of the held-out files; every
           episode's row in RESULTS/episodes/. Optional (--set): all 164 HumanEval problems for
           the best Empower arm and the best baseline (full_humaneval=true), and the built-in
           gemma-3-270m human for the best arm of each family (llm_problems=40: the fixed 40)
  report   docs/results.md and its figures (experiments/report.py)

Big artifacts (datasets, adapters, GGUFs, run stores) live in --work (default
~/.cache/empower/experiments/empower-vs-baselines); the small results in --results (default
docs/results/, kept in the repository). Nothing here imports tui; finetune and evals are run as
the commands a person runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import sysconfig
import time
from dataclasses import asdict, replace
from pathlib import Path

from coach import atomic
from coach.config import cache_dir
from experiments.arms import ETAS, SFT_RULES, Arm, all_arms
from experiments.runner import ROOT, Clock, ExperimentError, read_json, run, sha256, write_json
from experiments.sizes import DEFAULT, FULL, QUICK, RECIPE, SCALE, Size, with_fields

STDLIB = Path(sysconfig.get_paths()["stdlib"])


# ---------------------------------------------------------------------------- stages
class Experiment:
    def __init__(self, size: Size, work: Path, results: Path):
        self.size, self.work, self.results = size, work, results
        self.clock = Clock(results / "stages.json")

    # corpus ------------------------------------------------------------------
    def corpus(self) -> dict:
        """The files, chosen once and then kept: a rerun checks them against this machine's."""
        path = self.results / "corpus.json"
        chosen = read_json(path)
        if chosen is None:
            chosen = self._choose_corpus()
            write_json(path, chosen)
        for role in ("train", "episodes"):
            d = self.work / "corpus" / role
            d.mkdir(parents=True, exist_ok=True)
            for f in chosen[role]:
                src, dst = STDLIB / f["file"], d / f["file"]
                if not src.is_file() or sha256(src) != f["sha256"]:
                    raise ExperimentError(
                        f"{path}: {f['file']} is not the file this corpus was made from (Python "
                        f"{chosen['python']} there, {platform.python_version()} here): give another --results")
                if not dst.is_file() or sha256(dst) != f["sha256"]:
                    shutil.copyfile(src, dst)
        return chosen

    def _choose_corpus(self) -> dict:
        """Top-level standard-library modules by size, through the scanner's filters (secrets,
        generated, minified), in a seeded order: the first for learning, the next held out."""
        import random

        from finetune.corpus import ScanError, scan

        s = self.size
        lo, hi = min(s.train_bytes[0], s.episode_bytes[0]), max(s.train_bytes[1], s.episode_bytes[1])
        staging = self.work / "corpus" / "candidates"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for f in sorted(STDLIB.glob("*.py")):
            if lo <= f.stat().st_size <= hi:
                shutil.copyfile(f, staging / f.name)
        try:
            kept = sorted(scan(staging).files, key=lambda f: f.rel)
        except ScanError as exc:  # e.g. --work inside a git repository that ignores it
            raise ExperimentError(f"{exc} (give a --work outside any git repository)") from None
        random.Random(0).shuffle(kept)
        fits = lambda f, r: r[0] <= len(f.text.encode()) <= r[1]  # noqa: E731
        episodes = [f for f in kept if fits(f, s.episode_bytes)][:s.episode_files]
        train = [f for f in kept if f not in episodes and fits(f, s.train_bytes)][:s.train_files]
        if len(train) < s.train_files or len(episodes) < s.episode_files:
            raise ExperimentError(f"the standard library at {STDLIB} has too few modules of these sizes "
                                  f"({len(train)} to learn from, {len(episodes)} held out)")
        shutil.rmtree(staging)
        row = lambda f: {"file": f.rel, "bytes": len(f.text.encode()), "sha256": f.sha256}  # noqa: E731
        return {"python": platform.python_version(), "stdlib": str(STDLIB), "seed": 0,
                "train": sorted(map(row, train), key=lambda r: r["file"]),
                "episodes": sorted(map(row, episodes), key=lambda r: r["file"])}

    # labels ------------------------------------------------------------------
    def label(self) -> dict:
        s, out = self.size, self.work / "labels"
        arms = [a for a in all_arms() if a.trained]
        if not all((out / a.dataset / "data.jsonl").is_file() for a in arms):
            run("empower-finetune", "label", self.work / "corpus" / "train", "--estimator", s.estimator,
                "--rule", "empower", *SFT_RULES, "--eta", *map(str, ETAS), "--k", s.k, "--seed", 0, "--out", out)
        stats = {}
        for a in arms:
            m = read_json(out / a.dataset / "manifest.json")
            stats[a.key] = {"arm": a.name, "states": m["examples"], "files": m["files"],
                            "share_empty": round(m["share_empty"], 4),
                            "mean_label_tokens": round(m["mean_completion_tokens"], 3),
                            "histogram": m["histogram"]}
        m = read_json(out / arms[0].dataset / "manifest.json")
        stats["_config"] = {"estimator": s.estimator, "k": s.k, "framing": m["config"]["framing"],
                            "source_tokens": m.get("source_tokens"), "seconds": m.get("seconds"),
                            "dtype": m.get("dtype"), "window_chars": m.get("window_chars")}
        write_json(self.results / "labels.json", stats)
        return stats

    # training ----------------------------------------------------------------
    def train(self, arm: Arm) -> dict:
        s = self.size
        run_dir = self.work / "train" / arm.key
        record = read_json(run_dir / "config.json", {})
        if record.get("status") != "finished":
            resume = ["--resume"] if record else []
            run("empower-finetune", "train", self.work / "labels" / arm.dataset, "--base", s.base,
                "--out", run_dir, "--max-steps", s.steps, "--grad-accum", s.grad_accum, "--batch-size", 1,
                "--max-length", s.max_length, "--lr", s.lr, "--seed", 0, *resume)
            record = read_json(run_dir / "config.json", {})
            if record.get("status") != "finished":
                raise ExperimentError(f"training {arm.key} did not finish ({record.get('status')}): run again to resume")
        name = arm.assistant(s.base, s.prefix)
        gguf = run_dir / "export" / "model-f16.gguf"
        # export skips what is up to date; registering again is a no-op when nothing changed
        run("empower-finetune", "export", run_dir, "--to", "gguf", "--quant", "f16", "--name", name)
        return {"arm": arm.name, "registered": name, "steps": record.get("steps"),
                "rows_per_step": s.grad_accum, "max_length": s.max_length, "lr": s.lr,
                "train_examples": record["data"]["train"].get("examples"),
                "eval_examples": record["data"]["eval"].get("examples"),
                "eval_sources": record["data"]["eval_sources"],
                "eval_loss_before": record.get("eval_loss_before"), "eval_loss": record.get("eval_loss"),
                "train_loss": record.get("train_loss"), "seconds": record.get("seconds"),
                "tokens_per_s": record.get("tokens_per_s"), "gguf": str(gguf)}

    # evals -------------------------------------------------------------------
    def evals(self, dataset: str, arms: list[Arm], *, full: bool = False) -> None:
        """Every arm on one dataset, into one run store (so the protocol is checked once).
        "humaneval-llm" is the first llm_problems of the fixed 40 with the LLM human."""
        s = self.size
        out = self.work / "evals" / dataset
        where: list[str] = []
        human = ["--human", "oracle"]
        concurrency = ["--concurrency", s.concurrency]
        if dataset == "humaneval-llm":
            ids = out.parent / "humaneval-llm.txt"
            ids.parent.mkdir(parents=True, exist_ok=True)
            ids.write_text("".join(f"{i}\n" for i in self.problem_ids(dataset, full)))
            where = ["--dataset", "humaneval", "--problems", ids]
            # one episode at a time: each of the human's two servers keeps one prompt cached
            human, concurrency = ["--human", s.llm_human], ["--concurrency", 1]
        elif dataset == "humaneval":
            where = ["--dataset", "humaneval"]
            if not full:
                where += (["--problems", ROOT / s.humaneval_ids] if s.humaneval_ids else ["--limit", s.humaneval_limit])
        elif dataset == "builtin":
            where = ["--dataset", "builtin"] + (["--limit", s.builtin_limit] if s.builtin_limit else [])
        elif dataset == "files":
            # the code alone, as docs/results.md was measured: the held-out files are modules of
            # unrelated packages, not one project whose other files the editor would show
            where = ["--dataset", "files", self.work / "corpus" / "episodes", "--per-file", s.files_per_file,
                     "--context", "none"]
            where += ["--limit", s.files_limit] if s.files_limit else []
            concurrency = ["--concurrency", s.files_concurrency]
        missing = self.missing(dataset, arms, out, full)
        todo = sum(map(len, missing.values()))
        print(f"{dataset}: {todo} episodes to play ({len(arms)} arms)", flush=True)
        untrained = [a for a in arms if not a.trained and missing[a.key]]
        if untrained:
            policies = []
            for p in dict.fromkeys(a.policy for a in untrained):
                policies += ["--policy", p]
            etas = [x for a in untrained if a.policy == "threshold" for x in ("--eta", f"{a.eta:g}")]
            run("empower-evals", *human, "--assistant", s.base, *policies, *etas, *where, "--out", out, *concurrency)
        trained = [a for a in arms if a.trained and missing[a.key]]
        if trained:
            specs = [x for a in trained for x in ("--assistant", a.assistant(s.base, s.prefix))]
            run("empower-evals", *human, *specs, "--policy", "trained", *where, "--out", out, *concurrency)
        self.export_episodes(dataset)

    def problem_ids(self, dataset: str, full: bool) -> list[str]:
        """The problems empower-evals will play for `dataset` (the same loaders, the same limits)."""
        from problems.datasets import load, read_ids

        s = self.size
        if dataset == "humaneval-llm":
            return (read_ids(ROOT / s.humaneval_ids) if s.humaneval_ids
                    else [p.id for p in load("humaneval", limit=s.humaneval_limit)])[:s.llm_problems]
        if dataset == "humaneval":
            if full:
                return [p.id for p in load("humaneval")]
            if s.humaneval_ids:
                return read_ids(ROOT / s.humaneval_ids)
            return [p.id for p in load("humaneval", limit=s.humaneval_limit)]
        if dataset == "builtin":
            return [p.id for p in load("builtin", limit=s.builtin_limit)]
        return [p.id for p in load("files", path=self.work / "corpus" / "episodes", limit=s.files_limit,
                                   per_file=s.files_per_file)]

    def missing(self, dataset: str, arms: list[Arm], out: Path, full: bool) -> dict[str, list[str]]:
        """Per arm, the problems without a finished (not errored) episode in the run store: an
        arm with none is not started again (loading its model alone takes seconds)."""
        from evals.store import Store

        ids = self.problem_ids(dataset, full)
        done: set = set()
        if (out / "run.sqlite").is_file():
            store = Store.open(out)
            try:
                done = {(k[0], k[1], k[2]) for k in store.done_keys(include_errored=False)}
            finally:
                store.close()
        return {a.key: [i for i in ids if (i, a.assistant(self.size.base, self.size.prefix), a.policy_label) not in done]
                for a in arms}

    def export_episodes(self, dataset: str) -> None:
        """Every episode's row (no transcript: the code of a file is not ours to copy) in
        RESULTS/episodes/DATASET.jsonl, named by arm, sorted: the report reads only these."""
        from evals.store import Store

        arm_of = {(a.assistant(self.size.base, self.size.prefix), a.policy_label): a for a in all_arms()}
        store = Store.open(self.work / "evals" / dataset)
        try:
            rows = []
            for ep in store.episodes():
                arm = arm_of.get((ep.assistant, ep.policy))
                if arm is None:
                    continue
                shown = [r.suggestion for r in ep.rounds if r.suggestion]
                rows.append({"dataset": dataset, "human": ep.human, "arm": arm.key, "problem_id": ep.problem_id,
                             "correct": ep.correct, "errored": ep.errored, "error": ep.error,
                             "suggested": ep.suggested, "accepted": ep.accepted, "tokens_read": ep.tokens_read,
                             "tokens_written": ep.tokens_written, "tokens_accepted": ep.tokens_accepted,
                             "suggestion_chars": sum(map(len, shown)), "rounds": len(ep.rounds),
                             "seconds": ep.seconds})
        finally:
            store.close()
        rows.sort(key=lambda r: (r["arm"], r["problem_id"]))
        path = self.results / "episodes" / f"{dataset}.jsonl"
        atomic.write_atomic(path, "".join(json.dumps(r) + "\n" for r in rows))


# ---------------------------------------------------------------------------- the whole run
def best_of(results: Path, families: list[set[str]]) -> list[str]:
    """For each set of families, its arm with the best mean DPR on the fixed HumanEval problems
    with the oracle (ties: the first in the arms' order)."""
    from experiments.tables import groups, load_episodes, mean_dpr

    fixed = groups(load_episodes(results)).get("humaneval", {})  # the problems every arm played
    dpr = {a.key: mean_dpr(fixed.get(a.key, [])) for a in all_arms()}
    return [max((a.key for a in all_arms() if a.family in fam and dpr[a.key] is not None), key=lambda k: dpr[k])
            for fam in families]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.empower_vs_baselines", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[2])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a few files, steps and problems (with --base/--estimator: the tiny test models)")
    size.add_argument("--full", action="store_true", help="docs/results.md's run: every function of the held-out "
                      "files, all of HumanEval for two arms, the LLM human (~3 h here; resumes a default run)")
    size.add_argument("--scale", action="store_true", help="print the commands of the GPU-sized run and stop")
    p.add_argument("--report", action="store_true", help="only regenerate the report from --results")
    p.add_argument("--base", help="the model trained and served (default smollm2-135m)")
    p.add_argument("--estimator", help="the model that labels (default smollm2-135m)")
    p.add_argument("--work", type=Path, help="datasets, adapters, GGUFs, run stores (default ~/.cache/empower/experiments/empower-vs-baselines[-quick])")
    p.add_argument("--results", type=Path, help="the small results kept in the repository (default docs/results)")
    p.add_argument("--doc", type=Path, help="the report (default docs/results.md beside --results)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="change one of the size's fields (e.g. files_per_file=4, llm_problems=0, "
                        "full_humaneval=false); recorded in RESULTS/config.json")
    args = p.parse_args(argv)

    s = QUICK if args.quick else SCALE if args.scale else FULL if args.full else DEFAULT
    s = replace(s, **{k: v for k in ("base", "estimator") if (v := getattr(args, k))})
    try:
        s = with_fields(s, args.set)
    except ValueError as exc:
        print(f"experiment: --set: {exc}", file=sys.stderr)
        return 2
    results = (args.results or ROOT / "docs" / "results").resolve()
    doc = (args.doc or results.parent / "results.md").resolve()
    if args.scale:
        from experiments.report import scale_commands

        print(scale_commands(s))
        return 0
    from experiments.report import write_report

    # The README's summary follows the repository's own results, never another --results'
    readme = ROOT / "README.md" if results == (ROOT / "docs" / "results").resolve() else None
    if args.report:
        try:
            write_report(results, doc, readme)
        except (OSError, ValueError, KeyError) as exc:
            print(f"experiment: cannot report from {results}: {exc}", file=sys.stderr)
            return 2
        print(f"wrote {doc}")
        return 0
    work = (args.work or cache_dir() / "experiments"
            / f"empower-vs-baselines{'-quick' if args.quick else ''}").expanduser().resolve()
    # A SIGTERM (timeout, a closed terminal) ends us like Ctrl+C: our children are stopped, the
    # stages' own resumable state is kept.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        return _run(s, work, results, doc, readme, args.set)
    except ExperimentError as exc:
        print(f"experiment: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("experiment: stopped; run the same command again to go on where it stopped", file=sys.stderr)
        return 130


def check_recipe(s: Size, *configs: Path) -> None:
    """Refuse to go on with work made by another recipe (it would be kept, not redone)."""
    for path in configs:
        made = (read_json(path) or {}).get("size")
        if made is None:
            continue
        differ = [f"{f} {made.get(f)!r} there, {getattr(s, f)!r} here" for f in RECIPE
                  if made.get(f) != (list(getattr(s, f)) if isinstance(getattr(s, f), tuple) else getattr(s, f))]
        if differ:
            raise ExperimentError(f"{path.parent} was made with another recipe ({'; '.join(differ)}): "
                                  "give another --work and --results, or the same --set")


def _run(s: Size, work: Path, results: Path, doc: Path, readme: Path | None = None, sets: list[str] = ()) -> int:
    from experiments.report import write_report

    check_recipe(s, results / "config.json", work / "config.json")
    if not (work / "config.json").is_file():  # new work: every stage is done again, and timed anew
        (results / "stages.json").unlink(missing_ok=True)
    exp = Experiment(s, work, results)
    config = {"size": asdict(s), "work": str(work), "python": platform.python_version(),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "argv": sys.argv[1:], "set": list(sets)}
    write_json(results / "config.json", config)
    write_json(work / "config.json", config)
    arms = all_arms()

    def stage(name: str, fn, *a, **kw):
        print(f"\n── {name}", flush=True)
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            exp.clock.add(name, time.perf_counter() - t0)

    stage("corpus", exp.corpus)
    stage("label", exp.label)
    trained = {}
    for arm in (a for a in arms if a.trained):
        trained[arm.key] = stage(f"train {arm.key}", exp.train, arm)
        write_json(results / "train.json", trained)
    for dataset in ("humaneval", "builtin", "files"):
        stage(f"evals {dataset}", exp.evals, dataset, arms)
    if s.full_humaneval:  # the best Empower arm and the best baseline, trained or not
        best = best_of(results, [{"empower"}, {"base", "threshold", "sft"}])
        stage("evals humaneval (all 164)", exp.evals, "humaneval", [a for a in arms if a.key in best], full=True)
    if s.llm_human and s.llm_problems:  # the best untrained, SFT and Empower arm with an LLM human
        best = best_of(results, [{"base", "threshold"}, {"sft"}, {"empower"}])
        stage(f"evals humaneval, {s.llm_human} human", exp.evals, "humaneval-llm", [a for a in arms if a.key in best])
    write_report(results, doc, readme)
    print(f"\nwrote {doc}" + (f" and the summary in {readme}" if readme else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
