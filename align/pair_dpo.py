"""Pair-DPO (HermesFlow): one DPO margin per modality from per-sample summed log-probs, combined per sample.

margin = beta * ((log pi(w) - log ref(w)) - (log pi(l) - log ref(l))). Form "sum" (the official code):
c_und * -logsigmoid(margin_und) + c_gen * -logsigmoid(margin_gen); form "joint" (the paper's single expression):
-logsigmoid(c_und * margin_und + c_gen * margin_gen). A modality that is off (None) drops out, which leaves
standard DPO on the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

FORMS = ("sum", "joint")


@dataclass
class Preference:
    """Summed log-probs of the chosen (w) and rejected (l) samples under the policy and the reference: (batch,)."""

    policy_w: torch.Tensor
    policy_l: torch.Tensor
    ref_w: torch.Tensor
    ref_l: torch.Tensor

    def rewards(self, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """DPO's implicit rewards of the chosen and the rejected sample."""
        return beta * (self.policy_w - self.ref_w), beta * (self.policy_l - self.ref_l)

    def margin(self, beta: float) -> torch.Tensor:
        chosen, rejected = self.rewards(beta)
        return chosen - rejected


def pair_dpo_loss(understanding: Preference | None, generation: Preference | None, beta: float = 0.5,
                  form: str = "sum", c_und: float = 1.0, c_gen: float = 1.0) -> torch.Tensor:
    """Per-sample Pair-DPO loss; the caller averages.

    Args:
        understanding, generation: each side's summed log-probs of win and lose under the policy and the reference
            (None leaves that side out: the single-modality ablations).
        beta: the DPO temperature; each margin is beta * [(pi(w) - ref(w)) - (pi(l) - ref(l))].
        form: "sum" (the official code: c_und * -logsigmoid(m_und) + c_gen * -logsigmoid(m_gen)) or "joint"
            (the paper's formula: -logsigmoid(c_und * m_und + c_gen * m_gen)).
        c_und, c_gen: the weights of the two sides.

    Returns:
        The loss of each homologous pair, shape (batch,).
    """
    if form not in FORMS:
        raise ValueError(f"Pair-DPO form must be one of {FORMS}, not {form!r}")
    terms = [(c, p.margin(beta)) for c, p in ((c_und, understanding), (c_gen, generation)) if p is not None]
    if not terms:
        raise ValueError("Pair-DPO needs at least one modality")
    if form == "joint":
        return -F.logsigmoid(sum(c * m for c, m in terms))
    return sum(c * -F.logsigmoid(m) for c, m in terms)
