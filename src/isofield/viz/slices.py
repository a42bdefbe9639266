"""Cross-sections of implicit fields: a field sampled on a plane, drawn as a diverging colour
map centred on the surface level, with isolines, the surface contour in thick black and
optionally a reference surface dashed (e.g. the ground truth), so errors show at a glance, and
optionally input points: those within a thin slab around each plane, as dots.

A field is any callable ``f(points (N, D) float32) -> (N,) float32`` (D = 3, or 2 for the 2-D
sanity problems). Colours: blue inside, red outside, white at the level, grey where the field
is NaN. All drawing uses
matplotlib's object API with the Agg canvas (no display needed).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from isofield.errors import InputError
from isofield.viz.figures import axes_at, save_figure

Field = Callable[[np.ndarray], np.ndarray]

_AXIS_INDEX = {"x": 0, "y": 1, "z": 2}
_DEFAULT_LEVEL = {"sdf": 0.0, "occupancy": 0.5}
_COLORBAR_LABEL = {"sdf": "signed distance", "occupancy": "occupancy"}
# Colour limits clip at this percentile of |value - level| so that one outlier cannot wash out
# the picture.
_ROBUST_PERCENTILE = 99.0
_REFERENCE_COLOR = "#1a9e3a"
_POINTS_COLOR = "#c000c0"  # magenta: apart from the black surface and the green reference
# Points drawn on a plane: those within this fraction of the bounds' longest side of it.
SLAB_FRACTION = 0.01
# At most this many points per plane (an even subset of the slab's points beyond it).
MAX_SLAB_POINTS = 20_000
_NAN_COLOR = "0.6"  # grey where the field is NaN
# The figures' layout in inches: each panel's side (its height follows the plane's aspect) with
# its y labels on the left and a gap on the right, the colour bar and its labels, and above the
# panels their titles (and the figure's), below them their x labels and the legend.
_LAYOUT = {"panel": 3.7, "labels": 0.8, "gap": 0.28, "bar": 0.18, "bar_labels": 0.85,
           "title": 0.4, "suptitle": 0.36, "axis": 0.55, "legend": 0.35}
# Tick labels switch to a power-of-ten offset outside 1e-3..1e4: at most 6 characters ("-0.001",
# "-2500"), which the layout's label room holds.
_TICK_POWERS = (-3, 4)


@dataclass(frozen=True)
class SliceGrid:
    """A field sampled on a regular grid over a rectangle of a plane.

    Attributes:
        values: (R_v, R_u) float32, ``values[j, i]`` at ``(u[i], v[j])``.
        u, v: (R_u,), (R_v,) float64 sample coordinates along the plane's two axes.
        u_name, v_name: names of those axes (``"x"``, ``"y"``, ``"z"``).
        title: a short description of the plane, e.g. ``"z = 0.25"``.
    """

    values: np.ndarray
    u: np.ndarray
    v: np.ndarray
    u_name: str
    v_name: str
    title: str

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """``(u_min, u_max, v_min, v_max)`` of the sampled rectangle (matplotlib ``extent``)."""
        return float(self.u[0]), float(self.u[-1]), float(self.v[0]), float(self.v[-1])


def sample_slice(
    field: Field,
    bounds: object,
    axis: str = "z",
    offset: float = 0.0,
    resolution: int = 256,
) -> SliceGrid:
    """Sample a 3-D ``field`` on the plane ``axis = offset`` inside ``bounds``.

    ``bounds``: (2, 3) ``[[x_min, y_min, z_min], [x_max, y_max, z_max]]`` or one number ``b`` for
    the cube ``[-b, b]^3``. The longer side of the rectangle gets ``resolution`` samples, the
    other as many as keep the samples square. The plane of ``axis = "z"`` is (x, y), of ``"y"``
    is (x, z), of ``"x"`` is (y, z).
    """
    if axis not in _AXIS_INDEX:
        raise InputError(f"axis must be 'x', 'y' or 'z', got {axis!r}")
    low, high = _check_bounds(bounds, 3)
    normal = _AXIS_INDEX[axis]
    plane = [k for k in range(3) if k != normal]
    u, v = _grid_axes(low[plane], high[plane], resolution)
    uu, vv = np.meshgrid(u, v)
    points = np.empty((uu.size, 3), dtype=np.float32)
    points[:, plane[0]], points[:, plane[1]] = uu.ravel(), vv.ravel()
    points[:, normal] = offset
    values = _evaluate(field, points).reshape(uu.shape)
    names = "xyz"
    return SliceGrid(values, u, v, names[plane[0]], names[plane[1]], f"{axis} = {offset:.3g}")


def sample_field_2d(field: Field, bounds: object, resolution: int = 256) -> SliceGrid:
    """Sample a 2-D ``field`` ((N, 2) points) over ``bounds`` ((2, 2) or one number ``b``)."""
    low, high = _check_bounds(bounds, 2)
    u, v = _grid_axes(low, high, resolution)
    uu, vv = np.meshgrid(u, v)
    points = np.stack([uu.ravel(), vv.ravel()], axis=1).astype(np.float32)
    values = _evaluate(field, points).reshape(uu.shape)
    return SliceGrid(values, u, v, "x", "y", "plane")


def plot_sdf_slice(
    field: Field,
    path: str | os.PathLike,
    bounds: object,
    axis: str = "z",
    offset: float = 0.0,
    resolution: int = 256,
    title: str | None = None,
    kind: str = "sdf",
    level: float | None = None,
    reference: Field | None = None,
    reference_level: float | None = None,
) -> SliceGrid:
    """Draw the cross-section ``axis = offset`` of a 3-D field and write it as PNG to ``path``.

    ``kind``: ``"sdf"`` (negative inside; level 0) or ``"occupancy"`` (larger inside; level 0.5
    for probabilities; pass ``level=0`` for logits). ``reference``: a second field whose level
    set (``reference_level``, default ``level``) is drawn dashed green, e.g. the ground truth.
    Returns the sampled grid of ``field``.
    """
    grid = sample_slice(field, bounds, axis, offset, resolution)
    ref_grid = sample_slice(reference, bounds, axis, offset, resolution) if reference is not None else None
    style = _FieldStyle.of(kind, level, reference_level, [grid.values])
    figure, (ax,), bar = _figure_with_axes(1, grid)
    mappable = _draw(ax, grid, style, ref_grid)
    ax.set_title(title or f"{_COLORBAR_LABEL[kind]}, {grid.title}")
    _finish(figure, bar, mappable, style, path, reference is not None)
    return grid


def plot_sdf_slices(
    field: Field,
    path: str | os.PathLike,
    bounds: object,
    offsets: Sequence[float] | None = None,
    resolution: int = 192,
    title: str | None = None,
    kind: str = "sdf",
    level: float | None = None,
    reference: Field | None = None,
    reference_level: float | None = None,
    points: np.ndarray | None = None,
    slab: float | None = None,
) -> list[SliceGrid]:
    """Draw three orthogonal cross-sections (planes z, y, x) side by side with one colour bar.

    ``offsets``: positions ``(z, y, x)`` of the three planes (default: the centre of
    ``bounds``). ``points`` (M, 3), in the field's frame (e.g. the input of a fit): those within
    ``slab`` of a plane (default ``SLAB_FRACTION`` of the bounds' longest side) are drawn on it
    as magenta dots (:func:`slab_points`). Other arguments as in :func:`plot_sdf_slice`.
    Returns the three grids.
    """
    low, high = _check_bounds(bounds, 3)
    centre = 0.5 * (low + high)
    offsets = [centre[2], centre[1], centre[0]] if offsets is None else list(offsets)
    if len(offsets) != 3:
        raise InputError(f"offsets must give 3 positions (z, y, x), got {len(offsets)}")
    axes_names = ("z", "y", "x")
    grids = [sample_slice(field, bounds, a, o, resolution) for a, o in zip(axes_names, offsets)]
    ref_grids = [
        sample_slice(reference, bounds, a, o, resolution) if reference is not None else None
        for a, o in zip(axes_names, offsets)
    ]
    style = _FieldStyle.of(kind, level, reference_level, [g.values for g in grids])
    figure, axes, bar = _figure_with_axes(3, grids[0], suptitle=bool(title))
    half_width = SLAB_FRACTION * float(np.max(high - low)) if slab is None else float(slab)
    for ax, grid, ref_grid, axis, offset in zip(axes, grids, ref_grids, axes_names, offsets):
        mappable = _draw(ax, grid, style, ref_grid)
        if points is not None:
            dots = slab_points(points, axis, offset, half_width)
            ax.scatter(dots[:, 0], dots[:, 1], s=3, c=_POINTS_COLOR, linewidths=0, zorder=5)
        ax.set_title(grid.title)
    if title:
        figure.suptitle(title, y=1.0 - 0.08 / figure.get_size_inches()[1], va="top")
    label = None if points is None else f"input points within {half_width:.2g} of the plane"
    _finish(figure, bar, mappable, style, path, reference is not None, label)
    return grids


def slab_points(points: np.ndarray, axis: str, offset: float, half_width: float) -> np.ndarray:
    """In-plane coordinates (K, 2) of the points (M, 3) within ``half_width`` of the plane
    ``axis = offset``, in the order of :func:`sample_slice`'s (u, v) axes; at most
    ``MAX_SLAB_POINTS`` of them (every k-th beyond that)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputError(f"points must have shape (M, 3), got {points.shape}")
    if axis not in _AXIS_INDEX:
        raise InputError(f"axis must be 'x', 'y' or 'z', got {axis!r}")
    normal = _AXIS_INDEX[axis]
    near = points[np.abs(points[:, normal] - offset) <= half_width]
    near = near[:: max(1, math.ceil(len(near) / MAX_SLAB_POINTS))]
    return near[:, [k for k in range(3) if k != normal]]


def plot_field_2d(
    field: Field,
    path: str | os.PathLike,
    bounds: object = 1.0,
    resolution: int = 256,
    title: str | None = None,
    kind: str = "sdf",
    level: float | None = None,
    reference: Field | None = None,
    reference_level: float | None = None,
    points: np.ndarray | None = None,
) -> SliceGrid:
    """Draw a field over the plane ((N, 2) inputs) like :func:`plot_sdf_slice`.

    ``points``: optional (M, 2) samples (e.g. the training point cloud) drawn as small dots.
    """
    grid = sample_field_2d(field, bounds, resolution)
    ref_grid = sample_field_2d(reference, bounds, resolution) if reference is not None else None
    style = _FieldStyle.of(kind, level, reference_level, [grid.values])
    figure, (ax,), bar = _figure_with_axes(1, grid)
    mappable = _draw(ax, grid, style, ref_grid)
    if points is not None:
        dots = np.asarray(points, dtype=np.float64)
        if dots.ndim != 2 or dots.shape[1] != 2:
            raise InputError(f"points must have shape (M, 2), got {dots.shape}")
        ax.scatter(dots[:, 0], dots[:, 1], s=4, c="black", linewidths=0, zorder=5)
    ax.set_title(title or _COLORBAR_LABEL[kind])
    _finish(figure, bar, mappable, style, path, reference is not None, None if points is None else "points",
            "black")
    return grid


# --- drawing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FieldStyle:
    """How one figure maps values to colours and lines (shared by all its panels)."""

    kind: str
    level: float
    reference_level: float
    half_range: float
    inside_negative: bool

    @classmethod
    def of(
        cls, kind: str, level: float | None, reference_level: float | None, values: Sequence[np.ndarray]
    ) -> "_FieldStyle":
        """Style for ``kind`` with symmetric colour limits from the robust spread of ``values``."""
        if kind not in _DEFAULT_LEVEL:
            raise InputError(f"kind must be 'sdf' or 'occupancy', got {kind!r}")
        level = _DEFAULT_LEVEL[kind] if level is None else float(level)
        reference_level = level if reference_level is None else float(reference_level)
        spread = np.concatenate([np.abs(v.ravel() - level) for v in values])
        spread = spread[np.isfinite(spread)]
        half_range = float(np.percentile(spread, _ROBUST_PERCENTILE)) if spread.size else 1.0
        if not half_range > 0:
            half_range = 1.0
        return cls(kind, level, reference_level, half_range, kind == "sdf")


def _draw(ax: Axes, grid: SliceGrid, style: _FieldStyle, reference: SliceGrid | None) -> object:
    """Colour map, isolines, level contour (and the reference's, dashed) on ``ax``."""
    norm = Normalize(style.level - style.half_range, style.level + style.half_range)
    cmap = colormaps["RdBu_r" if style.inside_negative else "RdBu"].with_extremes(bad=_NAN_COLOR)
    image = ax.imshow(
        grid.values, origin="lower", extent=grid.extent, cmap=cmap, norm=norm, interpolation="bilinear"
    )
    uu, vv = np.meshgrid(grid.u, grid.v)
    isolines = _isoline_levels(style.level, style.half_range)
    if isolines.size:
        ax.contour(uu, vv, grid.values, levels=isolines, colors="0.25", linewidths=0.5, alpha=0.55)
    if _crosses(grid.values, style.level):
        ax.contour(uu, vv, grid.values, levels=[style.level], colors="black", linewidths=2.0)
    if reference is not None and _crosses(reference.values, style.reference_level):
        ax.contour(
            uu, vv, reference.values, levels=[style.reference_level],
            colors=_REFERENCE_COLOR, linewidths=1.8, linestyles="dashed",
        )
    ax.set_xlabel(grid.u_name)
    ax.set_ylabel(grid.v_name)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.ticklabel_format(scilimits=_TICK_POWERS)  # short tick labels: the layout is fixed
    ax.set_autoscale_on(False)  # overlays (points) must not widen the view
    ax.set_aspect("equal")
    return image


def _isoline_levels(level: float, half_range: float) -> np.ndarray:
    """Evenly spaced 'nice' levels (1, 2 or 5 times a power of ten) around ``level``, about
    five on each side, excluding ``level`` itself (drawn separately)."""
    raw = half_range / 5.0
    power = 10.0 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1.0, 2.0, 5.0, 10.0)), key=lambda s: abs(s - raw))
    count = int(half_range // step)
    offsets = step * np.arange(1, count + 1)
    return np.concatenate([level - offsets[::-1], level + offsets])


def _crosses(values: np.ndarray, level: float) -> bool:
    """True when the finite ``values`` lie on both sides of ``level`` (a contour exists)."""
    finite = values[np.isfinite(values)]
    return bool(finite.size and finite.min() < level < finite.max())


def _figure_with_axes(panels: int, grid: SliceGrid, suptitle: bool = False) -> tuple[Figure, list[Axes], Axes]:
    """A figure with ``panels`` axes in a row, sized for the grid's aspect ratio, and the axes
    of their colour bar on the right; room above for the panels' titles (and a figure title
    when ``suptitle``) and below for a legend. Laid out in inches (:data:`_LAYOUT`)."""
    aspect = (grid.v[-1] - grid.v[0]) / max(grid.u[-1] - grid.u[0], 1e-12)
    box = _LAYOUT
    height = box["panel"] * min(max(aspect, 0.4), 2.5)
    column = box["labels"] + box["panel"] + box["gap"]
    top = box["title"] + (box["suptitle"] if suptitle else 0.0)
    bottom = box["legend"] + box["axis"]
    figure = Figure(figsize=(panels * column + box["bar"] + box["bar_labels"], bottom + height + top))
    FigureCanvasAgg(figure)
    axes = [axes_at(figure, index * column + box["labels"], bottom, box["panel"], height) for index in range(panels)]
    bar = axes_at(figure, panels * column, bottom, box["bar"], height)
    return figure, axes, bar


def _finish(
    figure: Figure,
    bar: Axes,
    mappable: object,
    style: _FieldStyle,
    path: str | os.PathLike,
    reference: bool,
    points: str | None = None,
    points_color: str = _POINTS_COLOR,
) -> None:
    """Draw the colour bar in ``bar`` and a legend under the panels (``points``: the label of
    the dots, if any); write the figure as PNG, atomically."""
    label = _COLORBAR_LABEL[style.kind]
    if style.kind == "occupancy":
        label += " (inside > level)"
    figure.colorbar(mappable, cax=bar, label=label)
    bar.ticklabel_format(scilimits=_TICK_POWERS)
    handles = [Line2D([], [], color="black", linewidth=2.0, label=f"surface (level {style.level:g})")]
    if reference:
        label = f"reference surface (level {style.reference_level:g})"
        handles.append(Line2D([], [], color=_REFERENCE_COLOR, linewidth=1.8, linestyle="dashed", label=label))
    if points:
        handles.append(Line2D([], [], color=points_color, marker=".", linestyle="none", label=points))
    width = figure.get_size_inches()[0]
    panels_centre = (width - _LAYOUT["bar"] - _LAYOUT["bar_labels"] + _LAYOUT["labels"] - _LAYOUT["gap"]) / 2
    figure.legend(handles=handles, loc="lower center", ncols=len(handles), frameon=False,
                  bbox_to_anchor=(panels_centre / width, 0.0))
    save_figure(figure, path)


# --- inputs --------------------------------------------------------------------------------


def _check_bounds(bounds: object, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """``(low (dim,), high (dim,))`` from (2, dim) bounds or one half-width number."""
    array = np.asarray(bounds, dtype=np.float64)
    if array.ndim == 0:
        array = np.stack([-np.full(dim, abs(float(array))), np.full(dim, abs(float(array)))])
    if array.shape != (2, dim) or not np.all(np.isfinite(array)) or np.any(array[1] <= array[0]):
        raise InputError(f"bounds must be [[min] * {dim}, [max] * {dim}] with min < max, got {bounds!r}")
    return array[0], array[1]


def _grid_axes(low: np.ndarray, high: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample coordinates along the two sides of the rectangle ``low``-``high`` (square cells)."""
    if not (isinstance(resolution, (int, np.integer)) and 8 <= resolution <= 4096):
        raise InputError(f"resolution must be an integer in 8..4096, got {resolution!r}")
    size = high - low
    counts = np.maximum(np.round(resolution * size / size.max()).astype(int), 2)
    return np.linspace(low[0], high[0], counts[0]), np.linspace(low[1], high[1], counts[1])


def _evaluate(field: Field, points: np.ndarray) -> np.ndarray:
    """``field(points)`` as a float32 (N,) array, or InputError naming what came back."""
    values = np.asarray(field(points), dtype=np.float32)
    if values.shape != (len(points),) and values.shape != (len(points), 1):
        raise InputError(f"field returned shape {values.shape} for {len(points)} points; expected ({len(points)},)")
    return values.reshape(-1)
