"""Analytic shapes: SDF values against hand computations, eikonal property, gradients, registry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from isofield.errors import InputError
from isofield.extract.api import shape_mesh
from isofield.geometry.shapes import (
    Box,
    Capsule,
    Intersection,
    Polygon,
    Shape,
    Sphere,
    Torus,
    Union,
    csg_demo,
    difference,
    get_shape,
    l_shape,
    padded_bounds,
    shape_names,
)

# (shape, point, expected signed distance), every value worked out by hand.
HAND_VALUES = [
    (Sphere(0.5), (0, 0, 0), -0.5),
    (Sphere(0.5), (1, 0, 0), 0.5),
    (Sphere(0.5), (0.3, 0.4, 0), 0.0),
    (Sphere(0.5, center=(1, 2, 3)), (1, 2, 4), 0.5),
    (Box((0.6, 0.4, 0.3)), (0, 0, 0), -0.3),
    (Box((0.6, 0.4, 0.3)), (0.5, 0, 0), -0.1),
    (Box((0.6, 0.4, 0.3)), (1, 0, 0), 0.4),
    (Box((0.6, 0.4, 0.3)), (1, 1, 0), math.sqrt(0.4**2 + 0.6**2)),
    (Box((0.6, 0.4, 0.3)), (1, 1, 1), math.sqrt(0.4**2 + 0.6**2 + 0.7**2)),
    (Box((0.6, 0.4, 0.3), center=(1, 0, 0)), (1, 0, 0), -0.3),
    (Box((0.6, 0.4, 0.3), rounding=0.1), (0, 0, 0), -0.3),
    (Box((0.6, 0.4, 0.3), rounding=0.1), (1, 0, 0), 0.4),
    (Box((0.6, 0.4, 0.3), rounding=0.1), (1, 1, 1), math.sqrt(0.5**2 + 0.7**2 + 0.8**2) - 0.1),
    (Box((0.6, 0.4, 0.3), rounding=0.1), (0.6, 0.4, 0.3), math.sqrt(3 * 0.1**2) - 0.1),  # sharp corner is outside
    (Torus(0.6, 0.25), (0.6, 0, 0), -0.25),
    (Torus(0.6, 0.25), (0, 0, 0), 0.35),
    (Torus(0.6, 0.25), (0.85, 0, 0), 0.0),
    (Torus(0.6, 0.25), (0, -0.6, 0.5), 0.25),
    (Torus(0.6, 0.25), (0, 0, 1), math.sqrt(0.36 + 1) - 0.25),
    (Capsule((-0.5, 0, 0), (0.5, 0, 0), 0.25), (0, 0, 0), -0.25),
    (Capsule((-0.5, 0, 0), (0.5, 0, 0), 0.25), (0.2, 1, 0), 0.75),
    (Capsule((-0.5, 0, 0), (0.5, 0, 0), 0.25), (1, 0, 0), 0.25),
    (Capsule((-0.5, 0, 0), (0.5, 0, 0), 0.25), (1, 0.3, 0.4), math.sqrt(0.5) - 0.25),
    (Union((Sphere(0.5, (-0.4, 0, 0)), Sphere(0.5, (0.4, 0, 0)))), (0, 0, 0), -0.1),
    (Union((Sphere(0.5, (-0.4, 0, 0)), Sphere(0.5, (0.4, 0, 0)))), (2, 0, 0), 1.1),
    (Intersection((Sphere(0.5, (-0.4, 0, 0)), Sphere(0.5, (0.4, 0, 0)))), (0, 0, 0), -0.1),
    (Intersection((Sphere(0.5, (-0.4, 0, 0)), Sphere(0.5, (0.4, 0, 0)))), (0.4, 0, 0), 0.3),
    (difference(Box((0.5, 0.5, 0.5)), Sphere(0.3)), (0, 0, 0), 0.3),
    (difference(Box((0.5, 0.5, 0.5)), Sphere(0.3)), (0.4, 0, 0), -0.1),
    (csg_demo(), (0, 0, 0), 0.3),  # inside all three drills: 0.3 from their walls
    (csg_demo(), (0.5, 0.5, 0), math.sqrt(0.5) - 0.72),  # body = sphere part here, 0.2 from the drills
    (Sphere(0.5, center=(0.2, 0.1), name="circle"), (0.2, 0.1), -0.5),
    (Sphere(0.5, center=(0.2, 0.1), name="circle"), (0.2, 1.1), 0.5),
]

# The L-shape: [-0.5, 0.5]^2 without [0, 0.5]^2 (reflex corner at the origin).
L_SHAPE_VALUES = [
    ((0.25, 0.25), 0.25),  # in the notch, equidistant from both notch edges
    ((0.3, 0.1), 0.1),  # above the edge y = 0
    ((0.0, 0.0), 0.0),  # the reflex corner itself
    ((0.5, -0.5), 0.0),  # a convex corner
    ((-0.25, -0.25), -0.25),  # inside, centred in the lower-left square
    ((-0.1, -0.1), -math.sqrt(0.02)),  # inside, nearest boundary point is the reflex corner
    ((0.75, -0.75), math.sqrt(0.125)),  # outside, nearest the convex corner (0.5, -0.5)
    ((1.0, 1.0), math.sqrt(1.25)),  # outside, on the diagonal: (0.5, 0) and (0, 0.5) tie
    ((-0.5, 0.2), 0.0),  # on the left edge
    ((0.25, -0.4), -0.1),  # inside the lower arm, 0.1 above the bottom edge
    ((-0.8, 0.0), 0.3),  # left of the shape
]


def _points(*coordinates) -> np.ndarray:
    return np.asarray(coordinates, dtype=np.float32)


@pytest.mark.parametrize(("shape", "point", "expected"), HAND_VALUES)
def test_sdf_matches_hand_computed_value(shape: Shape, point, expected: float) -> None:
    value = shape.sdf(_points(point))
    assert value.dtype == np.float32 and value.shape == (1,)
    assert value[0] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(("point", "expected"), L_SHAPE_VALUES)
def test_l_shape_sdf_matches_hand_computed_value(point, expected: float) -> None:
    assert l_shape().sdf(_points(point))[0] == pytest.approx(expected, abs=1e-6)


def test_polygon_sdf_does_not_depend_on_orientation() -> None:
    points = np.random.default_rng(0).uniform(-1, 1, (500, 2)).astype(np.float32)
    reversed_l = Polygon(tuple(reversed(l_shape().vertices)))
    np.testing.assert_array_equal(reversed_l.sdf(points), l_shape().sdf(points))


# --------------------------------------------------------------------------------- eikonal


def _away_from_medial_axis(shape_name: str, points: np.ndarray, margin: float = 0.05) -> np.ndarray:
    """Mask of points farther than ``margin`` from where the exact SDF has a kink (its medial axis)."""
    if shape_name in ("sphere", "circle"):
        return np.linalg.norm(points, axis=1) > margin
    if shape_name == "torus":
        radial = np.linalg.norm(points[:, :2], axis=1)
        to_core = np.hypot(radial - 0.6, points[:, 2])
        return (radial > margin) & (to_core > margin)
    if shape_name in ("box", "rounded_box"):
        gaps = np.sort(np.array([0.6, 0.4, 0.3]) - np.abs(points), axis=1)
        outside = gaps[:, 0] < -margin
        return outside | (gaps[:, 1] - gaps[:, 0] > margin)
    if shape_name == "capsule":
        return np.abs(get_shape("capsule").sdf(points) + 0.3) > margin  # distance to the segment
    if shape_name == "l_shape":  # outside only; the outer medial axis is the ray x = y > 0
        outside = l_shape().sdf(points) > margin
        return outside & ~((points[:, 0] > 0) & (points[:, 1] > 0) & (np.abs(points[:, 0] - points[:, 1]) < margin))
    raise AssertionError(shape_name)


def _central_difference_gradient(shape: Shape, points: np.ndarray, step: float = 1e-3) -> np.ndarray:
    columns = []
    for axis in range(shape.dim):
        offset = np.zeros(shape.dim)
        offset[axis] = step
        plus = shape.sdf(points + offset).astype(np.float64)
        minus = shape.sdf(points - offset).astype(np.float64)
        columns.append((plus - minus) / (2 * step))
    return np.stack(columns, axis=1)


@pytest.mark.parametrize("name", ["sphere", "box", "rounded_box", "torus", "capsule", "circle", "l_shape"])
def test_exact_sdf_satisfies_eikonal_and_analytic_gradient_matches(name: str) -> None:
    shape = get_shape(name)
    points = np.random.default_rng(1).uniform(-1, 1, (4000, shape.dim))
    points = points[_away_from_medial_axis(name, points)]
    assert len(points) > 1000
    numeric = _central_difference_gradient(shape, points)
    np.testing.assert_allclose(np.linalg.norm(numeric, axis=1), 1.0, atol=1e-3)
    # 2e-3: the rounded box's SDF is only C1 across its core's face planes, so central
    # differences with a 1e-3 step are off by O(step) for points that close to them.
    np.testing.assert_allclose(shape.gradient(points), numeric, atol=2e-3)


def test_csg_gradient_is_the_gradient_of_the_active_child() -> None:
    left, right = Sphere(0.5, (-0.4, 0, 0)), Sphere(0.5, (0.4, 0, 0))
    points = _points((-1, 0.2, 0), (1, 0.2, 0), (-0.5, 0, 0.1))
    union, intersection = Union((left, right)), Intersection((left, right))
    np.testing.assert_allclose(union.gradient(points)[[0, 2]], left.gradient(points)[[0, 2]])
    np.testing.assert_allclose(union.gradient(points)[1], right.gradient(points)[1])
    np.testing.assert_allclose(intersection.gradient(points)[0], right.gradient(points)[0])
    hollow = difference(Sphere(0.8), Sphere(0.5))
    np.testing.assert_allclose(hollow.gradient(_points((0.6, 0, 0), (0.7, 0, 0))), [[-1, 0, 0], [1, 0, 0]], atol=1e-6)


def test_default_gradient_is_central_differences() -> None:
    class Slab(Shape):
        """|z| - 0.25: a slab, without an analytic gradient."""

        name = "slab"
        dim = 3
        bounds = (np.full(3, -np.inf), np.full(3, np.inf))

        def _distance(self, points: np.ndarray) -> np.ndarray:
            return np.abs(points[:, 2]) - 0.25

    gradient = Slab().gradient(_points((0.3, -0.2, 0.5), (0.1, 0.9, -0.7)))
    np.testing.assert_allclose(gradient, [[0, 0, 1], [0, 0, -1]], atol=1e-6)


# ------------------------------------------------------------------------- bounds, registry


def test_registry_lists_every_shape() -> None:
    assert shape_names() == ["box", "capsule", "circle", "csg", "l_shape", "rounded_box", "sphere", "torus"]
    assert all(get_shape(name).name == name for name in shape_names())


def test_unknown_shape_names_the_known_ones() -> None:
    with pytest.raises(InputError, match=r"unknown shape 'teapot'; known shapes: box, capsule, .*torus"):
        get_shape("teapot")


@pytest.mark.parametrize("name", ["box", "capsule", "circle", "csg", "l_shape", "rounded_box", "sphere", "torus"])
def test_bounds_contain_the_solid_tightly(name: str) -> None:
    shape = get_shape(name)
    lo, hi = shape.bounds
    points = np.random.default_rng(2).uniform(-1.2, 1.2, (40000, shape.dim))
    inside = points[shape.sdf(points) < 0]
    assert len(inside) > 100
    assert np.all(inside >= lo - 1e-6) and np.all(inside <= hi + 1e-6)
    assert np.all(inside.min(axis=0) < lo + 0.05) and np.all(inside.max(axis=0) > hi - 0.05)


def test_csg_bounds() -> None:
    left, right = Sphere(0.5, (-0.4, 0, 0)), Sphere(0.5, (0.4, 0, 0))
    np.testing.assert_allclose(np.array(Union((left, right)).bounds), [[-0.9, -0.5, -0.5], [0.9, 0.5, 0.5]])
    np.testing.assert_allclose(np.array(Intersection((left, right)).bounds), [[-0.1, -0.5, -0.5], [0.1, 0.5, 0.5]])
    np.testing.assert_allclose(np.array(difference(left, right).bounds), np.array(left.bounds))
    with pytest.raises(InputError, match="do not overlap"):
        Intersection((Sphere(0.1, (-1, 0, 0)), Sphere(0.1, (1, 0, 0)))).bounds


def test_padded_bounds_is_a_cube_around_the_shape() -> None:
    lo, hi = padded_bounds(get_shape("torus"))  # bounds (+-0.85, +-0.85, +-0.25)
    np.testing.assert_allclose(lo, [-0.935, -0.935, -0.935])
    np.testing.assert_allclose(hi, [0.935, 0.935, 0.935])
    lo, hi = padded_bounds(Sphere(1.0, center=(0.0, 2.0)), padding=0.0)
    np.testing.assert_allclose([lo, hi], [[-1.0, 1.0], [1.0, 3.0]])


def test_shape_mesh_of_torus_has_the_analytic_volume_and_area() -> None:
    mesh = shape_mesh(get_shape("torus"), resolution=64)
    major, minor = 0.6, 0.25
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(2 * math.pi**2 * major * minor**2, rel=0.01)
    assert mesh.area == pytest.approx(4 * math.pi**2 * major * minor, rel=0.01)
    assert np.abs(get_shape("torus").sdf(mesh.vertices)).max() < 2e-3


def test_shape_mesh_refuses_planar_shapes() -> None:
    with pytest.raises(InputError, match="'l_shape' is 2-D"):
        shape_mesh(l_shape())


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Sphere(-1.0), "radius must be a positive number"),
        (lambda: Sphere(0.5, center=(0, 0, 0, 0)), "center must be 2 or 3 finite numbers"),
        (lambda: Box((0.5, 0.5, 0.5), rounding=0.5), "rounding must be in"),
        (lambda: Box((0.5, -0.5, 0.5)), "half_size must be 3 positive numbers"),
        (lambda: Torus(0.2, 0.3), "minor_radius must be smaller than major_radius"),
        (lambda: Capsule((1, 1, 1), (1, 1, 1), 0.2), "must differ"),
        (lambda: Capsule((0, 0, 0), (1, 1), 0.2), "b must be 3 finite numbers"),
        (lambda: Polygon(((0, 0), (1, 0))), "at least 3 finite"),
        (lambda: Union(()), "at least one child"),
        (lambda: Union((Sphere(0.5), l_shape())), "same dimension"),
    ],
)
def test_bad_shape_parameters_raise_input_error(make, message: str) -> None:
    with pytest.raises(InputError, match=message):
        make()


def test_points_of_the_wrong_dimension_raise_input_error() -> None:
    with pytest.raises(InputError, match=r"'torus' expects points of shape \(N, 3\), got \(4, 2\)"):
        get_shape("torus").sdf(np.zeros((4, 2)))
