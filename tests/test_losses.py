"""Loss terms against hand-computed values."""

from __future__ import annotations

import torch

from isofield.losses import clamped_l1, eikonal_loss, normal_loss, surface_loss


def test_clamped_l1_by_hand():
    pred = torch.tensor([0.05, 0.3, -0.2, 0.0])
    target = torch.tensor([0.0, 0.5, -0.05, -0.4])
    # clamped at 0.1: |0.05-0| + |0.1-0.1| + |-0.1+0.05| + |0+0.1| = 0.05 + 0 + 0.05 + 0.1 = 0.2
    assert torch.isclose(clamped_l1(pred, target, 0.1), torch.tensor(0.2 / 4))


def test_igr_terms_by_hand():
    assert torch.isclose(surface_loss(torch.tensor([0.1, -0.3])), torch.tensor(0.2))
    grads = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 0.5]])
    normals = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    # ‖(3,3,0)‖ = 3√2, ‖(0,0,-0.5)‖ = 0.5
    assert torch.isclose(normal_loss(grads, normals), torch.tensor((3 * 2**0.5 + 0.5) / 2))
    # (5-1)² = 16, (0.5-1)² = 0.25
    assert torch.isclose(eikonal_loss(grads), torch.tensor((16 + 0.25) / 2))


def test_sign_loss_only_penalises_wrong_signs():
    from isofield.losses import sign_loss

    values = torch.tensor([-0.2, 0.3, 0.1, -0.4])
    signs = torch.tensor([-1.0, 1.0, -1.0, 1.0])  # the last two are wrong by 0.1 and 0.4
    assert torch.isclose(sign_loss(values, signs), torch.tensor(0.5 / 4))
