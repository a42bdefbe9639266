"""Dataset preprocessing: DeepSDF layout and numbers on analytic shapes, the manifest, resuming,
broken meshes, determinism across shape order and worker counts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import trimesh

from isofield.data.datasets import (
    SDF_SAMPLES,
    SURFACE_SAMPLES,
    DeepSDFDataDir,
    ShapeRef,
    discover,
    write_split,
)
from isofield.data.formats import read_onet_points
from isofield.data.preprocess import MANIFEST_NAME, Manifest, preprocess
from isofield.errors import InputError
from isofield.geometry.io import read_mesh, write_mesh
from isofield.geometry.samples import DEEPSDF_PADDING
from isofield.geometry.defects import doubled_reversed
from isofield.geometry.groundtruth import MeshDistance
from isofield.geometry.furniture import family_shape
from isofield.geometry.shapes import Box, Shape

N, SURFACE = 4_000, 500
FAST = {"samples": N, "surface_points": SURFACE, "progress": False}
BOX_HALF = (1.0, 0.5, 0.25)
SPHERE_SAG = 0.005  # icosphere(3) facets lie within 0.0046 of the unit sphere


def _chair() -> tuple[Shape, trimesh.Trimesh]:
    """Procedural chair 0 (seed 0) and its mesh at resolution 64."""
    from isofield.extract.api import shape_mesh

    shape, _ = family_shape("chairs", 0, 0)
    return shape, shape_mesh(shape, 64)


def _dataset(root: Path) -> Path:
    """A flat folder: a box (exact SDF known), a unit icosphere, a capsule; three formats."""
    root.mkdir(parents=True)
    box = trimesh.creation.box(extents=2 * np.array(BOX_HALF))
    box.apply_translation([3.0, -1.0, 2.0])
    write_mesh(box, root / "box.off")
    write_mesh(trimesh.creation.icosphere(3), root / "sphere.obj")
    write_mesh(trimesh.creation.capsule(height=1.0, radius=0.3), root / "capsule.ply")
    return root


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> tuple[Path, Path, Manifest]:
    """(dataset, data directory, manifest) of one preprocessing run; tests only read it."""
    base = tmp_path_factory.mktemp("preprocessed")
    dataset = _dataset(base / "meshes")
    return dataset, base / "data", preprocess(dataset, base / "data", **FAST)


@pytest.fixture
def copy(done, tmp_path) -> tuple[Path, Path]:
    """A private copy of ``done``'s dataset and data directory, to modify."""
    dataset, data, _ = done
    shutil.copytree(dataset, tmp_path / "meshes")
    shutil.copytree(data, tmp_path / "data")
    return tmp_path / "meshes", tmp_path / "data"


def _ref(shape_id: str) -> ShapeRef:
    return ShapeRef("meshes", "", shape_id)


def _files(data: Path) -> list[Path]:
    return sorted(path for path in data.rglob("*.npz"))


def _mtimes(data: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in _files(data)}


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


def _same_arrays(a: Path, b: Path) -> bool:
    left, right = _arrays(a), _arrays(b)
    return left.keys() == right.keys() and all(
        left[k].dtype == right[k].dtype and left[k].tobytes() == right[k].tobytes() for k in left
    )


