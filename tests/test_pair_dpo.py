import math

import pytest
import torch
import torch.nn.functional as F

from hermes_bench.align.pair_dpo import Preference, pair_dpo_loss


def pref(pw, pl, rw, rl, grad=False):
    t = [torch.tensor([x], dtype=torch.float64, requires_grad=grad) for x in (pw, pl, rw, rl)]
    return Preference(*t)


def test_known_value_worked_by_hand():
    # margin = 0.5 * ((-1 - -1.5) - (-2 - -1.5)) = 0.5; loss = log(1 + e^-0.5)
    loss = pair_dpo_loss(pref(-1.0, -2.0, -1.5, -1.5), None, beta=0.5)
    assert loss.item() == pytest.approx(math.log1p(math.exp(-0.5)), abs=1e-12)
    assert loss.item() == pytest.approx(0.474077, abs=1e-6)


def test_gradient_raises_the_chosen_and_lowers_the_rejected():
    und = pref(-3.0, -2.0, -2.5, -2.5, grad=True)
    pair_dpo_loss(und, None).sum().backward()
    assert und.policy_w.grad.item() < 0 < und.policy_l.grad.item()  # descent: up for w, down for l
    assert und.ref_w.grad.item() > 0 > und.ref_l.grad.item()


def test_one_modality_off_is_standard_dpo():
    beta = 0.2
    und = Preference(torch.tensor([-4.0, -1.0]), torch.tensor([-5.0, -0.5]), torch.tensor([-4.5, -1.2]),
                     torch.tensor([-4.8, -0.9]))
    standard = F.softplus(-beta * ((und.policy_w - und.ref_w) - (und.policy_l - und.ref_l)))
    for form in ("sum", "joint"):
        assert torch.allclose(pair_dpo_loss(und, None, beta, form), standard)
        assert torch.allclose(pair_dpo_loss(None, und, beta, form), standard)


def test_forms_combine_the_margins_differently():
    und, gen = pref(-1.0, -2.0, -1.5, -1.5), pref(-10.0, -9.0, -10.0, -10.0)
    m_und, m_gen = 0.2 * 1.0, 0.2 * -1.0
    total = pair_dpo_loss(und, gen, 0.2, "sum", c_und=2.0, c_gen=0.5).item()
    assert total == pytest.approx(2.0 * math.log1p(math.exp(-m_und)) + 0.5 * math.log1p(math.exp(-m_gen)))
    joint = pair_dpo_loss(und, gen, 0.2, "joint").item()
    assert joint == pytest.approx(math.log1p(math.exp(-(m_und + m_gen))))  # margins cancel: log 2
    assert joint == pytest.approx(math.log(2))


def test_stable_for_large_margins_and_per_sample():
    far = Preference(torch.tensor([0.0, -1e4]), torch.tensor([-1e4, 0.0]), torch.zeros(2), torch.zeros(2))
    loss = pair_dpo_loss(far, None, beta=1.0)
    assert loss.shape == (2,)
    assert torch.isfinite(loss).all() and loss[0] == 0 and loss[1] == pytest.approx(1e4)


def test_bad_arguments():
    with pytest.raises(ValueError, match="form"):
        pair_dpo_loss(pref(0, 0, 0, 0), None, form="mean")
    with pytest.raises(ValueError, match="at least one"):
        pair_dpo_loss(None, None)
