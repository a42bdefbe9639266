"""Marching cubes on a sampled volume: vertices in the field's frame (or the user's), normals outward."""

from __future__ import annotations

import numpy as np
import trimesh
from skimage.measure import marching_cubes as _skimage_marching_cubes

from isofield.errors import InputError
from isofield.extract.grid import BoundsLike, validate_bounds
from isofield.geometry.normalization import Normalization

INSIDE_SIDES = ("negative", "positive")


def validate_inside(inside: str) -> str:
    """Check ``inside`` ("negative": SDF, "positive": occupancy logits/probabilities) and return it."""
    if inside not in INSIDE_SIDES:
        raise InputError(f"inside must be 'negative' (SDF) or 'positive' (occupancy), got {inside!r}")
    return inside


def crosses_level(volume: np.ndarray, level: float) -> bool:
    """True when ``volume`` has samples on both sides of ``level`` (above it, and at or below it).

    This is marching cubes' own classification (a sample is "above" when ``value > level``),
    so it is exactly the condition for a non-empty mesh.
    """
    above = volume > level
    return bool(above.any() and not above.all())


def marching_cubes(
    volume: np.ndarray,
    bounds: BoundsLike,
    level: float = 0.0,
    inside: str = "negative",
    normalization: Normalization | None = None,
) -> trimesh.Trimesh:
    """Triangulate the ``level`` iso-surface of a sampled volume.

    Args:
        volume: (X, Y, Z) float32 samples; ``volume[i, j, k]`` sits at
            ``lo + (hi - lo) * (i, j, k) / (shape - 1)`` (see :mod:`isofield.extract.grid`).
        bounds: ((xmin, ymin, zmin), (xmax, ymax, zmax)) of the first and last samples.
        level: iso-value (0 for SDF and logits, 0.5 for occupancy probabilities).
        inside: "negative" if the inside has values below ``level`` (SDF), "positive" if above
            (occupancy); faces are wound so that normals point outward in both cases.
        normalization: if given, vertices are mapped with ``normalization.to_user``.

    Returns:
        A ``trimesh.Trimesh`` (process=False: vertices exactly as marching cubes made them,
        degenerate faces removed). It is empty (no vertices) when the volume never crosses
        ``level``; the caller decides whether that is an error.
    """
    inside = validate_inside(inside)
    box = validate_bounds(bounds)
    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim != 3 or min(volume.shape) < 2:
        raise InputError(f"volume must be a 3-D array with at least 2 samples per axis, got shape {volume.shape}")
    if not crosses_level(volume, level):
        return trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), process=False)
    # With our (x, y, z) axis order, skimage's "descent" winding gives normals pointing from low to
    # high values: outward for an SDF. Occupancy (inside high) needs the opposite winding.
    vertices, faces, _, _ = _skimage_marching_cubes(volume, level=float(level), allow_degenerate=False)
    if inside == "positive":
        faces = faces[:, ::-1]
    spacing = (box[1] - box[0]) / (np.asarray(volume.shape) - 1)
    vertices = box[0] + vertices.astype(np.float64) * spacing
    if normalization is not None:
        vertices = normalization.to_user(vertices)
    return trimesh.Trimesh(vertices, np.ascontiguousarray(faces), process=False)