def test_writes_a_deepsdf_data_directory_with_the_requested_counts(done):
    _, data, manifest = done
    assert [p.relative_to(data).as_posix() for p in _files(data)] == [
        f"{folder}/meshes/{name}.npz"
        for folder in (SDF_SAMPLES, SURFACE_SAMPLES)
        for name in ("box", "capsule", "sphere")
    ]
    with np.load(data / SDF_SAMPLES / "meshes" / "box.npz") as raw:
        assert raw["pos"].dtype == np.float32 and raw["pos"].shape[1] == 4
        assert len(raw["pos"]) + len(raw["neg"]) == N
        assert np.all(raw["pos"][:, 3] > 0) and np.all(raw["neg"][:, 3] <= 0)
    reader = DeepSDFDataDir(data)
    assert reader.shapes() == [_ref("box"), _ref("capsule"), _ref("sphere")]
    for ref in reader.shapes():
        record = manifest.records[ref]
        assert record.status == "ok" and record.error is None
        assert record.sdf_samples == N and record.surface_points == SURFACE
        assert record.watertight is True and record.ambiguous_sign_fraction == 0.0
        assert record.sign_method == "winding"
        samples, _ = reader.load_sdf(ref)
        assert record.positive_samples == np.count_nonzero(samples.sdf > 0)
        cloud, _ = reader.load_surface(ref)
        assert cloud.points.shape == (SURFACE, 3) and cloud.normals.shape == (SURFACE, 3)
    assert (manifest.run.ok, manifest.run.skipped, manifest.run.failed) == (3, 0, 0)


def test_box_samples_are_the_exact_box_sdf_in_the_canonical_frame(done):
    _, data, _ = done
    samples, frame = DeepSDFDataDir(data).load_sdf(_ref("box"))
    box = Box(half_size=BOX_HALF, center=(3.0, -1.0, 2.0))
    analytic = box.sdf(frame.to_user(samples.points.astype(np.float64))) / frame.scale
    np.testing.assert_allclose(samples.sdf, analytic, atol=2e-6)
    # DeepSDF frame: bounding-box centre at the origin, corners at radius 1 / 1.03
    np.testing.assert_allclose(frame.center, [3.0, -1.0, 2.0], atol=1e-12)
    assert frame.scale == pytest.approx(np.linalg.norm(BOX_HALF) * (1 + DEEPSDF_PADDING))
    assert 0.4 < np.mean(samples.sdf > 0) < 0.7  # near-surface samples straddle the surface


def test_sphere_samples_match_the_unit_sphere_up_to_the_facets(done):
    _, data, _ = done
    samples, frame = DeepSDFDataDir(data).load_sdf(_ref("sphere"))
    radius = np.linalg.norm(frame.to_user(samples.points.astype(np.float64)), axis=1)
    analytic = (radius - 1.0) / frame.scale
    assert np.abs(samples.sdf - analytic).max() <= SPHERE_SAG / frame.scale
    clear = np.abs(analytic) > SPHERE_SAG / frame.scale
    np.testing.assert_array_equal(samples.sdf[clear] < 0, analytic[clear] < 0)


def test_normalisation_maps_each_mesh_into_the_unit_sphere(done):
    dataset, data, _ = done
    reader = DeepSDFDataDir(data)
    for ref in discover(dataset):
        mesh = read_mesh(ref.mesh_path)
        cloud, frame = reader.load_surface(ref)
        canonical = frame.to_canonical(np.asarray(mesh.vertices))
        assert np.linalg.norm(canonical, axis=1).max() == pytest.approx(1 / 1.03, abs=1e-12)
        np.testing.assert_allclose((canonical.min(0) + canonical.max(0)) / 2, 0, atol=1e-12)
        assert np.linalg.norm(cloud.points, axis=1).max() <= 1 / 1.03 + 1e-6
        assert frame.to_dict() == reader.load_sdf(ref)[1].to_dict()  # one frame per shape
        np.testing.assert_allclose(np.linalg.norm(cloud.normals, axis=1), 1, atol=1e-6)
    sphere, _ = reader.load_surface(_ref("sphere"))
    assert np.all(np.einsum("ij,ij->i", sphere.points, sphere.normals) > 0)  # outward


def test_manifest_on_disk_is_valid_json_and_reads_back(done):
    _, data, manifest = done
    raw = json.loads((data / MANIFEST_NAME).read_text())
    assert raw["totals"] == {"pending": 0, "ok": 3, "failed": 0}
    assert raw["settings"]["samples"] == N and raw["settings"]["protocol"] == "deepsdf"
    assert [entry["id"] for entry in raw["shapes"]] == ["box", "capsule", "sphere"]
    assert raw["shapes"][0]["source"].endswith("box.off")
    back = Manifest.load(data / MANIFEST_NAME)
    assert back.records == manifest.records and back.run == manifest.run
    assert back.shapes("ok") == [_ref("box"), _ref("capsule"), _ref("sphere")]
    assert "3 shapes: 3 preprocessed, 0 skipped (done before), 0 failed" in back.summary()


