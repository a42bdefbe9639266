"""A catalogue of real-world mesh defects, made from a clean mesh, for tests and benchmarks.

ShapeNet and PartNet meshes are rarely clean solids: triangles are stored twice (once in each
winding), faces are missing or flipped, a shape is several closed parts that overlap, and
internal faces (walls between parts, stray triangles) sit inside the solid. Each generator here
damages a clean mesh in one of these ways and keeps the clean shape's inside unchanged, so that
inside tests on the damaged mesh can be scored against the clean shape's exact signs. Random
choices are seeded (``numpy.random.default_rng(seed)``); every result is a
``trimesh.Trimesh(process=False)``.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import trimesh

from isofield.errors import InputError
from isofield.geometry.furniture import family_parameters
from isofield.geometry.shapes import Intersection, Shape, Union

InsideTest = Callable[[np.ndarray], np.ndarray]
"""Points (N, 3) -> (N,) bool, True inside the clean shape."""


def _mesh(vertices: np.ndarray, faces: np.ndarray) -> trimesh.Trimesh:
    return trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(faces, np.int64), process=False)


def _fraction(value: float, name: str) -> float:
    if not 0 <= value <= 1:
        raise InputError(f"{name} must lie in [0, 1], got {value!r}")
    return float(value)


def doubled_reversed(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Every face stored twice, the second copy in reverse winding on its own copy of the
    vertices (as ShapeNet's two-sided exports): vertices (2V, 3), faces (2F, 3)."""
    vertices, faces = np.asarray(mesh.vertices), np.asarray(mesh.faces)
    return _mesh(np.vstack([vertices, vertices]), np.vstack([faces, faces[:, ::-1] + len(vertices)]))


def deleted_faces(mesh: trimesh.Trimesh, fraction: float, seed: int = 0) -> trimesh.Trimesh:
    """``round(fraction x F)`` randomly chosen faces removed (scattered one-face holes)."""
    faces = np.asarray(mesh.faces)
    count = round(_fraction(fraction, "fraction") * len(faces))
    drop = np.random.default_rng(seed).choice(len(faces), size=count, replace=False)
    return _mesh(mesh.vertices, np.delete(faces, drop, axis=0))


def flipped_faces(mesh: trimesh.Trimesh, fraction: float = 0.3, seed: int = 0) -> trimesh.Trimesh:
    """``round(fraction x F)`` randomly chosen faces in reverse winding."""
    faces = np.asarray(mesh.faces).copy()
    count = round(_fraction(fraction, "fraction") * len(faces))
    flip = np.random.default_rng(seed).choice(len(faces), size=count, replace=False)
    faces[flip] = faces[flip][:, ::-1]
    return _mesh(mesh.vertices, faces)


def overlapping_parts(parts: Sequence[trimesh.Trimesh]) -> trimesh.Trimesh:
    """Closed parts that overlap, concatenated without merging or cutting anything (the shape is
    their union): vertices and faces of ``parts`` stacked in order."""
    if not parts:
        raise InputError("overlapping_parts needs at least one part")
    offsets = np.cumsum([0] + [len(part.vertices) for part in parts[:-1]])
    vertices = np.vstack([np.asarray(part.vertices) for part in parts])
    faces = np.vstack([np.asarray(part.faces) + offset for part, offset in zip(parts, offsets)])
    return _mesh(vertices, faces)


def csg_parts(shape: Shape) -> list[Shape]:
    """The top-level parts of a CSG solid whose union they are, for meshing them separately.

    A :class:`~isofield.geometry.shapes.Union` gives its children; an intersection of a union
    with cuts (how :mod:`~isofield.geometry.furniture` stands a piece on the floor) gives each
    child of the union intersected with the same cuts. Any other shape is its only part.
    """
    if isinstance(shape, Union):
        return list(shape.children)
    if isinstance(shape, Intersection) and isinstance(shape.children[0], Union):
        cuts = shape.children[1:]
        return [Intersection((part, *cuts), name=f"{shape.name}_{part.name}")
                for part in shape.children[0].children]
    return [shape]


def thin_slatted_chair(index: int = 0, thickness: float = 0.02, width: float = 0.025) -> Shape:
    """A chair whose back is thin slats, a hard case for inside tests (thin parts, narrow gaps):
    the ``index``-th chair with ``back_style="slats"`` of the furniture family (seed 0), with
    its back's thickness and its posts' and slats' width set to ``thickness`` and ``width``
    metres (in the family: 2.8-5 cm and 3.5-6 cm)."""
    slatted = (i for i in range(10_000) if family_parameters("chairs", i, 0).back_style == "slats")
    for _ in range(index):
        next(slatted)
    parameters = family_parameters("chairs", next(slatted), 0)
    return dataclasses.replace(parameters, back_thickness=thickness, back_bar_width=width).shape()


def internal_wall(
    mesh: trimesh.Trimesh, inside: InsideTest, normal: Sequence[float] = (1.0, 0.0, 0.0),
    cells: int = 64,
) -> trimesh.Trimesh:
    """The mesh plus a flat internal wall: the plane through the bounding-box centre with
    ``normal``, triangulated on a grid of ``cells`` x ``cells`` squares spanning the bounding
    box's diagonal, keeping the triangles whose three corners are inside (``inside``). Like the
    caps between a CAD model's parts, the wall reaches to within about a grid cell of the
    shell and its orientation means nothing."""
    axis = np.asarray(normal, np.float64) / np.linalg.norm(normal)
    helper = np.eye(3)[np.argmin(np.abs(axis))]
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    lower, upper = np.asarray(mesh.bounds)
    half = np.linalg.norm(upper - lower) / 2
    steps = np.linspace(-half, half, cells + 1)
    a, b = np.meshgrid(steps, steps, indexing="ij")
    grid = (lower + upper) / 2 + a.reshape(-1, 1) * u + b.reshape(-1, 1) * v
    index = np.arange((cells + 1) ** 2).reshape(cells + 1, cells + 1)
    corner = index[:-1, :-1].reshape(-1)
    squares = np.stack([corner, corner + cells + 1, corner + cells + 2, corner + 1], axis=1)
    triangles = np.vstack([squares[:, [0, 1, 2]], squares[:, [0, 2, 3]]])
    keep = np.all(inside(grid)[triangles], axis=1)
    return overlapping_parts([mesh, _mesh(grid, triangles[keep])])


def internal_triangles(
    mesh: trimesh.Trimesh, signed_distance: Callable[[np.ndarray], np.ndarray], count: int = 200,
    size: float = 0.05, seed: int = 0,
) -> trimesh.Trimesh:
    """The mesh plus ``count`` stray triangles inside the solid, randomly oriented, each with
    corners at distance ``size`` x bounding-box diagonal from its centre. Centres are drawn
    uniformly in the bounding box and kept where ``signed_distance`` (negative inside, at most
    the true distance in magnitude) is below ``-size x diagonal``, so no triangle reaches the
    surface. Fewer than ``count`` are added when the solid is too thin to hold them."""
    rng = np.random.default_rng(seed)
    lower, upper = np.asarray(mesh.bounds)
    radius = size * float(np.linalg.norm(upper - lower))
    centres = rng.uniform(lower, upper, (50 * count, 3))
    centres = centres[signed_distance(centres) < -radius][:count]
    corners = rng.normal(size=(len(centres), 3, 3))
    corners *= radius / np.linalg.norm(corners, axis=2, keepdims=True)
    stray = (centres[:, None] + corners).reshape(-1, 3)
    return overlapping_parts([mesh, _mesh(stray, np.arange(len(stray)).reshape(-1, 3))])
