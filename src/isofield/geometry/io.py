"""Read and write triangle meshes and point clouds, with one-line errors for bad files.

Meshes come back as ``trimesh.Trimesh(process=False)``: the vertices are the file's own, in its
order (STL, which stores every triangle corner separately, has identical corners merged).
Polygons are fan-triangulated; scenes (GLB/GLTF) are concatenated with their transforms
applied. Point clouds come back as :class:`PointCloud` (float32, unit normals or ``None``).

Readers by suffix:

- meshes: ``.ply .obj .off .stl .glb .gltf`` (OFF and OBJ are parsed here, PLY/STL/GLB by trimesh)
- points: the mesh suffixes (vertices, plus the vertex normals the file stores) and
  ``.xyz`` (3 or 6 columns), ``.pwn`` (6 columns), ``.npy`` ((N, 3) or (N, 6)),
  ``.npz`` (``points`` and optional ``normals``, as in Occupancy Networks' ``pointcloud.npz``).
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
import trimesh

from isofield.errors import InputError
from isofield.files import atomic_path
from isofield.geometry.cleanup import clean_faces

MESH_READ_SUFFIXES = (".ply", ".obj", ".off", ".stl", ".glb", ".gltf")
MESH_WRITE_SUFFIXES = (".ply", ".obj", ".off", ".stl", ".glb")
POINT_READ_SUFFIXES = MESH_READ_SUFFIXES + (".xyz", ".pwn", ".npy", ".npz")
POINT_WRITE_SUFFIXES = (".ply", ".xyz", ".pwn", ".npy", ".npz")

# A face is degenerate when its area is at most this fraction of the squared bounding-box diagonal.
DEGENERATE_AREA_RTOL = 1e-12

_NORMALS_HINT = "PLY with nx/ny/nz, XYZ/PWN with 6 columns, or NPY/NPZ with normals"


# --------------------------------------------------------------------------------------------
# Point clouds
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PointCloud:
    """Points with optional unit normals.

    Attributes:
        points: (N, 3) float32, N >= 1, finite.
        normals: (N, 3) float32 of unit length, or ``None``; given normals are normalised.
        source: what the points came from (a file name), used in error messages.
        note: what reading left out, for a one-line note (e.g. all-zero normals), or "".
    """

    points: np.ndarray
    normals: np.ndarray | None = None
    source: str = "point cloud"
    note: str = ""

    def __post_init__(self) -> None:
        points = _finite_rows(self.points, "points", self.source)
        object.__setattr__(self, "points", points.astype(np.float32))
        if self.normals is not None:
            normals = _finite_rows(self.normals, "normals", self.source)
            if len(normals) != len(points):
                raise InputError(
                    f"{self.source}: {len(normals)} normals for {len(points)} points"
                )
            object.__setattr__(self, "normals", _unit_normals(normals, self.source))

    def __len__(self) -> int:
        return len(self.points)


def _finite_rows(values: np.ndarray, what: str, source: str) -> np.ndarray:
    """Check that ``values`` is a non-empty finite (N, 3) array; return it as float64."""
    array = np.asarray(values)
    if array.ndim != 2 or array.shape[1] != 3:
        raise InputError(f"{source}: {what} must have shape (N, 3), got {array.shape}")
    if len(array) == 0:
        raise InputError(f"{source}: has no {what}")
    if not np.issubdtype(array.dtype, np.number):
        raise InputError(f"{source}: {what} are not numbers (dtype {array.dtype})")
    array = array.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if len(bad):
        raise InputError(
            f"{source}: {len(bad)} {what} have NaN or infinite coordinates (first: row {bad[0]})"
        )
    return array


def _unit_normals(normals: np.ndarray, source: str) -> np.ndarray:
    """Normalise (N, 3) float64 normals to unit length as float32; zero length is an error."""
    lengths = np.linalg.norm(normals, axis=1)
    zero = np.flatnonzero(lengths == 0)
    if len(zero):
        raise InputError(f"{source}: {len(zero)} normals have zero length (first: row {zero[0]})")
    return (normals / lengths[:, None]).astype(np.float32)


def require_normals(cloud: PointCloud, source: str) -> np.ndarray:
    """Return the (N, 3) unit normals of ``cloud``, or raise InputError naming ``source``."""
    if cloud.normals is None:
        raise InputError(
            f"{source}: points have no normals; this method needs oriented points "
            f"({_NORMALS_HINT})"
        )
    return cloud.normals


def read_points(path: str | os.PathLike) -> PointCloud:
    """Read a point cloud (see the module docstring for the formats).

    Normals are kept only where the file stores them (and, for OBJ, only when there are as many
    ``vn`` as ``v`` lines); a normal block that is entirely zero is a placeholder and means
    "no normals" (CGAL's ``blobby.xyz`` is written so).
    """
    path = Path(path)
    suffix = _checked_suffix(path, POINT_READ_SUFFIXES, "point cloud")
    reader = _POINT_READERS.get(suffix, _read_geometry_points)
    with _reading(path, "points"):
        points, normals = reader(path)
    note = ""
    if normals is not None and not np.any(normals):
        normals, note = None, f"{path.name}: its normals are all zero; read as points without normals"
    return PointCloud(points, normals, source=str(path), note=note)


def _read_table_points(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """XYZ / PWN text: one point per line, 3 columns (points) or 6 (points and normals)."""
    columns_allowed = (6,) if path.suffix.lower() == ".pwn" else (3, 6)
    table = _read_numeric_table(path)
    if table.shape[1] not in columns_allowed:
        allowed = " or ".join(str(c) for c in columns_allowed)
        raise InputError(f"{path}: has {table.shape[1]} columns per line, expected {allowed}")
    return _split_columns(table)


def _read_numeric_table(path: Path) -> np.ndarray:
    """Whitespace-separated numbers, the same count on every line ('#' starts a comment).

    Returns (rows, columns) float64. Uses numpy's C parser (about 1 s per million 6-column
    lines); blank lines are skipped.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            table = np.loadtxt(path, dtype=np.float64, ndmin=2, comments="#", encoding="latin-1")
    except ValueError as exc:
        raise InputError(f"{path}: {_table_error(exc)}") from exc
    if table.size == 0:
        raise InputError(f"{path}: file is empty (no points)")
    return table


