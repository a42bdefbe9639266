"""Datasets: discovery of flat and ShapeNet mesh folders, DeepSDF splits, reading DeepSDF data
directories as DeepSDF writes them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import trimesh

from isofield.data.datasets import (
    NORMALIZATION_PARAMETERS,
    SDF_SAMPLES,
    SURFACE_SAMPLES,
    DeepSDFDataDir,
    ShapeRef,
    derived_seed,
    describe_shapes,
    discover,
    find_shapes,
    make_split,
    match_split,
    read_deepsdf_normalization,
    read_split,
    write_split,
)
from isofield.data.formats import write_sdf_samples
from isofield.data.onet import OccupancyDataDir
from isofield.cli import main
from isofield.errors import InputError
from isofield.geometry.io import write_mesh
from isofield.geometry.normalization import Normalization
from isofield.geometry.samples import SdfSamples

CHAIRS, TABLES = "03001627", "04379243"


def _write(path: Path, mesh: trimesh.Trimesh | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_mesh(mesh if mesh is not None else trimesh.creation.box(), path)
    return path


@pytest.fixture
def shapenet(tmp_path) -> Path:
    """ShapeNetCore.v2/<synset>/<id>/models/model_normalized.obj, a v1 shape, a shape folder
    without its mesh, and a file beside the synsets."""
    root = tmp_path / "ShapeNetCore.v2"
    for synset, shape_id in [(CHAIRS, "b2"), (CHAIRS, "a1"), (TABLES, "c3")]:
        _write(root / synset / shape_id / "models" / "model_normalized.obj")
    _write(root / CHAIRS / "v1" / "model.obj")
    (root / CHAIRS / "d4" / "models").mkdir(parents=True)  # mesh missing
    (root / "taxonomy.json").write_text("[]")
    return root


def test_flat_folder_has_one_shape_per_mesh_file_and_no_class(tmp_path):
    root = tmp_path / "meshes"
    _write(root / "sphere.obj", trimesh.creation.icosphere(2))
    _write(root / "box.off")
    _write(root / "capsule.ply", trimesh.creation.capsule())
    _write(root / ".hidden.obj")
    _write(root / "sub" / "inner.obj")  # subfolders of a flat folder are not searched
    (root / "notes.txt").write_text("not a mesh")
    refs = discover(root)
    assert [(r.dataset, r.klass, r.shape_id) for r in refs] == [
        ("meshes", "", "box"), ("meshes", "", "capsule"), ("meshes", "", "sphere")
    ]
    assert [r.mesh_path.name for r in refs] == ["box.off", "capsule.ply", "sphere.obj"]
    assert refs[0].key == "meshes/box"
    assert refs[0].relative_path(".npz") == Path("meshes/box.npz")
    assert [r.dataset for r in discover(root, dataset="mine")] == ["mine"] * 3


def test_flat_folder_with_two_meshes_of_one_name_is_an_error(tmp_path):
    _write(tmp_path / "a.obj")
    _write(tmp_path / "a.off")
    with pytest.raises(InputError, match=r"two meshes are named 'a' \(a.obj, a.off\)"):
        discover(tmp_path)


def test_folder_of_synsets_lists_every_shape_folder_even_without_mesh(shapenet):
    refs = discover(shapenet)
    names = [(r.dataset, r.klass, r.shape_id) for r in refs]
    assert names == [
        ("ShapeNetCore.v2", CHAIRS, "a1"),
        ("ShapeNetCore.v2", CHAIRS, "b2"),
        ("ShapeNetCore.v2", CHAIRS, "d4"),
        ("ShapeNetCore.v2", CHAIRS, "v1"),
        ("ShapeNetCore.v2", TABLES, "c3"),
    ]
    paths = {r.shape_id: r.mesh_path for r in refs}
    assert paths["a1"] == shapenet / CHAIRS / "a1" / "models" / "model_normalized.obj"
    assert paths["v1"] == shapenet / CHAIRS / "v1" / "model.obj"
    assert paths["d4"] == shapenet / CHAIRS / "d4" / "models" / "model_normalized.obj"
    assert not paths["d4"].exists()  # kept, so that preprocessing reports it


def test_one_synset_folder_takes_its_dataset_name_from_the_parent(shapenet):
    refs = discover(shapenet / TABLES)
    assert refs == [ShapeRef("ShapeNetCore.v2", TABLES, "c3")]
    assert refs[0].mesh_path == shapenet / TABLES / "c3" / "models" / "model_normalized.obj"
    assert discover(shapenet / TABLES, dataset="ShapeNetV2")[0].dataset == "ShapeNetV2"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: root / "absent", "folder not found"),
        (lambda root: _write(root / "box.obj"), "is a file, not a folder"),
        (lambda root: root, "no shapes found"),
    ],
)
def test_discover_errors_name_the_folder(tmp_path, make, message):
    target = make(tmp_path)
    (tmp_path / "empty_sub").mkdir(exist_ok=True)
    with pytest.raises(InputError, match=message) as info:
        discover(target)
    assert str(target) in str(info.value)


def test_shape_names_must_be_usable_as_file_names():
    for bad in ["", "..", "a/b", ".hidden", "a\\b"]:
        with pytest.raises(InputError, match="cannot name a file"):
            ShapeRef("ShapeNetV2", CHAIRS, bad)
    assert ShapeRef("d", "", "x").key == "d/x"


def test_split_round_trip_is_deepsdf_json_in_the_given_order(tmp_path):
    refs = [
        ShapeRef("ShapeNetV2", TABLES, "z9"),
        ShapeRef("ShapeNetV2", CHAIRS, "b2"),
        ShapeRef("ShapeNetV2", TABLES, "a0"),
        ShapeRef("Other", "", "x"),
    ]
    write_split(tmp_path / "split.json", refs)
    assert json.loads((tmp_path / "split.json").read_text()) == {
        "ShapeNetV2": {TABLES: ["z9", "a0"], CHAIRS: ["b2"]},
        "Other": {"": ["x"]},
    }
    back = read_split(tmp_path / "split.json")
    assert back == [refs[0], refs[2], refs[1], refs[3]]  # grouped by class, order kept
    assert all(ref.mesh_path is None for ref in back)


def test_reads_a_split_file_as_deepsdf_ships_it(tmp_path):
    text = '{\n  "ShapeNetV2": {\n    "03001627": [\n      "1006be65", "1007e20d"\n    ]\n  }\n}\n'
    (tmp_path / "sv2_chairs_train.json").write_text(text)
    assert read_split(tmp_path / "sv2_chairs_train.json") == [
        ShapeRef("ShapeNetV2", CHAIRS, "1006be65"),
        ShapeRef("ShapeNetV2", CHAIRS, "1007e20d"),
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ('["a", "b"]', "a split must be a JSON object"),
        ('{"d": ["a"]}', "dataset 'd' must map classes"),
        ('{"d": {"c": "a"}}', "class d/c must be a list"),
        ('{"d": {"c": ["../etc"]}}', "cannot name a file"),
        ('{"d": {"c": [3]}}', "shape id must be a string"),
        ('{"d": {"c": ["a", "a"]}}', "shape d/c/a is listed twice"),
    ],
)
def test_bad_split_files_raise_naming_the_file(tmp_path, text, message):
    path = tmp_path / "split.json"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        read_split(path)
    assert str(path) in str(info.value)


def test_missing_split_file(tmp_path):
    with pytest.raises(InputError, match="split file not found"):
        read_split(tmp_path / "absent.json")


def test_make_split_takes_the_fraction_of_each_class_deterministically():
    refs = [ShapeRef("d", CHAIRS, f"c{i:02d}") for i in range(10)]
    refs += [ShapeRef("d", TABLES, f"t{i}") for i in range(5)]
    train, test = make_split(refs, 0.2, seed=3)
    assert sum(r.klass == CHAIRS for r in test) == 2 and sum(r.klass == TABLES for r in test) == 1
    assert sorted(train + test) == sorted(refs) and not set(train) & set(test)
    assert train == sorted(train) and test == sorted(test)
    assert make_split(refs[::-1], 0.2, seed=3) == (train, test)  # input order does not matter
    # one class's draw does not depend on the other classes
    assert make_split(refs[:10], 0.2, seed=3)[1] == [r for r in test if r.klass == CHAIRS]
    draws = {tuple(make_split(refs, 0.2, seed=s)[1]) for s in range(10)}
    assert len(draws) > 1
    assert make_split(refs, 0.0) == (sorted(refs), [])
    with pytest.raises(InputError, match=r"test fraction must be in \[0, 1\]"):
        make_split(refs, 1.5)


def test_make_split_holds_out_the_named_shapes_and_draws_the_fraction_from_the_others():
    refs = [ShapeRef("d", CHAIRS, f"c{i:02d}") for i in range(10)]
    named = [refs[7], refs[2]]
    others = [r for r in refs if r not in named]
    assert make_split(refs, 0.0, held_out=named) == (others, named[::-1])
    train, test = make_split(refs, 0.25, seed=3, held_out=named)
    assert len(test) == 2 + 2 and set(named) <= set(test)  # 2 named + floor(0.25 * 8 + 0.5)
    assert sorted(train + test) == refs and test == sorted(test)
    # the random part is the same draw as a split of the other eight shapes
    assert sorted(set(test) - set(named)) == make_split(others, 0.25, seed=3)[1]


def test_find_shapes_by_id_class_and_id_or_key(shapenet):
    refs = discover(shapenet)
    pairs = [(CHAIRS, "a1"), (CHAIRS, "b2"), (TABLES, "c3")]
    a1, b2, c3 = (ShapeRef("ShapeNetCore.v2", klass, shape_id) for klass, shape_id in pairs)
    names = ["b2", f"{TABLES}/c3", f"ShapeNetCore.v2/{CHAIRS}/a1", "b2"]
    assert find_shapes(refs, names, "here") == [b2, c3, a1]  # order of the names, once each
    flat = [ShapeRef("chairs", "", "x"), ShapeRef("chairs", "", "y")]
    assert find_shapes(flat, ["chairs/y", "x"], "here") == flat[::-1]
    with pytest.raises(InputError) as error:
        find_shapes(refs, ["b2", "zz", f"{TABLES}/a1"], "data/meshes")
    assert str(error.value) == (
        f"data/meshes: no shape named 'zz', '{TABLES}/a1' among its 5 shapes "
        "(give an id, class/id or dataset/class/id)"
    )
    twins = [ShapeRef("d", CHAIRS, "same"), ShapeRef("d", TABLES, "same")]
    with pytest.raises(InputError, match=rf"here: shape id 'same' is ambiguous \(d/{CHAIRS}/"):
        find_shapes(twins, ["same"], "here")
    assert find_shapes(twins, [f"{TABLES}/same"], "here") == twins[1:]


def test_match_split_keeps_the_split_names_and_finds_the_meshes(shapenet):
    split = [ShapeRef("ShapeNetV2", CHAIRS, "b2"), ShapeRef("ShapeNetV2", CHAIRS, "gone")]
    matched = match_split(split, discover(shapenet))
    assert matched == split
    assert matched[0].mesh_path == shapenet / CHAIRS / "b2" / "models" / "model_normalized.obj"
    assert matched[1].mesh_path is None


def test_derived_seeds_are_stable_and_distinct():
    assert derived_seed(0, CHAIRS, "abc") == 14089263112472313396  # same on every machine
    assert derived_seed(1, CHAIRS, "abc") != derived_seed(0, CHAIRS, "abc")
    assert derived_seed(0, CHAIRS, "abc", "surface") != derived_seed(0, CHAIRS, "abc")


# ------------------------------------------------------------------ DeepSDF data directories


def _deepsdf_rows(n: int, positive: bool, seed: int) -> np.ndarray:
    """(n, 4) float32 rows x, y, z, sdf as DeepSDF's PreprocessMesh stores them."""
    rng = np.random.default_rng(seed)
    rows = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
    rows[:, 3] = np.abs(rows[:, 3]) * (1 if positive else -1)
    return rows


