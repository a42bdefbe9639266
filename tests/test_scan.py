"""Virtual depth scans: analytic sphere and box, noise, free space, camera specs, CGAL armadillo."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import trimesh

from isofield.cli import parse_camera
from isofield.errors import InputError
from isofield.geometry.groundtruth import MeshDistance
from isofield.geometry.io import read_mesh, read_points, write_points
from isofield.geometry.scan import ScanCamera, depth_scan, free_space_samples
from isofield.geometry.shapes import Box, Sphere

CENTER = np.array([0.3, -0.2, 0.1])


@pytest.fixture(scope="module")
def sphere() -> trimesh.Trimesh:
    """Unit icosphere (20480 faces) around CENTER; its facets lie at most 3e-4 inside the sphere."""
    mesh = trimesh.creation.icosphere(subdivisions=5, radius=1.0)
    mesh.apply_translation(CENTER)
    return mesh


@pytest.fixture(scope="module")
def sphere_scan(sphere):
    return depth_scan(sphere, ScanCamera(azimuth=30, elevation=20, resolution=128))


def box_mesh() -> trimesh.Trimesh:
    """Box of extents (1, 0.6, 0.4) at the origin: its +z face is the plane z = 0.2."""
    return trimesh.creation.box(extents=(1.0, 0.6, 0.4))


def pixel_centres(scan) -> np.ndarray:
    """(N, 2) (column + 0.5, row + 0.5) of the covered pixels, in the order of scan.points."""
    rows, columns = np.nonzero(np.isfinite(scan.depth))
    return np.stack([columns + 0.5, rows + 0.5], axis=1)


def centres_within(half_width: float, size: int) -> int:
    """How many pixel centres k + 0.5 (k = 0..size-1) lie within half_width of the image middle."""
    centres = np.arange(size) + 0.5
    return int(np.count_nonzero(np.abs(centres - size / 2) <= half_width))


# ---------------------------------------------------------------- sphere


def test_sphere_scan_sees_only_the_visible_cap_on_the_surface(sphere_scan):
    offsets = sphere_scan.points - CENTER
    radius = np.linalg.norm(offsets, axis=1)
    # inscribed icosphere: every surface point is 0 to 3e-4 inside the unit sphere
    assert radius.max() <= 1.0 + 1e-5
    assert radius.min() >= 1.0 - 3e-4
    # from distance D only the cap with cos(angle to the eye direction) >= r / D is visible
    to_eye = sphere_scan.origin - CENTER
    distance = np.linalg.norm(to_eye)
    assert distance == pytest.approx(1.05 / math.sin(math.radians(20)), rel=1e-6)  # 3.07 radii
    cosine = offsets @ (to_eye / distance) / radius
    assert cosine.min() >= 1.0 / distance - 0.02
    assert cosine.max() == pytest.approx(1.0, abs=1e-4)


def test_sphere_scan_normals_are_radial(sphere_scan):
    radial = (sphere_scan.points - CENTER) / np.linalg.norm(sphere_scan.points - CENTER, axis=1)[:, None]
    cosine = np.einsum("ij,ij->i", radial, sphere_scan.normals)
    # facet normals of a 20480-face icosphere deviate from the radius by at most ~1.3 degrees
    assert np.degrees(np.arccos(cosine.min())) < 2.0
    np.testing.assert_allclose(np.linalg.norm(sphere_scan.normals, axis=1), 1.0, atol=1e-6)
    assert sphere_scan.points.dtype == sphere_scan.normals.dtype == np.float32


def test_sphere_scan_covers_the_projected_disc(sphere_scan):
    # silhouette: angular radius asin(1 / D); on screen tan(asin(1 / D)) * focal pixels, with
    # focal = 64 / tan(20 deg) = 175.8 px: radius 60.58 px, disc area 11530 px
    distance = np.linalg.norm(sphere_scan.origin - CENTER)
    focal = 64 / math.tan(math.radians(20))
    disc = math.pi * (focal * math.tan(math.asin(1 / distance))) ** 2
    assert disc == pytest.approx(11530, abs=1)
    assert len(sphere_scan.points) == pytest.approx(disc, rel=0.01)
    assert len(sphere_scan.points) == np.count_nonzero(np.isfinite(sphere_scan.depth))


def test_points_lie_on_their_pixel_rays_and_depth_matches(sphere_scan):
    pixels, depth = sphere_scan.camera.project(sphere_scan.points)
    np.testing.assert_allclose(pixels, pixel_centres(sphere_scan), atol=1e-3)
    np.testing.assert_allclose(depth, sphere_scan.depth[np.isfinite(sphere_scan.depth)], rtol=1e-5)
    assert np.isinf(sphere_scan.depth).sum() == 128 * 128 - len(sphere_scan.points)


# ---------------------------------------------------------------- box, face-on


def test_box_face_on_gives_the_front_face_rectangle():
    # azimuth 0, elevation 0, up y: the camera sits on the +z axis and sees only the face z = 0.2
    scan = depth_scan(box_mesh(), ScanCamera(azimuth=0, elevation=0, resolution=128))
    np.testing.assert_allclose(scan.points[:, 2], 0.2, atol=1e-6)
    np.testing.assert_allclose(scan.normals, np.tile([0.0, 0.0, 1.0], (len(scan.points), 1)), atol=1e-6)
    np.testing.assert_allclose(scan.origin[:2], 0.0, atol=1e-12)
    # the face (half sizes 0.5 x 0.3 at depth d) spans focal * (0.5, 0.3) / d pixels each side
    depth = scan.origin[2] - 0.2
    focal = 64 / math.tan(math.radians(20))
    expected = centres_within(focal * 0.5 / depth, 128) * centres_within(focal * 0.3 / depth, 128)
    assert expected == 104 * 62
    assert len(scan.points) == expected
    assert np.abs(scan.points[:, 0]).max() == pytest.approx(0.5, abs=0.01)
    np.testing.assert_allclose(scan.depth[np.isfinite(scan.depth)], depth, rtol=1e-6)


def test_normals_face_the_camera_even_on_flipped_faces():
    box = box_mesh()
    flipped = trimesh.Trimesh(box.vertices, box.faces[:, ::-1], process=False)
    camera = ScanCamera(azimuth=40, elevation=30, resolution=64)
    original, reversed_ = depth_scan(box, camera), depth_scan(flipped, camera)
    np.testing.assert_array_equal(original.normals, reversed_.normals)
    rays = original.points - original.origin
    assert np.all(np.einsum("ij,ij->i", original.normals, rays) < 0)
    # three faces seen: every normal is one of +x, +y, +z
    assert np.unique(np.round(original.normals, 6), axis=0).tolist() == [
        [0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0],
    ]


# ---------------------------------------------------------------- noise and determinism


def test_noise_moves_points_along_their_rays_with_the_requested_std(sphere, sphere_scan):
    diagonal = float(np.linalg.norm(np.ptp(sphere.vertices, axis=0)))
    camera = sphere_scan.view
    noisy = depth_scan(sphere, camera, noise=0.002, seed=5)
    shift = noisy.points.astype(np.float64) - sphere_scan.points
    rays = sphere_scan.points - sphere_scan.origin
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    along = np.einsum("ij,ij->i", shift, rays)
    np.testing.assert_allclose(np.cross(shift, rays), 0.0, atol=1e-5)  # no sideways motion
    # 11.5k draws: the sample std is within ~2% of sigma = 0.002 * 3.4 = 0.0068
    assert along.std() == pytest.approx(0.002 * diagonal, rel=0.03)
    assert abs(along.mean()) < 4 * 0.002 * diagonal / math.sqrt(len(along))
    np.testing.assert_array_equal(noisy.normals, sphere_scan.normals)


def test_same_seed_same_scan_other_seed_other_noise(sphere):
    camera = ScanCamera(resolution=48)
    first = depth_scan(sphere, camera, noise=0.01, seed=1)
    np.testing.assert_array_equal(first.points, depth_scan(sphere, camera, noise=0.01, seed=1).points)
    np.testing.assert_array_equal(first.depth, depth_scan(sphere, camera, noise=0.01, seed=1).depth)
    assert not np.array_equal(first.points, depth_scan(sphere, camera, noise=0.01, seed=2).points)


def test_camera_distance_in_radii():
    # the box's bounding sphere: radius |(0.5, 0.3, 0.2)| = 0.6164; 4 radii from the centre
    scan = depth_scan(box_mesh(), ScanCamera(azimuth=0, elevation=0, distance=4.0, resolution=32))
    np.testing.assert_allclose(scan.origin, [0.0, 0.0, 4.0 * math.sqrt(0.38)], atol=1e-12)


# ---------------------------------------------------------------- free space


def test_free_space_samples_are_outside_the_box_and_on_observed_rays():
    box = box_mesh()
    scan = depth_scan(box, ScanCamera(azimuth=35, elevation=25, resolution=96))
    margin = 0.01
    samples = free_space_samples(scan, 5000, seed=0, margin=margin)
    assert samples.shape == (5000, 3) and samples.dtype == np.float32
    # the mesh is exactly the analytic box: SDF > 0 means outside
    assert Box(half_size=(0.5, 0.3, 0.2)).sdf(samples).min() > 0
    # each sample projects onto the centre of an observed pixel, at least `margin` before it
    # (float32 rounding blurs the projection of samples right at the camera: check the rest)
    pixels, _ = scan.camera.project(samples)
    column, row = np.floor(pixels).astype(int).T
    away = np.linalg.norm(samples - scan.origin, axis=1) > 0.2
    assert away.mean() > 0.85
    np.testing.assert_allclose(pixels[away] - np.floor(pixels[away]), 0.5, atol=1e-3)
    index = np.cumsum(np.isfinite(scan.depth).ravel()) - 1
    assert np.isfinite(scan.depth[row, column]).all()
    observed = scan.points[index[row * scan.depth.shape[1] + column]]
    before = np.linalg.norm(observed - scan.origin, axis=1) - np.linalg.norm(samples - scan.origin, axis=1)
    assert before.min() >= margin - 1e-5
    # uniform along the whole segment: some samples lie near the camera
    assert before.max() > 0.9 * np.linalg.norm(observed - scan.origin, axis=1).min()


def test_free_space_samples_near_the_surface_of_the_sphere(sphere_scan):
    samples = free_space_samples(sphere_scan, 4000, seed=3, margin=0.02, max_distance=0.1)
    # within 0.02..0.1 before an inscribed polyhedron: outside the polyhedron, at most 3e-4
    # inside the true sphere (grazing rays); never farther than 0.1 from it
    distance = Sphere(radius=1.0, center=tuple(CENTER)).sdf(samples)
    assert distance.min() > -3e-4
    assert distance.max() < 0.1
    assert np.mean(distance > 0.01) > 0.9
    again = free_space_samples(sphere_scan, 4000, seed=3, margin=0.02, max_distance=0.1)
    np.testing.assert_array_equal(samples, again)


# ---------------------------------------------------------------- writing the partial cloud


def test_scan_writes_a_ply_with_normals(tmp_path, sphere_scan):
    path = tmp_path / "partial.ply"
    write_points(sphere_scan.point_cloud(), path)
    cloud = read_points(path)
    np.testing.assert_array_equal(cloud.points, sphere_scan.points)
    np.testing.assert_allclose(cloud.normals, sphere_scan.normals, atol=1e-7)


# ---------------------------------------------------------------- camera specs and bad input


def test_parse_camera_reads_every_key_and_keeps_defaults():
    camera = parse_camera(" azimuth=30, elevation=-10.5,resolution=256,fov=60,distance=2.5,up=z ")
    assert camera == ScanCamera(30.0, -10.5, 2.5, 60.0, 256, "z")
    assert parse_camera("") == ScanCamera()
    assert parse_camera("elevation=45") == ScanCamera(elevation=45.0)


@pytest.mark.parametrize(
    "spec, message",
    [
        ("azimuth=30,zoom=2", r"unknown key 'zoom' \(known: azimuth, distance, elevation, fov, resolution, up\)"),
        ("azimuth30", "'azimuth30' is not key=value"),
        ("azimuth=abc", "camera azimuth: expected a number, got 'abc'"),
        ("azimuth=1,azimuth=2", "key 'azimuth' given twice"),
        ("resolution=0", r"camera resolution: expected an integer in 1\.\.4096, got 0"),
        ("resolution=12.5", "camera resolution: expected an integer, got '12.5'"),
        ("fov=180", r"camera fov: expected degrees in \(0, 180\), got 180.0"),
        ("distance=0.9", "camera distance: expected a number of bounding-sphere radii > 1"),
        ("elevation=nan", "camera elevation: expected a finite angle"),
        ("up=w", "camera up: expected one of x, y, z, -x, -y, -z, got 'w'"),
    ],
)
def test_bad_camera_specs_raise_input_error(spec, message):
    with pytest.raises(InputError, match=message):
        parse_camera(spec)


def test_bad_meshes_and_arguments_raise_input_error(tmp_path, sphere_scan):
    with pytest.raises(InputError, match="scan: the mesh has no faces"):
        depth_scan(trimesh.Trimesh())
    with pytest.raises(InputError, match="scan: expected a triangle mesh, got ndarray"):
        depth_scan(np.zeros((3, 3)))
    box = box_mesh()
    nan_box = trimesh.Trimesh(np.where(np.arange(8)[:, None] == 3, np.nan, box.vertices), box.faces, process=False)
    with pytest.raises(InputError, match="NaN or infinite vertex coordinates"):
        depth_scan(nan_box)
    with pytest.raises(InputError, match="scan noise: expected a non-negative number, got -0.1"):
        depth_scan(box, noise=-0.1)
    with pytest.raises(InputError, match="free-space sample count: expected a positive integer, got 0"):
        free_space_samples(sphere_scan, 0, seed=0, margin=0.01)
    with pytest.raises(InputError, match="free-space margin: expected a positive distance, got 0"):
        free_space_samples(sphere_scan, 10, seed=0, margin=0)
    with pytest.raises(InputError, match="free-space margin 100 is longer than every ray"):
        free_space_samples(sphere_scan, 10, seed=0, margin=100.0)
    with pytest.raises(InputError, match="max_distance: expected at least the margin 0.1, got 0.05"):
        free_space_samples(sphere_scan, 10, seed=0, margin=0.1, max_distance=0.05)
    assert list(tmp_path.iterdir()) == []


def test_a_mesh_the_camera_cannot_see_raises_input_error():
    # looking down the z axis of a torus (major radius 1, minor 0.2; bounding radius 1.2) from
    # 3 radii = 3.6 with a 5 degree field of view: the view spans 3.6 tan(2.5 deg) = 0.16 around
    # the axis, inside the hole of radius 0.8
    torus = trimesh.creation.torus(major_radius=1.0, minor_radius=0.2)
    camera = ScanCamera(azimuth=0, elevation=90, distance=3.0, fov=5, up="z", resolution=32)
    with pytest.raises(InputError, match=r"no surface is visible from the camera \(azimuth 0°, elevation 90°"):
        depth_scan(torus, camera)


# ---------------------------------------------------------------- real data


def test_armadillo_scan_lies_on_the_mesh(cgal_data):
    mesh = read_mesh(cgal_data / "meshes" / "armadillo.off")
    diagonal = float(np.linalg.norm(np.ptp(mesh.vertices, axis=0)))
    started = time.perf_counter()
    scan = depth_scan(mesh, ScanCamera(azimuth=30, elevation=20, resolution=256))
    elapsed = time.perf_counter() - started
    truth = MeshDistance(mesh)
    assert truth.unsigned(scan.points).max() < 1e-3 * diagonal
    # the armadillo is closed: camera-facing normals are the outward ones of the oriented mesh
    closest = truth.closest(scan.points)
    corners = truth.surface.vertices[truth.oriented_faces[closest.index]]
    outward = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    agree = np.einsum("ij,ij->i", outward, scan.normals) > 0
    assert agree.mean() > 0.99
    assert len(scan.points) > 10_000
    print(f"armadillo 256^2 scan: {len(scan.points)} points in {elapsed:.3f} s, "
          f"{agree.mean():.4%} normals outward")
