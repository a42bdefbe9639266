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


def test_pseudo_sdf_loss_regresses_far_values_and_signs_near():
    from isofield.losses import pseudo_sdf_loss

    values = torch.tensor([0.5, -0.1, 0.01, 0.02])
    targets = torch.tensor([0.3, -0.4, -0.05, 0.04])  # band 0.1: the last two are near
    # far: |0.5-0.3| + |-0.1+0.4| = 0.5; near: relu(0.01) (wrong sign) + relu(-0.02) = 0.01
    assert torch.isclose(pseudo_sdf_loss(values, targets, band=0.1), torch.tensor(0.51 / 4))


def test_siren_and_digs_terms_by_hand():
    from isofield.losses import divergence_loss, normal_cosine_loss, off_surface_loss

    grads = torch.tensor([[3.0, 4.0, 0.0], [0.0, 0.0, 0.5]])
    normals = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0]])
    # cos = 4/5 and -1: mean(1 - 0.8, 1 + 1) = 1.1
    assert torch.isclose(normal_cosine_loss(grads, normals), torch.tensor(1.1))
    # |5 - 1| = 4, |0.5 - 1| = 0.5
    assert torch.isclose(eikonal_loss(grads, power=1), torch.tensor(2.25))
    values = torch.tensor([0.0, 0.01, -0.02])
    expected = (1 + torch.exp(torch.tensor(-1.0)) + torch.exp(torch.tensor(-2.0))) / 3
    assert torch.isclose(off_surface_loss(values, alpha=100.0), expected)
    assert torch.isclose(divergence_loss(torch.tensor([-2.0, 1.0, 0.0])), torch.tensor(1.0))


def test_sign_agnostic_terms_by_hand():
    from isofield.losses import sign_agnostic_gradient_loss, sign_agnostic_loss

    values = torch.tensor([-0.3, 0.2, 0.0])
    unsigned = torch.tensor([0.3, 0.5, 0.1])
    # ||f| - h| = 0, 0.3, 0.1: either sign of f fits h equally well
    assert torch.isclose(sign_agnostic_loss(values, unsigned), torch.tensor(0.4 / 3))
    grads = torch.tensor([[-1.0, 0.0], [0.0, 2.0]])
    directions = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # min(‖∇f − ∇h‖, ‖∇f + ∇h‖): min(2, 0) = 0 (opposite sign is free), min(1, 3) = 1
    assert torch.isclose(sign_agnostic_gradient_loss(grads, directions), torch.tensor(0.5))


def test_outside_sign_loss_counts_only_negative_values_beyond_the_radius():
    from isofield.losses import outside_sign_loss

    points = torch.tensor([[0.5, 0.0], [1.5, 0.0], [0.0, -2.0], [3.0, 0.0]])
    values = torch.tensor([-0.4, -0.2, 0.3, -0.1])
    # inside the unit circle: ignored; beyond: relu(0.2) + relu(-0.3) + relu(0.1) = 0.3
    assert torch.isclose(outside_sign_loss(values, points), torch.tensor(0.3 / 4))