def _table_error(exc: ValueError) -> str:
    """Rephrase numpy.loadtxt's errors for a user (its row numbers are not reliable)."""
    message = str(exc)
    non_numeric = re.search(r"could not convert string '(.*)' to", message)
    if non_numeric:
        return f"non-numeric value {non_numeric.group(1)!r}"
    return message.split(";")[0]


def _split_columns(table: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, 3) -> points; (N, 6) -> points and normals."""
    return table[:, :3], (table[:, 3:6] if table.shape[1] == 6 else None)


def _read_npy_points(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """An .npy array of shape (N, 3) or (N, 6)."""
    array = np.load(path, allow_pickle=False)
    if array.ndim != 2 or array.shape[1] not in (3, 6):
        raise InputError(f"{path}: array has shape {array.shape}, expected (N, 3) or (N, 6)")
    return _split_columns(array)


def _read_npz_points(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """An .npz archive with ``points`` (N, 3) and optional ``normals`` (N, 3)."""
    with np.load(path, allow_pickle=False) as archive:
        if "points" not in archive.files:
            raise InputError(f"{path}: has no 'points' array (it holds {sorted(archive.files)})")
        normals = archive["normals"] if "normals" in archive.files else None
        return archive["points"], normals


def _read_geometry_points(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Vertices of a mesh-format file, with the vertex normals it stores."""
    raw = _read_raw_geometry(path)
    return raw.vertices, raw.vertex_normals


_POINT_READERS: dict[str, Callable[[Path], tuple[np.ndarray, np.ndarray | None]]] = {
    ".xyz": _read_table_points,
    ".pwn": _read_table_points,
    ".npy": _read_npy_points,
    ".npz": _read_npz_points,
}


def write_points(cloud: PointCloud, path: str | os.PathLike) -> None:
    """Write ``cloud`` atomically; the format follows the suffix.

    ``.ply``: binary little-endian float32 x y z (nx ny nz). ``.xyz``: text, 3 or 6 columns.
    ``.pwn``: text, 6 columns (needs normals). ``.npy``: (N, 3) or (N, 6) float32.
    ``.npz``: ``points`` and, if any, ``normals``.
    """
    path = Path(path)
    suffix = _checked_suffix(path, POINT_WRITE_SUFFIXES, "point cloud", must_exist=False)
    if suffix == ".pwn":
        require_normals(cloud, str(path))
    with atomic_path(path) as tmp, open(tmp, "wb") as stream:
        _POINT_WRITERS[suffix](cloud, stream)


