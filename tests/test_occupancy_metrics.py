"""The ONet evaluation protocol against values worked out by hand on unit cubes."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import trimesh

from isofield.errors import InputError
from isofield.geometry.sampling import sample_surface
from isofield.metrics.onet import (
    DEFAULT_THRESHOLDS,
    SURFACE_METRICS,
    choose_threshold,
    iou_from_labels,
    mean_table,
    onet_mesh_metrics,
    onet_row,
    write_rows_csv,
)
from isofield.metrics.surface import evaluate_mesh_against_points

COUNT = 100_000  # surface samples on each side, and IoU points
AREA = 6.0  # of the unit cube
DENSITY = COUNT / AREA  # samples per unit area
# Mean distance from a point of a plane to the nearest of a Poisson set of this density there.
MEAN_SPACING = 0.5 / math.sqrt(DENSITY)
UNIT_CUBE = trimesh.creation.box(extents=(1.0, 1.0, 1.0))


@pytest.fixture(scope="module")
def reference():
    """ONet's reference data of the unit cube: surface samples with normals, labelled points in
    the padded box [-0.55, 0.55]^3 (as in points.npz)."""
    surface = sample_surface(UNIT_CUBE, COUNT, seed=123)
    points = np.random.default_rng(5).uniform(-0.55, 0.55, (COUNT, 3))
    labels = np.all(np.abs(points) <= 0.5, axis=1)
    return surface.points, surface.normals, points, labels


def test_mesh_against_its_own_surface_samples(reference) -> None:
    """Two independent samples of one surface: each point's nearest neighbour in the other set is
    MEAN_SPACING away on average, and farther than tau with probability exp(-density pi tau^2)."""
    result = onet_mesh_metrics(UNIT_CUBE, *reference, n_points=COUNT)
    assert result["protocol"]["name"] == "onet" and result["protocol"]["tau"] == 0.01
    assert result["chamfer_l1"] == pytest.approx(MEAN_SPACING, rel=0.02)  # measured 0.003873 vs 0.003873
    assert result["chamfer_l1_x10"] == pytest.approx(10 * result["chamfer_l1"])
    within_tau = 1.0 - math.exp(-DENSITY * math.pi * 0.01**2)  # 0.9947
    assert result["precision"] == pytest.approx(within_tau, abs=2e-3)
    assert result["recall"] == pytest.approx(within_tau, abs=2e-3)
    assert result["f_score"] == pytest.approx(within_tau, abs=2e-3)
    # Only samples about MEAN_SPACING from one of the 12 edges (4 MEAN_SPACING of the area) can
    # match a sample on the perpendicular face (|cos| = 0); everywhere else |cos| = 1.
    assert 1.0 - 4 * MEAN_SPACING < result["normal_consistency"] < 1.0  # measured 0.9934
    assert result["iou"] == 1.0 and result["skipped"] == {}


def shifted_cube_chamfer(d: float) -> float:
    """Expected Chamfer-L1 between samples of the unit cube and of its copy shifted by d along x.

    Continuous part, per unit of area on the shifted cube (6 faces of area 1): its +x face is d
    from the cube; its -x face lies inside, at min(d, 1/2 - |y|, 1/2 - |z|) from the surface, mean
    (1 - (1 - 2d)^3) / 6; each of its 4 side faces lies on the cube but for a strip of width d
    beyond the edge, mean distance d / 2 there, so d^2 / 2 per face. The other direction is the
    same by symmetry. Sampling part: where the surfaces coincide (4 (1 - d) of the 6 units of
    area) a sample's nearest neighbour is MEAN_SPACING away instead of 0.
    """
    continuous = (d + (1 - (1 - 2 * d) ** 3) / 6 + 4 * d**2 / 2) / AREA
    return continuous + 4 * (1 - d) / AREA * MEAN_SPACING


def test_shifted_cube_chamfer_and_iou(reference) -> None:
    d = 0.05
    shifted = UNIT_CUBE.copy()
    shifted.apply_translation((d, 0.0, 0.0))
    result = onet_mesh_metrics(shifted, *reference, n_points=COUNT, seed=7)
    assert result["chamfer_l1"] == pytest.approx(shifted_cube_chamfer(d), rel=0.02)  # measured 0.01925 vs 0.01915
    assert result["accuracy"] == pytest.approx(result["completeness"], rel=0.02)
    # The same mesh samples and matching as isofield's own protocol for the same seed.
    isofield = evaluate_mesh_against_points(shifted, reference[0], reference[1], n_points=COUNT, seed=7, tau=0.01)
    for key in ("chamfer_l1", "normal_consistency", "f_score", "precision", "recall"):
        assert result[key] == isofield[key]
    # Both cubes lie in the labelled box [-0.55, 0.55]^3: intersection 1 - d, union 1 + d.
    assert result["iou"] == pytest.approx((1 - d) / (1 + d), abs=0.005)  # Monte Carlo sigma 0.001


def test_iou_of_concentric_cubes_is_the_volume_ratio(reference) -> None:
    _, _, points, labels = reference
    inner = trimesh.creation.box(extents=(0.8, 0.8, 0.8))
    result = onet_mesh_metrics(inner, *reference, n_points=1000)
    expected = 0.8**3  # the inner cube lies in the labelled one: IoU = 0.512 / 1
    tolerance = 4 * math.sqrt(expected * (1 - expected) / np.count_nonzero(labels))  # 4 sigma, 0.007
    assert result["iou"] == pytest.approx(expected, abs=tolerance)  # measured 0.5118


def test_iou_from_labels_by_hand() -> None:
    assert iou_from_labels(np.array([1, 1, 0, 0, 1], bool), np.array([1, 0, 1, 0, 1], bool)) == 0.5
    assert iou_from_labels(np.array([0, 1, 1]), np.array([0, 1, 1])) == 1.0
    assert iou_from_labels(np.array([True, False]), np.array([False, True])) == 0.0
    assert iou_from_labels(np.zeros(4, bool), np.zeros(4, bool)) == 1.0  # nothing inside either: agreement
    with pytest.raises(InputError, match=r"labels: expected a \(3,\) array of booleans, got shape \(2,\)"):
        iou_from_labels(np.ones(3, bool), np.ones(2, bool))
    with pytest.raises(InputError, match="predicted: expected booleans"):
        iou_from_labels(np.array([0.2, 0.7]), np.ones(2, bool))


def test_choose_threshold_finds_the_separating_probability() -> None:
    """Inside points have probabilities in [0.32, 1], outside ones in [0, 0.28]: only 0.3 of the
    candidates separates them (IoU 1 on both shapes)."""
    rng = np.random.default_rng(0)
    labels = [rng.random(5000) < 0.3, rng.random(8000) < 0.6]
    probabilities = [np.where(label, rng.uniform(0.32, 1.0, len(label)), rng.uniform(0.0, 0.28, len(label)))
                     for label in labels]
    best, mean_iou = choose_threshold(probabilities, labels)
    assert best == pytest.approx(0.3)
    assert mean_iou.shape == (19,) and mean_iou.max() == 1.0 and np.count_nonzero(mean_iou == 1.0) == 1
    by_hand = [np.mean([iou_from_labels(p >= t, y) for p, y in zip(probabilities, labels)])
               for t in DEFAULT_THRESHOLDS]
    np.testing.assert_allclose(mean_iou, by_hand)
    with pytest.raises(InputError, match="one label array per probability array"):
        choose_threshold(probabilities, labels[:1])


def test_rows_round_trip_through_csv(tmp_path) -> None:
    rows = [
        {"shape": "chair/1", "iou": 0.1 + 0.2, "chamfer_l1_x10": None},
        {"shape": "table,2", "iou": 1.0, "chamfer_l1_x10": 0.0123456789, "extra": 3},
    ]
    path = tmp_path / "out" / "rows.csv"
    write_rows_csv(rows, path)
    with open(path, newline="", encoding="utf-8") as handle:
        read = list(csv.DictReader(handle))
    assert list(read[0]) == ["shape", "iou", "chamfer_l1_x10", "extra"]
    assert read[0] == {"shape": "chair/1", "iou": repr(0.1 + 0.2), "chamfer_l1_x10": "", "extra": ""}
    assert float(read[0]["iou"]) == 0.1 + 0.2 and read[1]["shape"] == "table,2" and read[1]["extra"] == "3"
    assert [p.name for p in path.parent.iterdir()] == ["rows.csv"]  # no temporary file left


def test_mean_table_prints_means_and_medians() -> None:
    results = {
        "mise": [{"iou": 0.5, "chamfer_l1_x10": 0.10}, {"iou": 0.7, "chamfer_l1_x10": 0.20},
                 {"iou": 0.9, "chamfer_l1_x10": 0.60}],
        "dense": [{"iou": 0.8, "chamfer_l1_x10": 0.30}, {"iou": 0.0, "chamfer_l1_x10": None}],
    }
    table = mean_table(results, metrics=("iou", "chamfer_l1_x10"))
    header, mise, dense, note = table.splitlines()
    assert header.split("  ")[0].strip() == "method" and "CD-L1 x10 mean (median)" in header
    assert mise.split() == ["mise", "3", "0.7000", "(0.7000)", "0.3000", "(0.2000)"]
    assert dense.split() == ["dense", "2", "0.4000", "(0.4000)", "0.3000", "(0.3000)"]
    assert note == "dense: CD-L1 x10 missing for 1 of 2 shapes"
    assert len({len(header), len(mise), len(dense)}) == 1  # fixed width
    with pytest.raises(InputError, match="metric 'f_score' has a value in no row"):
        mean_table(results, metrics=("f_score",))


def test_empty_mesh_scores_iou_zero_and_skips_surface_metrics(reference) -> None:
    result = onet_mesh_metrics(trimesh.Trimesh(), *reference)
    assert result["iou"] == 0.0 and result["protocol"]["name"] == "onet"
    assert all(result[key] is None for key in SURFACE_METRICS)
    assert set(result["skipped"]) == set(SURFACE_METRICS)
    assert "empty mesh" in result["skipped"]["chamfer_l1_x10"]
    row = onet_row("chair/1", result)
    assert row["shape"] == "chair/1" and row["iou"] == 0.0 and row["f_score"] is None
    assert row["skipped"].startswith("chamfer_l1: empty mesh")


def test_open_cube_keeps_its_inside_and_a_flat_sheet_has_none(reference) -> None:
    # a cube without its top face still has its inside by winding number (ONet's rays need
    # closed meshes); the cube's bottom face alone encloses nothing: IoU 0, surface metrics kept
    faces = np.asarray(UNIT_CUBE.faces)
    top = np.all(UNIT_CUBE.vertices[faces][:, :, 2] > 0.49, axis=1)
    open_cube = trimesh.Trimesh(UNIT_CUBE.vertices, faces[~top], process=False)
    assert not open_cube.is_watertight
    assert onet_mesh_metrics(open_cube, *reference)["iou"] == pytest.approx(1.0, abs=0.01)
    bottom = np.all(UNIT_CUBE.vertices[faces][:, :, 2] < -0.49, axis=1)
    sheet = onet_mesh_metrics(trimesh.Trimesh(UNIT_CUBE.vertices, faces[bottom], process=False), *reference)
    assert sheet["iou"] == 0.0
    # every sample on the reference's bottom face (but for the sampling's gaps, exp(-DENSITY pi
    # tau^2) = 0.5%), a sixth of the reference near the sheet
    assert sheet["precision"] > 0.99 and 0.1 < sheet["recall"] < 0.25


def test_bad_reference_arrays_raise_input_error(reference) -> None:
    surface, normals, points, labels = reference
    with pytest.raises(InputError, match=r"iou_labels: expected a \(100000,\) array"):
        onet_mesh_metrics(UNIT_CUBE, surface, normals, points, labels[:10])
    with pytest.raises(InputError, match="ref_points / ref_normals: expected M >= 1 of each, got 100000 / 5"):
        onet_mesh_metrics(UNIT_CUBE, surface, normals[:5], points, labels)
    with pytest.raises(InputError, match="tau: expected a positive number"):
        onet_mesh_metrics(UNIT_CUBE, surface, normals, points, labels, tau=0.0)
