"""The labellers against the paper's Algorithm 1 run literally (a fresh forward pass for every
length of every state), on the offline test models in float64 so that no rounding can move i*."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from coach.policies import threshold_length  # noqa: E402
from finetune.estimator import Estimator, literal_algorithm_1  # noqa: E402
from finetune.rules import Scored, State, are_stable, choose_states, label  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHATML = ("{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
          "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
ETAS = (0.32, 1.0, 4.0, 16.0)


def estimator(path, framing="raw", **options) -> Estimator:
    tokenizer = AutoTokenizer.from_pretrained(path)
    if framing == "chat":
        tokenizer.chat_template = CHATML
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float64).eval()
    return Estimator(model, tokenizer, framing, **options)


def files(test_models):
    """Two memorized files (long labels) and one the models never saw (short ones)."""
    memorized = [p for p in test_models.memorized if p.name == "solution.py"][:2]
    return [*memorized, ROOT / "problems" / "judge.py"]


def source(path: Path) -> str:
    """A state's source as the pipeline names it: relative, so the states a test draws do not
    depend on where the repository is checked out."""
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name)


def spliced(test_models) -> tuple[str, str, int]:
    """A memorized file's start followed by code the models never saw: at cuts shortly before
    the splice, the memorizer's labels run to about the splice and stop, so they take every
    length from 0 to the cap, whichever states a draw happens to pick elsewhere."""
    head, tail = files(test_models)[0].read_text()[:700], files(test_models)[-1].read_text()[:800]
    return "spliced.py", head + tail, len(head)


def states_before(est: Estimator, source: str, text: str, char: int, ids, offsets, n: int) -> list[State]:
    """The stable cuts among the last `n` token boundaries before `char`."""
    cuts = [(j, offsets[j][0]) for j in range(1, len(ids)) if offsets[j][0] <= char][-n:]
    return [State(source, j, c) for (j, c), ok in zip(cuts, are_stable(est.tokenizer, text, ids, cuts)) if ok]


def check_against_the_loop(est: Estimator, paths, k=4, splice=None):
    texts = [(source(p), p.read_text()[:1500], None) for p in paths]  # short: the loop reads once per length
    if splice:
        texts.append(splice)
    seen = []
    for name, text, at in texts:
        ids, offsets = est.encode(text)
        states = choose_states(name, text, est.tokenizer, k, ids=ids, offsets=offsets)
        if at is not None:
            states = sorted({*states, *states_before(est, name, text, at, ids, offsets, est.cap + 4)},
                            key=lambda st: st.cut)
        assert states
        for scored in est.score(text, states, ids):
            for eta in ETAS:
                fast = label(scored, "empower", eta)
                slow = literal_algorithm_1(est, text, ids, scored.state, eta)
                assert fast.n_tokens == slow, (name, scored.state, eta)
                seen.append(slow)
    return seen


@pytest.mark.parametrize("which", ["memorizer", "random"])
def test_the_single_pass_raw_labeller_gives_algorithm_1s_i_star(test_models, which):
    est = estimator(getattr(test_models, which), cap=16)
    lengths = check_against_the_loop(est, files(test_models), splice=spliced(test_models))
    # Not all empty, not all capped: the comparison means something (the random model's
    # labels are all short, as they should be).
    assert len(set(lengths)) > (4 if which == "memorizer" else 1)


def test_windows_of_a_long_file_give_algorithm_1s_i_star_with_the_same_context(test_models):
    est = estimator(test_models.memorizer, cap=16, window_chars=400)  # the file is many windows long
    path = files(test_models)[0]
    text = path.read_text()
    states = choose_states(source(path), text, est.tokenizer, 8)
    starts = {est.window(text, s)[0] for s in states}
    assert len(starts) > 2 and all(len(est.window(text, s)[1]) <= 400 for s in states)
    check_against_the_loop(est, [path], k=8)


def test_a_state_is_read_with_the_prompt_the_editor_serves(test_models):
    """The raw estimator's context of a state is, token for token, the completion prompt the
    editor's coach builds and tokenizes at that cursor, with the window it sizes for the model."""
    from coach import prompts
    from coach.engine import Coach
    from coach.types import Context, Request

    coach = Coach.from_spec(str(test_models.memorizer), "base")  # the transformers backend
    coach.fit_window(prompts.window_sample())
    est = estimator(test_models.memorizer)
    assert est.window_chars == coach.max_prompt_chars < len(prompts.window_sample())  # a 1,024-token model
    path = files(test_models)[-1]  # many windows long, so most states see a cut window
    text = path.read_text()
    assert len(text) > 3 * est.window_chars
    states = choose_states(source(path), text, est.tokenizer, 8)
    assert any(st.char > est.window_chars for st in states)
    for st in states:
        prompt = prompts.build(Context(text[:st.char]), "completion", coach.backend, coach.max_prompt_chars)
        served = coach.backend.tokenize_prompt(Request(prompt, coach.policy.max_tokens))
        assert est.raw_prompt(text, st) == served
    coach.close()


