"""Ground-truth distance and sign: analytic shapes, real CGAL meshes (holes, flipped faces),
point sets and triangle soups."""

from __future__ import annotations

import igl
import numpy as np
import pytest
import trimesh
from skimage.measure import marching_cubes

from isofield.errors import InputError
from isofield.geometry import groundtruth
from isofield.geometry.groundtruth import (
    MeshDistance,
    PointSetDistance,
    TriangleDistance,
    inside_test,
    orient_outward,
    spatial_order,
)
from isofield.geometry.io import read_mesh
from isofield.geometry.sampling import sample_surface
from isofield.geometry.shapes import Box, Torus


@pytest.fixture(scope="module")
def sphere() -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=5)


@pytest.fixture(scope="module")
def sphere_distance(sphere) -> MeshDistance:
    return MeshDistance(sphere)


def _sag(sphere: trimesh.Trimesh) -> float:
    """Largest gap between the unit sphere and the facet planes of an inscribed polyhedron.

    The solid polyhedron lies between the balls of radius 1 - sag and 1, so its signed
    distance differs from |p| - 1 by at most sag everywhere.
    """
    plane_offsets = np.einsum("ij,ij->i", sphere.triangles_center, sphere.face_normals)
    return float(1 - plane_offsets.min())


def _uniform(n: int, half: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-half, half, (n, 3))


def _flip_third_and_shuffle(mesh: trimesh.Trimesh, seed: int = 0) -> trimesh.Trimesh:
    rng = np.random.default_rng(seed)
    faces = np.asarray(mesh.faces)[rng.permutation(len(mesh.faces))]
    flip = rng.random(len(faces)) < 1 / 3
    faces[flip] = faces[flip][:, ::-1]
    return trimesh.Trimesh(mesh.vertices, faces, process=False)


