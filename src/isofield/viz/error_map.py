"""Distances to a reference as colours, shared by the still picture (:func:`render_error`) and
the interactive view (:mod:`isofield.viz.viewer`): one colour map, one rule for its range.

Values are per-vertex distances to the reference in % of the reference's bounding-box
diagonal (the unit of ``chamfer_l1_percent_of_diagonal``). The scale runs from 0 to the
``ERROR_PERCENTILE``-th percentile, so that a few far-off vertices do not wash out the rest;
larger values take the top colour.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import trimesh
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from isofield.errors import InputError
from isofield.viz.render import LitView, light_views, paint_views
from isofield.viz.figures import axes_at, save_figure

ERROR_COLORMAP = "viridis"  # the same map is plotly's "Viridis"
ERROR_PERCENTILE = 99.0
ERROR_LABEL = "distance to the reference (% of its bbox diagonal)"
ERROR_VIEWS = ((30.0, 20.0), (210.0, 20.0))
ERROR_RESOLUTION = (448, 448)


def error_values(distance: np.ndarray, diagonal: float) -> np.ndarray:
    """Distances (N,) in user units as % (N,) float64 of the reference's bbox ``diagonal``."""
    distance = np.asarray(distance, dtype=np.float64)
    if distance.ndim != 1 or not np.all(np.isfinite(distance)) or np.any(distance < 0):
        raise InputError("error colours: distances must be a 1-D array of finite values >= 0")
    if not (np.isfinite(diagonal) and diagonal > 0):
        raise InputError(f"error colours: the reference's bbox diagonal must be > 0, got {diagonal!r}")
    return 100.0 * distance / float(diagonal)


def error_range(values: np.ndarray) -> float:
    """Top of the colour scale for ``values`` (N,) >= 0: their ``ERROR_PERCENTILE``-th
    percentile, or their maximum where that is 0, or 1 where every value is 0."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise InputError("error colours: no values")
    top = float(np.percentile(values, ERROR_PERCENTILE))
    if top <= 0:
        top = float(values.max())
    return top if top > 0 else 1.0


def error_colors(values: np.ndarray, top: float) -> np.ndarray:
    """RGB colours (N, 3) float64 in [0, 1] of ``values`` (N,) on the scale [0, ``top``]."""
    return colormaps[ERROR_COLORMAP](np.clip(np.asarray(values, dtype=np.float64) / top, 0.0, 1.0))[:, :3]


def render_error(
    mesh: trimesh.Trimesh,
    values: np.ndarray,
    path: str | os.PathLike,
    views: Sequence[tuple[float, float]] = ERROR_VIEWS,
    resolution: tuple[int, int] = ERROR_RESOLUTION,
    lit: Sequence[LitView] | None = None,
) -> float:
    """Write ``path`` (PNG): ``mesh`` rendered from ``views`` with its vertices coloured by
    ``values`` (V,) (% of the diagonal, see :func:`error_values`), and a colour bar. Returns the
    top of the scale (:func:`error_range`). ``lit``: the mesh's views already rasterised and lit
    by :func:`~isofield.viz.render.light_views` (they replace ``views`` and ``resolution``)."""
    picture = error_picture(mesh, values, lit if lit is not None else light_views(mesh, views, resolution))
    write_error_figure(picture, path)
    return picture.top


@dataclass(frozen=True)
class ErrorPicture:
    """The error picture's tiles, before its colour bar: ``image`` (H, W, 3) uint8, ``top``
    of the scale, and whether some values lie above it (``clipped``)."""

    image: np.ndarray
    top: float
    clipped: bool


def error_picture(mesh: trimesh.Trimesh, values: np.ndarray, lit: Sequence[LitView]) -> ErrorPicture:
    """The ``lit`` views of ``mesh`` painted with its vertices coloured by ``values`` (V,) (%
    of the diagonal). No matplotlib figure (only its colour map): it may run beside matplotlib
    work in another thread."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(mesh.vertices),):
        raise InputError(f"render_error: need one value per vertex ({len(mesh.vertices)}), got shape {values.shape}")
    top = error_range(values)
    return ErrorPicture(paint_views(lit, vertex_color=error_colors(values, top)), top, bool(values.max() > top))


def write_error_figure(picture: ErrorPicture, path: str | os.PathLike) -> None:
    """Write ``path`` (PNG): the picture's tiles, pixel for pixel, and a colour bar from 0 to
    its top on their right."""
    dpi = 100
    height, width = np.asarray(picture.image.shape[:2]) / dpi       # inches
    figure = Figure(figsize=(width + 1.3, height))
    axes = axes_at(figure, 0.0, 0.0, width, height)
    axes.imshow(picture.image, interpolation="nearest")
    axes.set_axis_off()
    mappable = ScalarMappable(Normalize(0.0, picture.top), colormaps[ERROR_COLORMAP])
    bar = axes_at(figure, width + 0.12, 0.1 * height, 0.15, 0.8 * height)
    figure.colorbar(mappable, cax=bar, label=ERROR_LABEL, extend="max" if picture.clipped else "neither")
    save_figure(figure, path, dpi=dpi)