def _point_table(cloud: PointCloud) -> np.ndarray:
    """(N, 3) points, or (N, 6) points and normals, float32."""
    if cloud.normals is None:
        return cloud.points
    return np.hstack([cloud.points, cloud.normals])


def _write_ply_points(cloud: PointCloud, stream) -> None:
    table = _point_table(cloud)
    names = ("x", "y", "z", "nx", "ny", "nz")[: table.shape[1]]
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(table)}"]
    header += [f"property float {name}" for name in names] + ["end_header"]
    stream.write(("\n".join(header) + "\n").encode("ascii"))
    stream.write(np.ascontiguousarray(table, dtype="<f4").tobytes())


def _write_text_points(cloud: PointCloud, stream) -> None:
    np.savetxt(stream, _point_table(cloud), fmt="%.9g")  # 9 digits: float32 reads back exactly


def _write_npy_points(cloud: PointCloud, stream) -> None:
    np.save(stream, _point_table(cloud))


def _write_npz_points(cloud: PointCloud, stream) -> None:
    arrays = {"points": cloud.points}
    if cloud.normals is not None:
        arrays["normals"] = cloud.normals
    np.savez(stream, **arrays)


_POINT_WRITERS = {
    ".ply": _write_ply_points,
    ".xyz": _write_text_points,
    ".pwn": _write_text_points,
    ".npy": _write_npy_points,
    ".npz": _write_npz_points,
}


# --------------------------------------------------------------------------------------------
# Meshes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RawGeometry:
    """What a mesh-format file holds.

    Attributes:
        vertices: (V, 3) float64.
        faces: (F, 3) int64 triangles (F may be 0), not yet checked against V.
        vertex_normals: (V, 3) float64 as stored in the file, or ``None``.
    """

    vertices: np.ndarray
    faces: np.ndarray
    vertex_normals: np.ndarray | None = None


def read_mesh(path: str | os.PathLike) -> trimesh.Trimesh:
    """Read a triangle mesh (PLY, OBJ, OFF, STL, GLB, GLTF) without altering its vertices.

    Raises InputError for a missing file, an unknown suffix, unreadable content, a mesh without
    vertices or faces (a point cloud), NaN/Inf coordinates or face indices out of range.
    Degenerate (zero-area) faces are kept; :func:`describe_mesh` counts them.
    """
    path = Path(path)
    _checked_suffix(path, MESH_READ_SUFFIXES, "mesh")
    with _reading(path, "mesh"):
        raw = _read_raw_geometry(path)
    _validate_mesh(raw, path)
    return trimesh.Trimesh(vertices=raw.vertices, faces=raw.faces, process=False)


def read_geometry(path: str | os.PathLike) -> trimesh.Trimesh | PointCloud:
    """Read a file that may hold a mesh or only points: a mesh when it has faces, else a
    :class:`PointCloud` (e.g. a PLY of vertices with normals)."""
    path = Path(path)
    suffix = _checked_suffix(path, POINT_READ_SUFFIXES, "mesh or point cloud")
    if suffix not in MESH_READ_SUFFIXES:
        return read_points(path)
    with _reading(path, "mesh"):
        raw = _read_raw_geometry(path)
    if len(raw.faces) == 0:
        return read_points(path)
    _validate_mesh(raw, path)
    return trimesh.Trimesh(vertices=raw.vertices, faces=raw.faces, process=False)


def _validate_mesh(raw: _RawGeometry, path: Path) -> None:
    """InputError unless there are faces and vertices, finite coordinates, indices in range."""
    vertex_count, face_count = len(raw.vertices), len(raw.faces)
    if face_count == 0:
        holds = f"it holds {vertex_count} points only" if vertex_count else "and no vertices"
        raise InputError(f"{path}: mesh is empty: has no faces ({holds})")
    if vertex_count == 0:
        raise InputError(f"{path}: mesh is empty: has {face_count} faces but no vertices")
    bad = np.flatnonzero(~np.isfinite(raw.vertices).all(axis=1))
    if len(bad):
        raise InputError(
            f"{path}: {len(bad)} vertices have NaN or infinite coordinates (first: vertex {bad[0]})"
        )
    outside = (raw.faces < 0) | (raw.faces >= vertex_count)
    if outside.any():
        face = int(np.flatnonzero(outside.any(axis=1))[0])
        raise InputError(
            f"{path}: face {face} has a vertex index out of range "
            f"({raw.faces[face].tolist()}, {vertex_count} vertices)"
        )


