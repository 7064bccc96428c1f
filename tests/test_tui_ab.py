"""The blind A/B of two assistants (tui/ab.py, tui/ab_report.py): the turns, what is kept in the
real SQLite log, what `empower-tui stats --ab` computes from it, and the real editor through its
pilot with two real llama.cpp assistants on memorizer.gguf."""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path

import pytest

from coach.policies import split_assistant
from tests.models import split_probe
from tests.pilot import until
from tui import ab_report, cli
from tui.ab import LABELS, Arm, Study, label_of
from tui.app import EmpowerApp, Settings
from tui.files import open_file
from tui.log import InteractionLog, events, open_for_reading, sessions
from tui.metrics import compute as plain_stats
from tui.screen import EditorScreen
from tui.screens import Question

pytestmark = pytest.mark.usefixtures("private_dirs")  # tests/conftest.py

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = (ROOT / "problems" / "catalog" / "lava" / "solution.py").read_text()
PROBE, _ = split_probe(SOLUTION)
A, B = Arm("m.gguf", "base"), Arm("m.gguf", "base-2")


# --- naming an assistant ------------------------------------------------------------------------

def test_an_assistant_is_a_model_and_the_policy_spelt_as_the_log_spells_it():
    assert split_assistant("smollm2-135m@threshold@2") == ("smollm2-135m", "threshold", 2.0)
    assert split_assistant("me@host.gguf@base-10") == ("me@host.gguf", "base-10", None)
    assert split_assistant("mine") == ("mine", None, None)
    assert split_assistant("openai:http://u@h:8/v1#m@trained") == ("openai:http://u@h:8/v1#m", "trained", None)
    assert Arm("x", "threshold", 0.5).name == "x@threshold@0.5"


def test_a_model_alone_gets_the_policy_it_is_served_with():
    default = cli.arm("smollm2-135m")  # the built-in default assistant's model: its policy and format
    assert (default.policy, default.eta, default.format) == ("threshold", 2.0, "completion")
    assert cli.arm("some.gguf") == Arm("some.gguf", "base")
    assert cli.arm("some.gguf@threshold").eta == 4.0  # the policy's own default η
    with pytest.raises(cli.BadInput, match="η must be a positive"):
        cli.arm("some.gguf@threshold@0")


