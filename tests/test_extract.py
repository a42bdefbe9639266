"""Field -> mesh: grids, chunked evaluation, marching cubes orientation, sparse == dense."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

from isofield.errors import InputError
from isofield.extract.api import ExtractionStats, extract_mesh
from isofield.extract.grid import evaluate_grid, evaluate_points, grid_coordinates, grid_points
from isofield.extract.marching import marching_cubes
from isofield.extract.sparse import refinement_depth, sparse_evaluate_grid
from isofield.geometry.normalization import Normalization
from isofield.geometry.shapes import Sphere, Union, get_shape

UNIT_CUBE = ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))
SPHERE = Sphere(0.5)


def occupancy_logits(points: np.ndarray) -> np.ndarray:
    """Logits of the ball of radius 0.5 (positive inside)."""
    return (10.0 * (0.5 - np.linalg.norm(points, axis=1))).astype(np.float32)


def occupancy_probabilities(points: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-occupancy_logits(points)))).astype(np.float32)


class CountingField:
    """Wraps a field; records every point it is called with and refuses calls above ``limit`` points."""

    def __init__(self, field, limit: int | None = None) -> None:
        self.field, self.limit, self.calls = field, limit, []

    def __call__(self, points: np.ndarray) -> np.ndarray:
        assert points.dtype == np.float32 and points.ndim == 2 and points.shape[1] == 3
        if self.limit is not None and len(points) > self.limit:
            raise AssertionError(f"field called with {len(points)} > {self.limit} points")
        self.calls.append(points.copy())
        return self.field(points)

    @property
    def points(self) -> np.ndarray:
        return np.concatenate(self.calls)


def outward_alignment(mesh, center=(0.0, 0.0, 0.0)) -> float:
    """Mean cosine between face normals and the direction from ``center`` to the face."""
    radial = mesh.triangles_center - np.asarray(center)
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    return float(np.mean(np.sum(mesh.face_normals * radial, axis=1)))


def hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric Hausdorff distance between two vertex sets."""
    return max(cKDTree(b).query(a)[0].max(), cKDTree(a).query(b)[0].max())


# ------------------------------------------------------------------------------------ grid


def test_grid_points_follow_the_cell_count_convention() -> None:
    points = grid_points(((0, 0, 0), (1, 2, 4)), 2)  # 2 cells -> 3 samples per axis
    assert points.shape == (27, 3) and points.dtype == np.float32
    np.testing.assert_array_equal(points[0], [0, 0, 0])
    np.testing.assert_array_equal(points[-1], [1, 2, 4])
    np.testing.assert_array_equal(points[(1 * 3 + 2) * 3 + 0], [0.5, 2, 0])  # indices (1, 2, 0)
    np.testing.assert_array_equal(grid_coordinates(((0, 0, 0), (1, 2, 4)), 2, np.array([[2, 1, 1]])), [[1, 1, 2]])


def test_evaluate_grid_matches_the_field_on_grid_points_in_small_chunks() -> None:
    field = CountingField(SPHERE.sdf, limit=7)
    volume = evaluate_grid(field, UNIT_CUBE, 4, chunk_size=7)
    assert volume.shape == (5, 5, 5) and volume.dtype == np.float32
    np.testing.assert_array_equal(volume.reshape(-1), SPHERE.sdf(grid_points(UNIT_CUBE, 4)))
    assert len(field.calls) == math.ceil(125 / 7)
    assert volume[2, 2, 2] == pytest.approx(-0.5) and volume[0, 2, 2] == pytest.approx(0.5)


def test_evaluate_points_accepts_column_output_and_rejects_bad_output() -> None:
    points = np.zeros((5, 3), dtype=np.float32)
    np.testing.assert_array_equal(evaluate_points(lambda p: np.ones((len(p), 1)), points), np.ones(5))
    with pytest.raises(InputError, match="field returned 10 values for 5 points"):
        evaluate_points(lambda p: np.ones((len(p), 2)), points)
    with pytest.raises(InputError, match="NaN or Inf at 2 of 5 points"):
        evaluate_points(lambda p: np.array([0, np.nan, 1, np.inf, 2], dtype=np.float32), points)