def _read_raw_geometry(path: Path) -> _RawGeometry:
    """Dispatch on the (already checked) suffix."""
    return _GEOMETRY_READERS[path.suffix.lower()](path)


def _read_off(path: Path) -> _RawGeometry:
    """OFF, COFF, NOFF, CNOFF, STOFF...: header, counts, vertex lines, polygon lines."""
    lines = _content_lines(path.read_text(encoding="latin-1"), comment="#")
    if not lines:
        raise InputError(f"{path}: file is empty")
    keyword, *counts = lines[0].split()
    if not keyword.endswith("OFF") or "4" in keyword or "n" in keyword:
        raise InputError(f"{path}: not a 3-D OFF file (header {keyword!r})")
    body = lines[1:] if counts else lines[2:]
    counts = counts or lines[1].split()
    vertex_count, face_count = int(counts[0]), int(counts[1])
    if len(body) < vertex_count + face_count:
        raise InputError(
            f"{path}: truncated: header announces {vertex_count} vertices and {face_count} "
            f"faces but only {len(body)} lines follow"
        )
    columns = 6 if "N" in keyword else 3
    table = np.zeros((0, columns))
    if vertex_count:
        table = np.loadtxt(body[:vertex_count], usecols=range(columns), ndmin=2)
    faces = _off_faces(body[vertex_count : vertex_count + face_count])
    return _RawGeometry(table[:, :3], faces, _split_columns(table)[1])


def _off_faces(lines: list[str]) -> np.ndarray:
    """Polygon lines 'k i1 ... ik [colour]' -> (F, 3) int64 triangles (numpy's C parser)."""
    if not lines:
        return np.zeros((0, 3), np.int64)
    sizes = np.loadtxt(lines, usecols=0, dtype=np.int64, ndmin=1)
    corners_by_size = {
        int(size): np.loadtxt(
            [lines[i] for i in np.flatnonzero(sizes == size)],
            usecols=range(1, size + 1),
            dtype=np.int64,
            ndmin=2,
        )
        for size in np.unique(sizes[sizes >= 3])
    }
    return _triangulate(sizes, corners_by_size)


def _read_obj(path: Path) -> _RawGeometry:
    """Wavefront OBJ geometry: ``v``, ``vn`` and ``f`` lines (groups, materials, texture
    coordinates ignored). ``vn`` become vertex normals only when there is one per ``v``."""
    vertex_lines: list[str] = []
    normal_lines: list[str] = []
    polygons: list[list[int]] = []
    for line in path.read_text(encoding="latin-1").splitlines():
        tokens = line.split(None, 1)
        if len(tokens) < 2:
            continue
        key, rest = tokens
        if key == "v":
            vertex_lines.append(rest)
        elif key == "vn":
            normal_lines.append(rest)
        elif key == "f":
            polygons.append(_obj_polygon(rest, len(vertex_lines)))
    vertices = _obj_rows(vertex_lines)
    normals = _obj_rows(normal_lines) if len(normal_lines) == len(vertex_lines) else None
    sizes = np.array([len(polygon) for polygon in polygons], dtype=np.int64)
    corners_by_size = {
        int(size): np.array([polygons[i] for i in np.flatnonzero(sizes == size)], np.int64)
        for size in np.unique(sizes[sizes >= 3])
    }
    return _RawGeometry(vertices, _triangulate(sizes, corners_by_size), normals)


def _obj_polygon(rest: str, vertices_so_far: int) -> list[int]:
    """'1/1/1 2//2 -1' -> 0-based vertex indices (negative ones count back from the last v)."""
    corners = [int(token.split("/", 1)[0]) for token in rest.split()]
    if 0 in corners:
        raise ValueError("face with vertex index 0 (OBJ indices start at 1)")
    return [c - 1 if c > 0 else vertices_so_far + c for c in corners]


