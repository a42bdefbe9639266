"""What a finished fit leaves in its run directory: mesh, pictures, metrics and the report."""

from __future__ import annotations

import json
import time
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
from isofield.viz.error_map import ERROR_RESOLUTION, ERROR_VIEWS, error_values, render_error
from isofield.viz.render import LitView, light_views, paint_views
from isofield.viz.report import Report
from isofield.viz.slices import SLAB_FRACTION, plot_sdf_slices
from isofield.viz.viewer import VIEW_DIR, view_links, write_view

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


def evaluate_against(mesh: trimesh.Trimesh, reference: trimesh.Trimesh | PointCloud) -> dict[str, Any]:
    """Metrics of the fitted mesh against a reference mesh or point set (user units); a metric
    that cannot be computed is None with its reason in ``skipped`` (normal consistency against
    points without normals)."""
    if not isinstance(reference, PointCloud):
        return evaluate_meshes(mesh, reference)
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
    ``found``: the reference as :func:`reference_geometry` read it (before training)."""
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
    metrics = evaluate_against(mesh, reference) if reference is not None else {}
    if metrics:
        write_text_atomic(run.metrics_path, json.dumps(metrics, indent=2) + "\n")
    timings["evaluation"] = time.perf_counter() - start

    start = time.perf_counter()
    reference_surface = reference if isinstance(reference, trimesh.Trimesh) else None
    lit = light_views(mesh, ERROR_VIEWS, ERROR_RESOLUTION)  # render.png's and error.png's
    figures = _write_figures(run, config, field, lit, reference_surface, data.normalization,
                             input_points(config, found))
    timings["pictures"] = time.perf_counter() - start
    start = time.perf_counter()
    figures += _write_view(run, mesh, lit, reference_path, reference, metrics)
    timings["3-D view and error picture"] = time.perf_counter() - start

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


def _write_figures(run: RunDir, config: FitConfig, field: nn.Module, lit: list[LitView],
                   reference: trimesh.Trimesh | None, normalization: Normalization,
                   points: np.ndarray | None) -> list[tuple[Path, str]]:
    """loss.png, slices.png (with the input ``points`` (M, 3, user units) near each plane, when
    the input is a point cloud) and render.png (the mesh's ``lit`` views), with their captions."""
    figures = []
    loss_png = run.root / "loss.png"
    plot_loss_curves(run.log_path, loss_png, title=f"{config.method}: loss terms")
    figures.append((loss_png, "Loss terms per step (log scale)."))

    slices_png = run.root / "slices.png"
    plot_sdf_slices(
        numpy_field(field), slices_png, bounds=canonical_bounds(config),
        title="Learned SDF, canonical frame (black: zero level"
              + ("; dashed: reference surface" if reference is not None else "")
              + ("; magenta: input points near the plane)" if points is not None else ")"),
        reference=_reference_sdf(reference, normalization),
        points=None if points is None else normalization.to_canonical(points),
    )
    figures.append((slices_png, "Cross-sections through the centre (planes z, y, x)"
                    + (f"; magenta: the input points within {SLAB_FRACTION:.0%} of the box's side of each plane."
                       if points is not None else ".")))

    render_png = run.root / "render.png"
    paint_views(lit, render_png)
    figures.append((render_png, f"The extracted mesh ({run.mesh_path.name}), front and back."))
    return figures


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


def _write_view(run: RunDir, mesh: trimesh.Trimesh, lit: list[LitView], reference_path: Path | None,
                reference: trimesh.Trimesh | PointCloud | None,
                metrics: dict[str, Any]) -> list[tuple[Path, str]]:
    """``view/mesh.html`` (the mesh with the reference mesh or points) and, with a reference,
    ``error.png`` (the mesh's ``lit`` views coloured by its distance to it); returns that
    figure, if any."""
    title = f"{run.mesh_path.name}" + (f" against {reference_path.name}" if reference_path else "")
    if reference is None:
        write_view(run.root / VIEW_DIR / "mesh.html", mesh, title)
        return []
    distance = reference_distance(reference.points if isinstance(reference, PointCloud) else reference)
    diagonal = metrics["reference_bbox_diagonal"]
    write_view(run.root / VIEW_DIR / "mesh.html", mesh, title, distance, diagonal,
               reference=reference if isinstance(reference, trimesh.Trimesh) else None,
               points=reference.points if isinstance(reference, PointCloud) else None,
               points_name=reference_path.name)
    error_png = run.root / "error.png"
    top = render_error(mesh, error_values(distance(np.asarray(mesh.vertices)), diagonal), error_png, lit=lit)
    return [(error_png, f"The mesh coloured by its distance to {reference_path.name}, in % of the "
                   f"reference's bounding-box diagonal (scale to the 99th percentile, {top:.3g} %).")]


def _reference_sdf(reference: trimesh.Trimesh | None,
                   normalization: Normalization) -> Callable[[np.ndarray], np.ndarray] | None:
    """The reference mesh's signed distance in the canonical frame (for the dashed contour);
    None without a reference or when it has no inside (an open sheet)."""
    if reference is None:
        return None
    distance = MeshDistance(reference)
    return distance.signed_in(normalization) if distance.has_inside else None
