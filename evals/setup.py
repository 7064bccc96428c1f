"""What an empower-evals run plays, from its arguments, each checked before the first episode:
the problems (a dataset, filtered, with --solutions for the oracle), the assistants (every spec
resolved and loaded), the simulated human (the oracle, or an LLM behind its servers, started here
for a built-in model) and the judge's sandbox. A bad one is an EvalsError: one line, no run
directory made.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000/v1"  # where `vllm serve` listens by default


class EvalsError(Exception):
    """A run cannot start: one line for a person."""


def dataset_of(args) -> None:
    """`--dataset NAME` or `--dataset files DIR`: args.dataset becomes the name, args.files the DIR."""
    from problems.datasets import registered

    name, *rest = args.dataset
    if name not in registered():
        raise EvalsError(f"--dataset {name}: choose {', '.join(n for n in sorted(registered()) if n != 'files')} or files DIR")
    if name == "files" and len(rest) != 1:
        raise EvalsError("--dataset files needs one directory: --dataset files DIR")
    if name != "files" and rest:
        raise EvalsError(f"--dataset {name} takes no directory ({' '.join(rest)})")
    args.dataset, args.files = name, (rest[0] if rest else None)


def contexts_of(args, store) -> list[str]:
    """The arms' contexts: --context as given (each once), else "files" for --dataset files DIR,
    as the editor shows the model its other open files by default, and "none" for the other
    datasets, whose problems come from no package. A run directory whose first invocation came
    before --context keeps "none": its episodes were played with the code alone, and the same
    command must resume them, not start another arm. store: the run's, or None to check only."""
    given = list(dict.fromkeys(args.context or []))
    if args.dataset != "files":
        if any(c != "none" for c in given):
            raise EvalsError("--context files is for --dataset files DIR (other problems come from no package)")
        return ["none"]
    if given:
        return given
    if store is not None:
        configs = [json.loads(raw) for (raw,) in store.db.execute("select config from runs order by id")]
        if configs and "contexts" not in configs[0]:
            return ["none"]
    return ["files"]


def load_problems(args):
    from problems.datasets import ProblemsError, load

    options: dict = {"limit": args.limit}
    if args.files:
        options["path"] = args.files
        if args.per_file is not None:
            if args.per_file < 1:
                raise EvalsError("--per-file must be at least 1")
            options["per_file"] = args.per_file
    elif args.per_file is not None:
        raise EvalsError("--per-file is for --dataset files DIR")
    if args.problems:
        options["ids"] = Path(args.problems)
    if args.dataset == "livecodebench":
        options.update(path=args.data, release=args.release, start=args.date_from, end=args.date_to,
                       include_errata=args.include_errata, strict=False, offline=args.offline)
    elif args.data or args.release or args.date_from or args.date_to or args.offline:
        raise EvalsError("--data, --release, --from and --to are for --dataset livecodebench")
    try:
        problems = load(args.dataset, **options)
    except ProblemsError as exc:
        raise EvalsError(str(exc)) from None
    if args.solutions:
        refs = read_solutions(args.solutions)
        # a directory's files cannot hold "/" (HumanEval/0): HumanEval_0.py stands for it
        problems[:] = [replace(p, reference=refs.get(p.id, refs.get(p.file_stem, p.reference))) for p in problems]
    if not problems:
        raise EvalsError(f"no problems to run ({args.dataset}{' with these filters' if options else ''})")
    return problems


