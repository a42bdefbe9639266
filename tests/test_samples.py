"""DeepSDF SDF samples, occupancy samples and surface samples: counts, noise scales,
normalisation, exact values on a sphere, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from isofield.errors import InputError
from isofield.geometry.groundtruth import MeshDistance
from isofield.geometry.normalization import Normalization
from isofield.geometry.samples import (
    make_samples,
    occupancy_samples,
    sdf_samples,
    surface_samples,
)

SAG = 3e-4  # the facets of an icosphere of subdivision 5 lie within 3e-4 of the unit sphere


@pytest.fixture(scope="module")
def sphere_distance() -> MeshDistance:
    return MeshDistance(trimesh.creation.icosphere(subdivisions=5))


@pytest.fixture(scope="module")
def unit_samples(sphere_distance):
    """50k DeepSDF samples of the unit sphere, kept in its own frame."""
    identity = Normalization.identity()
    samples, frame = sdf_samples(sphere_distance, n=50_000, seed=0, normalization=identity)
    assert frame is identity
    return samples


def test_deepsdf_split_is_94_percent_near_surface(unit_samples):
    assert unit_samples.points.shape == (50_000, 3) and unit_samples.points.dtype == np.float32
    assert unit_samples.sdf.shape == (50_000,) and unit_samples.sdf.dtype == np.float32
    # 23_500 surface points, each giving a wide- and a narrow-noise sample; 3_000 uniform
    uniform = unit_samples.points[47_000:]
    assert np.abs(uniform).max() <= 1.0
    assert np.abs(uniform.mean(axis=0)).max() < 0.03  # U[-1, 1]: standard error 0.011
    assert uniform.std(axis=0) == pytest.approx(np.full(3, 1 / np.sqrt(3)), rel=0.03)


def test_near_surface_noise_has_the_deepsdf_variances(unit_samples):
    # on the unit sphere the sdf of p + e is about the radial component of e
    wide, narrow = unit_samples.sdf[:23_500], unit_samples.sdf[23_500:47_000]
    assert wide.std() == pytest.approx(np.sqrt(0.005), rel=0.03)
    assert narrow.std() == pytest.approx(np.sqrt(0.0005), rel=0.03)


def test_sphere_sdf_values_are_exact(unit_samples):
    radius = np.linalg.norm(unit_samples.points.astype(np.float64), axis=1)
    assert np.abs(unit_samples.sdf - (radius - 1)).max() <= SAG


def test_default_frame_is_deepsdf_unit_sphere_with_buffer():
    # a sphere of radius 5 around (1, 2, 3): canonical radius 1 / 1.03, canonical distances
    mesh = trimesh.creation.icosphere(subdivisions=5, radius=5.0)
    mesh.apply_translation([1.0, 2.0, 3.0])
    samples, frame = sdf_samples(mesh, n=20_000, seed=1)
    np.testing.assert_allclose(frame.center, [1, 2, 3], atol=1e-12)
    assert frame.scale == pytest.approx(5 * 1.03)
    radius = np.linalg.norm(samples.points.astype(np.float64), axis=1)
    assert np.abs(samples.sdf - (radius - 1 / 1.03)).max() <= SAG


def test_same_seed_same_samples_other_seed_other_samples(sphere_distance):
    first, _ = sdf_samples(sphere_distance, n=2_000, seed=3)
    again, _ = sdf_samples(sphere_distance, n=2_000, seed=3)
    other, _ = sdf_samples(sphere_distance, n=2_000, seed=4)
    np.testing.assert_array_equal(first.points, again.points)
    np.testing.assert_array_equal(first.sdf, again.sdf)
    assert not np.allclose(first.points, other.points)


def test_occupancy_samples_uniform_in_padded_cube_then_near_surface(sphere_distance):
    samples, frame = occupancy_samples(sphere_distance, n=20_000, seed=0, near_fraction=0.25)
    # ONet's unit cube: the sphere of radius 1 becomes radius 0.5
    assert frame.scale == pytest.approx(2.0)
    uniform, near = samples.points[:15_000], samples.points[15_000:]
    assert np.abs(uniform).max() <= 0.55 and np.abs(uniform).max() > 0.54
    near_radius = np.linalg.norm(near, axis=1)
    assert np.abs(near_radius - 0.5).max() < 0.06  # sigma 0.01: 6 sigma
    assert np.std(near_radius - 0.5) == pytest.approx(0.01, rel=0.05)
    radius = np.linalg.norm(samples.points, axis=1)
    away = np.abs(radius - 0.5) > SAG / 2
    np.testing.assert_array_equal(samples.occupancies[away], radius[away] < 0.5)
    assert samples.occupancies.dtype == bool


def test_surface_samples_lie_on_the_surface_with_outward_normals_despite_flipped_faces():
    sphere = trimesh.creation.icosphere(subdivisions=5)
    flipped = trimesh.Trimesh(sphere.vertices, np.asarray(sphere.faces)[:, ::-1], process=False)
    samples, _ = surface_samples(flipped, n=5_000, seed=0)
    assert samples.points.dtype == np.float32 and samples.normals.dtype == np.float32
    radius = np.linalg.norm(samples.points, axis=1)
    assert np.abs(radius - 1).max() <= SAG
    assert np.einsum("ij,ij->i", samples.points / radius[:, None], samples.normals).min() > 0.999


def test_mesh_and_its_mesh_distance_give_the_same_samples(sphere_distance):
    from_mesh, _ = occupancy_samples(sphere_distance.mesh, n=1_000, seed=2)
    from_distance, _ = occupancy_samples(sphere_distance, n=1_000, seed=2)
    np.testing.assert_array_equal(from_mesh.points, from_distance.points)
    np.testing.assert_array_equal(from_mesh.occupancies, from_distance.occupancies)


def test_make_samples_dispatches_by_kind(sphere_distance):
    samples, frame = make_samples(sphere_distance, "surface", n=10, seed=5)
    expected, expected_frame = surface_samples(sphere_distance, n=10, seed=5)
    np.testing.assert_array_equal(samples.points, expected.points)
    assert frame.to_dict() == expected_frame.to_dict()
    assert len(make_samples(sphere_distance, "occupancy", seed=1)[0].points) == 100_000
    with pytest.raises(InputError, match="unknown sample kind 'voxels'"):
        make_samples(sphere_distance, "voxels")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"n": 0}, "positive integer"),
        ({"near_fraction": 1.5}, r"\[0, 1\]"),
        ({"variances": (0.005, -1.0)}, "variances"),
    ],
)
def test_bad_sample_arguments_raise_input_error(sphere_distance, arguments, message):
    with pytest.raises(InputError, match=message):
        sdf_samples(sphere_distance, **arguments)


def test_sdf_samples_of_an_open_sheet_raise_input_error():
    sheet = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [1, 1, 0]], [[0, 1, 2]], process=False)
    with pytest.raises(InputError, match="mesh has no inside"):
        sdf_samples(sheet, n=100)
