"""The arms of the comparison: who is trained on what, and how each is served and named.

An untrained arm is the built-in model with a policy (Base caps at 64 tokens, Base-N at N,
threshold applies the logit-threshold rule at inference). A trained arm is the same model
LoRA-trained on one labelled dataset (empower at an η, or SFT-N / SFT-RAND), exported to GGUF,
registered, and served with its own stop (`trained`).
"""

from __future__ import annotations

from dataclasses import dataclass

ETAS = (0.32, 1.0, 2.0, 4.0)  # the labels' η (trained Empower arms)
THRESHOLD_ETAS = (1.0, 2.0, 4.0)  # the untrained threshold policy's η
SFT_RULES = ("sft-10", "sft-20", "sft-rand")


@dataclass(frozen=True)
class Arm:
    name: str  # as the report shows it: "empower η=2", "SFT-10", "Base-10", "threshold η=2"
    key: str  # a file-safe id: "empower-eta2", "sft-10", "base-10", "threshold-eta2"
    family: str  # "empower", "sft", "base", "threshold"
    policy: str  # the evals policy: base, base-N, threshold, trained
    eta: float | None = None  # the labels' η (empower) or the policy's η (threshold)

    @property
    def trained(self) -> bool:
        return self.family in ("empower", "sft")

    @property
    def dataset(self) -> str:
        """The labelled dataset a trained arm learns from (finetune.label.dataset_name)."""
        return self.key

    def assistant(self, base: str, prefix: str) -> str:
        """The model spec it is served as: the registered name of a trained arm, else the base."""
        return f"{prefix}-{self.key}" if self.trained else base

    @property
    def policy_label(self) -> str:
        """How empower-evals names its policy in the run store."""
        from coach.policies import policy_name

        return policy_name(self.policy, self.eta if self.policy == "threshold" else None)


def all_arms() -> list[Arm]:
    untrained = [Arm("Base", "base", "base", "base"), Arm("Base-10", "base-10", "base", "base-10"),
                 Arm("Base-20", "base-20", "base", "base-20")]
    untrained += [Arm(f"threshold η={e:g}", f"threshold-eta{e:g}", "threshold", "threshold", e) for e in THRESHOLD_ETAS]
    trained = [Arm(r.upper() if r != "sft-rand" else "SFT-RAND", r, "sft", "trained") for r in SFT_RULES]
    trained += [Arm(f"empower η={e:g}", f"empower-eta{e:g}", "empower", "trained", e) for e in ETAS]
    return untrained + trained


def by_key(key: str) -> Arm:
    for arm in all_arms():
        if arm.key == key:
            return arm
    raise KeyError(key)