@pytest.fixture
def deepsdf_dir(tmp_path) -> Path:
    """A data directory laid out and written as DeepSDF does: pos/neg only, separate
    NormalizationParameters (offset, scale of shape (1,)), an ASCII surface PLY in mesh units."""
    root = tmp_path / "data"
    for shape_id in ["b2", "a1"]:
        path = root / SDF_SAMPLES / "ShapeNetV2" / CHAIRS / f"{shape_id}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, pos=_deepsdf_rows(7, True, 0), neg=_deepsdf_rows(5, False, 1))
    norm = root / NORMALIZATION_PARAMETERS / "ShapeNetV2" / CHAIRS / "b2.npz"
    norm.parent.mkdir(parents=True)
    np.savez(norm, offset=np.float32([-1.0, 2.0, 0.5]), scale=np.float32([0.25]))
    ply = root / SURFACE_SAMPLES / "ShapeNetV2" / CHAIRS / "b2.ply"
    ply.parent.mkdir(parents=True)
    header = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
    header += "property float z\nelement face 1\nproperty list uchar int vertex_index\nend_header\n"
    ply.write_text(header + "1 -2 -0.5\n5 -2 -0.5\n1 2 -0.5\n3 0 1 2\n")
    return root


def test_deepsdf_sdf_npz_reads_back_identical(deepsdf_dir):
    data = DeepSDFDataDir(deepsdf_dir)
    ref = ShapeRef("ShapeNetV2", CHAIRS, "b2")
    samples, frame = data.load_sdf(ref)
    pos, neg = _deepsdf_rows(7, True, 0), _deepsdf_rows(5, False, 1)
    rows = np.column_stack([samples.points, samples.sdf])
    assert rows.dtype == np.float32
    np.testing.assert_array_equal(rows[samples.sdf > 0], pos)
    np.testing.assert_array_equal(rows[samples.sdf <= 0], neg)
    # x_canonical = (x_user + offset) * scale  <=>  x_user = x_canonical * 4 + (1, -2, -0.5)
    np.testing.assert_array_equal(frame.center, [1.0, -2.0, -0.5])
    assert frame.scale == 4.0
    # a shape without NormalizationParameters reads in the identity frame
    assert data.load_sdf(ShapeRef("ShapeNetV2", CHAIRS, "a1"))[1].to_dict() == {
        "center": [0.0, 0.0, 0.0], "scale": 1.0
    }


