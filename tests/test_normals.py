"""Normals of raw point clouds (isofield.geometry.normals), `isofield normals`, and fits of
points that carry no normals with every fit method.

Known answers: the outward normal of a sphere at p is p / |p|; of a torus (major radius R,
minor r, axis z) at p it is (p - R q) / r with q the unit direction of p's projection on the
xy-plane. The CGAL kitten's own normals are the reference for a real scan.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from isofield.cli import main
from isofield.errors import InputError
from isofield.geometry.io import PointCloud, read_points, write_points
from isofield.geometry.normals import estimate_normals
from isofield.methods.igr import IGR, IGROptions


def sphere_points(n: int, seed: int = 0) -> np.ndarray:
    """(n, 3) uniform points on the unit sphere."""
    points = np.random.default_rng(seed).normal(size=(n, 3))
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def torus_points(n: int, major: float = 1.0, minor: float = 0.3,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) points on a torus around z and their (n, 3) outward unit normals."""
    rng = np.random.default_rng(seed)
    u, v = rng.uniform(0, 2 * np.pi, (2, n))
    ring = np.stack([np.cos(u), np.sin(u), np.zeros(n)], axis=1)
    normals = np.cos(v)[:, None] * ring + np.sin(v)[:, None] * np.array([0.0, 0.0, 1.0])
    return major * ring + minor * normals, normals


