"""Policies: how much of a generation to suggest. Named so the benchmark can compare them.

    base         up to a generous cap (the model's own stop or CAP tokens)
    base-N       at most N tokens (the paper's Base-10 / Base-20)
    threshold    the logit-threshold rule at inference: the longest prefix whose cumulative
                 negative log-likelihood under the serving model stays below η bits; nothing
                 when even the first token costs more
    trained      the model's own stop (EOS or a stop string), for finetuned Empower models

A policy is named `policy_name(name, η)` everywhere: `threshold@2`, `base-10`, `trained`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable

from coach.types import CoachError

CAP = 64  # tokens: "generous" for a suggestion a person reads at a glance
DEFAULT_ETA = 4.0  # bits; the user study's winner was "eta4" (facts.md)


@dataclass(frozen=True)
class Policy:
    name: str
    max_tokens: int
    eta_bits: float | None = None

    @property
    def needs_logprobs(self) -> bool:
        return self.eta_bits is not None

    def keep(self, logprobs: tuple[float, ...] | None, n_tokens: int) -> int:
        """How many of the generated tokens to show."""
        n = min(n_tokens, self.max_tokens)
        if self.eta_bits is None:
            return n
        if logprobs is None:
            raise CoachError(f"the {self.name} policy needs per-token log-probabilities, and this model's server returns none")
        return threshold_length((-lp for lp in logprobs[:n]), self.eta_bits)

    def __str__(self) -> str:
        return policy_name(self.name, self.eta_bits)


def policy_name(name: str, eta: float | None = None) -> str:
    """The one spelling of a policy, in the editor's status bar and log, the benchmark's run
    store and the reports: `threshold@2` for the threshold policy at η = 2 bits, else the name.
    ASCII without spaces, so it is a key in SQL and a column in a table alike."""
    return f"{name}@{eta:g}" if name == "threshold" and eta is not None else name


_ASSISTANT = re.compile(r"(?P<model>.+?)@(?P<policy>base|base-\d+|threshold|trained)(?:@(?P<eta>[0-9]*\.?[0-9]+))?")


def split_assistant(spec: str) -> tuple[str, str | None, float | None]:
    """An assistant as one word, `MODEL@POLICY` with the policy spelt as `policy_name` writes it
    (`smollm2-135m@threshold@2`, `x.gguf@base-10`, `mine@trained`) -> (model, policy, η). A
    spec with no policy at its end is all model: (spec, None, None). For the editor's A/B arms."""
    m = _ASSISTANT.fullmatch(spec)
    if m is None or (m["eta"] is not None and m["policy"] != "threshold"):
        return spec, None, None
    return m["model"], m["policy"], float(m["eta"]) if m["eta"] is not None else None


def threshold_length(nll: Iterable[float], eta_bits: float) -> int:
    """The rule this project is about (the paper's Algorithm 1, i*): how many tokens make the
    longest prefix whose cumulative negative log-likelihood (nats per token) stays below η bits;
    0 when the first token alone reaches it. The one home of the rule: the threshold policy, the
    early stop of a generation (coach/engine.py) and the labeller (finetune/rules.py, finetune/estimator.py) call it."""
    limit, total, n = eta_bits * math.log(2), 0.0, 0
    for x in nll:
        total += x
        if not total < limit:  # a NaN stops it too
            return n
        n += 1
    return n


def parse(name: str, eta: float | None = None) -> Policy:
    if name == "base":
        return Policy("base", CAP)
    if m := re.fullmatch(r"base-(\d+)", name):
        n = int(m.group(1))
        if n < 1:
            raise CoachError("base-N needs N >= 1")
        return Policy(name, n)
    if name == "threshold":
        eta = DEFAULT_ETA if eta is None else eta
        if eta <= 0:
            raise CoachError("η must be a positive number of bits")
        return Policy("threshold", CAP, eta)
    if name == "trained":
        return Policy("trained", CAP)
    raise CoachError(f"unknown policy {name!r}: use base, base-N (e.g. base-20), threshold or trained")