def test_isofield_npz_keeps_its_own_frame_over_normalization_parameters(deepsdf_dir):
    ref = ShapeRef("ShapeNetV2", CHAIRS, "b2")
    samples = SdfSamples(np.float32([[0.1, 0.2, 0.3], [0, 0, 0]]), np.float32([0.5, -0.5]))
    ours = Normalization(np.array([3.0, 3.0, 3.0]), 2.0)
    write_sdf_samples(samples, ours, deepsdf_dir / SDF_SAMPLES / ref.relative_path())
    back, frame = DeepSDFDataDir(deepsdf_dir).load_sdf(ref)
    assert frame.to_dict() == ours.to_dict()
    np.testing.assert_array_equal(back.points, samples.points)


def test_deepsdf_surface_ply_is_mapped_to_the_canonical_frame(deepsdf_dir):
    cloud, frame = DeepSDFDataDir(deepsdf_dir).load_surface(ShapeRef("ShapeNetV2", CHAIRS, "b2"))
    np.testing.assert_allclose(cloud.points, [[0, 0, 0], [1, 0, 0], [0, 1, 0]], atol=1e-7)
    assert cloud.normals is None and frame.scale == 4.0


def test_surface_ply_without_normalization_parameters_is_an_error(deepsdf_dir):
    ref = ShapeRef("ShapeNetV2", CHAIRS, "b2")
    (deepsdf_dir / NORMALIZATION_PARAMETERS / ref.relative_path()).unlink()
    with pytest.raises(InputError, match="NormalizationParameters/ShapeNetV2/03001627/b2.npz: not"):
        DeepSDFDataDir(deepsdf_dir).load_surface(ref)
    with pytest.raises(InputError, match="a1.npz: surface samples not found"):
        DeepSDFDataDir(deepsdf_dir).load_surface(ShapeRef("ShapeNetV2", CHAIRS, "a1"))


