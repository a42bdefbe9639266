"""What a finished fit leaves in its run directory: mesh, pictures, metrics and the report."""

from __future__ import annotations

import json
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np
import trimesh
from torch import nn

from isofield.config import to_dict
from isofield.data.datasets import warn
from isofield.errors import InputError
from isofield.extract.api import extract_mesh
from isofield.files import write_text_atomic
from isofield.fitting.config import FitConfig
from isofield.fitting.rundir import RunDir
from isofield.geometry.groundtruth import MeshDistance, reference_distance
from isofield.geometry.io import POINT_READ_SUFFIXES, PointCloud, read_geometry, write_mesh
from isofield.geometry.normalization import Normalization
from isofield.methods.base import PreparedInput, grid_levels
from isofield.metrics.surface import evaluate_mesh_against_points, evaluate_meshes
from isofield.nn import as_numpy_field
from isofield.train.loop import TrainResult
from isofield.viz.curves import plot_loss_curves
from isofield.viz.error_map import (ERROR_RESOLUTION, ERROR_VIEWS, ErrorPicture, error_picture, error_values,
                                   write_error_figure)
from isofield.viz.render import light_views, paint_views
from isofield.viz.report import Report
from isofield.viz.slices import SLAB_FRACTION, plot_sdf_slices
from isofield.viz.viewer import VIEW_DIR, view_links, write_view

RENDER_PNG, ERROR_PNG = "render.png", "error.png"

# Metrics shown in the report, with the unit each is given in.
_REPORTED = (
    ("chamfer_l1", "user units"),
    ("chamfer_l1_percent_of_diagonal", "% of bbox diagonal"),
    ("normal_consistency", ""),
    ("f_score", ""),
    ("hausdorff", "user units"),
    ("iou", ""),
)


def canonical_bounds(config: FitConfig) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The extraction box of the canonical frame: [-1 - padding, 1 + padding]^3."""
    half = 1.0 + config.extract.padding
    return (-half,) * 3, (half,) * 3


def reference_geometry(config: FitConfig) -> tuple[Path, trimesh.Trimesh | PointCloud] | None:
    """What to evaluate against: ``config.reference`` (a mesh, or points with or without
    normals), else the input itself (a mesh, or the input points: then the metrics measure the
    fit to the data; an ``.npz`` input holds training samples, not a surface)."""
    source = Path(config.reference or config.input)
    if not config.reference and source.suffix.lower() not in set(POINT_READ_SUFFIXES) - {".npz"}:
        return None
    return source, read_geometry(source)


def evaluate_against(mesh: trimesh.Trimesh, reference: trimesh.Trimesh | PointCloud,
                     reference_distance: MeshDistance | None = None) -> dict[str, Any]:
    """Metrics of the fitted mesh against a reference mesh or point set (user units); a metric
    that cannot be computed is None with its reason in ``skipped`` (normal consistency against
    points without normals). ``reference_distance``: a reference mesh's MeshDistance, when
    built already (for its inside test)."""
    if not isinstance(reference, PointCloud):
        return evaluate_meshes(mesh, reference, ref_distance=reference_distance)
    metrics = evaluate_mesh_against_points(mesh, reference.points, reference.normals)
    if reference.normals is None:
        reason = "the reference has no normals" + (" (all zero in the file)" if reference.note else "")
        metrics["skipped"]["normal_consistency"] = reason
    return metrics


def numpy_field(field: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """The module as a numpy field, evaluated on the device its parameters live on."""
    device = next(field.parameters()).device
    return as_numpy_field(field, device=device)


def run_mesh(field: nn.Module, normalization: Normalization, config: FitConfig,
             resolution: int | None = None) -> tuple[trimesh.Trimesh, Any]:
    """The field's zero level set in user coordinates, and the extraction statistics."""
    return extract_mesh(
        numpy_field(field),
        bounds=canonical_bounds(config),
        resolution=resolution or config.extract.resolution,
        method=config.extract.method,
        normalization=normalization,
    )