def test_a_second_run_skips_every_shape_and_rewrites_no_file(copy):
    dataset, data = copy
    before = _mtimes(data)
    manifest = preprocess(dataset, data, **FAST)
    assert (manifest.run.ok, manifest.run.skipped, manifest.run.failed) == (0, 3, 0)
    assert _mtimes(data) == before


def test_a_killed_run_is_completed_shape_by_shape(copy, tmp_path):
    dataset, data = copy
    reference = tmp_path / "reference"
    shutil.copytree(data, reference)
    (data / SURFACE_SAMPLES / "meshes" / "box.npz").unlink()  # lost before it was written
    raw = json.loads((data / MANIFEST_NAME).read_text())  # killed before capsule's entry was saved
    raw["shapes"][1]["status"] = "pending"
    (data / MANIFEST_NAME).write_text(json.dumps(raw))
    sphere = data / SDF_SAMPLES / "meshes" / "sphere.npz"
    sphere_mtime = sphere.stat().st_mtime_ns
    manifest = preprocess(dataset, data, **FAST)
    assert (manifest.run.ok, manifest.run.skipped) == (2, 1)
    assert sphere.stat().st_mtime_ns == sphere_mtime
    assert all(_same_arrays(path, reference / path.relative_to(data)) for path in _files(data))
    assert manifest.counts() == {"pending": 0, "ok": 3, "failed": 0}


def test_changed_settings_redo_the_shapes(copy):
    dataset, data = copy
    before = _arrays(data / SDF_SAMPLES / "meshes" / "sphere.npz")
    manifest = preprocess(dataset, data, **{**FAST, "seed": 1})
    assert (manifest.run.ok, manifest.run.skipped) == (3, 0)
    after = _arrays(data / SDF_SAMPLES / "meshes" / "sphere.npz")
    assert not np.array_equal(before["pos"][:10], after["pos"][:10])
    assert manifest.settings["seed"] == 1


def test_broken_meshes_are_reported_skipped_and_left_untouched(tmp_path, capsys):
    root = tmp_path / "mixed"
    root.mkdir()
    write_mesh(trimesh.creation.icosphere(2), root / "good.obj")
    broken = {
        "corrupt.obj": "v 0 0 0\nv 1 0 x\nv 0 1 0\nf 1 2 3\n",
        "empty.off": "OFF\n0 0 0\n",
        "nan.off": "OFF\n3 1 0\n0 0 0\nnan 0 0\n0 1 0\n3 0 1 2\n",
        "flat.obj": "v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n",
        "sheet.obj": "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n",
    }
    for name, text in broken.items():
        (root / name).write_text(text)
    stats = {name: (root / name).stat().st_mtime_ns for name in broken}
    manifest = preprocess(root, tmp_path / "data", **{**FAST, "progress": True})
    assert "failed: mixed/empty: " in capsys.readouterr().err  # reported as it happens
    status = {ref.shape_id: rec for ref, rec in manifest.records.items()}
    assert status["good"].status == "ok"
    reasons = {
        "corrupt": "corrupt.obj: cannot read mesh (non-numeric value 'x'|could not convert",
        "empty": "empty.off: mesh is empty",
        "nan": "nan.off: 1 vertices have NaN",
        "flat": "flat.obj: mesh has zero surface area",
        "sheet": "mesh has no inside",
    }
    for shape_id, reason in reasons.items():
        assert status[shape_id].status == "failed"
        assert any(part in status[shape_id].error for part in reason.split("|"))
        assert "\n" not in status[shape_id].error
    assert (manifest.run.ok, manifest.run.failed) == (1, 5)
    assert [p.name for p in _files(tmp_path / "data")] == ["good.npz", "good.npz"]
    for name, text in broken.items():  # inputs are never changed or deleted
        assert (root / name).read_text() == text
        assert (root / name).stat().st_mtime_ns == stats[name]
    assert "failed: mixed/flat: " in manifest.summary()


