"""Surface sampling and point subsampling: uniformity by area and within triangles, normals,
determinism."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from isofield.errors import InputError
from isofield.geometry.io import PointCloud
from isofield.geometry.sampling import sample_points, sample_surface


def test_samples_on_a_sphere_lie_on_it_with_radial_normals():
    sphere = trimesh.creation.icosphere(subdivisions=5)
    cloud = sample_surface(sphere, 20_000, seed=1)
    assert cloud.points.shape == (20_000, 3) and cloud.points.dtype == np.float32
    radii = np.linalg.norm(cloud.points, axis=1)
    # flat facets of subdivision 5 sag at most ~2.4e-4 below the unit sphere
    assert np.abs(radii - 1).max() < 1e-3
    radial = cloud.points / radii[:, None]
    assert np.einsum("ij,ij->i", cloud.normals, radial).min() > 0.999


def test_fraction_of_samples_per_box_face_matches_its_area_fraction():
    extents = np.array([1.0, 2.0, 3.0])
    box = trimesh.creation.box(extents=extents)  # face areas 6, 6, 3, 3, 2, 2 (total 22)
    n = 100_000
    cloud = sample_surface(box, n, seed=0)

    # which of the 6 faces: the axis along which the point touches the box, and the side
    on_face = np.isclose(np.abs(cloud.points), extents / 2, atol=1e-6)
    assert np.all(on_face.sum(axis=1) >= 1)
    axis = np.argmax(on_face, axis=1)
    side = cloud.points[np.arange(n), axis] > 0
    counts = np.bincount(2 * axis + side, minlength=6)

    areas = np.repeat([extents[1] * extents[2], extents[0] * extents[2], extents[0] * extents[1]], 2)
    expected = n * areas / areas.sum()
    chi_square = np.sum((counts - expected) ** 2 / expected)
    assert chi_square < 20.5  # 5 degrees of freedom, p = 0.001

    # samples come shuffled: the first 2 % alone are already spread by area
    head = slice(0, n // 50)
    head_counts = np.bincount(2 * axis[head] + side[head], minlength=6)
    head_expected = expected / 50
    assert np.sum((head_counts - head_expected) ** 2 / head_expected) < 20.5

    # the normal of each sample is the outward unit normal of its face
    outward = np.zeros((n, 3))
    outward[np.arange(n), axis] = np.where(side, 1.0, -1.0)
    np.testing.assert_allclose(cloud.normals, outward, atol=1e-6)


def test_samples_are_uniform_inside_a_triangle():
    triangle = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]], process=False)
    n = 100_000
    points = sample_surface(triangle, n, seed=3).points
    assert points.min() >= 0 and np.all(points[:, 0] + points[:, 1] <= 1 + 1e-6)
    np.testing.assert_allclose(points.mean(axis=0), [1 / 3, 1 / 3, 0], atol=0.005)
    # the corner triangle x + y < 1/2 holds a quarter of the area (std of the fraction 0.0014)
    near_corner = np.mean(points[:, 0] + points[:, 1] < 0.5)
    assert near_corner == pytest.approx(0.25, abs=0.006)


def test_zero_area_faces_are_never_sampled():
    mesh = trimesh.Trimesh(
        [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 5], [1, 0, 5], [2, 0, 5]],
        [[3, 4, 5], [0, 1, 2], [3, 3, 4]],  # collinear, proper, repeated index
        process=False,
    )
    cloud = sample_surface(mesh, 10_000, seed=0)
    assert np.all(cloud.points[:, 2] == 0)
    np.testing.assert_array_equal(cloud.normals, np.tile([0, 0, 1], (10_000, 1)))


def test_same_seed_same_samples_other_seed_other_samples():
    sphere = trimesh.creation.icosphere(subdivisions=2)
    first = sample_surface(sphere, 1000, seed=5)
    again = sample_surface(sphere, 1000, seed=5)
    other = sample_surface(sphere, 1000, seed=6)
    np.testing.assert_array_equal(first.points, again.points)
    np.testing.assert_array_equal(first.normals, again.normals)
    assert np.abs(first.points - other.points).max() > 0.1


def test_bad_sampling_requests():
    triangle = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]], process=False)
    for n in (0, -3, 2.5):
        with pytest.raises(InputError, match="must be a positive integer"):
            sample_surface(triangle, n)
    flat = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [2, 0, 0]], [[0, 1, 2]], process=False)
    with pytest.raises(InputError, match="zero surface area"):
        sample_surface(flat, 10)


def test_sample_points_without_and_with_replacement_keeps_normals_with_points():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(100, 3))
    cloud = PointCloud(points, points)  # normal = direction of the point

    subset = sample_points(cloud, 40, seed=2)
    assert len(subset) == 40
    assert len(np.unique(subset.points, axis=0)) == 40  # no point twice
    np.testing.assert_allclose(
        subset.normals, subset.points / np.linalg.norm(subset.points, axis=1)[:, None], atol=1e-6
    )
    original = {tuple(p) for p in cloud.points}
    assert all(tuple(p) in original for p in subset.points)

    everything = sample_points(cloud, 100, seed=2)
    assert len(np.unique(everything.points, axis=0)) == 100  # a permutation

    more = sample_points(cloud, 250, seed=2)
    assert len(more) == 250 and len(np.unique(more.points, axis=0)) <= 100

    np.testing.assert_array_equal(sample_points(cloud, 40, seed=2).points, subset.points)
    assert sample_points(PointCloud(points), 10).normals is None


@pytest.mark.slow
def test_one_million_samples_on_the_armadillo_take_under_a_second(cgal_data):
    import time

    from isofield.geometry.io import read_mesh

    armadillo = read_mesh(cgal_data / "meshes" / "armadillo.off")
    sample_surface(armadillo, 1000)  # warm up
    start = time.perf_counter()
    cloud = sample_surface(armadillo, 1_000_000, seed=0)
    elapsed = time.perf_counter() - start
    assert len(cloud) == 1_000_000
    assert elapsed < 1.0