def _obj_rows(lines: list[str]) -> np.ndarray:
    """The first three numbers of each line, (N, 3) float64."""
    if not lines:
        return np.zeros((0, 3))
    return np.loadtxt(lines, usecols=(0, 1, 2), ndmin=2, comments="#")


def _read_ply(path: Path) -> _RawGeometry:
    """PLY through trimesh's reader (ASCII and binary; vertex normals from nx/ny/nz)."""
    with open(path, "rb") as stream:
        loaded = trimesh.exchange.ply.load_ply(stream)
    faces = loaded.get("faces")
    faces = np.zeros((0, 3), np.int64) if faces is None or len(faces) == 0 else faces
    return _RawGeometry(
        np.asarray(loaded["vertices"], np.float64),
        np.asarray(faces, np.int64).reshape(-1, 3),
        loaded.get("vertex_normals"),
    )


def _read_scene(path: Path) -> _RawGeometry:
    """GLB / GLTF / STL through trimesh's scene loader; every mesh is moved by its transform
    and the meshes concatenated. A scene without meshes yields its point-cloud vertices."""
    scene = trimesh.load_scene(path, file_type=path.suffix.lower()[1:], process=False)
    parts = scene.dump()
    meshes = [part for part in parts if isinstance(part, trimesh.Trimesh)]
    if not meshes:
        clouds = [part.vertices for part in parts if isinstance(part, trimesh.PointCloud)]
        vertices = np.concatenate(clouds) if clouds else np.zeros((0, 3))
        return _RawGeometry(vertices, np.zeros((0, 3), np.int64))
    offsets = np.cumsum([0] + [len(mesh.vertices) for mesh in meshes[:-1]])
    return _RawGeometry(
        np.concatenate([mesh.vertices for mesh in meshes]).astype(np.float64),
        np.concatenate([mesh.faces + offset for mesh, offset in zip(meshes, offsets)]),
    )


def _read_stl(path: Path) -> _RawGeometry:
    """STL stores each triangle's three corners; identical corners are merged into one vertex."""
    soup = _read_scene(path)
    vertices, inverse = np.unique(soup.vertices, axis=0, return_inverse=True)
    return _RawGeometry(vertices, inverse.reshape(-1)[soup.faces])


_GEOMETRY_READERS: dict[str, Callable[[Path], _RawGeometry]] = {
    ".off": _read_off,
    ".obj": _read_obj,
    ".ply": _read_ply,
    ".stl": _read_stl,
    ".glb": _read_scene,
    ".gltf": _read_scene,
}


def _content_lines(text: str, comment: str) -> list[str]:
    """Non-blank lines with comments removed and whitespace stripped."""
    stripped = (line.split(comment, 1)[0].strip() for line in text.splitlines())
    return [line for line in stripped if line]


def _triangulate(sizes: np.ndarray, corners_by_size: dict[int, np.ndarray]) -> np.ndarray:
    """Fan-triangulate polygons -> (F, 3) int64 triangles, in the polygons' order.

    Args:
        sizes: (P,) corner count of each polygon.
        corners_by_size: for each size k, the (m_k, k) corner indices of the polygons with k
            corners, in their order in ``sizes``.

    A polygon with k corners gives the k - 2 triangles (c0, c_j, c_j+1): exact for convex planar
    polygons, which is what OFF/OBJ quads and n-gons are meant to be.
    """
    if len(sizes) and sizes.min() < 3:
        raise ValueError(f"a face has {sizes.min()} corners; faces need at least 3")
    triangles, owners = [np.zeros((0, 3), np.int64)], [np.zeros(0, np.int64)]
    for size, corners in corners_by_size.items():
        fan = np.arange(1, size - 1)
        apex = np.repeat(corners[:, :1], size - 2, axis=1)
        triangles.append(np.stack([apex, corners[:, fan], corners[:, fan + 1]], axis=-1))
        owners.append(np.repeat(np.flatnonzero(sizes == size), size - 2))
    order = np.argsort(np.concatenate(owners), kind="stable")
    return np.concatenate([t.reshape(-1, 3) for t in triangles])[order]