@pytest.mark.parametrize("share,stop", [(False, None), (True, None), (True, max(ETAS))],
                         ids=["batched by length", "prompts shared", "prompts shared, reading stops at η"])
def test_the_chat_labeller_gives_algorithm_1s_i_star(test_models, share, stop):
    est = estimator(test_models.memorizer, "chat", cap=16, batch_size=3, share_prompts=share, stop_bits=stop)
    check_against_the_loop(est, files(test_models), k=4, splice=spliced(test_models))


def test_reading_stops_once_no_label_can_grow(test_models):
    """With stop_bits, a continuation is read only until its NLL reaches it: fewer tokens fed,
    the same labels at every η up to it, and a full read where the labels are long."""
    est = estimator(test_models.memorizer, "chat", cap=32, share_prompts=True)
    read = []
    forward = est.model.forward
    est.model.forward = lambda input_ids, **kw: (read.append(input_ids.numel()), forward(input_ids=input_ids, **kw))[1]
    fed, labels = {}, {}
    for path in files(test_models):
        text = path.read_text()[:800]
        ids, offsets = est.encode(text)
        states = choose_states("f.py", text, est.tokenizer, 6, ids=ids, offsets=offsets)
        for stop in (None, 4.0):
            est.stop_bits, read[:] = stop, []
            scored = est.score(text, states, ids)
            fed[path, stop] = sum(read)
            labels[path, stop] = [label(s, "empower", eta).n_tokens for s in scored for eta in (0.32, 4.0)]
            if stop is None:
                assert all(len(s.token_ids) == min(32, len(ids) - s.state.cut) for s in scored)
        assert labels[path, 4.0] == labels[path, None]
    *memorized, unseen = files(test_models)
    # short labels: of each state's 32 continuation tokens, most are left unread
    assert fed[unseen, None] - fed[unseen, 4.0] >= 0.5 * 6 * (32 - est.FIRST_READ), fed
    assert max(max(labels[p, 4.0]) for p in memorized) > est.FIRST_READ  # long labels were read past the first read


def test_shared_prompts_read_each_files_common_start_once(test_models):
    """What sharing is for: fewer tokens through the model than one sequence per state."""
    est = estimator(test_models.memorizer, "chat", cap=16)
    read = []
    forward = est.model.forward
    est.model.forward = lambda input_ids, **kw: (read.append(input_ids.numel()), forward(input_ids=input_ids, **kw))[1]
    text = files(test_models)[0].read_text()[:800]  # no state cut to fit the context
    ids, offsets = est.encode(text)
    states = choose_states("f.py", text, est.tokenizer, 8, ids=ids, offsets=offsets)
    assert all(len(est.chat_prefix(text, ids, st)) > 2 * st.cut for st in states)
    whole = sum(len(est.chat_prefix(text, ids, st)) + len(ids[st.cut:st.cut + 16]) for st in states)
    for share in (True, False):
        est.share_prompts, read[:] = share, []
        est.score(text, states, ids)
        if share:
            assert len(read) == len(states) and sum(read) < 0.7 * whole, (sum(read), whole)
        else:
            assert sum(read) >= whole


def test_a_state_is_exactly_what_the_editor_would_tokenize(test_models):
    est = estimator(test_models.memorizer)
    text = files(test_models)[0].read_text()
    ids, _ = est.encode(text)
    for where in ("uniform", "pauses"):
        states = choose_states("f.py", text, est.tokenizer, 8, where=where)
        assert len(states) == 8
        for st in states:
            assert est.tokenizer(text[:st.char], add_special_tokens=False)["input_ids"] == ids[:st.cut]
            if where == "pauses":
                assert text[st.char - 1].isspace() or text[st.char - 1].isalnum() or text[st.char - 1] == "_"
        assert states == choose_states("f.py", text, est.tokenizer, 8, where=where)  # reproducible


def test_the_rules():
    st = State("f.py", 3, 10)
    scored = Scored(st, tuple(range(40)), tuple([0.1] * 40))
    assert threshold_length([0.1] * 40, 1.0) == 6        # 6 * 0.1 nats < ln 2 = 0.693 < 7 * 0.1
    assert label(scored, "empower", 1.0).n_tokens == 6
    assert label(scored, "sft-10").n_tokens == 10 and label(scored, "sft-20").token_ids == tuple(range(20))
    n = label(scored, "sft-rand", seed=1).n_tokens
    assert 1 <= n <= 30 and n == label(scored, "sft-rand", seed=1).n_tokens
    assert len({label(Scored(State("f.py", c, c), scored.token_ids, scored.nll), "sft-rand").n_tokens
                for c in range(50)}) > 5
    assert label(Scored(st, (1, 2), (0.0, 0.0)), "sft-10").n_tokens == 2  # the file ends first
    with pytest.raises(ValueError):
        label(scored, "empower")
    with pytest.raises(ValueError):
        label(scored, "nope")
