"""Occupancy Networks' layout: packed labels through the layout, ONet's own folders (float16,
loc/scale, .lst splits, Choy views), JSON splits, the onet preprocessing protocol (layout,
labels against mesh volumes, surface points on the mesh, resuming, rendered views), errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_dilation

import trimesh

from isofield.data.datasets import DeepSDFDataDir, ShapeRef, discover, write_split
from isofield.data.formats import write_onet_points
from isofield.data.onet import (
    IOU_POINTS_NAME,
    POINTCLOUD_NAME,
    POINTS_NAME,
    OccupancyDataDir,
    open_data_dir,
    read_lst,
    shape_dir,
    write_lst,
)
from isofield.data.preprocess import MANIFEST_NAME, ONET_IOU_POINTS, preprocess
from isofield.data.procedural import write_family
from isofield.data.views import (
    CAMERAS_NAME,
    ELEVATION_RANGE_DEG,
    read_views,
    render_views,
    view_angles,
    write_views,
)
from isofield.errors import InputError
from isofield.geometry.groundtruth import MeshDistance
from isofield.geometry.io import read_mesh, write_mesh
from isofield.geometry.normalization import Normalization
from isofield.geometry.samples import ONET_PADDING, OccupancySamples

N, SURFACE, VIEWS, PIXELS = 4_000, 2_000, 4, 128
ONET = {
    "samples": N, "surface_points": SURFACE, "protocol": "onet", "views": VIEWS, "progress": False
}
CHAIRS = ("chair_0000", "chair_0001", "chair_0002")
WHITE = (255, 255, 255)


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> tuple[Path, Path]:
    """(mesh folder ``chairs``, ONet folder) of one onet preprocessing run; tests only read it."""
    base = tmp_path_factory.mktemp("onet")
    write_family("chairs", len(CHAIRS), base / "chairs", resolution=32)
    preprocess(base / "chairs", base / "onet", **ONET)
    return base / "chairs", base / "onet"


@pytest.fixture
def copy(done, tmp_path) -> tuple[Path, Path]:
    """A private copy of ``done``'s folders, to modify."""
    meshes, data = done
    shutil.copytree(meshes, tmp_path / "chairs")
    shutil.copytree(data, tmp_path / "onet")
    return tmp_path / "chairs", tmp_path / "onet"


def _ours(shape_id: str) -> ShapeRef:
    return ShapeRef("chairs", "", shape_id)  # a flat mesh folder: dataset "chairs", no class


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _mtimes(root: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in root.rglob("*") if path.is_file()}


# --- the layout itself ---------------------------------------------------------------------


@pytest.mark.parametrize("half", [False, True])
def test_packed_occupancies_round_trip_through_the_layout(tmp_path, half):
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.55, 0.55, (1003, 3)).astype(np.float32)  # 1003: not a multiple of 8
    labels = rng.uniform(size=1003) < 0.3
    frame = Normalization(np.array([0.1, -2.0, 3.5]), 1.7)
    ref = ShapeRef("data", "03001627", "abc")
    path = shape_dir(tmp_path, ref) / POINTS_NAME
    write_onet_points(OccupancySamples(points, labels), frame, path, half)
    with np.load(tmp_path / "03001627" / "abc" / POINTS_NAME) as raw:
        assert raw["occupancies"].dtype == np.uint8 and raw["occupancies"].shape == (126,)
        assert raw["points"].dtype == (np.float16 if half else np.float32)
    samples, back = OccupancyDataDir(tmp_path).load_points(ref)
    np.testing.assert_array_equal(samples.occupancies, labels)
    assert samples.points.dtype == np.float32
    error = np.abs(samples.points - points).max()
    if half:  # float16 spacing is 2^-11 in [0.5, 1): rounding moves a point by <= 2^-12
        assert 0 < error <= 2.0**-12
    else:
        assert error == 0
    np.testing.assert_array_equal(back.center, frame.center)
    assert back.scale == frame.scale