def write_mesh(mesh: trimesh.Trimesh, path: str | os.PathLike) -> None:
    """Write ``mesh`` atomically as PLY (binary), OBJ, OFF, STL (binary) or GLB by suffix."""
    path = Path(path)
    suffix = _checked_suffix(path, MESH_WRITE_SUFFIXES, "mesh", must_exist=False)
    options = {"include_texture": False} if suffix == ".obj" else {}
    with atomic_path(path) as tmp:
        mesh.export(tmp, file_type=suffix[1:], **options)


# --------------------------------------------------------------------------------------------
# Describing a mesh
# --------------------------------------------------------------------------------------------


def describe_mesh(mesh: trimesh.Trimesh) -> dict:
    """Report what was read: counts, topology and extent.

    Topology (watertight, orientation, components) is computed with vertices at identical
    positions merged, so that seams of split vertices (STL, GLB) are not counted as holes.

    Returns a dict with ``vertices``, ``faces`` (ints), ``watertight`` (every edge shared by
    exactly two faces), ``consistently_oriented`` (no directed edge used twice, i.e. the two
    faces at an edge traverse it in opposite directions), ``degenerate_faces`` (area at most
    ``DEGENERATE_AREA_RTOL`` x diagonal squared), ``components`` (edge-connected pieces),
    ``bounds_min`` / ``bounds_max`` (3 floats), ``diagonal`` (bounding-box diagonal length),
    ``duplicate_faces`` / ``reverse_duplicate_faces`` (repeats of a face's three corners in the
    same / the opposite winding, :func:`~isofield.geometry.cleanup.clean_faces`),
    ``open_edges`` (used by one face), ``non_manifold_edges`` (used by more than two faces), and
    ``deduplicated_watertight`` / ``deduplicated_consistently_oriented``: the same tests with
    one copy of each repeated face (a closed mesh stored in both windings is watertight and
    consistently oriented once its repeats are set aside).
    """
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    lower, upper = vertices.min(axis=0), vertices.max(axis=0)
    diagonal = float(np.linalg.norm(upper - lower))
    merged = _faces_on_merged_vertices(vertices, faces)
    undirected_counts, directed_unique = _edge_statistics(merged)
    cleanup = clean_faces(merged)
    kept_counts, kept_unique = _edge_statistics(merged[cleanup.keep])
    areas = _face_areas(vertices, faces)
    return {
        "vertices": len(vertices),
        "faces": len(faces),
        "watertight": bool(len(undirected_counts) and np.all(undirected_counts == 2)),
        "consistently_oriented": directed_unique,
        "degenerate_faces": int(np.sum(areas <= DEGENERATE_AREA_RTOL * diagonal**2)),
        "components": _component_count(merged),
        "bounds_min": lower.tolist(),
        "bounds_max": upper.tolist(),
        "diagonal": diagonal,
        "duplicate_faces": cleanup.duplicate,
        "reverse_duplicate_faces": cleanup.reverse_duplicate,
        "open_edges": int(np.count_nonzero(undirected_counts == 1)),
        "non_manifold_edges": int(np.count_nonzero(undirected_counts > 2)),
        "deduplicated_watertight": bool(len(kept_counts) and np.all(kept_counts == 2)),
        "deduplicated_consistently_oriented": kept_unique,
    }


def _faces_on_merged_vertices(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3) faces re-indexed so that vertices at identical positions share one index."""
    _, inverse = np.unique(vertices, axis=0, return_inverse=True)
    return inverse.reshape(-1)[faces]


def _edge_statistics(faces: np.ndarray) -> tuple[np.ndarray, bool]:
    """Faces with a repeated index are skipped. Returns (how many faces use each undirected edge,
    whether every directed edge occurs at most once)."""
    proper = faces[np.all(faces != np.roll(faces, 1, axis=1), axis=1)]
    start, end = proper.reshape(-1), proper[:, [1, 2, 0]].reshape(-1)
    key_base = int(faces.max()) + 1 if len(faces) else 1  # edge (a, b) -> a * key_base + b
    directed = start * key_base + end
    undirected = np.minimum(start, end) * key_base + np.maximum(start, end)
    _, undirected_counts = np.unique(undirected, return_counts=True)
    return undirected_counts, len(np.unique(directed)) == len(directed)


def _face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F,) triangle areas."""
    corners = vertices[faces]
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    return 0.5 * np.linalg.norm(cross, axis=1)