def _unmerge(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """A triangle soup: every face gets its own three vertices."""
    corners = np.asarray(mesh.vertices)[np.asarray(mesh.faces)].reshape(-1, 3)
    return trimesh.Trimesh(corners, np.arange(len(corners)).reshape(-1, 3), process=False)


def _raw_inside(mesh: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """Winding-number inside test on the faces as given (no orientation repair)."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    winding = igl.fast_winding_number(vertices, np.asarray(mesh.faces, np.int64), points)
    return np.abs(winding) >= 0.5


# --- analytic shapes ------------------------------------------------------------------------


def test_sphere_signed_distance_matches_analytic_within_facet_sag(sphere, sphere_distance):
    sag = _sag(sphere)
    assert 2e-4 < sag < 3e-4  # subdivision 5
    points = _uniform(20_000, 1.5)
    exact = np.linalg.norm(points, axis=1) - 1
    signed = sphere_distance.signed(points)
    assert signed.dtype == np.float32 and signed.shape == (20_000,)
    assert np.abs(signed - exact).max() <= sag + 1e-6
    np.testing.assert_allclose(sphere_distance.unsigned(points), np.abs(signed), atol=1e-7)


def test_sphere_occupancy_is_exact_away_from_the_surface(sphere, sphere_distance):
    points = _uniform(20_000, 1.5, seed=1)
    radius = np.linalg.norm(points, axis=1)
    away = np.abs(radius - 1) > _sag(sphere)
    occupancy = sphere_distance.occupancy(points)
    assert occupancy.dtype == bool
    np.testing.assert_array_equal(occupancy[away], radius[away] < 1)


def test_sphere_winding_number_is_one_inside_and_zero_outside(sphere_distance):
    points = _uniform(5_000, 1.5, seed=2)
    radius = np.linalg.norm(points, axis=1)
    winding = sphere_distance.winding_number(points)
    # libigl's fast winding number approximates far triangle clusters: measured error 2.3e-3
    assert np.abs(winding[radius < 0.95] - 1).max() < 5e-3
    assert np.abs(winding[radius > 1.05]).max() < 5e-3


def test_torus_signed_distance_matches_analytic():
    mesh = trimesh.creation.torus(0.6, 0.25, major_sections=128, minor_sections=64)
    points = _uniform(20_000, 1.0, seed=3)
    exact = Torus(major_radius=0.6, minor_radius=0.25).sdf(points)
    signed = MeshDistance(mesh).signed(points)
    # chords of 128 x 64 sections sag by 0.85 (1 - cos(pi/128)) + 0.25 (1 - cos(pi/64)) < 6e-4
    assert np.abs(signed - exact).max() < 6e-4
    away = np.abs(exact) > 6e-4
    np.testing.assert_array_equal(signed[away] < 0, exact[away] < 0)


def test_box_signed_distance_is_exact():
    mesh = trimesh.creation.box(extents=(1.0, 0.6, 0.4))
    points = _uniform(20_000, 0.8, seed=4)
    exact = Box(half_size=(0.5, 0.3, 0.2)).sdf(points)
    np.testing.assert_allclose(MeshDistance(mesh).signed(points), exact, atol=2e-7)


def test_closest_points_and_faces_on_a_box():
    mesh = trimesh.creation.box(extents=(2.0, 2.0, 2.0))
    points = np.array([[0.2, 0.3, 3.0], [2.0, 2.0, 0.5], [0.0, 0.0, 0.5]])
    closest = MeshDistance(mesh).closest(points)
    np.testing.assert_allclose(closest.distance, [2.0, np.sqrt(2), 0.5], rtol=1e-6)
    expected = [[0.2, 0.3, 1.0], [1.0, 1.0, 0.5], [0.0, 0.0, 1.0]]
    np.testing.assert_allclose(closest.points, expected, atol=1e-6)
    normals = mesh.face_normals[closest.index]
    np.testing.assert_allclose(normals[0], [0, 0, 1], atol=1e-12)


def test_chunked_evaluation_matches_one_chunk():
    coarse = trimesh.creation.icosphere(subdivisions=3)
    points = _uniform(1_000, 1.5, seed=5)
    whole = MeshDistance(coarse).signed(points)
    chunked = MeshDistance(coarse, chunk_size=300).signed(points)
    np.testing.assert_array_equal(chunked, whole)


def test_spatial_order_is_a_permutation_that_groups_nearby_points():
    points = _uniform(10_000, 1.0, seed=6)
    order = spatial_order(points)
    np.testing.assert_array_equal(np.sort(order), np.arange(10_000))
    step = np.linalg.norm(np.diff(points[order], axis=0), axis=1).mean()
    assert step < 0.1 * np.linalg.norm(np.diff(points, axis=0), axis=1).mean()


def test_empty_queries_give_empty_results(sphere_distance):
    empty = np.zeros((0, 3))
    assert sphere_distance.signed(empty).shape == (0,)
    assert sphere_distance.occupancy(empty).shape == (0,)
    assert sphere_distance.closest(empty).points.shape == (0, 3)


# --- orientation repair ---------------------------------------------------------------------


def test_flipped_and_shuffled_faces_keep_the_signs(sphere, sphere_distance):
    broken = _flip_third_and_shuffle(sphere)
    points = np.concatenate([_uniform(10_000, 1.5, seed=7), _near_sphere(10_000)])
    expected = sphere_distance.signed(points)
    repaired = MeshDistance(broken).signed(points)
    np.testing.assert_array_equal(np.abs(repaired), np.abs(expected))
    assert np.mean((repaired < 0) == (expected < 0)) >= 0.999
    # without the repair the winding number is wrong on a large share of the points
    assert np.mean(_raw_inside(broken, points) == (expected < 0)) < 0.9


def _near_sphere(n: int, seed: int = 8) -> np.ndarray:
    """Points within about 0.01 of the unit sphere, on both sides."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(n, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return directions * (1 + rng.normal(0, 0.01, (n, 1)))


def test_triangle_soup_with_flipped_faces_keeps_the_signs(sphere, sphere_distance):
    soup = _unmerge(_flip_third_and_shuffle(sphere, seed=1))
    points = np.concatenate([_uniform(5_000, 1.5, seed=9), _near_sphere(5_000)])
    expected = sphere_distance.signed(points) < 0
    assert np.mean((MeshDistance(soup).signed(points) < 0) == expected) >= 0.999


def test_inverted_mesh_keeps_the_signs(sphere, sphere_distance):
    inverted = trimesh.Trimesh(sphere.vertices, np.asarray(sphere.faces)[:, ::-1], process=False)
    points = _uniform(5_000, 1.5, seed=10)
    expected = sphere_distance.signed(points)
    np.testing.assert_array_equal(MeshDistance(inverted).signed(points), expected)


def test_orient_outward_reports_the_enclosed_volume():
    box = trimesh.creation.box(extents=(1.0, 2.0, 3.0))
    vertices, faces = np.asarray(box.vertices, float), np.asarray(box.faces, np.int64)
    oriented = orient_outward(vertices, faces)
    assert oriented.volume == pytest.approx(6.0, rel=1e-12)
    np.testing.assert_array_equal(oriented.faces, box.faces)  # already outward: unchanged
    assert oriented.kept.all() and oriented.cleanup.dropped == 0


def test_two_disjoint_spheres_each_oriented_outward(sphere):
    one_flipped = trimesh.util.concatenate(
        [sphere, trimesh.Trimesh(sphere.vertices + [3.0, 0, 0], sphere.faces[:, ::-1])]
    )
    distance = MeshDistance(one_flipped)
    assert distance.enclosed_volume == pytest.approx(2 * sphere.volume, rel=1e-9)
    centres = np.array([[0.0, 0, 0], [3.0, 0, 0], [1.5, 0, 0]])
    np.testing.assert_array_equal(distance.occupancy(centres), [True, True, False])


def test_flat_sheet_has_no_inside_but_has_distance():
    sheet = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], [[0, 1, 2], [0, 2, 3]])
    distance = MeshDistance(sheet)
    assert not distance.has_inside
    np.testing.assert_allclose(distance.unsigned([[0.5, 0.5, 2.0], [2.0, 0.5, 0.0]]), [2.0, 1.0])
    for method in (distance.signed, distance.occupancy):
        with pytest.raises(InputError, match="mesh has no inside"):
            method(np.zeros((1, 3)))