def write_outputs(run: RunDir, config: FitConfig, field: nn.Module, data: PreparedInput,
                  result: TrainResult, found: tuple[Path, trimesh.Trimesh | PointCloud] | None) -> dict[str, Any]:
    """Mesh, loss curves, slices, render, metrics and ``report.html``; returns the metrics.
    ``found``: the reference as :func:`reference_geometry` read it (before training). After
    the extraction, the mesh's metrics and pictures (:func:`_mesh_measures`,
    :func:`_mesh_pictures`) run in a second thread beside the field's figures; the calling
    thread then writes the 3-D view (:func:`_write_mesh_view`)."""
    timings = {"training": result.elapsed}
    start = time.perf_counter()
    try:
        mesh, stats = run_mesh(field, data.normalization, config)
    except InputError as exc:
        raise InputError(f"{run.root}: no surface could be extracted ({exc})") from None
    write_mesh(mesh, run.mesh_path)
    timings["mesh extraction"] = time.perf_counter() - start

    reference_path, reference = found if found else (None, None)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="isofield-mesh-outputs") as worker:
        # the mesh's measures and pictures (NumPy, PIL, libigl) beside the field's figures
        # (torch, matplotlib), then the 3-D view (plotly) here, to even the two threads' work;
        # a reference mesh's distances are built once, for the metrics, slices and colours
        surface = worker.submit(MeshDistance, reference) if isinstance(reference, trimesh.Trimesh) else None
        measures = worker.submit(_mesh_measures, mesh, reference, surface)
        pictures = worker.submit(_mesh_pictures, run, mesh, measures)
        figures = _field_figures(run, config, field, surface, data.normalization,
                                 input_points(config, found))
        metrics, distance = measures.result()
        _write_mesh_view(run, mesh, reference_path, reference, distance, metrics)
        error = pictures.result()
    if metrics:
        write_text_atomic(run.metrics_path, json.dumps(metrics, indent=2) + "\n")
    figures.append((run.root / RENDER_PNG, f"The extracted mesh ({run.mesh_path.name}), front and back."))
    if error is not None:
        write_error_figure(error, run.root / ERROR_PNG)
        figures.append((run.root / ERROR_PNG,
                        f"The mesh coloured by its distance to {reference_path.name}, in % of the reference's "
                        f"bounding-box diagonal (scale to the 99th percentile, {error.top:.3g} %)."))
    timings["metrics, pictures and 3-D view"] = time.perf_counter() - start

    report = Report(f"isofield fit: {Path(config.input).name} ({config.method}, preset {config.preset})",
                    subtitle=data.description)
    levels = grid_levels(field)
    summary = {
        "steps": result.step,
        "stopped because": result.reason.value,
        "steps per second": result.steps_per_second,
        "schedule position": (f"{100 * result.progress:.0f}% of the run's limit"
                              + ("" if result.progress >= 1 else ": stopped before the end of its schedule")),
        **({} if levels is None else {"grid levels active": f"{levels[0]} of {levels[1]}"}),
        "mesh": f"{run.mesh_path.name}: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces, "
                f"watertight: {mesh.is_watertight}",
        "extraction": f"{config.extract.method} {config.extract.resolution}^3, "
                      f"{stats.points_evaluated} field evaluations ({100 * stats.fraction:.1f}% of dense)",
    }
    summary.update({f"final loss {k}": v for k, v in result.losses.items()})
    report.add_metrics("Run", summary)
    if metrics:
        report.add_metrics(f"Against {reference_path.name} ({metrics['protocol']['name']}, "
                           f"{metrics['protocol']['n_points']} points)", _shown_metrics(metrics))
    report.add_links("Interactive 3-D view" + (" (coloured by the distance to the reference)" if metrics else ""),
                     view_links(run.root))
    report.add_closing(figures, timings, to_dict(config)).write(run.report_path)
    return metrics


