"""What a finished ShapeGF run draws: the loss curve, training shapes auto-encoded (input,
reconstruction, 10k-point upsampling), a Langevin trajectory over the noise levels, generated
shapes, the surface meshed from the field, and ``report.html``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from isofield.data.splits import reconstruction_indices
from isofield.metrics.surface import chamfer_deepsdf
from isofield.config import to_dict
from isofield.geometry.groundtruth import PointSetDistance
from isofield.geometry.io import write_mesh
from isofield.shapegf.model import GradientFieldModel
from isofield.shapegf.rundir import ShapeGFRun
from isofield.train.loop import TrainResult
from isofield.viz.curves import plot_loss_curves
from isofield.viz.points import camera_for, render_points
from isofield.viz.render import render_mesh, tile_images, write_png
from isofield.viz.report import Report
from isofield.viz.viewer import VIEW_DIR, view_links, write_view

VIEW = (35.0, 20.0)
TILE = (256, 256)
SHOWN_SHAPES = 4
UPSAMPLED_POINTS = 10_000
GENERATED_SHAPES = 16
TRAJECTORY_COLUMNS = 6


def write_final_outputs(run: ShapeGFRun, model: GradientFieldModel, clouds: torch.Tensor,
                        result: TrainResult, timings: dict[str, float]) -> None:
    """Every picture of the run and its report; ``clouds`` (S, P, 3) are the training points."""
    figures: list[tuple[str, str]] = []
    start = time.perf_counter()
    plot_loss_curves(run.log_path, run.figure_path("loss"), title="denoising score matching")
    figures.append(("loss.png", "Loss: σ²-weighted denoising score matching over all levels "
                    "(total), and over the shapes drawn at the smaller / larger half of the levels."))
    rows = write_reconstructions(run, model, clouds)
    figures.append(("reconstructions.png", "Training shapes: encoder input (top), Langevin "
                    "reconstruction from the code with as many points (middle), 10k points "
                    "(bottom, upsampling). CD: Chamfer x10^4 against the input."))
    write_trajectory(run, model, clouds[:1])
    figures.append(("trajectory.png", "Annealed Langevin dynamics: the points of one shape "
                    "from noise to the surface, after the named noise levels."))
    if model.latent_model is not None:
        write_generated(run, model)
        figures.append(("generated.png", f"{GENERATED_SHAPES} shapes generated from the "
                        f"{model.config.latent.kind} latent model."))
    write_surface(run, model, clouds[0])
    figures.append(("surface.png", "The surface of training shape 0 meshed from the field "
                    f"(the shell d = {model.config.surface.level:g} of the distance estimate "
                    "σ²‖g‖), next to its points."))
    timings["pictures"] = time.perf_counter() - start
    _write_report(run, model, result, rows, figures, timings)


def write_reconstructions(run: ShapeGFRun, model: GradientFieldModel,
                          clouds: torch.Tensor) -> list[dict[str, Any]]:
    """``reconstructions.png``; returns a row per shown shape with its Chamfer x10^4."""
    indices = reconstruction_indices(len(clouds), SHOWN_SHAPES)
    inputs = clouds[indices, :model.config.input_points]
    codes = model.encode(inputs)
    reconstructed = model.sample(codes, inputs.shape[1], seed=0).points.cpu().numpy()
    upsampled = model.sample(codes, UPSAMPLED_POINTS, seed=1).points.cpu().numpy()
    rows, tiles = [], [[], [], []]
    labels: list[list[str]] = [[], [], []]
    for column, index in enumerate(indices):
        truth = inputs[column].numpy()
        cd = 1e4 * chamfer_deepsdf(reconstructed[column], truth)
        rows.append({"index": index, "shape": model.shapes[index].ref.key, "CD x10^4": cd})
        camera = camera_for([truth], TILE, VIEW)
        for row, (cloud, label) in enumerate([(truth, f"#{index} input ({len(truth)})"),
                                              (reconstructed[column], f"reconstruction, CD {cd:.1f}"),
                                              (upsampled[column], f"{UPSAMPLED_POINTS} points")]):
            tiles[row].append(render_points(cloud, camera, radius_px=1.2 if len(cloud) > 5000 else 1.5))
            labels[row].append(label)
    write_png(tile_images(sum(tiles, []), len(indices), sum(labels, [])), run.figure_path("reconstructions"))
    return rows


def write_trajectory(run: ShapeGFRun, model: GradientFieldModel, cloud: torch.Tensor) -> None:
    """``trajectory.png``: one shape's points from the start through the levels. cloud (1, P, 3)."""
    codes = model.encode(cloud[:, :model.config.input_points])
    trajectory = model.sample(codes, 2048, seed=0, record=True).trajectory
    names = ["start"] + [f"sigma {sigma:.3g}" for sigma in model.sigmas]
    if model.config.langevin.denoise:
        names.append("denoised")
    shown = reconstruction_indices(len(trajectory), TRAJECTORY_COLUMNS)
    camera = camera_for([cloud[0].numpy()], TILE, VIEW)
    tiles = [render_points(trajectory[i][0].numpy(), camera) for i in shown]
    write_png(tile_images(tiles, len(tiles), [names[i] for i in shown]), run.figure_path("trajectory"))