def test_shapes_of_a_data_directory_with_and_without_split(deepsdf_dir, tmp_path):
    data = DeepSDFDataDir(deepsdf_dir)
    a1, b2 = ShapeRef("ShapeNetV2", CHAIRS, "a1"), ShapeRef("ShapeNetV2", CHAIRS, "b2")
    assert data.shapes() == [a1, b2]
    write_split(tmp_path / "split.json", [b2, a1])
    assert data.shapes(tmp_path / "split.json") == [b2, a1]  # split order
    gone = ShapeRef("ShapeNetV2", CHAIRS, "gone")
    with pytest.raises(InputError, match=r"gone.npz: SDF samples not found \(1 of the 3 shapes"):
        data.shapes([b2, gone, a1])
    assert data.shapes([b2, gone, a1], skip_missing=True) == [b2, a1]


def test_not_a_data_directory(tmp_path):
    with pytest.raises(InputError, match=f"{tmp_path}: not a DeepSDF data directory"):
        DeepSDFDataDir(tmp_path)


def test_bad_normalization_parameters_file(tmp_path):
    path = tmp_path / "n.npz"
    np.savez(path, offset=np.zeros(3))
    with pytest.raises(InputError, match="needs a numeric array 'scale'"):
        read_deepsdf_normalization(path)
    np.savez(path, offset=np.zeros(2), scale=np.ones(1))
    with pytest.raises(InputError, match="needs 'offset' of 3 numbers"):
        read_deepsdf_normalization(path)