def read_solutions(path: str) -> dict[str, str]:
    """Reference programs by problem id, for the oracle human."""
    p = Path(path).expanduser()
    try:
        if p.is_dir():
            return {f.stem: f.read_text() for f in sorted(p.glob("*.py"))}
        text = p.read_text()
        if p.suffix == ".jsonl":
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
            return {str(r.get("question_id", r.get("id"))): r.get("code", r.get("solution")) for r in rows}
        data = json.loads(text)
    except (OSError, ValueError, AttributeError) as exc:
        raise EvalsError(f"--solutions {path}: cannot read it ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise EvalsError(f"--solutions {path}: expected a JSON object of problem id to code")
    return data


def assistants_of(args) -> list[tuple[str, str, float | None]]:
    from coach.policies import DEFAULT_ETA, parse
    from coach.types import CoachError

    out = []
    for spec in args.assistant:
        for policy in args.policy or ["base"]:
            # η written out, so that the episodes say which threshold they ran at
            for eta in (args.eta or [DEFAULT_ETA]) if policy == "threshold" else [None]:
                try:
                    parse(policy, eta)
                except CoachError as exc:
                    raise EvalsError(str(exc)) from None
                out.append((spec, policy, eta))
    if args.eta and "threshold" not in (args.policy or []):
        raise EvalsError("--eta is for --policy threshold")
    return out


def resolve_all(specs: list[str]) -> None:
    """Every spec resolved to a model before anything else is done (no run directory made)."""
    from coach.specs import resolve
    from coach.types import CoachError

    for spec in dict.fromkeys(specs):
        try:
            resolve(spec)
        except CoachError as exc:
            raise EvalsError(f"assistant {spec}: {' '.join(str(exc).split())}") from None


def load_coaches(assistants, fmt: str | None, console) -> dict:
    """Every assistant loaded before the first episode: a spec that does not resolve stops the
    run here, not as a column of errored episodes."""
    from coach.engine import Coach

    coaches: dict = {}
    try:
        for spec, policy, eta in assistants:
            with console.status(f"loading {spec} ({policy})…"):
                coaches[spec, policy, eta] = Coach.from_spec(spec, policy, eta, fmt)
    except Exception as exc:  # ModelNotFound, a backend's own errors: one line either way
        for c in coaches.values():
            c.close()
        raise EvalsError(f"assistant {spec}: {' '.join(str(exc).split())}") from None
    return coaches


def make_the_human(args, problems, stack, console):
    from evals.humans import HumanError, make_human

    try:
        if args.human == "oracle":
            if args.human_url:
                raise EvalsError("--human-url is for an LLM human; the oracle needs no server")
            missing = [p.id for p in problems if p.reference is None]
            if missing:
                raise EvalsError(f"the oracle human needs a reference solution; {len(missing)} of {len(problems)} "
                                 f"problems have none ({', '.join(missing[:3])}…): give them with --solutions")
            return make_human("oracle", tokenizer=args.tokenizer), "oracle"
        from coach.builtin import BUILTINS
        from coach.types import CoachError
        from evals.local_server import ServerError, serve_gguf

        builtin = BUILTINS.get(args.human)
        mode = args.human_mode or ("completion" if builtin is not None and not builtin.chat else "chat")
        if builtin is not None and not args.human_url:
            # a built-in model serves as the human from llama.cpp's own server, started here,
            # so that the same client code runs as against vLLM
            try:
                gguf = builtin.gguf()
                with console.status(f"starting llama.cpp's servers for the human {args.human}…"):
                    # one server a role (writer, acceptor): each keeps its own prompt prefix cached
                    urls, decide_urls = ([stack.enter_context(serve_gguf(gguf, args.human)).url] for _ in range(2))
            except (CoachError, ServerError) as exc:
                raise EvalsError(f"the human {args.human}: {exc}") from None
        else:
            urls, decide_urls = args.human_url or [DEFAULT_URL], None
            check_servers(urls, args.human)
        h = make_human("llm", model=args.human, urls=urls, decide_urls=decide_urls, think_tokens=args.think_tokens,
                       temperature=args.human_temperature, seed=args.seed, tokenizer=args.tokenizer, mode=mode)
        return h, h.model
    except HumanError as exc:
        raise EvalsError(str(exc)) from None


def check_judge(args) -> None:
    """Every episode's program is judged: refuse before the first where nothing can hold it."""
    from problems.sandbox import JudgeError, allow_unsafe, check_sandbox

    if args.unsafe_no_sandbox:
        allow_unsafe()
    if args.dataset == "files":  # judged by comparison: nothing runs
        return
    try:
        check_sandbox()
    except JudgeError as exc:
        raise EvalsError(str(exc)) from None


def check_servers(urls: list[str], model: str) -> None:
    """Refuse when no human server answers at all; a later outage only errors its episodes."""
    import httpx

    down = []
    for url in urls:
        try:
            httpx.get(url.rstrip("/") + "/models", timeout=5).raise_for_status()
        except httpx.HTTPError as exc:
            down.append(f"{url} ({type(exc).__name__})")
    if len(down) == len(urls):
        raise EvalsError(f"the human {model} does not answer at {', '.join(down)}: start its server "
                         f"(see the README, 'The benchmark') or use --human oracle")
    for d in down:
        print(f"empower-evals: warning: {d} does not answer; the other servers take its share", file=sys.stderr)