def test_lst_files_round_trip_and_reject_bad_ids(tmp_path):
    write_lst(tmp_path / "train.lst", ["b2", "a1", "c3"])
    assert (tmp_path / "train.lst").read_text() == "b2\na1\nc3\n"
    assert read_lst(tmp_path / "train.lst") == ["b2", "a1", "c3"]
    (tmp_path / "onet.lst").write_text("x1\n\ny2")  # ONet's files: no final newline
    assert read_lst(tmp_path / "onet.lst") == ["x1", "y2"]
    (tmp_path / "twice.lst").write_text("x1\nx1\n")
    with pytest.raises(InputError, match=r"twice.lst: shape 'x1' is listed twice"):
        read_lst(tmp_path / "twice.lst")
    with pytest.raises(InputError, match=r"bad.lst: shape id 'a/b' cannot name a file"):
        write_lst(tmp_path / "bad.lst", ["a/b"])
    assert not (tmp_path / "bad.lst").exists()


def _onet_folder(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A folder as ONet's scripts write it: two categories, float16 points and point clouds with
    loc/scale, no points_iou, .lst splits, Choy views for one shape. Returns points, labels."""
    rng = np.random.default_rng(1)
    written = {}
    shapes = {"03001627": ["c1", "c2", "c3"], "02691156": ["p1"]}
    for category, ids in shapes.items():
        for index, shape_id in enumerate(ids):
            folder = root / category / shape_id
            folder.mkdir(parents=True)
            points = rng.uniform(-0.55, 0.55, (100, 3)).astype(np.float16)
            labels = np.linalg.norm(points.astype(np.float32), axis=1) < 0.3
            frame = {"loc": np.array([index, 0.5, -1.0]), "scale": np.float64(2.0 + index)}
            np.savez(folder / POINTS_NAME, points=points, occupancies=np.packbits(labels), **frame)
            cloud = rng.normal(size=(50, 3))
            cloud /= np.linalg.norm(cloud, axis=1, keepdims=True)
            np.savez(folder / POINTCLOUD_NAME, points=(0.3 * cloud).astype(np.float16),
                     normals=cloud.astype(np.float16), **frame)
            written[shape_id] = points, labels
        (root / category / "train.lst").write_text("\n".join(ids[::-1][:2]))
        (root / category / "test.lst").write_text(ids[-1])
    (root / "metadata.yaml").write_text("03001627: {id: 03001627, name: chair}\n")
    choy = root / "03001627" / "c1" / "img_choy2016"
    choy.mkdir()
    for index in range(2):
        Image.new("RGB", (137, 137), (index * 100, 20, 30)).save(choy / f"{index:03d}.jpg")
    np.savez(choy / CAMERAS_NAME, **{f"{name}_{i}": np.full(shape, i, float)
                                     for i in range(2) for name, shape in
                                     (("world_mat", (3, 4)), ("camera_mat", (3, 3)))})
    return written


def test_reads_an_onet_folder_as_it_is(tmp_path):
    root = tmp_path / "ShapeNet"
    written = _onet_folder(root)
    data = OccupancyDataDir(root)

    def refs(*names: str) -> list[ShapeRef]:
        return [ShapeRef("ShapeNet", n.split("/")[0], n.split("/")[1]) for n in names]

    assert data.shapes() == refs("02691156/p1", "03001627/c1", "03001627/c2", "03001627/c3")
    # categories sorted, each .lst in its own order
    assert data.shapes("train") == refs("02691156/p1", "03001627/c3", "03001627/c2")
    assert data.shapes("test") == refs("02691156/p1", "03001627/c3")
    assert data.shapes(root / "03001627" / "train.lst") == refs("03001627/c3", "03001627/c2")
    ref = refs("03001627/c2")[0]
    samples, frame = data.load_points(ref)
    points, labels = written["c2"]
    np.testing.assert_array_equal(samples.points, points.astype(np.float32))
    np.testing.assert_array_equal(samples.occupancies, labels)
    np.testing.assert_array_equal(frame.center, [1, 0.5, -1.0])
    assert frame.scale == 3.0
    iou, _ = data.load_iou_points(ref)  # no points_iou.npz: ONet's all-uniform points.npz
    np.testing.assert_array_equal(iou.points, samples.points)
    cloud, cloud_frame = data.load_pointcloud(ref)
    assert cloud.points.shape == (50, 3) and cloud.points.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(cloud.points, axis=1), 0.3, atol=2e-4)
    assert cloud_frame.to_dict() == frame.to_dict()
    images, cameras = data.load_views(refs("03001627/c1")[0])
    assert images.shape == (2, 137, 137, 3) and images.dtype == np.uint8
    assert cameras["world_mat"].shape == (2, 3, 4) and cameras["camera_mat"].shape == (2, 3, 3)
    assert cameras["world_mat"][1, 0, 0] == 1.0
    with pytest.raises(InputError, match=r"c2/img: shape ShapeNet/03001627/c2 has no rendered"):
        data.load_views(ref)


def test_split_errors_name_the_file(tmp_path):
    root = tmp_path / "ShapeNet"
    _onet_folder(root)
    data = OccupancyDataDir(root)
    with pytest.raises(InputError, match=r"val.lst: split file not found \(2 of the 2 category"):
        data.shapes("val")
    with pytest.raises(InputError, match=r"nothere.json: split file not found"):
        data.shapes(tmp_path / "nothere.json")
    with pytest.raises(InputError, match=r"a split is a .json file, a .lst file or a split name"):
        data.shapes("splits/train.txt")
    (root / "03001627" / "c3" / POINTS_NAME).unlink()
    with pytest.raises(InputError, match=r"c3/points.npz: occupancy points not found \(1 of the 3"):
        data.shapes("train")
    assert len(data.shapes("train", skip_missing=True)) == 2
    with pytest.raises(InputError, match=r"nothere: not an occupancy data directory \(folder not"):
        OccupancyDataDir(tmp_path / "nothere")


def test_a_corrupt_npz_is_a_one_line_error_naming_the_file(tmp_path):
    root = tmp_path / "ShapeNet"
    _onet_folder(root)
    path = root / "03001627" / "c1" / POINTS_NAME
    path.write_bytes(path.read_bytes()[:100])
    data = OccupancyDataDir(root)
    with pytest.raises(InputError) as error:
        data.load_points(ShapeRef("ShapeNet", "03001627", "c1"))
    assert str(error.value).startswith(f"{path}: not a readable .npz file")
    assert "\n" not in str(error.value)


# --- views ---------------------------------------------------------------------------------


def test_view_angles_spread_around_and_are_seeded():
    azimuth, elevation = view_angles(24, seed=5)
    sector = np.floor(azimuth / 15.0)
    np.testing.assert_array_equal(sector, np.arange(24))  # one view per 15-degree sector
    assert np.all((elevation >= ELEVATION_RANGE_DEG[0]) & (elevation <= ELEVATION_RANGE_DEG[1]))
    np.testing.assert_array_equal(view_angles(24, seed=5)[0], azimuth)
    assert not np.array_equal(view_angles(24, seed=6)[0], azimuth)


def test_write_views_replaces_an_earlier_larger_set(tmp_path, done):
    meshes, _ = done
    mesh = read_mesh(meshes / "chair_0000.obj")
    frame = Normalization.fit(np.asarray(mesh.vertices), "cube")
    mesh.vertices = frame.to_canonical(np.asarray(mesh.vertices))
    images, cameras = render_views(mesh, 3, resolution=32, seed=1)
    write_views(tmp_path, images, cameras)
    write_views(tmp_path, images[:2], {key: value[:2] for key, value in cameras.items()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000.png", "001.png", CAMERAS_NAME]
    back, back_cameras = read_views(tmp_path)
    np.testing.assert_array_equal(back, images[:2])
    np.testing.assert_array_equal(back_cameras["world_to_camera"], cameras["world_to_camera"][:2])
    with pytest.raises(InputError, match=r"'world_to_camera' has shape \(3, 3, 4\) for 2 views"):
        write_views(tmp_path, images[:2], cameras)


# --- the onet preprocessing protocol -------------------------------------------------------


def test_onet_protocol_writes_the_layout_and_records_it(done):
    meshes, data = done
    views = [f"img/{i:03d}.png" for i in range(VIEWS)] + ["img/cameras.npz"]
    per_shape = sorted([POINTCLOUD_NAME, POINTS_NAME, IOU_POINTS_NAME, *views])
    expected = [MANIFEST_NAME] + [f"chairs/{i}/{name}" for i in CHAIRS for name in per_shape]
    assert _files(data) == sorted(expected)
    manifest = preprocess(meshes, data, **ONET)  # resumed at once: nothing to do
    assert manifest.settings["protocol"] == "onet" and manifest.settings["views"] == VIEWS
    for shape_id in CHAIRS:
        record = manifest.records[_ours(shape_id)]
        assert record.status == "ok" and record.watertight is True
        assert (record.occupancy_samples, record.iou_points) == (N, ONET_IOU_POINTS)
        assert (record.surface_points, record.views, record.sdf_samples) == (SURFACE, VIEWS, None)


def test_json_and_folder_splits_name_the_same_shapes(done, tmp_path):
    _, data = done
    reader = OccupancyDataDir(data)
    # named as the mesh folder named them (the manifest), not after the output folder "onet"
    assert reader.shapes() == [_ours(i) for i in CHAIRS]
    write_split(tmp_path / "split.json", [_ours("chair_0002"), _ours("chair_0000")])
    assert reader.shapes(tmp_path / "split.json") == [_ours("chair_0002"), _ours("chair_0000")]
    ours, _ = reader.load_points(_ours("chair_0002"))
    theirs, _ = reader.load_points(ShapeRef("onet", "chairs", "chair_0002"))  # the same folder
    np.testing.assert_array_equal(ours.points, theirs.points)
    write_lst(tmp_path / "chairs" / "test.lst", ["chair_0001"])  # its folder names the category
    assert reader.shapes(tmp_path / "chairs" / "test.lst") == [_ours("chair_0001")]
    write_split(tmp_path / "more.json", [_ours("chair_0001"), _ours("chair_0009")])
    with pytest.raises(InputError, match=r"chair_0009/points.npz: occupancy points not found \(1 "):
        reader.shapes(tmp_path / "more.json")


def test_both_layouts_of_a_shapenet_folder_name_its_shapes_alike(tmp_path):
    root = tmp_path / "ShapeNetCore.v2"
    for shape_id in ("b2", "a1"):
        path = root / "03001627" / shape_id / "models" / "model_normalized.obj"
        write_mesh(trimesh.creation.box(), path)
    small = {"samples": 500, "surface_points": 100, "progress": False}
    preprocess(root, tmp_path / "sdf", **small)
    preprocess(root, tmp_path / "onet", protocol="onet", **small)
    expected = [ShapeRef("ShapeNetCore.v2", "03001627", shape_id) for shape_id in ("a1", "b2")]
    sdf, onet = open_data_dir(tmp_path / "sdf"), open_data_dir(tmp_path / "onet")
    assert isinstance(sdf, DeepSDFDataDir) and isinstance(onet, OccupancyDataDir)
    assert sdf.shapes() == onet.shapes() == expected  # not ("onet", "03001627", ...)
    assert open_data_dir(root) is None  # meshes


def test_inside_labels_match_the_mesh_volume_and_the_frame_is_the_unit_cube(done):
    meshes, data = done
    reader = OccupancyDataDir(data)
    cube = (1 + ONET_PADDING) ** 3
    for ref in discover(meshes):
        mesh = read_mesh(ref.mesh_path)
        uniform, frame = reader.load_iou_points(ref)
        canonical = frame.to_canonical(np.asarray(mesh.vertices))
        np.testing.assert_allclose(canonical.max(0) + canonical.min(0), 0, atol=1e-12)
        assert np.ptp(canonical, axis=0).max() == pytest.approx(1.0)
        assert len(uniform.points) == ONET_IOU_POINTS
        assert np.abs(uniform.points).max() <= (1 + ONET_PADDING) / 2
        fraction = mesh.volume / frame.scale**3 / cube  # 1.5-2.1% of the padded cube
        # binomial standard deviation at 100,000 points: 4.5e-4
        assert uniform.occupancies.mean() == pytest.approx(fraction, abs=2e-3)
        samples, points_frame = reader.load_points(ref)
        assert points_frame.to_dict() == frame.to_dict()
        half = N // 2  # uniform first, then near the surface
        assert samples.occupancies[:half].mean() == pytest.approx(fraction, abs=0.015)
        assert 0.3 < samples.occupancies[half:].mean() < 0.7
        assert not np.array_equal(samples.points[:10], uniform.points[:10])  # own seed


def test_pointcloud_points_lie_on_the_mesh_in_the_same_frame(done):
    meshes, data = done
    reader = OccupancyDataDir(data)
    for ref in discover(meshes):
        cloud, frame = reader.load_pointcloud(ref)
        assert frame.to_dict() == reader.load_points(ref)[1].to_dict()
        distance = MeshDistance(read_mesh(ref.mesh_path))
        gap = distance.unsigned(frame.to_user(cloud.points.astype(np.float64))) / frame.scale
        assert cloud.points.shape == (SURFACE, 3) and gap.max() < 1e-5
        np.testing.assert_allclose(np.linalg.norm(cloud.normals, axis=1), 1, atol=1e-6)


def test_views_show_the_shape_where_the_cameras_project_it(done):
    _, data = done
    reader = OccupancyDataDir(data)
    for shape_id in CHAIRS:
        images, cameras = reader.load_views(_ours(shape_id))
        assert images.shape == (VIEWS, PIXELS, PIXELS, 3) and images.dtype == np.uint8
        assert cameras["world_to_camera"].shape == (VIEWS, 3, 4)
        assert cameras["intrinsics"].shape == (VIEWS, 3, 3)
        cloud, _ = reader.load_pointcloud(_ours(shape_id))
        homogeneous = np.column_stack([cloud.points, np.ones(SURFACE)])
        matrices = zip(cameras["world_to_camera"], cameras["intrinsics"])
        for image, (extrinsic, intrinsic) in zip(images, matrices):
            pixel = (intrinsic @ extrinsic @ homogeneous.T).T
            column, row = (pixel[:, :2] / pixel[:, 2:]).T.astype(int)
            shape = np.any(image != WHITE, axis=2)
            assert shape[row, column].mean() > 0.9  # misses: outline pixels no subsample hit
            assert binary_dilation(shape, np.ones((3, 3)))[row, column].all()  # within a pixel
            centre = intrinsic @ extrinsic @ [0, 0, 0, 1]
            np.testing.assert_allclose(centre[:2] / centre[2], PIXELS / 2)
            assert 0.03 < shape.mean() < 0.5  # grey on white
            assert np.all(image[0] == WHITE) and np.all(image[-1] == WHITE)  # room around it


def test_resume_skips_done_shapes_and_another_protocol_redoes_them(copy):
    meshes, data = copy
    (data / "chairs" / "chair_0001" / "img" / "002.png").unlink()
    before = _mtimes(data / "chairs" / "chair_0000")
    manifest = preprocess(meshes, data, **ONET)
    assert (manifest.run.ok, manifest.run.skipped) == (1, 2)
    assert (data / "chairs" / "chair_0001" / "img" / "002.png").is_file()
    assert _mtimes(data / "chairs" / "chair_0000") == before
    manifest = preprocess(meshes, data, **{**ONET, "views": 0})
    assert (manifest.run.ok, manifest.run.skipped) == (3, 0)
    manifest = preprocess(meshes, data, samples=500, surface_points=100, progress=False)
    assert (manifest.run.ok, manifest.run.skipped) == (3, 0)
    assert manifest.settings["protocol"] == "deepsdf"
    assert (data / "SdfSamples" / "chairs" / "chair_0000.npz").is_file()


def test_bad_protocol_settings_raise_before_writing(done, tmp_path):
    meshes, _ = done
    with pytest.raises(InputError, match=r"protocol 'occnet' \(use one of: deepsdf, onet\)"):
        preprocess(meshes, tmp_path / "a", protocol="occnet", progress=False)
    with pytest.raises(InputError, match="views are rendered by the onet protocol only"):
        preprocess(meshes, tmp_path / "b", views=4, progress=False)
    with pytest.raises(InputError, match="number of occupancy samples must be a positive integer"):
        preprocess(meshes, tmp_path / "c", protocol="onet", samples=0, progress=False)
    assert not any(tmp_path.iterdir())