# ------------------------------------------- refused shapes, one split for both data layouts


def _chair(index: int) -> ShapeRef:
    return ShapeRef("chairs", "", f"chair_{index:04d}")  # a flat mesh folder: no class


REFUSED = ShapeRef("chairs", "", "zz_empty")
TINY_DEEPSDF = {
    "method": "deepsdf", "preset": "cpu", "latent_dim": 8, "shapes_per_batch": 2,
    "samples_per_shape": 64, "reconstruction_every": 1000, "reconstruction_shapes": 1,
    "decoder": {"depth": 2, "hidden": 16, "skip": []},
    "extract": {"resolution": 8, "progress_resolution": 8},
    "train": {"log_every": 1, "checkpoint_every": 1000},
}


@pytest.fixture(scope="module")
def readme(tmp_path_factory) -> Path:
    """The README's dataset commands on 3 procedural chairs plus an empty mesh, which
    preprocessing refuses: ``chairs/`` (meshes), ``chairs-sdf/`` (deepsdf protocol),
    ``chairs-onet/`` (onet protocol). Tests only read it."""
    base = tmp_path_factory.mktemp("readme")
    assert main(["shapes", "chairs", "-n", "3", "-o", str(base / "chairs"), "--resolution", "32",
                 "-q"]) == 0
    (base / "chairs" / "zz_empty.off").write_text("OFF\n0 0 0\n")
    # 10,000 surface points: what an occupancy network keeps of each shape's cloud
    for protocol, out, surface in (("deepsdf", "chairs-sdf", 300), ("onet", "chairs-onet", 10_000)):
        assert main(["preprocess", str(base / "chairs"), "-o", str(base / out), "--protocol",
                     protocol, "-n", "2000", "--surface-points", str(surface), "-q"]) == 0
    return base


def _warning(text: str) -> str:
    return f"isofield: warning: {text}\n"