def test_holes_show_as_ambiguous_signs_and_not_watertight(tmp_path):
    box = trimesh.creation.box()
    open_box = trimesh.Trimesh(box.vertices, box.faces[box.face_normals[:, 0] < 0.5], process=False)
    write_mesh(open_box, tmp_path / "open" / "open_box.obj")
    manifest = preprocess(tmp_path / "open", tmp_path / "data", **FAST)
    record = manifest.records[ShapeRef("open", "", "open_box")]
    assert record.status == "ok" and record.watertight is False
    # a sixth of the box is open: measured 16.4% of the probes; the flood fill leaks
    assert 0.1 < record.ambiguous_sign_fraction < 0.25 and record.sign_method == "winding"


def test_many_ambiguous_signs_print_one_warning_line_naming_the_shape(tmp_path, capsys):
    box = trimesh.creation.box()
    open_box = trimesh.Trimesh(box.vertices, box.faces[box.face_normals[:, 0] < 0.5], process=False)
    write_mesh(open_box, tmp_path / "open" / "open_box.obj")
    write_mesh(box, tmp_path / "open" / "closed_box.obj")
    preprocess(tmp_path / "open", tmp_path / "data", **{**FAST, "progress": True})
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and warnings[0].startswith("isofield: warning: open/open_box: ")
    assert "ambiguous at 16.4% of probe points (winding;" in warnings[0]


@pytest.mark.parametrize("protocol", ["deepsdf", "onet"])
def test_a_closed_chair_stored_in_both_windings_gets_its_exact_signs(tmp_path, protocol):
    """ShapeNet stores many chairs with every triangle twice, once in each winding."""
    shape, chair = _chair()
    write_mesh(doubled_reversed(chair), tmp_path / "chairs" / "doubled.obj")
    manifest = preprocess(tmp_path / "chairs", tmp_path / "data", protocol=protocol, **FAST)
    ref = ShapeRef("chairs", "", "doubled")
    record = manifest.records[ref]
    assert record.status == "ok", record.error
    assert record.sign_method == "winding" and record.ambiguous_sign_fraction < 0.01
    on_disk = json.loads((tmp_path / "data" / MANIFEST_NAME).read_text())["shapes"][0]
    assert on_disk["sign_method"] == "winding"
    if protocol == "deepsdf":
        samples, frame = DeepSDFDataDir(tmp_path / "data").load_sdf(ref)
        inside = samples.sdf <= 0
    else:
        samples, frame = read_onet_points(tmp_path / "data" / "chairs" / "doubled" / "points.npz")
        inside = samples.occupancies
    user = frame.to_user(samples.points.astype(np.float64))
    exact = shape.sdf(user)
    away = np.abs(exact) > 0.01 * np.linalg.norm(np.ptp(chair.vertices, axis=0))
    assert np.mean(inside[away] == (exact[away] < 0)) >= 0.99  # measured 1.0
    # the same signs as the clean chair's mesh everywhere (inside: 33.6% of deepsdf's samples,
    # 24.3% of onet's); before repeated faces were set aside this chair was refused ("no inside")
    np.testing.assert_array_equal(inside, MeshDistance(chair).occupancy(user))


def test_seeds_depend_on_the_shape_not_on_the_other_shapes(done, tmp_path):
    dataset, data, _ = done
    sphere = [ref for ref in discover(dataset) if ref.shape_id == "sphere"]
    preprocess(sphere, tmp_path / "alone", **FAST)
    for folder in (SDF_SAMPLES, SURFACE_SAMPLES):
        relative = Path(folder, "meshes", "sphere.npz")
        assert _same_arrays(tmp_path / "alone" / relative, data / relative)


