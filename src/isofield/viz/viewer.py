"""The interactive 3-D view of a run: a plotly page (WebGL; drag to rotate, scroll to zoom,
hover for coordinates, click a legend entry to show or hide a layer) that opens offline from
``file://``.

A page loads plotly.js from a file beside it (``PLOTLY_JS``, 4.8 MB, a relative ``<script
src>``), written once per folder, so the pages of one run share one copy and nothing is fetched
from the network. What a page embeds is capped so that it stays a few MB: a mesh over
``max_faces`` faces is decimated (fast-simplification's quadric edge collapse, which also takes
open and non-manifold meshes) and a point set over ``max_points`` is subsampled; arrays go in as
float32 / int32 (plotly writes them base64-encoded).

Given the reference's unsigned distance, the mesh is coloured by it in % of the reference's
bounding-box diagonal, with the colour map and range of :mod:`isofield.viz.error_map`.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import fast_simplification
import numpy as np
import plotly.graph_objects as go
import plotly.offline
import trimesh

from isofield.errors import InputError
from isofield.files import write_text_atomic
from isofield.viz.error_map import ERROR_LABEL, error_range, error_values

VIEW_DIR = "view"
PLOTLY_JS = "plotly.min.js"
MAX_FACES = 100_000
MAX_POINTS = 20_000
MESH_COLOR = "#b3bfd9"
REFERENCE_COLOR = "#ccc7b8"
POINTS_COLOR = "#1f4e9e"
_PLOTLY_COLORMAP = "Viridis"  # error_map.ERROR_COLORMAP under its plotly name
# y up, seen from azimuth 30°, elevation 20° like the still renders (geometry.raster.DEFAULT_VIEW).
_CAMERA = {"up": {"x": 0, "y": 1, "z": 0}, "eye": {"x": 0.94, "y": 0.68, "z": 1.63}}


@dataclass(frozen=True)
class ViewPage:
    """What :func:`write_view` wrote.

    Attributes:
        path: the page.
        vertices, faces: counts of the mesh as embedded (after decimation).
        source_faces: faces of the mesh given.
        points: points embedded (after subsampling; 0 without points).
        error_top: top of the colour scale (% of the reference's diagonal), None when uncoloured.
    """

    path: Path
    vertices: int
    faces: int
    source_faces: int
    points: int
    error_top: float | None


def write_view(
    path: str | os.PathLike,
    mesh: trimesh.Trimesh,
    title: str,
    distance: Callable[[np.ndarray], np.ndarray] | None = None,
    diagonal: float | None = None,
    reference: trimesh.Trimesh | None = None,
    points: np.ndarray | None = None,
    points_name: str = "points",
    max_faces: int = MAX_FACES,
    max_points: int = MAX_POINTS,
) -> ViewPage:
    """Write the page ``path`` (``.html``) showing ``mesh`` and, as layers hidden until clicked
    in the legend, the ``reference`` mesh and the ``points`` (N, 3), named ``points_name``; all
    in one frame.

    ``distance``: the reference's unsigned distance, points (N, 3) -> (N,) in the mesh's units;
    with ``diagonal`` (the reference's bounding-box diagonal, same units) the mesh is coloured by
    it in % of the diagonal. Writes ``PLOTLY_JS`` beside the page unless this plotly's copy is
    there already.
    """
    path = Path(path)
    if path.suffix.lower() != ".html":
        raise InputError(f"{path}: the 3-D view is an HTML page; give a .html file name")
    if (distance is None) != (diagonal is None):
        raise InputError("write_view: give both distance and diagonal, or neither")
    vertices, faces = decimated(mesh, max_faces)
    traces, lines = [], [f"{len(faces):,} faces, {len(vertices):,} vertices"
                         + (f" (decimated from {len(mesh.faces):,} faces)" if len(faces) < len(mesh.faces) else "")]
    top = None
    if distance is not None:
        values = error_values(distance(vertices), diagonal)
        top = error_range(values)
        traces.append(_mesh_trace(vertices, faces, "mesh", intensity=values, top=top))
        lines.append(f"colour: distance to the reference, 0 to {top:.3g} % of its bbox diagonal "
                     f"(max {values.max():.3g} %)")
    else:
        traces.append(_mesh_trace(vertices, faces, "mesh"))
    if reference is not None:
        ref_vertices, ref_faces = decimated(reference, max_faces)
        traces.append(_mesh_trace(ref_vertices, ref_faces, "reference", color=REFERENCE_COLOR, opacity=0.5,
                                  visible="legendonly"))
    shown_points = 0
    if points is not None:
        chosen = subsampled(points, max_points)
        shown_points = len(chosen)
        traces.append(go.Scatter3d(
            x=chosen[:, 0], y=chosen[:, 1], z=chosen[:, 2], mode="markers", name=f"{points_name} ({shown_points:,})",
            marker={"size": 1.5, "color": POINTS_COLOR}, visible="legendonly", hoverinfo="skip"))
    figure = go.Figure(traces)
    figure.update_layout(
        title={"text": f"{html.escape(title)}<br><sub>{'; '.join(lines)}</sub>", "x": 0.01},
        scene={"aspectmode": "data", "camera": _CAMERA}, legend={"x": 0.01, "y": 0.9},
        margin={"l": 0, "r": 0, "t": 70, "b": 0},
    )
    page = figure.to_html(include_plotlyjs=PLOTLY_JS, include_mathjax=False, full_html=True,
                          default_height="95vh", config={"displaylogo": False, "responsive": True})
    write_text_atomic(path, page)
    library, script = path.parent / PLOTLY_JS, plotly.offline.get_plotlyjs()
    if not library.is_file() or library.stat().st_size != len(script.encode("utf-8")):
        write_text_atomic(library, script)
    return ViewPage(path, len(vertices), len(faces), len(mesh.faces), shown_points, top)


def view_links(run_root: str | os.PathLike) -> list[tuple[Path, str]]:
    """``(path relative to run_root, link text)`` of each page in ``run_root/VIEW_DIR``, by name,
    for :meth:`isofield.viz.report.Report.add_links`."""
    pages = sorted((Path(run_root) / VIEW_DIR).glob("*.html"))
    return [(Path(VIEW_DIR) / page.name, f"open the 3D view: {page.stem}") for page in pages]


def decimated(mesh: trimesh.Trimesh, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) float32 and faces (F, 3) int32 of ``mesh`` with at most ``max_faces``
    faces (quadric edge collapse where it has more)."""
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if len(faces) == 0:
        raise InputError("3-D view: the mesh has no faces")
    if max_faces < 1:
        raise InputError(f"3-D view: max_faces must be >= 1, got {max_faces}")
    if len(faces) > max_faces:
        vertices, faces = fast_simplification.simplify(vertices, faces.astype(np.int32), target_count=max_faces)
    return vertices.astype(np.float32), faces.astype(np.int32)


def subsampled(points: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """(min(N, max_points), 3) float32: ``points`` (N, 3), or a seeded random subset of them."""
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputError(f"3-D view: points must have shape (N, 3), got {points.shape}")
    if len(points) > max_points:
        points = points[np.sort(np.random.default_rng(seed).choice(len(points), max_points, replace=False))]
    return points


def _mesh_trace(vertices: np.ndarray, faces: np.ndarray, name: str, color: str = MESH_COLOR,
                opacity: float = 1.0, intensity: np.ndarray | None = None, top: float | None = None,
                visible: bool | str = True) -> go.Mesh3d:
    """A Mesh3d trace of vertices (V, 3) and faces (F, 3): plain ``color``, or coloured by
    ``intensity`` (V,) on [0, ``top``]."""
    options: dict = {"color": color}
    if intensity is not None:
        options = {"intensity": intensity.astype(np.float32), "intensitymode": "vertex",
                   "colorscale": _PLOTLY_COLORMAP, "cmin": 0.0, "cmax": top,
                   "colorbar": {"title": {"text": ERROR_LABEL.replace(" (", "<br>("), "side": "right"}}}
    return go.Mesh3d(
        x=vertices[:, 0], y=vertices[:, 1], z=vertices[:, 2], i=faces[:, 0], j=faces[:, 1], k=faces[:, 2],
        name=name, showlegend=True, opacity=opacity, flatshading=False,
        visible=visible, **options)