def test_readme_order_with_a_refused_mesh_splits_and_trains(readme, tmp_path, capsys):
    sdf, onet = readme / "chairs-sdf", readme / "chairs-onet"
    capsys.readouterr()
    assert main(["split", str(sdf), "--test-shapes", "chair_0002", "-o", str(tmp_path / "a")]) == 0
    refused = "leaving 1 shape out of the split: chairs/zz_empty (preprocessing failed)"
    assert capsys.readouterr().err == _warning(f"{sdf}: {refused}")
    assert read_split(tmp_path / "a" / "train.json") == [_chair(0), _chair(1)]
    assert read_split(tmp_path / "a" / "test.json") == [_chair(2)]
    # the ONet layout of the same meshes gives the same split, byte for byte ...
    assert main(["split", str(onet), "--test-shapes", "chair_0002", "-o", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().err == _warning(f"{onet}: {refused}")
    for name in ("train.json", "test.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    # ... and one split file names the shapes of both layouts
    train = read_split(tmp_path / "a" / "train.json")
    assert OccupancyDataDir(onet).training_shapes(tmp_path / "a" / "train.json") == train
    config = {**TINY_DEEPSDF, "data": str(sdf), "split": str(tmp_path / "a" / "train.json")}
    (tmp_path / "chairs.yaml").write_text(json.dumps(config))
    code = main(["train", str(tmp_path / "chairs.yaml"), "-o", str(tmp_path / "run"), "--steps",
                 "2", "-q"])
    out, err = capsys.readouterr()
    assert code == 0 and err == "" and "finished after 2 steps" in out
    shapes = json.loads((tmp_path / "run" / "shapes.json").read_text())["shapes"]
    assert [entry["id"] for entry in shapes] == ["chair_0000", "chair_0001"]


TINY_SHAPEGF = {
    "method": "shapegf", "latent_dim": 4, "points_per_shape": 200, "input_points": 64,
    "target_points": 64, "shapes_per_batch": 2, "noise": {"levels": 2, "sigma_min": 0.02},
    "encoder": {"widths": [8], "head": [8]}, "score": {"hidden": 8, "blocks": 1},
    "train": {"log_every": 1, "checkpoint_every": 1000},
}
TINY_ONET = {
    "method": "onet", "shapes_per_batch": 2, "points_per_step": 64, "input": {"points": 64},
    "encoder": {"condition_dim": 8, "hidden": 8}, "decoder": {"hidden": 8, "blocks": 1},
    "train": {"log_every": 1, "checkpoint_every": 1000},
}


@pytest.mark.parametrize("config, layout", [(TINY_DEEPSDF, "chairs-sdf"),
                                            (TINY_SHAPEGF, "chairs-sdf"),
                                            (TINY_ONET, "chairs-onet")])
def test_every_family_trains_without_the_shape_that_preprocessing_refused(
    readme, tmp_path, capsys, config, layout
):
    # a split of the mesh folder does not know what preprocessing refused
    assert main(["split", str(readme / "chairs"), "--test-fraction", "0", "-o", str(tmp_path)]) == 0
    split = tmp_path / "train.json"
    assert read_split(split) == [_chair(0), _chair(1), _chair(2), REFUSED]
    (tmp_path / "config.yaml").write_text(json.dumps({**config, "data": str(readme / layout),
                                                      "split": str(split)}))
    capsys.readouterr()
    code = main(["train", str(tmp_path / "config.yaml"), "-o", str(tmp_path / "run"), "--steps",
                 "1", "--exit-after", "0", "-q"])
    out, err = capsys.readouterr()
    assert code == 0 and "exit-after after 0 steps" in out
    assert err == _warning(
        f"training without 1 of the 4 shapes of {split}: chairs/zz_empty (preprocessing failed)"
    )
    shapes = json.loads((tmp_path / "run" / "shapes.json").read_text())["shapes"]
    assert [entry["id"] for entry in shapes] == ["chair_0000", "chair_0001", "chair_0002"]


def test_shapes_that_preprocessing_refused_are_not_read_even_with_files_left(readme, tmp_path):
    sdf = tmp_path / "chairs-sdf"
    shutil.copytree(readme / "chairs-sdf", sdf)
    data = DeepSDFDataDir(sdf)
    assert data.shapes() == [_chair(0), _chair(1), _chair(2)]
    assert data.refused() == {REFUSED: "preprocessing failed"}
    # a file of the refused shape (e.g. from an earlier run) is not read: the manifest wins
    shutil.copy(data.path(SDF_SAMPLES, _chair(0)), data.path(SDF_SAMPLES, REFUSED))
    manifest = json.loads((sdf / "manifest.json").read_text())
    for entry in manifest["shapes"]:
        entry["status"] = "pending" if entry["id"] == "chair_0001" else entry["status"]
    (sdf / "manifest.json").write_text(json.dumps(manifest))
    data = DeepSDFDataDir(sdf)
    assert data.shapes() == [_chair(0), _chair(2)]
    assert data.refused() == {
        _chair(1): "preprocessing unfinished", REFUSED: "preprocessing failed"
    }
    with pytest.raises(InputError) as error:
        data.shapes([_chair(0), REFUSED])
    assert str(error.value) == (
        f"{data.path(SDF_SAMPLES, REFUSED)}: preprocessing failed (1 of the 2 shapes of the split "
        "have none or were refused by preprocessing)"
    )


def test_training_shapes_warn_once_naming_the_shapes_left_out(readme, capsys):
    ghosts = [ShapeRef("chairs", "", f"ghost{i}") for i in range(6)]
    for data in (DeepSDFDataDir(readme / "chairs-sdf"), OccupancyDataDir(readme / "chairs-onet")):
        chairs = [_chair(0), _chair(1), _chair(2)]
        split = [REFUSED, *chairs, *ghosts[:2]]
        assert data.training_shapes(split) == chairs
        assert capsys.readouterr().err == _warning(
            "training without 3 of the 6 shapes of the split: chairs/zz_empty (preprocessing "
            "failed), chairs/ghost0 (no samples), chairs/ghost1 (no samples)"
        )
        assert data.training_shapes(split, quiet=True) == chairs  # e.g. ranks other than 0
        assert capsys.readouterr().err == ""
        with pytest.raises(InputError) as error:  # fewer than half: a split of other data
            data.training_shapes([_chair(0), REFUSED, ghosts[0]])
        assert str(error.value) == (
            f"the split: only 1 of its 3 shapes can be read from {data.root}, not chairs/zz_empty "
            "(preprocessing failed), chairs/ghost0 (no samples); preprocess them, or split the "
            f"preprocessed folder: isofield split {data.root} -o SPLITS"
        )
        with pytest.raises(InputError, match=r"^the split: no training shapes \(the split is "):
            data.training_shapes([])
        assert data.training_shapes() == chairs  # no split: every shape preprocessing took
        assert capsys.readouterr().err == _warning(
            f"{data.root}: training without chairs/zz_empty (preprocessing failed)"
        )


def test_warnings_name_the_first_five_shapes_and_count_the_rest():
    reasons = {ShapeRef("d", "", f"s{i}"): "no samples" for i in range(7)}
    assert describe_shapes(reasons) == (
        "d/s0 (no samples), d/s1 (no samples), d/s2 (no samples), d/s3 (no samples), "
        "d/s4 (no samples) and 2 more"
    )
    assert describe_shapes(dict(list(reasons.items())[:1])) == "d/s0 (no samples)"


def test_split_holds_out_named_shapes_and_an_unknown_name_is_one_line(readme, tmp_path, capsys):
    sdf = readme / "chairs-sdf"
    assert main(["split", str(sdf), "--test-shapes", "chair_0001", "nope", "zz_empty", "-o",
                 str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"isofield: error: {sdf}: no shape named 'nope', 'zz_empty' among its 3 shapes "
        "(give an id, class/id or dataset/class/id)\n"
    )
    assert not any(tmp_path.iterdir())
    # named shapes and a fraction: floor(0.5 * 3 + 0.5) = 2 of the 3 others join chair_0001
    assert main(["split", str(readme / "chairs"), "--test-shapes", "chairs/chair_0001",
                 "--test-fraction", "0.5", "-o", str(tmp_path)]) == 0
    test = read_split(tmp_path / "test.json")
    assert len(test) == 3 and _chair(1) in test
    assert sorted(test + read_split(tmp_path / "train.json")) == [*map(_chair, range(3)), REFUSED]