def angles_degrees(estimated: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(N,) oriented angles between normals (180 for a flipped one)."""
    return np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", estimated, true), -1.0, 1.0)))


# --------------------------------------------------------------------------------------------
# estimate_normals
# --------------------------------------------------------------------------------------------


def test_sphere_normals_are_radial_and_all_outward():
    points = sphere_points(3000)
    normals = estimate_normals(points)
    assert normals.shape == (3000, 3) and normals.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)
    angles = angles_degrees(normals, points)
    assert angles.max() < 5.0 and angles.mean() < 1.5


def test_torus_normals_are_outward_across_the_hole():
    points, true = torus_points(6000)
    angles = angles_degrees(estimate_normals(points), true)
    assert angles.max() < 10.0 and angles.mean() < 3.0  # none flipped; curvature bias ~2 degrees


def test_separate_pieces_are_each_oriented_outward():
    """Two spheres far apart share no neighbours: each piece gets its own root."""
    small, large = 0.5 * sphere_points(1500, seed=3), sphere_points(3000, seed=4)
    points = np.vstack([small + np.array([4.0, 0.0, 0.0]), large])
    normals = estimate_normals(points)
    true = np.vstack([small / 0.5, large])
    assert angles_degrees(normals, true).max() < 10.0


def test_the_estimate_does_not_depend_on_the_points_order():
    points = sphere_points(2000, seed=1)
    order = np.random.default_rng(2).permutation(len(points))
    np.testing.assert_allclose(estimate_normals(points)[order], estimate_normals(points[order]),
                               atol=1e-5)


def test_normals_toward_a_viewpoint_face_it():
    points = sphere_points(2000)
    camera = np.array([0.0, 0.0, 5.0])
    normals = estimate_normals(points, toward=camera)
    facing = np.einsum("ij,ij->i", normals, camera - points)
    assert np.all(facing > 0)
    # On the near cap they are the outward normals, on the far cap the inward ones.
    cosine = np.einsum("ij,ij->i", normals, points)
    assert np.all(cosine[points[:, 2] > 0.5] > 0.99) and np.all(cosine[points[:, 2] < -0.5] < -0.99)


@pytest.mark.parametrize("points, message", [
    (np.zeros((3, 3)), "at least 4 points"),
    (np.zeros((10, 2)), "shape (N, 3)"),
    (np.vstack([sphere_points(10), [[np.nan, 0.0, 0.0]]]), "NaN"),
])
def test_bad_points_are_input_errors(points, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        estimate_normals(points)


def test_kitten_agrees_with_its_own_normals(cgal_data):
    cloud = read_points(cgal_data / "points_3" / "kitten.xyz")
    normals = estimate_normals(cloud.points)
    agreement = np.mean(np.einsum("ij,ij->i", normals, cloud.normals) > 0)
    assert agreement >= 0.95


# --------------------------------------------------------------------------------------------
# isofield normals
# --------------------------------------------------------------------------------------------


def test_cli_normals_writes_outward_normals_and_refuses_to_overwrite(capsys, tmp_path):
    source = tmp_path / "sphere.xyz"
    points = 2.0 * sphere_points(1500) + np.array([3.0, -1.0, 0.5])
    write_points(PointCloud(points), source)
    output = tmp_path / "oriented.ply"
    assert main(["normals", str(source), "-o", str(output), "--neighbours", "12"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"{output}: 1500 points, normals from 12 neighbours") and out.endswith(" s")
    cloud = read_points(output)
    radial = (cloud.points - np.array([3.0, -1.0, 0.5])) / 2.0
    angles = angles_degrees(cloud.normals, radial)
    assert angles.max() < 15.0 and angles.mean() < 3.0  # all outward
    before = output.read_bytes()
    assert main(["normals", str(source), "-o", str(output)]) == 2
    assert "--overwrite" in capsys.readouterr().err and output.read_bytes() == before
    assert main(["normals", str(source), "-o", str(output), "--overwrite"]) == 0


def test_cli_normals_of_too_few_points_is_one_line(capsys, tmp_path):
    source = tmp_path / "three.xyz"
    source.write_text("0 0 0\n1 0 0\n0 1 0\n")
    assert main(["normals", str(source), "-o", str(tmp_path / "out.ply")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "three.xyz" in err and "at least 4 points" in err
    assert not (tmp_path / "out.ply").exists()


# --------------------------------------------------------------------------------------------
# fits of points without normals, every method
# --------------------------------------------------------------------------------------------

# Few steps, small networks, batches and pools, a coarse grid: each fit takes a few seconds.
SMALL_MLP = {"preset": "paper", "hidden": 32, "depth": 2, "skip": []}
SMALL_FITS = {
    "igr": {"field": SMALL_MLP, "options": {"batch": 512, "far_pool": 5000}},
    "sal": {"field": SMALL_MLP, "options": {"batch": 512, "pool": 20000}},
    "sald": {"field": SMALL_MLP, "options": {"batch": 512, "pool": 20000}},
    "digs": {"field": {"preset": "siren", "hidden": 32, "depth": 2},
             "options": {"batch": 512, "divergence_samples": 128}},
}


@pytest.fixture()
def torus_xyz(tmp_path):
    """A 3-column .xyz of 2000 torus points (no normals)."""
    path = tmp_path / "torus.xyz"
    write_points(PointCloud(torus_points(2000)[0]), path)
    return path


def small_fit_args(tmp_path, method: str) -> list[str]:
    config = tmp_path / f"{method}.yaml"
    settings = {**SMALL_FITS[method], "extract": {"resolution": 32}, "train": {"log_every": 5}}
    config.write_text(yaml.safe_dump(settings))
    return ["--method", method, "--config", str(config), "--steps", "20", "-q",
            "-o", str(tmp_path / f"run-{method}")]


@pytest.mark.parametrize("method", ["igr", "sal", "sald", "digs"])
def test_every_method_fits_points_without_normals(capsys, tmp_path, torus_xyz, method):
    extra = ["--normals", "estimate"] if method == "igr" else []
    code = main(["fit", str(torus_xyz), *small_fit_args(tmp_path, method), *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "normal consistency n/a (the reference has no normals)" in out
    run = tmp_path / f"run-{method}"
    for name in ("report.html", "metrics.json", "mesh.ply", "render.png", "slices.png", "loss.png"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["normal_consistency"] is None
    assert metrics["skipped"]["normal_consistency"] == "the reference has no normals"
    assert "n/a — the reference has no normals" in (run / "report.html").read_text()
    if method == "igr":
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["options"]["normals"] == "estimate"
        assert "normals estimated" in (run / "report.html").read_text()


@pytest.fixture()
def zero_normals_xyz(tmp_path):
    """A 6-column .xyz of 2000 torus points whose normals are all zero."""
    path = tmp_path / "zeros.xyz"
    np.savetxt(path, np.hstack([torus_points(2000)[0], np.zeros((2000, 3))]))
    return path


def test_all_zero_normals_are_no_normals_with_a_note(capsys, tmp_path, zero_normals_xyz):
    code = main(["fit", str(zero_normals_xyz), *small_fit_args(tmp_path, "sald")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "isofield: note: zeros.xyz: its normals are all zero; read as points without normals" in err
    metrics = json.loads((tmp_path / "run-sald" / "metrics.json").read_text())
    assert metrics["skipped"]["normal_consistency"] == "the reference has no normals (all zero in the file)"
    assert "normal consistency n/a (the reference has no normals (all zero in the file))" in out


def test_igr_estimates_normals_of_all_zero_normals_with_a_note(zero_normals_xyz):
    options = IGROptions(normals="estimate", far_pool=1000)
    data = IGR().prepare(zero_normals_xyz, options, seed=0)
    assert data.notes == ("zeros.xyz: its normals are all zero; read as points without normals",)
    assert "2000 oriented points from zeros.xyz, normals estimated (16 neighbours" in data.description
    points, true = torus_points(2000)
    assert np.allclose(data.normalization.to_user(data.tensors["points"].numpy()), points, atol=1e-4)
    assert angles_degrees(data.tensors["normals"].numpy(), true).max() < 20.0


@pytest.mark.parametrize("method, flags, expected", [
    ("igr", [], "--normals estimate"),
    ("sdf", [], "holds points, not a mesh"),
    ("sald", ["--normals", "estimate"], "does not use normals"),
])
def test_methods_that_cannot_use_the_points_refuse_before_training(capsys, tmp_path, torus_xyz,
                                                                   method, flags, expected):
    run = tmp_path / "run"
    code = main(["fit", str(torus_xyz), "--method", method, "--steps", "5", "-q", "-o", str(run),
                 *flags])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and expected in err
    assert not run.exists()
