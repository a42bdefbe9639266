"""Sample npz files: DeepSDF pos/neg, Occupancy Networks points/pointcloud, ours; exact round
trips, files written by the original tools, and one-line errors for bad files."""

from __future__ import annotations

import numpy as np
import pytest

from isofield.data.formats import (
    read_onet_points,
    read_samples,
    read_sdf_samples,
    read_surface_samples,
    write_onet_pointcloud,
    write_onet_points,
    write_samples,
)
from isofield.errors import InputError
from isofield.geometry.normalization import Normalization
from isofield.geometry.samples import OccupancySamples, SdfSamples, SurfaceSamples

FRAME = Normalization(np.array([0.25, -1.5, 3.0]), 2.5)


def _sdf_samples(n: int = 1_000) -> SdfSamples:
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    sdf = (np.linalg.norm(points, axis=1) - 0.5).astype(np.float32)
    sdf[:3] = 0.0  # on the surface: stored with the negative rows
    return SdfSamples(points, sdf)


def _occupancy_samples(n: int = 1_001) -> OccupancySamples:
    points = np.random.default_rng(1).uniform(-0.55, 0.55, (n, 3)).astype(np.float32)
    return OccupancySamples(points, np.linalg.norm(points, axis=1) < 0.4)


def _surface_samples(n: int = 500) -> SurfaceSamples:
    normals = np.random.default_rng(2).normal(size=(n, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return SurfaceSamples((0.5 * normals).astype(np.float32), normals.astype(np.float32))


def _same_frame(a: Normalization, b: Normalization) -> bool:
    return a.to_dict() == b.to_dict()


def test_sdf_round_trip_keeps_every_row_pos_then_neg(tmp_path):
    samples = _sdf_samples()
    write_samples("sdf", samples, FRAME, tmp_path / "shape.npz")
    with np.load(tmp_path / "shape.npz") as raw:
        assert raw["pos"].dtype == np.float32 and raw["pos"].shape[1] == 4
        assert np.all(raw["pos"][:, 3] > 0) and np.all(raw["neg"][:, 3] <= 0)
        assert len(raw["pos"]) + len(raw["neg"]) == 1_000
        assert raw["scale"].shape == ()
    back, frame = read_samples("sdf", tmp_path / "shape.npz")
    order = np.concatenate([np.flatnonzero(samples.sdf > 0), np.flatnonzero(samples.sdf <= 0)])
    np.testing.assert_array_equal(back.points, samples.points[order])
    np.testing.assert_array_equal(back.sdf, samples.sdf[order])
    assert _same_frame(frame, FRAME)


def test_a_deepsdf_file_reads_with_identity_normalization_and_drops_nan_rows(tmp_path):
    # what DeepSDF's PreprocessMesh writes: only pos and neg, float32 (N, 4)
    pos = np.array([[0.1, 0.2, 0.3, 0.05], [0.5, 0.5, 0.5, 0.2]], dtype=np.float32)
    neg = np.array([[0.0, 0.0, 0.0, -0.4], [np.nan, 0.0, 0.0, -0.1]], dtype=np.float32)
    np.savez(tmp_path / "deepsdf.npz", pos=pos, neg=neg)
    samples, frame = read_sdf_samples(tmp_path / "deepsdf.npz")
    assert _same_frame(frame, Normalization.identity())
    np.testing.assert_array_equal(samples.points, np.concatenate([pos, neg[:1]])[:, :3])
    np.testing.assert_array_equal(samples.sdf, np.float32([0.05, 0.2, -0.4]))


def test_onet_points_round_trip_packed_labels_exactly(tmp_path):
    samples = _occupancy_samples(1_001)  # not a multiple of 8: the last byte is padded
    write_samples("occupancy", samples, FRAME, tmp_path / "points.npz")
    with np.load(tmp_path / "points.npz") as raw:
        assert raw["occupancies"].dtype == np.uint8 and raw["occupancies"].shape == (126,)
        np.testing.assert_array_equal(raw["loc"], FRAME.center)
        assert float(raw["scale"]) == FRAME.scale
    back, frame = read_samples("occupancy", tmp_path / "points.npz")
    np.testing.assert_array_equal(back.occupancies, samples.occupancies)
    np.testing.assert_array_equal(back.points, samples.points)
    assert _same_frame(frame, FRAME)


def test_onet_half_precision_points_read_back_as_float32(tmp_path):
    samples = _occupancy_samples(64)
    write_onet_points(samples, FRAME, tmp_path / "points.npz", half_precision=True)
    back, _ = read_onet_points(tmp_path / "points.npz")
    assert back.points.dtype == np.float32
    np.testing.assert_array_equal(back.points, samples.points.astype(np.float16))
    np.testing.assert_array_equal(back.occupancies, samples.occupancies)


def test_surface_round_trip_in_our_layout_and_onet_pointcloud(tmp_path):
    samples = _surface_samples()
    write_samples("surface", samples, FRAME, tmp_path / "surface.npz")
    write_onet_pointcloud(samples, FRAME, tmp_path / "pointcloud.npz")
    with np.load(tmp_path / "pointcloud.npz") as raw:
        assert sorted(raw.files) == ["loc", "normals", "points", "scale"]
    for name in ("surface.npz", "pointcloud.npz"):
        back, frame = read_samples("surface", tmp_path / name)
        np.testing.assert_array_equal(back.points, samples.points)
        np.testing.assert_array_equal(back.normals, samples.normals)
        assert _same_frame(frame, FRAME)


def test_writing_keeps_the_exact_path_and_replaces_atomically(tmp_path):
    target = tmp_path / "samples.bin"
    write_samples("surface", _surface_samples(), FRAME, target)
    write_samples("surface", _surface_samples(10), FRAME, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.bin"]
    assert len(read_surface_samples(target)[0].points) == 10


def test_unknown_kind_or_wrong_samples_write_nothing(tmp_path):
    with pytest.raises(InputError, match="unknown sample kind 'voxels'"):
        write_samples("voxels", _surface_samples(), FRAME, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="SdfSamples"):
        write_samples("sdf", _surface_samples(), FRAME, tmp_path / "x.npz")
    assert list(tmp_path.iterdir()) == []


BAD_FILES = [
    ("sdf", {"pos": np.zeros((3, 4), np.float32)}, "missing array 'neg'"),
    ("sdf", {"pos": np.zeros((3, 3)), "neg": np.zeros((3, 4))}, r"'pos' must have shape \(N, 4\)"),
    ("sdf", {"pos": np.zeros((1, 4)), "neg": np.zeros((1, 4)), "center": np.zeros(3)}, "scale"),
    ("sdf", {"pos": np.full((2, 4), np.nan), "neg": np.zeros((0, 4))}, "no finite SDF samples"),
    ("occupancy", {"points": np.zeros((16, 3)), "occupancies": np.zeros(3, np.uint8)}, "packbits"),
    ("occupancy", {"points": np.zeros((16, 2)), "occupancies": np.zeros(2, np.uint8)}, "N, 3"),
    ("surface", {"points": np.zeros((5, 3)), "normals": np.zeros((4, 3))}, r"\(5, 3\)"),
    ("surface", {"points": np.full((1, 3), np.inf), "normals": np.ones((1, 3))}, "NaN or Inf"),
]


@pytest.mark.parametrize(("kind", "arrays", "message"), BAD_FILES)
def test_bad_npz_contents_raise_input_error_naming_the_file(tmp_path, kind, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputError, match=message) as error:
        read_samples(kind, path)
    assert str(path) in str(error.value)


def test_unreadable_files_raise_input_error(tmp_path):
    (tmp_path / "text.npz").write_text("not a zip file\n")
    np.save(tmp_path / "array.npy", np.zeros((3, 4)))
    with pytest.raises(InputError, match="not a readable .npz"):
        read_samples("sdf", tmp_path / "text.npz")
    with pytest.raises(InputError, match="not an .npz archive"):
        read_samples("sdf", tmp_path / "array.npy")
    with pytest.raises(InputError, match="file not found"):
        read_samples("sdf", tmp_path / "missing.npz")