# ---------------------------------------------------------------------------- marching cubes


@pytest.mark.parametrize("method", ["dense", "sparse"])
def test_sphere_mesh_is_accurate_and_watertight(method: str) -> None:
    mesh, stats = extract_mesh(SPHERE.sdf, UNIT_CUBE, resolution=64, method=method)
    radii = np.linalg.norm(mesh.vertices, axis=1)
    assert np.abs(radii - 0.5).max() < 1e-3
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(4 / 3 * math.pi * 0.5**3, rel=0.01)
    assert mesh.area == pytest.approx(4 * math.pi * 0.5**2, rel=0.01)
    assert outward_alignment(mesh) > 0.99
    assert stats.dense_points == 65**3 and stats.method == method and stats.resolution == 64


@pytest.mark.parametrize(("field", "level"), [(occupancy_logits, 0.0), (occupancy_probabilities, 0.5)])
def test_occupancy_mesh_normals_point_outward(field, level: float) -> None:
    mesh, _ = extract_mesh(field, UNIT_CUBE, resolution=64, level=level, inside="positive")
    assert outward_alignment(mesh) > 0.99
    assert mesh.volume == pytest.approx(4 / 3 * math.pi * 0.5**3, rel=0.01)
    assert np.abs(np.linalg.norm(mesh.vertices, axis=1) - 0.5).max() < 2e-3


def test_inside_flag_flips_the_winding() -> None:
    volume = evaluate_grid(SPHERE.sdf, UNIT_CUBE, 16)
    as_sdf = marching_cubes(volume, UNIT_CUBE, inside="negative")
    as_occupancy = marching_cubes(volume, UNIT_CUBE, inside="positive")  # claims the outside is the solid
    np.testing.assert_array_equal(as_occupancy.faces, as_sdf.faces[:, ::-1])
    assert outward_alignment(as_sdf) > 0.97 and outward_alignment(as_occupancy) < -0.97


def test_normalization_puts_vertices_in_user_coordinates() -> None:
    normalization = Normalization(np.array([10.0, -5.0, 3.0]), 7.0)
    mesh, _ = extract_mesh(SPHERE.sdf, UNIT_CUBE, resolution=64, normalization=normalization)
    radii = np.linalg.norm(mesh.vertices - [10.0, -5.0, 3.0], axis=1)
    assert np.abs(radii - 3.5).max() < 7e-3
    assert outward_alignment(mesh, center=(10.0, -5.0, 3.0)) > 0.99


def test_anisotropic_bounds_map_vertices_to_the_box() -> None:
    bounds = ((-0.6, -0.6, -2.0), (0.6, 0.6, 2.0))  # cells 1.2/32 x 1.2/32 x 4/32
    mesh, _ = extract_mesh(SPHERE.sdf, bounds, resolution=32, method="dense")
    assert mesh.vertices[:, 2].min() == pytest.approx(-0.5, abs=2e-3)
    assert mesh.vertices[:, 0].max() == pytest.approx(0.5, abs=2e-3)


