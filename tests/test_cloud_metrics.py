"""Point-cloud metrics (PointFlow conventions): hand-computed CD, brute-force EMD, hand-made
distance matrices for MMD / COV / 1-NNA, invariances, bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import trimesh

from isofield.errors import InputError
from isofield.geometry.sampling import sample_surface
from isofield.metrics.clouds import (
    balanced_one_nna,
    chamfer_distance,
    coverage,
    emd,
    format_generation_metrics,
    generation_metrics,
    mmd,
    one_nna,
    pairwise_chamfer,
    pairwise_emd,
    sinkhorn_emd,
)
from isofield.metrics.surface import chamfer_deepsdf, earth_movers_distance

# P = {(0,0,0)}, Q = {(3,4,0)}, S = P u Q:
#   CD(P, Q) = 25 + 25 = 50
#   CD(P, S) = mean(0) + mean(0, 25) = 12.5, and CD(Q, S) = 12.5 likewise
P = np.array([[0.0, 0.0, 0.0]])
Q = np.array([[3.0, 4.0, 0.0]])
S = np.vstack([P, Q])


def brute_force_emd(a: np.ndarray, b: np.ndarray) -> float:
    """min over all n! bijections of the mean matched Euclidean distance."""
    return min(
        float(np.linalg.norm(a - b[list(order)], axis=1).mean())
        for order in itertools.permutations(range(len(b)))
    )


def sphere_samples(n: int, seed: int, axes=(1.0, 1.0, 1.0)) -> np.ndarray:
    """n surface samples of an ellipsoid with the given semi-axes, (n, 3) float64."""
    mesh = trimesh.creation.icosphere(subdivisions=3)
    return sample_surface(mesh, n, seed).points * np.asarray(axes)


# ---------------------------------------------------------------- Chamfer


def test_chamfer_by_hand():
    # a = {(0,0,0), (1,0,0)}, b = {(0,0,1)}: a -> b squared (1, 2), b -> a squared (1)
    a = np.array([[0.0, 0, 0], [1, 0, 0]])
    b = np.array([[0.0, 0, 1]])
    assert chamfer_distance(a, b) == pytest.approx(1.5 + 1.0)
    assert pairwise_chamfer([a], [b]) == pytest.approx(np.array([[2.5]]))


def test_pairwise_chamfer_of_clouds_of_different_sizes_by_hand():
    expected = np.array([[0.0, 50.0, 12.5], [50.0, 0.0, 12.5], [12.5, 12.5, 0.0]])
    assert pairwise_chamfer([P, Q, S]) == pytest.approx(expected, abs=1e-12)
    assert pairwise_chamfer([P, Q, S], [S, P]) == pytest.approx(expected[:, [2, 0]], abs=1e-12)


def test_pairwise_chamfer_matches_the_per_pair_definition():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 50, 3))
    b = [rng.normal(size=(n, 3)) for n in (20, 70)]
    expected = [[chamfer_deepsdf(x, y) for y in b] for x in a]
    assert pairwise_chamfer(a, b) == pytest.approx(np.array(expected), rel=1e-12)
    within = pairwise_chamfer(a)
    assert within == pytest.approx(pairwise_chamfer(a, a), rel=1e-12, abs=1e-15)
    assert np.array_equal(within, within.T) and np.all(np.diag(within) == 0)


# ---------------------------------------------------------------- EMD


@pytest.mark.parametrize("seed", range(4))
def test_exact_emd_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.random((7, 3)), rng.random((7, 3))
    assert emd(a, b) == pytest.approx(brute_force_emd(a, b), rel=1e-12)


def test_emd_by_hand():
    # a = {(0,0), (1,0)}, b = {(0,1), (1,5)}: crossing pairs cost 1/2 * (sqrt(2) + sqrt(26)),
    # straight pairs 1/2 * (1 + 5) = 3 < 3.257
    a = np.array([[0.0, 0.0], [1.0, 0.0]])
    b = np.array([[0.0, 1.0], [1.0, 5.0]])
    assert emd(a, b) == pytest.approx(3.0)
    assert emd(a, b, method="sinkhorn") == pytest.approx(3.0, rel=1e-6)


@pytest.mark.parametrize("n", [6, 7])
def test_sinkhorn_emd_matches_brute_force_on_tiny_sets(n):
    rng = np.random.default_rng(n)
    for _ in range(3):
        a, b = rng.random((n, 3)), rng.random((n, 3))
        assert emd(a, b, method="sinkhorn") == pytest.approx(brute_force_emd(a, b), rel=1e-5)


def test_sinkhorn_emd_is_a_close_lower_bound_on_surface_samples():
    # 256 points of a sphere against a resampled sphere / an ellipsoid (exact 0.2-0.4)
    a = np.stack([sphere_samples(256, 0), sphere_samples(256, 1)])
    b = np.stack([sphere_samples(256, 2), sphere_samples(256, 3, axes=(1.0, 0.8, 0.6))])
    approximate = pairwise_emd(a, b, method="sinkhorn")
    exact = pairwise_emd(a, b)
    assert np.all(approximate <= exact * (1 + 1e-5))
    assert approximate == pytest.approx(exact, rel=0.02)


def test_sinkhorn_emd_of_a_translate_is_the_translation_length():
    # |t| is exact: the identity matching costs |t| and W1 >= |difference of the means| = |t|
    a = sphere_samples(128, 0)
    shift = np.array([0.05, -0.12, 0.0])
    assert emd(a, a + shift) == pytest.approx(0.13, rel=1e-9)
    assert emd(a, a + shift, method="sinkhorn") == pytest.approx(0.13, rel=1e-3)


def test_sinkhorn_batches_like_single_pairs():
    rng = np.random.default_rng(1)
    a = torch.from_numpy(rng.random((3, 40, 3)).astype(np.float32))
    b = torch.from_numpy(rng.random((3, 40, 3)).astype(np.float32))
    batched = sinkhorn_emd(a, b)
    single = torch.cat([sinkhorn_emd(a[k : k + 1], b[k : k + 1]) for k in range(3)])
    assert torch.allclose(batched, single, rtol=1e-5)


def test_pairwise_emd_entries_are_the_per_pair_emd_at_one_point_count():
    rng = np.random.default_rng(2)
    a = [rng.random((30, 3)), rng.random((25, 3))]
    b = [rng.random((40, 3))]
    # every cloud is cut to the smallest size, 25, with the same seeded subsets as metrics
    matrix = pairwise_emd(a, b, points=100, seed=3)
    expected = [[earth_movers_distance(x, y, count=25, seed=3) for y in b] for x in a]
    assert matrix == pytest.approx(np.array(expected), rel=1e-12)
    within = pairwise_emd(a + b, points=20, seed=3)
    assert within[0, 2] == pytest.approx(earth_movers_distance(a[0], b[0], count=20, seed=3))
    assert np.array_equal(within, within.T) and np.all(np.diag(within) == 0)


# ---------------------------------------------------------------- invariances


@pytest.mark.parametrize("method", ["exact", "sinkhorn"])
def test_point_order_does_not_matter(method):
    rng = np.random.default_rng(4)
    a, b = rng.random((48, 3)), rng.random((48, 3))
    shuffled_a, shuffled_b = a[rng.permutation(48)], b[rng.permutation(48)]
    assert chamfer_distance(shuffled_a, shuffled_b) == pytest.approx(chamfer_distance(a, b))
    assert emd(shuffled_a, shuffled_b, method=method) == pytest.approx(
        emd(a, b, method=method), rel=1e-5
    )


def test_cloud_order_permutes_the_matrices_and_keeps_the_metrics():
    rng = np.random.default_rng(5)
    generated = rng.normal(size=(5, 32, 3))
    reference = rng.normal(size=(4, 32, 3)) + [0.3, 0.0, 0.0]
    order_g, order_r = rng.permutation(5), rng.permutation(4)
    distances = pairwise_chamfer(generated, reference)
    assert pairwise_chamfer(generated[order_g], reference[order_r]) == pytest.approx(
        distances[np.ix_(order_g, order_r)], rel=1e-12
    )
    forward = generation_metrics(generated, reference, distances=("cd",))
    backward = generation_metrics(generated[order_g], reference[order_r], distances=("cd",))
    for key in ("mmd_cd", "cov_cd", "1nna_cd"):
        assert backward[key] == pytest.approx(forward[key], rel=1e-12)


# ---------------------------------------------------------------- MMD, COV, 1-NNA by hand


def test_mmd_and_coverage_by_hand():
    # 3 generated x 2 reference: column minima 1 and 0.5; nearest references r0, r0, r1
    d_gr = np.array([[1.0, 4.0], [2.0, 3.0], [5.0, 0.5]])
    assert mmd(d_gr) == pytest.approx(0.75)
    assert coverage(d_gr) == 1.0
    # without the third: column minima 1 and 3; both claim r0
    assert mmd(d_gr[:2]) == pytest.approx(2.0)
    assert coverage(d_gr[:2]) == 0.5


def test_one_nna_of_identical_twins_is_zero_and_of_far_sets_is_one():
    within = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.5], [2.0, 1.5, 0.0]])
    # generated == reference: each cloud's nearest other is its twin, of the other label
    assert one_nna(within, within, within) == 0.0
    # every cross distance is larger than every distance within a set
    assert one_nna(within, within, within + 10.0) == 1.0


def test_one_nna_by_hand():
    d_gg = np.array([[0.0, 1.0], [1.0, 0.0]])
    d_rr = np.array([[0.0, 5.0], [5.0, 0.0]])
    d_gr = np.array([[2.0, 3.0], [4.0, 0.5]])
    # g0 -> g1 (1, right), g1 -> r1 (0.5, wrong), r0 -> g0 (2, wrong), r1 -> g1 (0.5, wrong)
    assert one_nna(d_gg, d_rr, d_gr) == 0.25


def test_one_nna_breaks_ties_towards_the_first_cloud():
    ones = np.ones((2, 2))
    # all distances 1: g0 -> g1 and g1 -> g0 (right), r0 -> g0 and r1 -> g0 (wrong)
    assert one_nna(ones, ones, ones) == 0.5


def test_balanced_one_nna_by_hand():
    # 3 generated, 1 apart; 1 reference, 10 from all of them
    d_gg = np.ones((3, 3)) - np.eye(3)
    d_rr = np.zeros((1, 1))
    d_gr = np.full((3, 1), 10.0)
    # all four: each generated is right, the reference (nearest: g0) is wrong -> 3/4
    assert one_nna(d_gg, d_rr, d_gr) == 0.75
    # one generated against the reference: each one's only other has the other label -> 0
    assert balanced_one_nna(d_gg, d_rr, d_gr, repeats=5) == (0.0, 0.0)


def test_balanced_one_nna_averages_seeded_subsets_of_the_larger_set():
    rng = np.random.default_rng(6)
    points_g, points_r = rng.random((2, 1)), rng.random((5, 1))  # 1-D "clouds"
    d_gg, d_rr = abs(points_g - points_g.T), abs(points_r - points_r.T)
    d_gr = abs(points_g - points_r.T)
    draws = np.random.default_rng(7)
    scores = []
    for _ in range(4):
        keep = np.sort(draws.choice(5, 2, replace=False))
        scores.append(one_nna(d_gg, d_rr[np.ix_(keep, keep)], d_gr[:, keep]))
    mean, spread = balanced_one_nna(d_gg, d_rr, d_gr, repeats=4, seed=7)
    assert (mean, spread) == pytest.approx((np.mean(scores), np.std(scores)))
    assert balanced_one_nna(d_gg, d_gg, d_gr[:, :2]) == (one_nna(d_gg, d_gg, d_gr[:, :2]), 0.0)


# ---------------------------------------------------------------- generation metrics


def test_generation_metrics_of_copies_and_of_far_sets():
    reference = [sphere_samples(40, seed, axes=(1.0, 0.5 + 0.2 * seed, 1.0)) for seed in range(3)]
    copies = generation_metrics(reference, reference, emd_points=32)
    for name in ("cd", "emd"):
        assert copies[f"mmd_{name}"] == 0.0
        assert copies[f"cov_{name}"] == 1.0
        assert copies[f"1nna_{name}"] == 0.0
        assert copies[f"1nna_balanced_{name}"] == 0.0
    far = generation_metrics([cloud + 10.0 for cloud in reference], reference, emd_points=32)
    assert far["1nna_cd"] == far["1nna_emd"] == 1.0
    assert far["mmd_emd"] == pytest.approx(10.0 * math.sqrt(3), rel=0.01)
    assert copies["emd_points"] == 32 and copies["emd_method"] == "exact"


def test_generation_metrics_of_unequal_sets_reports_the_balanced_variant():
    generated = [sphere_samples(30, seed) for seed in range(5)]
    reference = [sphere_samples(30, seed, axes=(1.0, 1.0, 0.5)) for seed in range(10, 12)]
    result = generation_metrics(generated, reference, distances=("cd",), repeats=3, seed=1)
    assert result["generated_clouds"] == 5 and result["reference_clouds"] == 2
    assert result["emd_points"] is None
    d_gg, d_rr = pairwise_chamfer(generated), pairwise_chamfer(reference)
    d_gr = pairwise_chamfer(generated, reference)
    assert result["mmd_cd"] == pytest.approx(mmd(d_gr))
    assert result["cov_cd"] == coverage(d_gr)
    expected = balanced_one_nna(d_gg, d_rr, d_gr, repeats=3, seed=1)
    assert (result["1nna_balanced_cd"], result["1nna_balanced_std_cd"]) == pytest.approx(expected)
    table = format_generation_metrics(result)
    assert "CD (x10^4)" in table and "5 generated vs 2 reference clouds" in table
    assert "over 3 random subsets of the larger set" in table
    assert f"{1e4 * result['mmd_cd']:.4g}" in table
    assert f"{100 * result['1nna_cd']:.2f}" in table


def test_format_labels_the_emd_scaling():
    clouds = [sphere_samples(20, seed) for seed in range(2)]
    table = format_generation_metrics(generation_metrics(clouds, clouds[::-1], emd_points=16))
    assert "EMD (x10^2)" in table and "EMD on 16 points per cloud (exact)" in table
    assert "COV %" in table and "1-NNA %" in table and "sets of equal size" in table


# ---------------------------------------------------------------- bad input


def _one_line_error(call, *args, **kwargs) -> str:
    with pytest.raises(InputError) as error:
        call(*args, **kwargs)
    message = str(error.value)
    assert message and "\n" not in message
    return message


def test_bad_clouds_are_input_errors():
    good = [P, Q]
    assert "empty" in _one_line_error(pairwise_chamfer, [])
    assert "empty" in _one_line_error(pairwise_emd, good, [])
    assert "shape (2, 3)" in _one_line_error(pairwise_chamfer, S)
    assert "got float" in _one_line_error(pairwise_emd, 1.0)
    assert "NaN" in _one_line_error(pairwise_chamfer, [P, np.array([[0.0, np.nan, 0.0]])])
    assert "[1]" in _one_line_error(pairwise_chamfer, [P, np.zeros((0, 3))])
    assert "other set is 3-D" in _one_line_error(pairwise_chamfer, good, [np.zeros((2, 2))])
    assert "2-D and 3-D" in _one_line_error(pairwise_emd, [P, np.zeros((2, 2))])
    assert "a: contains NaN" in _one_line_error(emd, [[np.inf, 0.0, 0.0]], P)
    assert "shape" in _one_line_error(generation_metrics, good, [np.zeros((4, 5))])
    assert "method" in _one_line_error(pairwise_emd, good, method="auction")
    assert "distances" in _one_line_error(generation_metrics, good, good, distances=("l1",))
    assert "emd_points" in _one_line_error(generation_metrics, good, good, emd_points=0)


def test_bad_sinkhorn_input_is_an_input_error():
    a = torch.zeros(2, 5, 3)
    assert "torch" in _one_line_error(sinkhorn_emd, a.numpy(), a.numpy())
    assert "shape" in _one_line_error(sinkhorn_emd, a, torch.zeros(2, 6, 3))
    assert "NaN" in _one_line_error(sinkhorn_emd, a, torch.full((2, 5, 3), float("nan")))
    assert "epsilon" in _one_line_error(sinkhorn_emd, a, a, epsilon=0.0)
    assert "iterations" in _one_line_error(sinkhorn_emd, a, a, iterations=0)


def test_bad_distance_matrices_are_input_errors():
    square = np.zeros((2, 2))
    assert "at least one" in _one_line_error(one_nna, np.zeros((0, 0)), square, np.zeros((0, 2)))
    assert "at least one" in _one_line_error(mmd, np.zeros((3, 0)))
    assert "(3, 3)" in _one_line_error(one_nna, square, square, np.zeros((3, 2)))
    assert "non-negative" in _one_line_error(coverage, np.array([[1.0, -1.0]]))
    assert "finite" in _one_line_error(one_nna, square, square, np.full((2, 2), np.nan))
    assert "repeats" in _one_line_error(balanced_one_nna, square, square, square, repeats=0)
