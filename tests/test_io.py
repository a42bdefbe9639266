"""Mesh and point-cloud I/O: round trips, polygons, scenes, real CGAL data, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from isofield.errors import InputError
from isofield.geometry.io import (
    PointCloud,
    describe_mesh,
    format_mesh_description,
    read_mesh,
    read_points,
    require_normals,
    write_mesh,
    write_points,
)

# A unit square (quad) and a convex "house" pentagon of area 2 * 1 + 2 * 1 / 2 = 3.
POLYGON_VERTICES = [
    (0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 0),
    (2, 0, 0), (4, 0, 0), (4, 1, 0), (3, 2, 0), (2, 1, 0),
]  # fmt: skip
POLYGONS = [[0, 1, 2, 3], [4, 5, 6, 7, 8]]
POLYGON_AREA = 1.0 + 3.0


def asymmetric_mesh() -> trimesh.Trimesh:
    """A closed mesh whose coordinates are not round numbers (42 vertices, 80 faces)."""
    sphere = trimesh.creation.icosphere(subdivisions=1)
    vertices = sphere.vertices * [1.3, 0.7, 0.9] + [0.25, -1.5, 2.125]
    return trimesh.Trimesh(vertices, sphere.faces, process=False)


def unit_cube() -> trimesh.Trimesh:
    """Axis-aligned cube [0, 1]^3, 8 vertices, 12 outward-wound faces."""
    box = trimesh.creation.box(extents=(1, 1, 1))
    return trimesh.Trimesh(box.vertices + 0.5, box.faces, process=False)


def assert_nothing_written(folder: Path, keep: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == keep


# --------------------------------------------------------------------------------------------
# Meshes: round trips and format details
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".ply", ".obj", ".off", ".glb"])
def test_mesh_round_trip_keeps_vertices_and_faces(tmp_path, suffix):
    mesh = asymmetric_mesh()
    path = tmp_path / f"shape{suffix}"
    write_mesh(mesh, path)
    read = read_mesh(path)
    assert read.vertices.shape == (42, 3) and read.faces.shape == (80, 3)
    np.testing.assert_allclose(read.vertices, mesh.vertices, atol=1e-6)
    np.testing.assert_array_equal(read.faces, mesh.faces)
    assert_nothing_written(tmp_path, {path.name})


def test_stl_round_trip_merges_corners_back_into_shared_vertices(tmp_path):
    mesh = asymmetric_mesh()
    write_mesh(mesh, tmp_path / "shape.stl")
    read = read_mesh(tmp_path / "shape.stl")
    assert read.vertices.shape == (42, 3) and read.faces.shape == (80, 3)
    # STL keeps the triangles (corner by corner, in order), not the vertex numbering.
    np.testing.assert_allclose(read.vertices[read.faces], mesh.vertices[mesh.faces], atol=1e-6)
    assert describe_mesh(read)["watertight"]


@pytest.mark.parametrize("suffix", [".off", ".obj", ".ply"])
def test_quads_and_pentagons_are_triangulated_with_the_same_area(tmp_path, suffix):
    path = tmp_path / f"polygons{suffix}"
    path.write_text(polygon_file_text(suffix))
    mesh = read_mesh(path)
    assert mesh.faces.shape == (2 + 3, 3)
    assert len(mesh.vertices) == 9
    assert mesh.area == pytest.approx(POLYGON_AREA, abs=1e-12)
    # every triangle keeps the polygon's winding: normals all +z
    np.testing.assert_allclose(mesh.face_normals, np.tile([0.0, 0.0, 1.0], (5, 1)), atol=1e-12)


@pytest.mark.parametrize("suffix", [".off", ".obj"])
def test_mixed_polygons_become_fans_in_file_order(tmp_path, suffix):
    path = tmp_path / f"mixed{suffix}"
    polygons = [[4, 5, 6, 7, 8], [0, 1, 2], [0, 2, 3, 1]]
    lines = ["OFF", f"9 {len(polygons)} 0"] if suffix == ".off" else []
    lines += [("" if suffix == ".off" else "v ") + " ".join(map(str, v)) for v in POLYGON_VERTICES]
    lines += [
        f"{len(p)} " + " ".join(map(str, p)) if suffix == ".off"
        else "f " + " ".join(str(i + 1) for i in p)
        for p in polygons
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    np.testing.assert_array_equal(
        read_mesh(path).faces,
        [[4, 5, 6], [4, 6, 7], [4, 7, 8], [0, 1, 2], [0, 2, 3], [0, 3, 1]],
    )


def polygon_file_text(suffix: str) -> str:
    vertex_lines = [" ".join(str(c) for c in v) for v in POLYGON_VERTICES]
    if suffix == ".off":
        faces = [f"{len(p)} " + " ".join(map(str, p)) for p in POLYGONS]
        return "\n".join(["OFF", f"{len(vertex_lines)} {len(POLYGONS)} 0", *vertex_lines, *faces])
    if suffix == ".obj":
        faces = ["f " + " ".join(str(i + 1) for i in p) for p in POLYGONS]
        return "\n".join([f"v {line}" for line in vertex_lines] + faces) + "\n"
    header = [
        "ply", "format ascii 1.0", f"element vertex {len(vertex_lines)}",
        "property float x", "property float y", "property float z",
        f"element face {len(POLYGONS)}", "property list uchar int vertex_indices", "end_header",
    ]  # fmt: skip
    faces = [f"{len(p)} " + " ".join(map(str, p)) for p in POLYGONS]
    return "\n".join(header + vertex_lines + faces) + "\n"


def test_off_variants_comments_counts_on_header_line_and_colours(tmp_path):
    path = tmp_path / "colored.off"
    path.write_text(
        "# a comment\nCOFF 4 2 0\n\n0 0 0 255 0 0 255\n1 0 0 0 255 0 255\n"
        "1 1 0 0 0 255 255  # trailing comment\n0 1 0 9 9 9 255\n"
        "3 0 1 2 0.5 0.5 0.5\n3 0 2 3\n"
    )
    mesh = read_mesh(path)
    np.testing.assert_array_equal(mesh.vertices, [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [0, 2, 3]])


def test_obj_groups_texture_coordinates_and_negative_indices(tmp_path):
    path = tmp_path / "grouped.obj"
    path.write_text(
        "mtllib missing.mtl\no first\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\n"
        "g a\nusemtl red\nf 1/1 2/2 3/3\nv 1 1 0\ng b\nusemtl blue\nf -3/1 -1/2 -2/3\n"
    )
    mesh = read_mesh(path)
    np.testing.assert_array_equal(mesh.vertices, [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]])
    np.testing.assert_array_equal(mesh.faces, [[0, 1, 2], [1, 3, 2]])


def test_glb_scene_of_two_meshes_is_concatenated_with_transforms_applied(tmp_path):
    cube = unit_cube()
    tetra = trimesh.Trimesh(
        [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]
    )
    scene = trimesh.Scene()
    scene.add_geometry(cube, transform=trimesh.transformations.translation_matrix([5, 0, 0]))
    scene.add_geometry(tetra, transform=trimesh.transformations.scale_matrix(2.0))
    scene.export(tmp_path / "scene.glb")

    mesh = read_mesh(tmp_path / "scene.glb")
    assert mesh.vertices.shape == (8 + 4, 3) and mesh.faces.shape == (12 + 4, 3)
    expected = np.vstack([cube.vertices + [5, 0, 0], tetra.vertices * 2.0])
    np.testing.assert_allclose(sort_rows(mesh.vertices), sort_rows(expected), atol=1e-6)
    assert mesh.area == pytest.approx(cube.area + 4 * tetra.area, rel=1e-6)
    np.testing.assert_allclose(mesh.bounds, [[0, 0, 0], [6, 2, 2]], atol=1e-6)


def test_gltf_with_separate_buffer_files(tmp_path):
    mesh = asymmetric_mesh()
    for name, data in trimesh.exchange.gltf.export_gltf(trimesh.Scene(mesh)).items():
        (tmp_path / name).write_bytes(data)
    read = read_mesh(tmp_path / "model.gltf")
    np.testing.assert_allclose(read.vertices, mesh.vertices, atol=1e-6)
    np.testing.assert_array_equal(read.faces, mesh.faces)


def sort_rows(array: np.ndarray) -> np.ndarray:
    return array[np.lexsort(array.T[::-1])]


# --------------------------------------------------------------------------------------------
# Describing a mesh
# --------------------------------------------------------------------------------------------


def test_describe_closed_cube():
    description = describe_mesh(unit_cube())
    assert description == {
        "vertices": 8,
        "faces": 12,
        "watertight": True,
        "consistently_oriented": True,
        "degenerate_faces": 0,
        "components": 1,
        "bounds_min": [0.0, 0.0, 0.0],
        "bounds_max": [1.0, 1.0, 1.0],
        "diagonal": pytest.approx(np.sqrt(3.0)),
        "duplicate_faces": 0,
        "reverse_duplicate_faces": 0,
        "open_edges": 0,
        "non_manifold_edges": 0,
        "deduplicated_watertight": True,
        "deduplicated_consistently_oriented": True,
    }
    assert format_mesh_description(description) == (
        "8 vertices, 12 faces, 1 component; watertight: yes, consistently oriented: yes, "
        "degenerate faces: 0\nbounds [0, 0, 0] to [1, 1, 1], diagonal 1.732\n"
        "repeated faces: 0 same winding, 0 reversed; open edges: 0, non-manifold edges: 0"
    )


def test_describe_a_cube_stored_in_both_windings_says_why_it_is_not_consistent():
    cube = unit_cube()
    faces = np.asarray(cube.faces)
    # the reversed copy on its own vertices (merged by position), plus one same-winding repeat
    doubled = trimesh.Trimesh(
        np.vstack([cube.vertices, cube.vertices]),
        np.vstack([faces, faces[:, ::-1] + 8, faces[:1]]),
        process=False,
    )
    description = describe_mesh(doubled)
    assert description["watertight"] is False and description["consistently_oriented"] is False
    assert (description["duplicate_faces"], description["reverse_duplicate_faces"]) == (1, 12)
    # each of the cube's 18 edges is used by 4 faces (3 faces twice: by 5)
    assert (description["open_edges"], description["non_manifold_edges"]) == (0, 18)
    assert description["deduplicated_watertight"] is True
    assert description["deduplicated_consistently_oriented"] is True
    first, _, third = format_mesh_description(description).split("\n")
    assert "consistently oriented: no (12 faces stored twice, in both windings)" in first
    assert third == (
        "repeated faces: 1 same winding, 12 reversed; open edges: 0, non-manifold edges: 18; "
        "without the repeats: watertight: yes, consistently oriented: yes"
    )


def test_describe_open_flipped_split_and_degenerate_meshes():
    cube = unit_cube()
    opened = trimesh.Trimesh(cube.vertices, cube.faces[1:], process=False)
    assert describe_mesh(opened)["watertight"] is False
    assert describe_mesh(opened)["consistently_oriented"] is True
    assert describe_mesh(opened)["open_edges"] == 3  # the missing triangle's edges

    flipped_faces = cube.faces.copy()
    flipped_faces[0] = flipped_faces[0, ::-1]
    flipped = trimesh.Trimesh(cube.vertices, flipped_faces, process=False)
    assert describe_mesh(flipped)["watertight"] is True
    assert describe_mesh(flipped)["consistently_oriented"] is False

    two = trimesh.Trimesh(
        np.vstack([cube.vertices, cube.vertices + 3]),
        np.vstack([cube.faces, cube.faces + 8]),
        process=False,
    )
    assert describe_mesh(two)["components"] == 2
    assert describe_mesh(two)["diagonal"] == pytest.approx(4 * np.sqrt(3))

    # a sliver with three collinear corners, plus one with a repeated index
    midpoint = (cube.vertices[0] + cube.vertices[1]) / 2
    slivers = trimesh.Trimesh(
        np.vstack([cube.vertices, [midpoint]]),
        np.vstack([cube.faces, [[0, 1, 8], [0, 0, 1]]]),
        process=False,
    )
    assert describe_mesh(slivers)["degenerate_faces"] == 2


def test_split_vertices_at_seams_do_not_count_as_holes():
    cube = unit_cube()
    soup = trimesh.Trimesh(
        cube.vertices[cube.faces].reshape(-1, 3), np.arange(36).reshape(12, 3), process=False
    )
    description = describe_mesh(soup)
    assert description["vertices"] == 36
    assert description["watertight"] and description["components"] == 1


# --------------------------------------------------------------------------------------------
# Real data (CGAL)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, vertices, faces, watertight",
    [
        ("bunny00.off", 37706, 75408, True),
        ("armadillo.off", 26002, 52000, True),
        ("elephant-with-holes.off", 2798, 4463, False),
    ],
)
def test_cgal_meshes(cgal_data, name, vertices, faces, watertight):
    mesh = read_mesh(cgal_data / "meshes" / name)
    assert mesh.vertices.shape == (vertices, 3) and mesh.faces.shape == (faces, 3)
    description = describe_mesh(mesh)
    assert description["watertight"] is watertight
    assert description["consistently_oriented"] is True
    assert description["components"] == 1
    assert description["degenerate_faces"] == 0


def test_cgal_armadillo_first_vertex_and_face(cgal_data):
    mesh = read_mesh(cgal_data / "meshes" / "armadillo.off")
    lines = (cgal_data / "meshes" / "armadillo.off").read_text().split("\n")
    np.testing.assert_array_equal(mesh.vertices[0], [float(x) for x in lines[2].split()])
    np.testing.assert_array_equal(mesh.faces[0], [int(x) for x in lines[2 + 26002].split()[1:4]])


@pytest.mark.parametrize("name, count", [("kitten.xyz", 5210), ("oni.pwn", 1435), ("oni.ply", 1435)])
def test_cgal_oriented_points(cgal_data, name, count):
    cloud = read_points(cgal_data / "points_3" / name)
    assert cloud.points.shape == (count, 3) and cloud.points.dtype == np.float32
    normals = require_normals(cloud, name)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-6)


def test_cgal_kitten_first_row_matches_the_file(cgal_data):
    cloud = read_points(cgal_data / "points_3" / "kitten.xyz")
    # first line: -0.0721898 -0.159749 -0.108444 0.340472 0.937712 -0.0690972
    np.testing.assert_allclose(cloud.points[0], [-0.0721898, -0.159749, -0.108444], rtol=1e-6)
    normal = np.array([0.340472, 0.937712, -0.0690972])
    np.testing.assert_allclose(cloud.normals[0], normal / np.linalg.norm(normal), atol=1e-6)


def test_cgal_oni_pwn_and_ply_hold_the_same_points(cgal_data):
    pwn = read_points(cgal_data / "points_3" / "oni.pwn")
    ply = read_points(cgal_data / "points_3" / "oni.ply")
    np.testing.assert_allclose(pwn.points, ply.points, atol=1e-5)
    np.testing.assert_allclose(pwn.normals, ply.normals, atol=1e-5)


def test_cgal_all_zero_normal_columns_mean_no_normals(cgal_data):
    cloud = read_points(cgal_data / "points_3" / "blobby.xyz")  # 6 columns, normals all 0 0 0
    assert len(cloud) == 3288 and cloud.normals is None


# --------------------------------------------------------------------------------------------
# Points: round trips and formats
# --------------------------------------------------------------------------------------------


def random_cloud(with_normals: bool, count: int = 500) -> PointCloud:
    rng = np.random.default_rng(7)
    points = rng.normal(size=(count, 3)) * [3.0, 0.01, 200.0]
    return PointCloud(points, rng.normal(size=(count, 3)) if with_normals else None)


@pytest.mark.parametrize(
    "suffix, with_normals",
    [(suffix, True) for suffix in (".ply", ".xyz", ".pwn", ".npy", ".npz")]
    + [(suffix, False) for suffix in (".ply", ".xyz", ".npy", ".npz")],  # PWN needs normals
)
def test_points_round_trip(tmp_path, suffix, with_normals):
    cloud = random_cloud(with_normals)
    path = tmp_path / f"cloud{suffix}"
    write_points(cloud, path)
    read = read_points(path)
    assert read.points.dtype == np.float32 and read.points.shape == (500, 3)
    np.testing.assert_allclose(read.points, cloud.points, rtol=1e-6, atol=1e-6)
    if with_normals:
        np.testing.assert_allclose(read.normals, cloud.normals, atol=1e-6)
    else:
        assert read.normals is None
    assert_nothing_written(tmp_path, {path.name})


def test_onet_pointcloud_npz_in_float16(tmp_path):
    points = np.array([[0.1, 0.2, 0.3], [-0.4, 0.5, 0.0]], dtype=np.float16)
    normals = np.array([[0, 0, 1], [0.6, 0.8, 0]], dtype=np.float16)
    np.savez(tmp_path / "pointcloud.npz", points=points, normals=normals, loc=np.zeros(3), scale=1.0)
    cloud = read_points(tmp_path / "pointcloud.npz")
    assert cloud.points.dtype == np.float32
    np.testing.assert_allclose(cloud.points, points.astype(np.float32))
    np.testing.assert_allclose(np.linalg.norm(cloud.normals, axis=1), 1.0, atol=1e-6)


def test_points_from_mesh_files(tmp_path):
    mesh = asymmetric_mesh()
    write_mesh(mesh, tmp_path / "shape.off")
    cloud = read_points(tmp_path / "shape.off")
    np.testing.assert_allclose(cloud.points, mesh.vertices, atol=1e-6)
    assert cloud.normals is None  # OFF stores no vertex normals

    ply = tmp_path / "with_normals.ply"
    ply.write_text(
        "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
        "property float z\nproperty float nx\nproperty float ny\nproperty float nz\n"
        "end_header\n1 2 3 0 0 2\n4 5 6 3 0 4\n"
    )
    cloud = read_points(ply)
    np.testing.assert_allclose(cloud.points, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_allclose(cloud.normals, [[0, 0, 1], [0.6, 0, 0.8]], atol=1e-7)


def test_obj_points_use_vn_only_when_counts_match(tmp_path):
    matching = tmp_path / "matching.obj"
    matching.write_text("v 0 0 0\nv 1 0 0\nvn 0 0 1\nvn 0 3 4\n")
    cloud = read_points(matching)
    np.testing.assert_allclose(cloud.points, [[0, 0, 0], [1, 0, 0]])
    np.testing.assert_allclose(cloud.normals, [[0, 0, 1], [0, 0.6, 0.8]], atol=1e-7)

    mismatched = tmp_path / "mismatched.obj"
    mismatched.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nvn 0 0 1\nf 1//1 2//1 3//1\n")
    cloud = read_points(mismatched)
    assert len(cloud) == 3 and cloud.normals is None


def test_xyz_with_blank_lines_comments_and_crlf(tmp_path):
    path = tmp_path / "messy.xyz"
    path.write_bytes(b"# scanner output\r\n1 2 3\r\n\r\n  4\t5 6  \r\n7 8 9 # last\r\n")
    np.testing.assert_array_equal(read_points(path).points, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])


def test_point_cloud_validates_and_normalises():
    cloud = PointCloud(np.zeros((2, 3)), np.array([[0, 0, 2.0], [0, -5, 0]]), source="test")
    np.testing.assert_array_equal(cloud.normals, [[0, 0, 1], [0, -1, 0]])
    assert cloud.points.dtype == np.float32 and cloud.normals.dtype == np.float32
    with pytest.raises(InputError, match=r"test: points must have shape \(N, 3\)"):
        PointCloud(np.zeros((4, 2)), source="test")
    with pytest.raises(InputError, match="test: 3 normals for 2 points"):
        PointCloud(np.zeros((2, 3)), np.ones((3, 3)), source="test")
    with pytest.raises(InputError, match="test: has no points"):
        PointCloud(np.zeros((0, 3)), source="test")


def test_require_normals():
    with_normals = PointCloud(np.zeros((1, 3)), np.array([[3.0, 0, 4]]))
    np.testing.assert_allclose(require_normals(with_normals, "scan.xyz"), [[0.6, 0, 0.8]])
    with pytest.raises(InputError, match=r"^scan.xyz: points have no normals; this method needs"):
        require_normals(PointCloud(np.zeros((1, 3))), "scan.xyz")


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.off", "", "file is empty"),
        ("nothing.off", "OFF\n0 0 0\n", "mesh is empty"),
        ("cloud.off", "OFF\n2 0 0\n0 0 0\n1 1 1\n", "has no faces"),
        ("truncated.off", "OFF\n10 1 0\n0 0 0\n", "truncated"),
        ("garbage.off", "OFF\n3 1 0\n0 0 zero\n1 0 0\n0 1 0\n3 0 1 2\n", "cannot read mesh"),
        ("garbage.ply", "ply\nformat ascii 1.0\nelement vertex 1\nend_header\nabc\n", "cannot read mesh"),
        ("garbage.glb", "glTF and then nonsense", "cannot read mesh"),
        ("nan.off", "OFF\n3 1 0\n0 nan 0\n1 0 0\n0 1 0\n3 0 1 2\n", "NaN or infinite"),
        ("inf.obj", "v 0 0 0\nv inf 0 0\nv 0 1 0\nf 1 2 3\n", "NaN or infinite"),
        ("range.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n", "index out of range"),
        ("range.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n", "index out of range"),
        ("zero.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", "indices start at 1"),
        ("line.obj", "v 0 0 0\nv 1 0 0\nf 1 2\n", "faces need at least 3"),
        ("unknown.abc", "whatever", "supported: .ply, .obj, .off, .stl, .glb, .gltf"),
    ],
)
def test_bad_mesh_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError, match=message) as caught:
        read_mesh(path)
    assert str(caught.value).startswith(str(path))
    assert "\n" not in str(caught.value)


def test_missing_mesh_and_point_cloud_ply_given_as_mesh(tmp_path, cgal_data):
    with pytest.raises(InputError, match=r"nope.off: file not found"):
        read_mesh(tmp_path / "nope.off")
    with pytest.raises(InputError, match=r"oni.ply: mesh is empty: has no faces \(it holds 1435"):
        read_mesh(cgal_data / "points_3" / "oni.ply")


def test_degenerate_faces_are_read_and_reported(tmp_path):
    path = tmp_path / "sliver.off"
    path.write_text("OFF\n4 2 0\n0 0 0\n1 0 0\n0 1 0\n2 0 0\n3 0 1 2\n3 0 1 3\n")
    mesh = read_mesh(path)
    assert len(mesh.faces) == 2 and describe_mesh(mesh)["degenerate_faces"] == 1


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.xyz", "", "file is empty"),
        ("comments.xyz", "# nothing here\n\n", "file is empty"),
        ("four.xyz", "1 2 3 4\n5 6 7 8\n", "has 4 columns per line, expected 3 or 6"),
        ("ragged.xyz", "1 2 3\n4 5 6\n7 8\n", "number of columns changed from 3 to 2"),
        ("words.xyz", "1 2 3\n4 five 6\n", "non-numeric value 'five'"),
        ("nan.xyz", "1 2 3\n4 nan 6\n", "1 points have NaN or infinite coordinates"),
        ("normals.pwn", "1 2 3\n", "expected 6"),
        ("zero.xyz", "1 2 3 0 0 1\n4 5 6 0 0 0\n", "1 normals have zero length"),
        ("points.npy", None, r"shape \(5, 4\)"),
        ("nopoints.npz", None, "has no 'points' array"),
        ("unknown.csv", "1,2,3\n", "unknown point cloud format '.csv'"),
    ],
)
def test_bad_point_files(tmp_path, name, content, message):
    path = tmp_path / name
    if name.endswith(".npy"):
        np.save(path, np.zeros((5, 4)))
    elif name.endswith(".npz"):
        np.savez(path, xyz=np.zeros((5, 3)))
    else:
        path.write_text(content)
    with pytest.raises(InputError, match=message) as caught:
        read_points(path)
    assert str(caught.value).startswith(str(path))


def test_missing_point_file(tmp_path):
    with pytest.raises(InputError, match="scan.xyz: file not found"):
        read_points(tmp_path / "scan.xyz")


def test_bad_output_paths_write_nothing(tmp_path):
    with pytest.raises(InputError, match=r"unknown mesh format '.xyz'; supported: .ply"):
        write_mesh(unit_cube(), tmp_path / "mesh.xyz")
    with pytest.raises(InputError, match=r"unknown point cloud format '.off'"):
        write_points(random_cloud(True), tmp_path / "points.off")
    with pytest.raises(InputError, match=r"points.pwn: points have no normals"):
        write_points(random_cloud(False), tmp_path / "points.pwn")
    assert_nothing_written(tmp_path, set())