@pytest.mark.parametrize("argv, message", [
    (["--ab", "a.gguf@base", "a.gguf@base"], "both assistants are a.gguf@base"),
    (["--ab", "a.gguf", "b.gguf", "--model", "c.gguf"], "leave out --model"),
    (["--ab", "a.gguf", "b.gguf", "--ab-block", "0"], "--ab-block must be a number of minutes > 0"),
    (["--ab-block", "3"], "give --ab A B too"),
])
def test_a_wrong_ab_is_refused_in_one_line(argv, message, tmp_path, capsys):
    assert cli.main([str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("empower-tui: ") and message in err and len(err.strip().splitlines()) == 1


def test_without_a_usable_log_the_ab_is_refused_before_any_screen(tmp_path, capsys):
    bad = tmp_path / "log.db"
    bad.write_text("not a database, but a person's notes")
    assert cli.main([str(tmp_path), "--ab", "a.gguf", "b.gguf", "--db", str(bad)]) == 2
    assert "the A/B needs the interaction log" in capsys.readouterr().err
    assert bad.read_text() == "not a database, but a person's notes"


# --- the turns ----------------------------------------------------------------------------------

def test_each_pair_of_blocks_has_one_of_each_in_an_order_that_is_not_a_pattern():
    for seed in range(20):
        for pair in range(10):
            assert {label_of(seed, 2 * pair), label_of(seed, 2 * pair + 1)} == set(LABELS)
    firsts = {tuple(label_of(seed, 2 * p) for p in range(10)) for seed in range(20)}
    assert len(firsts) > 10  # drawn, not alternated


def test_blocks_hand_over_after_their_editing_time_and_a_pause_counts_at_most_idle(tmp_path):
    log = InteractionLog(tmp_path / "log.db")
    t = 1000.0
    study = Study(log, (A, B), block_s=60, now=t, rng=random.Random(1))
    first = study.label
    assert not study.activity(t) and not study.activity(t + 20)
    assert not study.activity(t + 20 + 3600)   # an hour away: 30 s of it count
    assert study.active_s == 50
    assert study.activity(t + 3630)             # 50 + 10 = 60: the other's turn
    assert study.label != first and study.n == 1
    assert not study.activity(t + 3659)         # the handing-over edit starts the new block's clock
    assert study.active_s == 29
    rows = log.query("SELECT n, label, active_s, ended_at FROM ab_blocks ORDER BY id")
    assert rows[0] == (0, first, 60.0, t + 3630) and rows[1][:2] == (1, study.label)


def test_the_same_two_again_go_on_with_their_study_and_finish_a_block_cut_short(tmp_path):
    log = InteractionLog(tmp_path / "log.db")
    s1 = Study(log, (A, B), block_s=60, now=0.0, rng=random.Random(2))
    s1.activity(0.0)
    s1.activity(25.0)
    s1.end(26.0)
    labels = dict(s1.arms)
    s2 = Study(log, (B, A), block_s=60, now=100.0)  # either order: the same study
    assert (s2.id, s2.seed, s2.n, s2.done_s, s2.arms) == (s1.id, s1.seed, 0, 25.0, labels)
    s2.activity(100.0)
    assert not s2.activity(120.0)
    assert s2.activity(135.0)  # 25 + 20 + 15: the block is done, across two sittings
    other = Study(log, (A, Arm("m.gguf", "threshold", 2.0)), block_s=60, now=200.0)
    assert other.id != s1.id


# --- what stats --ab computes -------------------------------------------------------------------

def _hand_over(study: Study) -> None:
    """End the block now: an edit now (not enough to end it), then one a block's length later,
    and the clock waited out so that later events fall in the next block."""
    t = time.time()
    assert not study.activity(t)
    assert study.activity(t + study.block_s)
    while time.time() <= t + study.block_s:
        time.sleep(0.01)


def _shown(log, session, study, text, latency):
    arm = study.arm
    return log.event(session, "suggestion_shown", offset=0, text=text, latency_ms=latency, model=arm.model,
                     policy=arm.name.split("@", 1)[1], ab_arm=study.label, ab_block=study.n)


def test_stats_ab_counts_each_block_s_suggestions_and_writing_and_pairs_the_blocks(tmp_path):
    log = InteractionLog(tmp_path / "log.db")
    study = Study(log, (A, B), block_s=0.2, rng=random.Random(3))
    first, second = study.label, LABELS[1 - LABELS.index(study.label)]
    s = log.start_session(tmp_path / "f.py", text="", ab_study=study.id)
    seq = _shown(log, s, study, "abcdef", 10.0)                         # block 0
    log.event(s, "suggestion_accepted", how="all", text="abcdef", suggestion=seq)
    log.event(s, "insert", offset=0, text="abcdef", origin="suggestion", suggestion=seq)
    log.event(s, "insert", offset=6, text="xy", origin="typed")
    log.event(s, "delete", start=4, end=6, text="ef")                   # "abcdxy"
    _hand_over(study)                                                   # block 1
    seq = _shown(log, s, study, "zz", 30.0)
    log.event(s, "suggestion_dismissed", suggestion=seq, reason="esc")
    log.event(s, "insert", offset=6, text="hello", origin="typed")
    log.end_session(s, "abcdxyhello")
    study.prefer("same")
    study.prefer(first)
    study.end()

    r = ab_report.compute(open_for_reading(tmp_path / "log.db"))
    by = {a.label: a for a in r.arms}
    one, two = by[first], by[second]
    assert (one.blocks, one.shown, one.accepted, one.chars_accepted, one.chars_deleted) == (1, 1, 1, 6, 2)
    assert one.measures["acceptance"] == 1.0 and one.measures["share"] == pytest.approx(4 / 6)
    assert one.measures["deleted_per_acceptance"] == 2.0 and one.measures["latency_ms"] == 10.0
    assert (two.shown, two.accepted, two.measures["share"], two.measures["latency_ms"]) == (1, 0, 0.0, 30.0)
    assert two.measures["deleted_per_acceptance"] is None  # nothing taken: undefined, not 0
    assert r.pairs == 1
    d = {p.measure: p for p in r.paired}
    sign = 1 if first == "X" else -1
    assert d["acceptance"].diff == sign * 1.0 and d["acceptance"].n_pairs == 1
    assert d["acceptance"].low is None  # one pair: no interval
    assert d["deleted_per_acceptance"].n_pairs == 0
    assert [p.choice for p in r.preferences] == ["same", first] and r.preference.choice == first

    # The plain stats show the two assistants, and no assistant-less row for the A/B's session.
    groups = plain_stats(open_for_reading(tmp_path / "log.db")).groups
    assert sorted((g.model, g.policy) for g in groups) == [("m.gguf", "base"), ("m.gguf", "base-2")]


def test_stats_ab_intervals_come_from_the_pairs(tmp_path):
    log = InteractionLog(tmp_path / "log.db")
    study = Study(log, (A, B), block_s=0.2, rng=random.Random(4))
    s = log.start_session(tmp_path / "f.py", text="", ab_study=study.id)
    taken = {"X": 3, "Y": 1}  # of 4 shown a block
    for _ in range(6):        # 3 pairs
        for i in range(4):
            seq = _shown(log, s, study, "q", 5.0)
            if i < taken[study.label]:
                log.event(s, "suggestion_accepted", how="all", text="q", suggestion=seq)
                log.event(s, "insert", offset=0, text="q", origin="suggestion", suggestion=seq)
        _hand_over(study)
    log.end_session(s, "q" * 12)
    study.end()
    r = ab_report.compute(open_for_reading(tmp_path / "log.db"))
    acc = next(p for p in r.paired if p.measure == "acceptance")
    assert r.pairs == 3 and acc.n_pairs == 3 and acc.diff == pytest.approx(0.5)
    assert acc.low == acc.high == pytest.approx(0.5)  # the same difference in every pair


def test_stats_ab_without_a_study_says_so(tmp_path, capsys):
    InteractionLog(tmp_path / "log.db").close()
    assert cli.main(["stats", "--ab", "--db", str(tmp_path / "log.db")]) == 2
    assert "no A/B study in this log" in capsys.readouterr().err
    assert cli.main(["stats", "--ab", "--study", "7", "--db", str(tmp_path / "nothing.db")]) == 2
    assert "no interaction log at" in capsys.readouterr().err


# --- the editor ---------------------------------------------------------------------------------

async def test_the_editor_serves_both_blind_hands_over_and_asks_which_helped(tmp_path, test_models, capsys):
    path = tmp_path / "lava.py"
    path.write_text(PROBE)
    gguf = str(test_models.memorizer_gguf)
    arms = (Arm(gguf, "base"), Arm(gguf, "base-2"))
    db = tmp_path / "log.db"
    settings = Settings(delay_s=0.02, log_db=str(db), ab=arms, ab_block_s=0.4, prefetch=False)
    app = EmpowerApp(open_file(path), settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, EditorScreen) and app.coaches, what="both assistants")
        screen = app.screen
        bar = str(screen.query_one("#status").render())
        assert f"assistant {app.study.label}" in bar and "memorizer" not in bar and "base" not in bar
        editor = screen.editor
        editor.move_cursor(editor.document.end)
        seen_labels = set()
        deadline = time.monotonic() + 20
        while len(seen_labels) < 2 or app.study.n < 3:  # type on, through the turns
            assert time.monotonic() < deadline, "the turns never came round"
            await until(pilot, lambda: editor.ghost is not None, what="a ghost")
            seen_labels.add(app.study.label)
            assert app.coach is app.coaches[app.study.label]
            await pilot.press("tab")
            await pilot.pause(0.15)
        await pilot.press("ctrl+s")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, Question), what="the preference question")
        await pilot.click("#X")
    assert app.return_code in (None, 0)

    db_ = open_for_reading(db)
    [session] = sessions(db_)
    assert session.ab_study == app.study.id and session.model is None
    shown = [e for e in events(db_) if e.kind == "suggestion_shown"]
    arms_by_label = app.study.arms
    for e in shown:  # each suggestion is its block's assistant's: base-2 says at most 2 tokens
        arm = arms_by_label[e.data["ab_arm"]]
        assert e.data["ab_arm"] == label_of(app.study.seed, e.data["ab_block"])
        assert (e.data["model"], e.data["policy"]) == (arm.model, arm.policy)
        if arm.policy == "base-2":
            assert e.data["n_tokens"] <= 2
    assert {e.data["ab_arm"] for e in shown} == set(LABELS)

    assert cli.main(["stats", "--ab", "--json", "--db", str(db)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [a["label"] for a in out["arms"]] == ["X", "Y"] and all(a["shown"] > 0 for a in out["arms"])
    assert out["preferences"][-1]["choice"] == "X" and out["pairs"] >= 1
    assert cli.main(["stats", "--ab", "--db", str(db)]) == 0
    table = capsys.readouterr().out
    assert "X felt more helpful" in table and "base-2" in table


# --- in a real terminal -------------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_a_scripted_person_sits_a_study_in_tmux_and_stats_shows_it(tmp_path, test_models, capfd):
    """experiments/ab_tmux.py: the real empower-tui in tmux, driven by keys; the file written is
    the person's text, both assistants had turns, and the answer to the question is kept."""
    from experiments import ab_tmux

    gguf = str(test_models.memorizer_gguf)
    target = tmp_path / "target.py"
    target.write_text(SOLUTION)  # memorized: ghosts that are right, so the person takes some
    out = tmp_path / "run"
    code = ab_tmux.main([f"{gguf}@base", f"{gguf}@base-2", "--target", str(target), "--lines", "14",
                         "--minutes", "0.05", "--read", "0.2", "--prefer", "Y", "--out", str(out)])
    printed = capfd.readouterr().out
    assert code == 0, printed
    assert (out / "project" / "target.py").read_text() == "".join(SOLUTION.splitlines(keepends=True)[:14])
    assert "as the target" in printed and "Y felt more helpful" in printed
    r = ab_report.compute(open_for_reading(out / "interactions.db"))
    assert r.pairs >= 1 and all(a.shown > 0 for a in r.arms) and sum(a.accepted for a in r.arms) > 0
    assert r.preference.choice == "Y"