def _shown_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The reported metrics by label; one that was skipped reads "n/a — <reason>"."""
    shown = {}
    for key, unit in _REPORTED:
        label = f"{key} ({unit})" if unit else key
        if metrics.get(key) is not None:
            shown[label] = metrics[key]
        elif key in metrics.get("skipped", {}):
            shown[label] = f"n/a — {metrics['skipped'][key]}"
    return shown


def _field_figures(run: RunDir, config: FitConfig, field: nn.Module,
                   surface: Future | None, normalization: Normalization,
                   points: np.ndarray | None) -> list[tuple[Path, str]]:
    """loss.png and slices.png (with the input ``points`` (M, 3, user units) near each plane,
    when the input is a point cloud, and the reference mesh's zero level when ``surface``, the
    future of its MeshDistance, is given), with their captions."""
    figures = []
    loss_png = run.root / "loss.png"
    plot_loss_curves(run.log_path, loss_png, title=f"{config.method}: loss terms")
    figures.append((loss_png, "Loss terms per step (log scale)."))

    slices_png = run.root / "slices.png"
    reference = _reference_sdf(surface.result() if surface else None, normalization)
    plot_sdf_slices(
        numpy_field(field), slices_png, bounds=canonical_bounds(config),
        title="Learned SDF, canonical frame (black: zero level"
              + ("; dashed: reference surface" if reference is not None else "")
              + ("; magenta: input points near the plane)" if points is not None else ")"),
        reference=reference,
        points=None if points is None else normalization.to_canonical(points),
    )
    figures.append((slices_png, "Cross-sections through the centre (planes z, y, x)"
                    + (f"; magenta: the input points within {SLAB_FRACTION:.0%} of the box's side of each plane."
                       if points is not None else ".")))
    return figures


def _mesh_measures(mesh: trimesh.Trimesh, reference: trimesh.Trimesh | PointCloud | None,
                   surface: Future | None) -> tuple[dict[str, Any], Callable[[np.ndarray], np.ndarray] | None]:
    """The mesh's metrics against the reference ({} without one) and the distance to the
    reference (points (N, 3) -> (N,), user units; None without one): a reference mesh's from
    ``surface``, the future of its MeshDistance, a point set's from its surfels."""
    if reference is None:
        return {}, None
    if isinstance(reference, PointCloud):
        return evaluate_against(mesh, reference), reference_distance(reference.points)
    distance = surface.result()
    return evaluate_against(mesh, reference, distance), distance.unsigned


def _mesh_pictures(run: RunDir, mesh: trimesh.Trimesh, measures: Future) -> ErrorPicture | None:
    """render.png and, with a reference (``measures``: :func:`_mesh_measures`' future), the
    tiles of error.png: the mesh coloured by its distance to it (the colour bar is a matplotlib
    figure, drawn by the caller). No torch and no matplotlib figure (only its colour maps): it
    runs beside the field's figures."""
    lit = light_views(mesh, ERROR_VIEWS, ERROR_RESOLUTION)  # render.png's and error.png's
    paint_views(lit, run.root / RENDER_PNG)
    metrics, distance = measures.result()
    if distance is None:
        return None
    errors = error_values(distance(np.asarray(mesh.vertices)), metrics["reference_bbox_diagonal"])
    return error_picture(mesh, errors, lit)


def _write_mesh_view(run: RunDir, mesh: trimesh.Trimesh, reference_path: Path | None,
                     reference: trimesh.Trimesh | PointCloud | None,
                     distance: Callable[[np.ndarray], np.ndarray] | None, metrics: dict[str, Any]) -> None:
    """``view/mesh.html``: the mesh, coloured by its ``distance`` to the reference when there is
    one, with the reference mesh or points."""
    title = f"{run.mesh_path.name}" + (f" against {reference_path.name}" if reference_path else "")
    if reference is None:
        write_view(run.root / VIEW_DIR / "mesh.html", mesh, title)
        return
    write_view(run.root / VIEW_DIR / "mesh.html", mesh, title, distance, metrics["reference_bbox_diagonal"],
               reference=reference if isinstance(reference, trimesh.Trimesh) else None,
               points=reference.points if isinstance(reference, PointCloud) else None,
               points_name=reference_path.name)


def input_points(config: FitConfig,
                 found: tuple[Path, trimesh.Trimesh | PointCloud] | None) -> np.ndarray | None:
    """The fit's input points (M, 3), user units, when its input is a point cloud (``found``,
    the reference read before training, when that is the input), else None (a mesh, SDF
    samples, or an input that can no longer be read: the slices then go without points, with a
    warning)."""
    source = Path(config.input)
    if found is not None and found[0] == source:
        return found[1].points if isinstance(found[1], PointCloud) else None
    if source.suffix.lower() not in set(POINT_READ_SUFFIXES) - {".npz"}:
        return None
    try:
        geometry = read_geometry(source)
    except InputError as exc:
        warn(f"the slices show no input points: {exc}")
        return None
    return geometry.points if isinstance(geometry, PointCloud) else None


def _reference_sdf(distance: MeshDistance | None,
                   normalization: Normalization) -> Callable[[np.ndarray], np.ndarray] | None:
    """The reference mesh's signed distance in the canonical frame (for the dashed contour);
    None without a reference mesh or when it has no inside (an open sheet)."""
    if distance is None or not distance.has_inside:
        return None
    return distance.signed_in(normalization)
