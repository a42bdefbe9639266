"""MISE (``extract_mesh(method="mise")``): the dense mesh from a fraction of the field calls.

Equivalence is asserted as identical vertex and face arrays, not as a distance: MISE evaluates
every corner of every cell that holds triangles, and its stand-in values lie on the correct side
elsewhere, so marching cubes interpolates the same values in the same cells. Where a part of the
surface is missed (the last tests) the meshes differ, and the tests say so.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import expit

from isofield.errors import InputError
from isofield.extract.api import extract_mesh
from isofield.geometry.shapes import Box, Sphere, Torus, Union, get_shape
from isofield.nn.field import as_numpy_field

UNIT_CUBE = ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))
RESOLUTION = 128  # refined from the default 32^3 coarse grid (cells 1/16 wide) in two halvings
COARSE_CELL = 2.0 / 32
MAX_FRACTION = 0.25
EPSILON = 0.02  # width of the occupancy's transition: probability sigmoid(-sdf / EPSILON)

# A fin 0.03 thick (under half a coarse cell) through the torus, centred on the coarse sample
# plane y = 0 (seen by coarse samples) or midway between two planes (no coarse sample inside it).
FIN_ON_PLANE = Union((Torus(0.6, 0.25), Box((0.7, 0.015, 0.5))), name="torus+fin")
FIN_OFF_PLANE = Union((Torus(0.6, 0.25), Box((0.7, 0.015, 0.5), center=(0.0, COARSE_CELL / 2, 0.0))))


def assert_same_mesh(mesh, reference) -> None:
    np.testing.assert_array_equal(mesh.vertices, reference.vertices)
    np.testing.assert_array_equal(mesh.faces, reference.faces)


def occupancy(shape, as_logits: bool):
    """The occupancy of ``shape`` as a field: logits -sdf / EPSILON, or their sigmoid."""

    def field(points: np.ndarray) -> np.ndarray:
        logits = -shape.sdf(points) / EPSILON
        return (logits if as_logits else expit(logits)).astype(np.float32)

    return field


@pytest.mark.parametrize(("as_logits", "level"), [(False, 0.5), (True, 0.0)])
def test_mise_on_an_occupancy_field_gives_the_dense_mesh(as_logits: bool, level: float) -> None:
    field = occupancy(FIN_ON_PLANE, as_logits)
    dense, _ = extract_mesh(field, UNIT_CUBE, RESOLUTION, level=level, inside="positive", method="dense")
    mise, stats = extract_mesh(field, UNIT_CUBE, RESOLUTION, level=level, inside="positive", method="mise")
    assert_same_mesh(mise, dense)
    assert stats.method == "mise" and stats.dense_points == (RESOLUTION + 1) ** 3
    assert stats.fraction <= MAX_FRACTION  # measured 0.157


def test_mise_on_an_sdf_gives_the_dense_mesh() -> None:
    csg = get_shape("csg")
    dense, _ = extract_mesh(csg.sdf, UNIT_CUBE, RESOLUTION, method="dense")
    mise, stats = extract_mesh(csg.sdf, UNIT_CUBE, RESOLUTION, method="mise")
    assert_same_mesh(mise, dense)
    assert stats.fraction <= MAX_FRACTION  # measured 0.146


def test_mise_on_a_random_mlp_occupancy_gives_the_dense_mesh() -> None:
    """An untrained network: a level set with no analytic structure, evaluated through torch."""
    torch.manual_seed(0)
    logits = torch.nn.Sequential(
        torch.nn.Linear(3, 64), torch.nn.SiLU(), torch.nn.Linear(64, 64), torch.nn.SiLU(), torch.nn.Linear(64, 1)
    )
    with torch.no_grad():  # wavier than the default init, and centred so that the 0.5 level cuts the box
        logits[0].weight.mul_(2.0)
        logits[-1].weight.mul_(10.0)
        logits[-1].bias.sub_(logits(torch.rand(20_000, 3) * 2 - 1).median())
    field = as_numpy_field(torch.nn.Sequential(logits, torch.nn.Sigmoid()))
    dense, _ = extract_mesh(field, UNIT_CUBE, RESOLUTION, level=0.5, inside="positive", method="dense")
    mise, stats = extract_mesh(field, UNIT_CUBE, RESOLUTION, level=0.5, inside="positive", method="mise")
    assert len(dense.faces) > 10_000
    assert_same_mesh(mise, dense)
    assert stats.fraction <= MAX_FRACTION  # measured 0.111


def test_mise_misses_a_ball_that_no_coarse_sample_sees() -> None:
    """A ball of radius 0.02 at the centre of a coarse cell (corners 0.054 away), 4.5 cells from the
    big sphere: every coarse cell around it is outside at all corners, so MISE drops them."""
    ball = Sphere(0.02, center=(0.75 + COARSE_CELL / 2, COARSE_CELL / 2, COARSE_CELL / 2))
    field = occupancy(Union((Sphere(0.5), ball)), as_logits=False)
    dense, _ = extract_mesh(field, UNIT_CUBE, RESOLUTION, level=0.5, inside="positive", method="dense")
    mise, _ = extract_mesh(field, UNIT_CUBE, RESOLUTION, level=0.5, inside="positive", method="mise")
    assert len(dense.split(only_watertight=False)) == 2
    assert len(mise.split(only_watertight=False)) == 1
    assert np.linalg.norm(mise.vertices - ball.center, axis=1).min() > 0.2


def test_mise_cuts_a_thin_fin_between_coarse_sample_planes_where_distance_refinement_does_not() -> None:
    """MISE keeps only the fin's stretch within a coarse cell of where it meets the torus."""
    dense, _ = extract_mesh(FIN_OFF_PLANE.sdf, UNIT_CUBE, RESOLUTION, method="dense")
    mise, _ = extract_mesh(FIN_OFF_PLANE.sdf, UNIT_CUBE, RESOLUTION, method="mise")
    sparse, _ = extract_mesh(FIN_OFF_PLANE.sdf, UNIT_CUBE, RESOLUTION, method="sparse")  # distance test
    assert mise.area < 0.9 * dense.area  # measured 6.65 vs 8.10
    assert_same_mesh(sparse, dense)


def test_mise_refuses_the_distance_criterion() -> None:
    with pytest.raises(InputError, match="extraction method 'mise' needs criterion 'sign', got 'distance'"):
        extract_mesh(Sphere(0.5).sdf, UNIT_CUBE, 16, method="mise", criterion="distance")
