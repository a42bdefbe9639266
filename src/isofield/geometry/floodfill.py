"""Inside/outside by flood fill of a voxelised surface: a sign that does not trust face windings.

The triangles are rasterised into a voxel grid over their padded bounding box (every voxel that
holds a point of the surface is marked), the free voxels connected to the grid's border (6-
connectivity, scipy.ndimage) are outside, and the free voxels not reached are inside. Face
orientation, repeated faces, internal walls and overlapping parts do not matter; a hole wider
than about a voxel lets the outside leak in (the caller checks for that).

A point takes the label of its voxel; for points in a surface voxel (the band, within about a
voxel of a triangle) :meth:`FloodFill.nearest_free` gives the label of the nearest free voxel.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import ndimage

FLOOD_RESOLUTION = 256
"""Voxels along the longest side of the grid (the surface's bounding box plus the border)."""

BORDER = 2
"""Free voxels between the surface's bounding box and the grid's border."""

COVER = 1.25
"""Lattice points per voxel length along a triangle's longest edge. Every point of a triangle is
then within 1 / (COVER sqrt(3)) < 1/2 voxel of a lattice point, so the surface voxels leave no
6-connected gap through the surface."""

BAND_REACH = 2
"""How many voxels away (per axis) a band point looks for a free voxel."""

OUTSIDE, INSIDE, SURFACE = 0, 1, 2
"""Voxel labels."""

UNDECIDED = -1
"""Label of a band point without a free voxel within reach."""

_LATTICE_CHUNK = 1 << 21
"""Lattice points rasterised at once (about 50 MB of float64 temporaries)."""


class FloodFill:
    """Voxel labels (outside / inside / surface) of a set of triangles.

    Attributes:
        origin: (3,) float64, the grid's lower corner; size: a voxel's side length.
        labels: (X, Y, Z) int8 :data:`OUTSIDE`, :data:`INSIDE` or :data:`SURFACE`.
    """

    def __init__(
        self, triangles: np.ndarray, resolution: int = FLOOD_RESOLUTION, closing: int = 0
    ) -> None:
        """``triangles``: corners (T, 3, 3) float64, T >= 1. ``closing``: the surface voxels are
        grown by this many voxels (6-connected dilation) before the flood, which seals holes up
        to about twice as many voxels wide and thickens the band as much."""
        corners = np.asarray(triangles, dtype=np.float64)
        lower, upper = corners.reshape(-1, 3).min(axis=0), corners.reshape(-1, 3).max(axis=0)
        extent = upper - lower
        border = BORDER + closing
        self.size = max(float(extent.max()), 1e-300) / (resolution - 2 * border)
        self.origin = lower - border * self.size
        self.reach = BAND_REACH + closing  # voxels searched by nearest_free
        shape = np.ceil(extent / self.size).astype(int) + 2 * border + 1
        surface = _surface_voxels(corners, self.origin, self.size, tuple(shape))
        if closing:
            surface = ndimage.binary_dilation(surface, iterations=closing)
        regions, _ = ndimage.label(~surface)
        outside = regions == regions[0, 0, 0]
        labels = np.full(surface.shape, INSIDE, dtype=np.int8)
        labels[outside] = OUTSIDE
        labels[surface] = SURFACE
        self.labels = labels

    @property
    def inside_volume(self) -> float:
        """Volume of the inside voxels (cubic input units)."""
        return float(np.count_nonzero(self.labels == INSIDE)) * self.size**3

    def _cells(self, points: np.ndarray) -> np.ndarray:
        """Voxel indices (N, 3) of points (N, 3) (beyond the grid for points outside it)."""
        return np.floor((points - self.origin) / self.size).astype(np.intp)

    def _label_at(self, cells: np.ndarray) -> np.ndarray:
        """(N,) labels of voxels (N, 3); :data:`OUTSIDE` beyond the grid."""
        in_grid = np.all((cells >= 0) & (cells < self.labels.shape), axis=1)
        labels = np.full(len(cells), OUTSIDE, dtype=np.int8)
        inner = cells[in_grid]
        labels[in_grid] = self.labels[inner[:, 0], inner[:, 1], inner[:, 2]]
        return labels

    def voxel_labels(self, points: np.ndarray) -> np.ndarray:
        """(N,) int8 label of the voxel of each point (N, 3); :data:`OUTSIDE` beyond the grid."""
        return self._label_at(self._cells(points))

    def nearest_free(self, points: np.ndarray) -> np.ndarray:
        """(M,) label (:data:`OUTSIDE` / :data:`INSIDE`) of the free voxel whose centre is
        nearest to each point (M, 3) among the voxels within ``reach`` (:data:`BAND_REACH` +
        ``closing``) of its own; :data:`UNDECIDED` if none is free."""
        cells = self._cells(points)
        best = np.full(len(points), UNDECIDED, dtype=np.int8)
        nearest = np.full(len(points), np.inf)
        reach = range(-self.reach, self.reach + 1)
        for offset in itertools.product(reach, reach, reach):
            neighbour = cells + np.asarray(offset)
            label = self._label_at(neighbour)
            centre = self.origin + (neighbour + 0.5) * self.size
            distance = np.einsum("ij,ij->i", points - centre, points - centre)
            better = (label != SURFACE) & (distance < nearest)
            best[better], nearest[better] = label[better], distance[better]
        return best


def _lattice(n: int) -> np.ndarray:
    """Barycentric weights (M, 3) of the points i/n, j/n of a triangle, i + j <= n."""
    i, j = np.triu_indices(n + 1)
    i, j = i.astype(np.float64), (j - i).astype(np.float64)
    return np.stack([1 - (i + j) / n, i / n, j / n], axis=1)


def _surface_voxels(
    corners: np.ndarray, origin: np.ndarray, size: float, shape: tuple[int, int, int]
) -> np.ndarray:
    """(X, Y, Z) bool grid marking the voxels that hold a lattice point of the triangles
    (T, 3, 3); each triangle gets ``ceil(COVER x longest edge / size)`` lattice steps per edge."""
    grid = np.zeros(shape, dtype=bool)
    edges = corners - np.roll(corners, 1, axis=1)
    longest = np.sqrt(np.einsum("tkd,tkd->tk", edges, edges).max(axis=1))
    steps = np.maximum(1, np.ceil(COVER * longest / size)).astype(int)
    for n in np.unique(steps):
        group = corners[steps == n]
        weights = _lattice(int(n))
        per_chunk = max(1, _LATTICE_CHUNK // len(weights))
        for start in range(0, len(group), per_chunk):
            points = np.einsum("mk,tkd->tmd", weights, group[start : start + per_chunk])
            cells = np.floor((points.reshape(-1, 3) - origin) / size).astype(np.intp)
            np.clip(cells, 0, np.asarray(shape) - 1, out=cells)
            grid[cells[:, 0], cells[:, 1], cells[:, 2]] = True
    return grid