def _component_count(faces: np.ndarray) -> int:
    """Number of connected pieces of the faces (vertices linked by face edges)."""
    used, local = np.unique(faces, return_inverse=True)
    local = local.reshape(faces.shape)
    rows = local[:, [0, 1, 2]].reshape(-1)
    cols = local[:, [1, 2, 0]].reshape(-1)
    graph = scipy.sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(used),) * 2)
    count, _ = scipy.sparse.csgraph.connected_components(graph, directed=False)
    return int(count)


def format_mesh_description(desc: dict) -> str:
    """Three lines for the CLI, e.g.

    ``26002 vertices, 52000 faces, 1 component; watertight: yes, consistently oriented: yes,
    degenerate faces: 0``, ``bounds [-1, -1, -1] to [1, 1, 1], diagonal 3.464`` and
    ``repeated faces: 0 same winding, 0 reversed; open edges: 0, non-manifold edges: 0``; the
    last ends with the watertight and orientation tests without the repeats where there are
    any, and the first says why a mesh with reversed repeats is not consistently oriented.
    """
    yes_no = {True: "yes", False: "no"}
    components = desc["components"]
    reversed_repeats = desc["reverse_duplicate_faces"]
    why = f" ({reversed_repeats} faces stored twice, in both windings)" if reversed_repeats else ""
    first = (
        f"{count_of(desc['vertices'], 'vertex', 'vertices')}, {count_of(desc['faces'], 'face')}, "
        f"{count_of(components, 'component')}; "
        f"watertight: {yes_no[desc['watertight']]}, "
        f"consistently oriented: {yes_no[desc['consistently_oriented']]}{why}, "
        f"degenerate faces: {desc['degenerate_faces']}"
    )
    second = format_bounds(desc["bounds_min"], desc["bounds_max"])
    third = (
        f"repeated faces: {desc['duplicate_faces']} same winding, {reversed_repeats} reversed; "
        f"open edges: {desc['open_edges']}, non-manifold edges: {desc['non_manifold_edges']}"
    )
    if desc["duplicate_faces"] or reversed_repeats:
        third += (
            f"; without the repeats: watertight: {yes_no[desc['deduplicated_watertight']]}, "
            "consistently oriented: "
            f"{yes_no[desc['deduplicated_consistently_oriented']]}"
        )
    return f"{first}\n{second}\n{third}"


def format_bounds(lower: Sequence[float], upper: Sequence[float]) -> str:
    """``bounds [-1, -1, -1] to [1, 1, 1], diagonal 3.464`` (4 significant digits)."""
    diagonal = float(np.linalg.norm(np.subtract(upper, lower)))
    return (f"bounds [{', '.join(f'{value:.4g}' for value in lower)}] to "
            f"[{', '.join(f'{value:.4g}' for value in upper)}], diagonal {diagonal:.4g}")


def count_of(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and its noun in the right number: ``1 vertex``, ``2 vertices``, ``0 faces``."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


# --------------------------------------------------------------------------------------------
# Shared checks
# --------------------------------------------------------------------------------------------


def _checked_suffix(
    path: Path, supported: Sequence[str], what: str, must_exist: bool = True
) -> str:
    """The lower-case suffix of ``path`` if supported (and the file exists when reading)."""
    suffix = path.suffix.lower()
    if suffix not in supported:
        raise InputError(
            f"{path}: unknown {what} format {suffix or '(no suffix)'!r}; "
            f"supported: {', '.join(supported)}"
        )
    if must_exist and not path.is_file():
        reason = "is a directory, not a file" if path.is_dir() else "file not found"
        raise InputError(f"{path}: {reason}")
    if must_exist and path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    return suffix


@contextlib.contextmanager
def _reading(path: Path, what: str) -> Iterator[None]:
    """Turn any error of a (third-party) reader into a one-line InputError naming ``path``."""
    try:
        yield
    except InputError:
        raise
    except Exception as error:
        raise InputError(f"{path}: cannot read {what} ({_short_reason(error)})") from error


def _short_reason(error: Exception) -> str:
    """First line of the error message (or its type), at most 120 characters."""
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= 120 else text[:117] + "..."