def test_a_split_selects_shapes_and_reports_those_without_mesh(tmp_path):
    root = tmp_path / "ShapeNetCore.v2" / "03001627"
    for shape_id in ("a1", "b2"):
        path = root / shape_id / "models" / "model_normalized.obj"
        path.parent.mkdir(parents=True)
        write_mesh(trimesh.creation.box(), path)
    split = [ShapeRef("ShapeNetV2", "03001627", "b2"), ShapeRef("ShapeNetV2", "03001627", "zz")]
    write_split(tmp_path / "split.json", split)
    manifest = preprocess(root.parent, tmp_path / "data", split=tmp_path / "split.json", **FAST)
    assert [p.relative_to(tmp_path / "data").as_posix() for p in _files(tmp_path / "data")] == [
        "SdfSamples/ShapeNetV2/03001627/b2.npz", "SurfaceSamples/ShapeNetV2/03001627/b2.npz"
    ]
    assert manifest.records[split[1]].status == "failed"
    assert "no mesh for this shape" in manifest.records[split[1]].error
    assert DeepSDFDataDir(tmp_path / "data").shapes(tmp_path / "split.json", skip_missing=True) == [
        split[0]
    ]


def test_refuses_a_folder_it_did_not_write(done, tmp_path):
    dataset, _, _ = done
    (tmp_path / "other.txt").write_text("user data")
    with pytest.raises(InputError, match=f"{tmp_path}: folder is not empty and has no manifest"):
        preprocess(dataset, tmp_path, **FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.txt"]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"samples": 0}, "number of SDF samples must be a positive integer"),
        ({"surface_points": 2.5}, "number of surface points must be a positive integer"),
        ({"workers": 0}, "number of workers must be a positive integer"),
        ({"seed": "x"}, "seed must be an integer"),
    ],
)
def test_bad_arguments_raise_before_writing(done, tmp_path, options, message):
    dataset, _, _ = done
    with pytest.raises(InputError, match=message):
        preprocess(dataset, tmp_path / "data", **{**FAST, **options})
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_two_workers_write_the_same_arrays_as_one(done, tmp_path):
    # slow only because each spawned worker imports isofield (and with it torch) afresh
    dataset, data, _ = done
    parallel = tmp_path / "data"
    manifest = preprocess(dataset, parallel, workers=2, **FAST)
    assert (manifest.run.ok, manifest.run.workers) == (3, 2)
    written = [path.relative_to(parallel) for path in _files(parallel)]
    assert written == [path.relative_to(data) for path in _files(data)]
    assert all(_same_arrays(parallel / path, data / path) for path in written)


@pytest.mark.slow
def test_deepsdf_size_500k_samples(done, tmp_path):
    dataset, _, _ = done
    box = [ref for ref in discover(dataset) if ref.shape_id == "box"]
    manifest = preprocess(box, tmp_path / "data", samples=500_000, progress=False)
    record = manifest.records[box[0]]
    assert record.status == "ok" and record.sdf_samples == 500_000
    assert record.surface_points == 100_000
    samples, frame = DeepSDFDataDir(tmp_path / "data").load_sdf(box[0])
    analytic = Box(half_size=BOX_HALF, center=(3.0, -1.0, 2.0)).sdf(
        frame.to_user(samples.points.astype(np.float64))
    ) / frame.scale
    np.testing.assert_allclose(samples.sdf, analytic, atol=2e-6)


def test_a_foreign_manifest_is_an_error(done, tmp_path):
    dataset, _, _ = done
    (tmp_path / MANIFEST_NAME).write_text('{"format": "something else"}')
    with pytest.raises(InputError, match=f"{tmp_path / MANIFEST_NAME}: not an isofield preprocessing"):
        preprocess(dataset, tmp_path, **FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST_NAME]