def write_generated(run: ShapeGFRun, model: GradientFieldModel) -> None:
    """``generated.png``: shapes sampled from the latent model, 2,048 points each."""
    points = model.sample(model.generate_codes(GENERATED_SHAPES, seed=0), 2048, seed=0).points
    render_clouds(points.cpu().numpy(), run.figure_path("generated"))


def render_clouds(clouds: Sequence[np.ndarray], path: Path, columns: int = 4) -> None:
    """Write a picture of point clouds (each (N, 3)), each framed on its own, captioned by index."""
    tiles = [render_points(cloud, camera_for([cloud], TILE, VIEW)) for cloud in clouds]
    write_png(tile_images(tiles, min(columns, len(tiles)), [f"sample {i}" for i in range(len(tiles))]), path)


def write_surface(run: ShapeGFRun, model: GradientFieldModel, cloud: torch.Tensor) -> None:
    """``surface.ply`` (user frame), ``surface.png`` and ``view/surface.html`` (coloured by the
    distance to the points) of one training shape. cloud (P, 3)."""
    points = cloud.numpy()
    code = model.encode(cloud[None, :model.config.input_points])[0]
    mesh = model.surface_mesh(code, points=points)
    frame = model.shapes[0].normalization
    user = mesh.copy()
    user.vertices = frame.to_user(np.asarray(mesh.vertices))
    write_mesh(user, run.root / "surface.ply")
    write_view(run.root / VIEW_DIR / "surface.html", mesh, "training shape 0: the surface meshed from the field, "
               "canonical frame", PointSetDistance(points), float(np.linalg.norm(np.ptp(points, axis=0))),
               points=points, points_name="training points")
    camera = camera_for([points], TILE, VIEW)
    tiles = [render_points(points, camera), render_mesh(mesh, None, camera=camera, supersample=2)]
    write_png(tile_images(tiles, 2, ["points", "mesh from the field"]), run.figure_path("surface"))


def _write_report(run: ShapeGFRun, model: GradientFieldModel, result: TrainResult,
                  rows: Sequence[dict[str, Any]], figures: Sequence[tuple[str, str]],
                  timings: dict[str, float]) -> None:
    config = model.config
    report = Report(f"isofield train: shapegf on {len(model.shapes)} shapes (preset {config.preset})",
                    subtitle=f"data: {model.data_dir}")
    summary: dict[str, Any] = {
        "training shapes": len(model.shapes), "code dimension": config.latent_dim,
        "noise levels": f"{config.noise.levels}, σ from {config.noise.sigma_max:g} to {config.noise.sigma_min:g}",
        "steps": result.step, "stopped because": result.reason.value,
        "latent model": config.latent.kind,
    }
    summary.update({f"final loss {name}": value for name, value in result.losses.items()})
    report.add_metrics("Run", summary)
    report.add_table("Auto-encoded training shapes (canonical frame)", rows)
    if views := view_links(run.root):
        report.add_links("Interactive 3-D view (coloured by the distance to the training points)", views)
    report.add_closing(figures, timings, to_dict(config)).write(run.report_path)