# --- real meshes ----------------------------------------------------------------------------


def _offset_signs(mesh: trimesh.Trimesh, distance: MeshDistance, fraction: float):
    """Signed distances of surface points pushed inward / outward by fraction x diagonal."""
    cloud = sample_surface(distance.oriented_mesh, 10_000, seed=11)
    step = fraction * float(np.linalg.norm(np.ptp(mesh.vertices, axis=0)))
    inner = distance.signed(cloud.points - step * cloud.normals)
    outer = distance.signed(cloud.points + step * cloud.normals)
    return inner, outer


def _far_points(mesh: trimesh.Trimesh, n: int = 1_000) -> np.ndarray:
    directions = np.random.default_rng(12).normal(size=(n, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    diagonal = float(np.linalg.norm(np.ptp(mesh.vertices, axis=0)))
    return mesh.bounds.mean(axis=0) + 1.5 * diagonal * directions


@pytest.mark.parametrize("name", ["bunny00.off", "elephant-with-holes.off"])
def test_real_mesh_signs_inside_and_outside(cgal_data, name):
    mesh = read_mesh(cgal_data / "meshes" / name)
    distance = MeshDistance(mesh)
    assert np.all(distance.signed(_far_points(mesh)) > 0)
    inner, outer = _offset_signs(mesh, distance, 3e-3)
    assert np.mean(inner < 0) >= 0.99  # measured: bunny 1.0, elephant with holes 0.9995
    assert np.mean(outer > 0) >= 0.99  # measured: 1.0 for both


def test_holes_barely_change_the_inside(cgal_data):
    holes = MeshDistance(read_mesh(cgal_data / "meshes" / "elephant-with-holes.off"))
    closed_mesh = read_mesh(cgal_data / "meshes" / "elephant.off")
    closed = MeshDistance(closed_mesh)
    assert closed_mesh.is_watertight
    lo, hi = closed_mesh.bounds
    points = np.random.default_rng(13).uniform(lo, hi, (50_000, 3))
    agree = holes.occupancy(points) == closed.occupancy(points)
    assert agree.mean() >= 0.998  # measured 0.9990; the rest lie near the holes
    diagonal = np.linalg.norm(hi - lo)
    assert closed.unsigned(points[~agree]).max() < 0.01 * diagonal


def test_cgal_shuffled_orientation_is_repaired(cgal_data):
    shuffled = read_mesh(cgal_data / "meshes" / "blobby-shuffled.off")
    reference = MeshDistance(read_mesh(cgal_data / "meshes" / "blobby.off"))
    assert not shuffled.is_winding_consistent
    lo, hi = shuffled.bounds
    points = np.random.default_rng(14).uniform(lo, hi, (30_000, 3))
    expected = reference.occupancy(points)
    assert np.mean(MeshDistance(shuffled).occupancy(points) == expected) >= 0.999  # measured 1.0
    assert np.mean(_raw_inside(shuffled, points) == expected) < 0.95  # measured 0.875


# --- point sets and triangle soups ----------------------------------------------------------


def test_point_set_distance_and_closest_points_match_brute_force():
    rng = np.random.default_rng(15)
    reference = rng.normal(size=(500, 3))
    queries = rng.normal(size=(300, 3))
    pairwise = np.linalg.norm(queries[:, None] - reference[None], axis=2)
    closest = PointSetDistance(reference).closest(queries)
    np.testing.assert_array_equal(closest.index, pairwise.argmin(axis=1))
    np.testing.assert_allclose(closest.distance, pairwise.min(axis=1), rtol=1e-6)
    np.testing.assert_allclose(closest.points, reference[pairwise.argmin(axis=1)], rtol=1e-6)
    np.testing.assert_allclose(PointSetDistance(reference)(queries), closest.distance)


def test_triangle_soup_distance_to_interior_edge_and_corner():
    triangles = np.array(
        [[[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[5, 0, 0], [6, 0, 0], [5, 0, 1]]], dtype=float
    )
    points = np.array([[0.2, 0.2, 0.5], [-1.0, -1.0, 0.0], [0.5, -2.0, 0.0], [5.5, 1.0, 0.25]])
    closest = TriangleDistance.from_triangles(triangles).closest(points)
    np.testing.assert_allclose(closest.distance, [0.5, np.sqrt(2), 2.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(
        closest.points, [[0.2, 0.2, 0], [0, 0, 0], [0.5, 0, 0], [5.5, 0, 0.25]], atol=1e-7
    )
    np.testing.assert_array_equal(closest.index, [0, 0, 0, 1])
    # the unit gradient of the unsigned distance points away from the closest point
    gradient = (points - closest.points) / closest.distance[:, None]
    np.testing.assert_allclose(gradient[0], [0, 0, 1], atol=1e-7)


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("points", "message"),
    [(np.zeros((4, 2)), r"shape \(N, 3\)"), (np.array([[0.0, np.nan, 0.0]]), "NaN")],
)
def test_bad_query_points_raise_input_error(sphere_distance, points, message):
    with pytest.raises(InputError, match=message):
        sphere_distance.signed(points)


def test_bad_meshes_and_reference_sets_raise_input_error():
    with pytest.raises(InputError, match="F >= 1"):
        MeshDistance(trimesh.Trimesh(np.zeros((3, 3)), np.zeros((0, 3), dtype=int)))
    with pytest.raises(InputError, match="outside"):
        TriangleDistance(np.zeros((3, 3)), [[0, 1, 3]])
    with pytest.raises(InputError, match=r"\(T, 3, 3\)"):
        TriangleDistance.from_triangles(np.zeros((2, 3)))
    with pytest.raises(InputError, match="empty"):
        PointSetDistance(np.zeros((0, 3)))


def test_oriented_points_inside_matches_the_sphere():
    from isofield.geometry.groundtruth import oriented_points_inside

    rng = np.random.default_rng(3)
    normals = rng.normal(size=(4000, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    points = 0.5 * normals
    queries = rng.uniform(-1, 1, size=(5000, 3))
    radius = np.linalg.norm(queries, axis=1)
    away = np.abs(radius - 0.5) > 0.02
    inside = oriented_points_inside(points, normals, queries)
    assert np.mean(inside[away] == (radius[away] < 0.5)) == 1.0
    # flipped normals turn the inside out
    assert not oriented_points_inside(points, -normals, np.zeros((1, 3)))[0]


@pytest.mark.parametrize("name", ["bunny00.off", "armadillo.off", "blobby-shuffled.off"])
def test_inside_test_equals_the_mesh_distance_occupancy(cgal_data, monkeypatch, name):
    # a closed, consistently wound mesh (the CGAL bunny, armadillo, their inside-out copies, a
    # marching-cubes torus) is tested by its winding number alone; blobby-shuffled (closed but
    # inconsistently wound) and a hollow sphere (its inner part faces inward, a cavity that the
    # repair fills) go through MeshDistance. Both give its occupancy.
    torus = Torus(1.0, 0.35)
    values = torus(np.stack(np.meshgrid(*[np.linspace(-1.5, 1.5, 64)] * 3, indexing="ij"), -1).reshape(-1, 3))
    vertices, faces, _, _ = marching_cubes(values.reshape(64, 64, 64), 0.0, spacing=(3 / 63,) * 3)
    mesh = read_mesh(cgal_data / "meshes" / name)
    outer, inner = trimesh.creation.icosphere(3), trimesh.creation.icosphere(3, radius=0.5)
    hollow = trimesh.util.concatenate([outer, trimesh.Trimesh(inner.vertices, inner.faces[:, ::-1])])
    meshes = [mesh, trimesh.Trimesh(mesh.vertices, np.asarray(mesh.faces)[:, ::-1], process=False),
              trimesh.Trimesh(vertices - 1.5, faces, process=False), hollow]
    for candidate in meshes:
        cloud = sample_surface(candidate, 5_000, seed=3)
        step = 2e-3 * float(np.linalg.norm(np.ptp(candidate.vertices, axis=0)))
        lo, hi = candidate.bounds
        points = np.concatenate([cloud.points - step * cloud.normals, cloud.points + step * cloud.normals,
                                 np.random.default_rng(4).uniform(lo, hi, (20_000, 3))])
        expected = MeshDistance(candidate).occupancy(points)
        built = []
        monkeypatch.setattr(groundtruth, "MeshDistance", lambda *a, **k: built.append(1) or MeshDistance(*a, **k))
        np.testing.assert_array_equal(inside_test(candidate)(points), expected)
        monkeypatch.undo()
        assert len(built) == (0 if candidate.is_winding_consistent and candidate is not hollow else 1)
        assert 0.05 < expected.mean() < 0.95


def test_inside_test_of_a_mesh_that_encloses_nothing_is_empty():
    # an open sheet: MeshDistance refuses its occupancy, the inside test finds no point inside
    sheet = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], [[0, 1, 2], [1, 3, 2]])
    points = np.random.default_rng(0).uniform(-0.5, 1.5, (1000, 3))
    with pytest.raises(InputError, match="no inside"):
        MeshDistance(sheet).occupancy(points)
    inside = inside_test(sheet)(points)
    assert inside.shape == (1000,) and not inside.any()