def test_volume_without_crossing_gives_empty_mesh_but_extract_mesh_refuses() -> None:
    volume = np.ones((5, 5, 5), dtype=np.float32)
    assert len(marching_cubes(volume, UNIT_CUBE).vertices) == 0
    with pytest.raises(InputError, match=r"field has no zero crossing \(level 0\) in the bounds"):
        extract_mesh(Sphere(0.5, center=(5, 5, 5)).sdf, UNIT_CUBE, resolution=32)
    with pytest.raises(InputError, match=r"no zero crossing \(level 0.5\)"):
        extract_mesh(lambda p: np.full(len(p), 0.2), UNIT_CUBE, resolution=32, level=0.5, inside="positive")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bounds": ((0, 0, 0), (1, 1))}, "bounds must be"),
        ({"bounds": ((0, 0, 0), (1, 0, 1))}, "max > min on every axis"),
        ({"resolution": 0}, "resolution must be a positive integer"),
        ({"resolution": 32.5}, "resolution must be a positive integer"),
        ({"chunk_size": 0}, "chunk_size must be a positive integer"),
        ({"method": "octree"}, "extraction method must be one of sparse, mise, dense, got 'octree'"),
        ({"inside": "outside"}, "inside must be 'negative'"),
        ({"level": float("nan")}, "level must be a finite number"),
        ({"criterion": "gradient"}, "criterion must be one of distance, sign"),
        ({"lipschitz": 0.0}, "lipschitz must be a positive number"),
        ({"coarse_resolution": 0}, "coarse_resolution must be a positive integer"),
    ],
)
def test_bad_arguments_raise_input_error(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        extract_mesh(SPHERE.sdf, **{"bounds": UNIT_CUBE, "resolution": 16, **kwargs})


# ------------------------------------------------------------------------------------ sparse


@pytest.mark.parametrize(
    ("resolution", "coarse", "depth"), [(256, 32, 3), (128, 32, 2), (64, 32, 1), (32, 32, 0), (100, 32, 1), (127, 8, 0)]
)
def test_refinement_depth(resolution: int, coarse: int, depth: int) -> None:
    assert refinement_depth(resolution, coarse) == depth


@pytest.mark.parametrize(
    ("name", "resolution", "max_fraction"),
    [
        # the bounds sit under what the split into 27 samples without the centre probe
        # evaluated (0.232, 0.081, 0.262, 0.105)
        ("torus", 64, 0.22),
        ("torus", 128, 0.075),
        ("csg", 64, 0.24),
        pytest.param("csg", 128, 0.085, marks=pytest.mark.slow),  # ~3 s: 129^3 dense CSG evaluations
    ],
)
def test_sparse_mesh_is_identical_to_dense(name: str, resolution: int, max_fraction: float) -> None:
    shape = get_shape(name)
    dense, dense_stats = extract_mesh(shape.sdf, UNIT_CUBE, resolution, method="dense")
    sparse, sparse_stats = extract_mesh(shape.sdf, UNIT_CUBE, resolution, method="sparse")
    np.testing.assert_array_equal(sparse.vertices, dense.vertices)
    np.testing.assert_array_equal(sparse.faces, dense.faces)
    assert dense_stats.points_evaluated == dense_stats.dense_points == (resolution + 1) ** 3
    assert sparse_stats.fraction < max_fraction


def test_sparse_values_are_on_the_right_side_everywhere() -> None:
    """Samples never evaluated get a stand-in value on the same side of the surface as the field."""
    shape = get_shape("csg")
    dense = evaluate_grid(shape.sdf, UNIT_CUBE, 64)
    sparse = sparse_evaluate_grid(shape.sdf, UNIT_CUBE, 64, coarse_resolution=8)
    np.testing.assert_array_equal(sparse.values > 0, dense > 0)
    np.testing.assert_array_equal(sparse.values[sparse.evaluated], dense[sparse.evaluated])
    assert sparse.points_evaluated < 0.25 * dense.size


@pytest.mark.parametrize("criterion", ["distance", "sign"])
def test_sparse_never_evaluates_a_point_twice_and_respects_chunk_size(criterion: str) -> None:
    field = CountingField(get_shape("torus").sdf, limit=1000)
    _, stats = extract_mesh(field, UNIT_CUBE, 64, chunk_size=1000, criterion=criterion, coarse_resolution=8)
    points = field.points
    assert len(np.unique(points, axis=0)) == len(points) == stats.points_evaluated
    assert max(len(call) for call in field.calls) == 1000


def test_dense_respects_chunk_size() -> None:
    field = CountingField(SPHERE.sdf, limit=4096)
    _, stats = extract_mesh(field, UNIT_CUBE, 32, method="dense", chunk_size=4096)
    assert stats.points_evaluated == len(field.points) == 33**3


def test_sign_criterion_on_occupancy_matches_dense() -> None:
    torus = get_shape("torus")

    def logits(points: np.ndarray) -> np.ndarray:
        return -20.0 * torus.sdf(points)

    dense, _ = extract_mesh(logits, UNIT_CUBE, 64, inside="positive", method="dense")
    sparse, stats = extract_mesh(logits, UNIT_CUBE, 64, inside="positive", coarse_resolution=16)
    np.testing.assert_array_equal(sparse.vertices, dense.vertices)
    np.testing.assert_array_equal(sparse.faces, dense.faces)
    assert stats.fraction < 0.3


def test_lipschitz_bound_covers_fields_steeper_than_distance() -> None:
    torus = get_shape("torus")

    def steep(points: np.ndarray) -> np.ndarray:
        return 3.0 * torus.sdf(points)

    dense, _ = extract_mesh(steep, UNIT_CUBE, 64, method="dense")
    sparse, _ = extract_mesh(steep, UNIT_CUBE, 64, lipschitz=3.0, coarse_resolution=8)
    np.testing.assert_array_equal(sparse.faces, dense.faces)
    assert hausdorff(sparse.vertices, dense.vertices) == 0.0


@pytest.mark.parametrize(("steepness", "cells_off"), [(3.0, 1.0), (30.0, 4.0)])
def test_a_field_steeper_than_the_bound_still_gives_a_closed_mesh(steepness: float, cells_off: float) -> None:
    """With lipschitz=1 the distance test drops cells that hold the surface of a steeper field;
    the stand-ins of their samples still give marching cubes a closed surface, within a few
    cells (2 / 64) of the true one.
    (Marching cubes restricted to the evaluated samples, skimage's ``mask``, leaves holes here.)"""
    torus = get_shape("torus")
    sparse, _ = extract_mesh(lambda points: steepness * torus.sdf(points), UNIT_CUBE, 64, coarse_resolution=8)
    assert sparse.is_watertight
    assert np.abs(torus.sdf(sparse.vertices.astype(np.float32))).max() < cells_off * 2.0 / 64


def test_extraction_stats_fraction_and_dict() -> None:
    stats = ExtractionStats("sparse", 2, 9, 27, 0.5)
    assert stats.fraction == pytest.approx(1 / 3)
    assert stats.to_dict() == {
        "method": "sparse",
        "resolution": 2,
        "points_evaluated": 9,
        "dense_points": 27,
        "seconds": 0.5,
        "fraction": pytest.approx(1 / 3),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", ["torus", "csg"])
def test_sparse_at_256_evaluates_under_four_percent_and_matches_dense(name: str) -> None:
    shape = get_shape(name)
    dense, _ = extract_mesh(shape.sdf, UNIT_CUBE, 256, method="dense")
    sparse, stats = extract_mesh(shape.sdf, UNIT_CUBE, 256)
    assert stats.fraction < 0.04
    np.testing.assert_array_equal(sparse.vertices, dense.vertices)
    np.testing.assert_array_equal(sparse.faces, dense.faces)


# A ball much smaller than a coarse cell (0.25 wide at coarse_resolution=8): no coarse sample sees it.
SMALL_BALL = Sphere(0.06, center=(0.37, 0.12, 0.62))


def test_distance_criterion_finds_a_feature_no_coarse_sample_sees() -> None:
    dense, _ = extract_mesh(SMALL_BALL.sdf, UNIT_CUBE, 64, method="dense")
    sparse, stats = extract_mesh(SMALL_BALL.sdf, UNIT_CUBE, 64, coarse_resolution=8)
    np.testing.assert_array_equal(sparse.vertices, dense.vertices)
    np.testing.assert_array_equal(sparse.faces, dense.faces)
    assert stats.fraction < 0.01


def test_sign_criterion_dilation_finds_a_feature_beside_the_surface() -> None:
    """The small ball sits in a coarse cell with no crossing, next to one the big ball crosses."""
    two_balls = Union((Sphere(0.5), SMALL_BALL))

    def logits(points: np.ndarray) -> np.ndarray:
        return -20.0 * two_balls.sdf(points)

    dense, _ = extract_mesh(logits, UNIT_CUBE, 64, inside="positive", method="dense")
    sparse, _ = extract_mesh(logits, UNIT_CUBE, 64, inside="positive", coarse_resolution=8)
    assert len(dense.split(only_watertight=True)) == 2
    np.testing.assert_array_equal(sparse.vertices, dense.vertices)
    np.testing.assert_array_equal(sparse.faces, dense.faces)
