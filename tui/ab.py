"""A blind A/B of two assistants on yourself: `empower-tui DIR --ab A B` (the paper's user
study, for one person). `empower-tui stats --ab` reports it (tui/ab_report.py).

- The two assistants take turns in blocks of editing time (`--ab-block`, minutes; a pause
  counts at most IDLE_S). Blocks come in pairs, one of each assistant, in an order drawn from
  the study's seed, so that a pair compares the two under the same task and the same hour, and
  the person cannot tell from the order which is which.
- The person sees them only as X and Y: which assistant is X is drawn once per study.
- A study is its pair of assistants: started again with the same two (in either order), it goes
  on where it stopped, with its labels and seed. A block cut short by quitting is finished in
  the next sitting, so a study can span days and every block is about as long as asked.
- F8 asks which felt more helpful (X, Y or no difference); so does quitting, once a sitting
  has seen both. Every answer is kept with how many blocks had begun; the last one counts.

Everything is in the interaction log (tui/migrations.py, m003): a stats run needs nothing else.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from coach.policies import policy_name

LABELS = ("X", "Y")
IDLE_S = 30.0  # a pause longer than this counts as this much: a lunch break is not a block
DEFAULT_BLOCK_MIN = 5.0
SAVE_EVERY_S = 10.0  # active time is written this often, so a crash loses little of a block
CHOICES = {"X": "X", "Y": "Y", "same": "no difference"}


@dataclass(frozen=True)
class Arm:
    """One of the two assistants, as the person named it."""
    model: str
    policy: str
    eta: float | None = None
    format: str | None = None

    @property
    def name(self) -> str:
        """`MODEL@POLICY`, the one spelling (coach.policies.split_assistant reads it back)."""
        return f"{self.model}@{policy_name(self.policy, self.eta)}"


def order_of_pair(seed: int, pair: int) -> tuple[str, str]:
    """Which label goes first in pair `pair`: drawn, not alternated, so that a person cannot
    learn the pattern, yet the same every time it is asked."""
    first = random.Random(f"{seed}:{pair}").choice(LABELS)
    return (first, LABELS[1 - LABELS.index(first)])


def label_of(seed: int, n: int) -> str:
    return order_of_pair(seed, n // 2)[n % 2]


class Study:
    """A study running in the editor: which block it is in, and its clock. Writes through the
    app's InteractionLog (its `execute`/`query`), so the A/B shares the log's lock and file."""

    def __init__(self, log, arms: tuple[Arm, Arm], block_s: float, *, now: float | None = None,
                 rng: random.Random | None = None) -> None:
        if block_s <= 0:
            raise ValueError("a block must last more than 0 minutes")
        self.log, self.block_s = log, block_s
        now = time.time() if now is None else now
        found = self._find(arms)
        if found is None:
            rng = rng or random.Random()
            self.seed = rng.randrange(2**31)
            labelled = list(arms)
            rng.shuffle(labelled)
            self.id = log.execute("INSERT INTO ab_studies (started_at, seed) VALUES (?, ?)",
                                  (now, self.seed)).lastrowid
            for label, arm in zip(LABELS, labelled):
                log.execute("INSERT INTO ab_arms (study, label, model, policy, eta, format) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (self.id, label, arm.model, arm.policy, arm.eta, arm.format))
            self.arms = dict(zip(LABELS, labelled))
            self.n, done = 0, 0.0
        else:
            self.id, self.seed, self.arms = found
            last = log.query("SELECT n, sum(active_s), max(block_s) FROM ab_blocks WHERE study = ? "
                             "GROUP BY n ORDER BY n DESC LIMIT 1", (self.id,))
            if not last:
                self.n, done = 0, 0.0
            elif (last[0][1] or 0) < last[0][2]:  # cut short by quitting: finish it
                self.n, done = last[0][0], last[0][1] or 0.0
            else:
                self.n, done = last[0][0] + 1, 0.0
        self.blocks_this_sitting = 0
        self._open_segment(now, done)

    def _find(self, arms: tuple[Arm, Arm]):
        """The study of these two assistants, in either order: (id, seed, arms by label)."""
        rows = self.log.query("SELECT s.id, s.seed, a.label, a.model, a.policy, a.eta, a.format FROM ab_studies s "
                              "JOIN ab_arms a ON a.study = s.id ORDER BY s.id DESC, a.label")
        by_study: dict[int, tuple[int, dict[str, Arm]]] = {}
        for sid, seed, label, model, policy, eta, fmt in rows:
            by_study.setdefault(sid, (seed, {}))[1][label] = Arm(model, policy, eta, fmt)
        wanted = sorted(a.name for a in arms)
        for sid, (seed, labelled) in by_study.items():  # newest first
            if sorted(a.name for a in labelled.values()) == wanted:
                # The formats as asked now (a model's default format may be named now, not then).
                given = {a.name: a for a in arms}
                return sid, seed, {label: given[a.name] for label, a in labelled.items()}
        return None

    # ------------------------------------------------------------------ the clock
    @property
    def label(self) -> str:
        return label_of(self.seed, self.n)

    @property
    def arm(self) -> Arm:
        return self.arms[self.label]

    def _open_segment(self, now: float, done: float, last: float | None = None) -> None:
        self.done_s, self.active_s, self._saved_s = done, 0.0, 0.0  # done: in earlier segments
        self._last = last  # the last edit: a handover's edit counts toward the next block's time
        self.blocks_this_sitting += 1
        self.segment = self.log.execute(
            "INSERT INTO ab_blocks (study, n, label, started_at, active_s, block_s) VALUES (?, ?, ?, ?, 0, ?)",
            (self.id, self.n, self.label, now, self.block_s)).lastrowid

    def _save(self, now: float | None = None, ended: bool = False) -> None:
        self.log.execute("UPDATE ab_blocks SET active_s = ?, ended_at = ? WHERE id = ?",
                         (self.active_s, now if ended else None, self.segment))
        self._saved_s = self.active_s

    def activity(self, now: float | None = None) -> bool:
        """The person edited: count the time since their last edit (a pause at most IDLE_S).
        True when that ended the block and the other assistant's turn has begun."""
        now = time.time() if now is None else now
        if self._last is not None:
            self.active_s += min(max(0.0, now - self._last), IDLE_S)
        self._last = now
        if self.done_s + self.active_s < self.block_s:
            if self.active_s - self._saved_s >= SAVE_EVERY_S:
                self._save()
            return False
        self._save(now, ended=True)
        self.n += 1
        self._open_segment(now, 0.0, last=now)
        return True

    @property
    def seen_both(self) -> bool:
        """Whether this sitting has had both assistants (then quitting asks for a preference)."""
        return self.blocks_this_sitting >= 2

    def prefer(self, choice: str, now: float | None = None) -> None:
        if choice not in CHOICES:
            raise ValueError(f"a preference is one of {', '.join(CHOICES)}, not {choice!r}")
        self.log.execute("INSERT INTO ab_preferences (study, at, choice, blocks) VALUES (?, ?, ?, ?)",
                         (self.id, time.time() if now is None else now, choice, self.n + 1))

    def end(self, now: float | None = None) -> None:
        """Quitting: the segment ends here; the block goes on in the next sitting if it is short."""
        self._save(time.time() if now is None else now, ended=True)
