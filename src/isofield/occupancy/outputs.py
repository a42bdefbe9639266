"""What a finished occupancy-network run draws: the loss curve, training shapes meshed from their
inputs (input | MISE mesh | ground-truth points), for a VAE shapes sampled from the prior and an
interpolation strip between two training shapes' posterior means, and ``report.html``."""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np
import torch
import trimesh

from isofield.config import to_dict
from isofield.data.splits import reconstruction_indices
from isofield.errors import InputError
from isofield.geometry.io import write_mesh
from isofield.geometry.raster import Camera
from isofield.occupancy.config import has_input, is_sdf, is_vae
from isofield.occupancy.latents import most_distant_pair, posterior_mean, posterior_means
from isofield.occupancy.model import OccupancyModel
from isofield.occupancy.rundir import OccupancyRun
from isofield.occupancy.shapes import ShapeTensors, fixed_input
from isofield.train.loop import TrainResult
from isofield.viz.curves import plot_loss_curves
from isofield.viz.points import camera_for, render_points
from isofield.viz.render import render_mesh, tile_images, write_png
from isofield.viz.report import Report
from isofield.viz.viewer import VIEW_DIR, view_links, write_view

VIEW = (35.0, 20.0)
TILE = (256, 256)
SHOWN_SHAPES = 4
METHOD_TITLES = {"onet": "Occupancy Network", "convonet": "Convolutional Occupancy Network",
                 "sald-vae": "SALD shape space (PointNet-VAE, SDF decoder)"}
GENERATED_SHAPES = 8
INTERPOLATION_STEPS = 6
TRUTH_POINTS = 5000


def write_final_outputs(run: OccupancyRun, model: OccupancyModel, shapes: ShapeTensors,
                        result: TrainResult, timings: dict[str, float]) -> None:
    """Every picture of the run and its report; ``shapes`` are the training shapes in memory."""
    start = time.perf_counter()
    config = model.config
    plot_loss_curves(run.log_path, run.figure_path("loss"), title=METHOD_TITLES[config.method])
    if is_sdf(config):
        loss_caption = ("Loss: SAL (mean | |f| − h | over each shape's pool samples, h the unsigned distance to "
                        "its points), SALD (the derivative term), the KL term, and their weighted total.")
        surface = "the zero level of the signed distance"
    else:
        loss_caption = ("Loss: binary cross-entropy summed over the step's occupancy samples per shape (total, "
                        "with the KL term of a VAE); bce per sample; accuracy of the samples' sides at "
                        "probability 0.5.")
        surface = f"the surface at probability {config.extract.threshold:g}"
    figures = [("loss.png", loss_caption)]
    rows = write_reconstructions(run, model, shapes)
    seen = "the input the encoder saw, " if has_input(config) else ""
    figures.append(("reconstructions.png", f"Training shapes: {seen}{surface} by MISE, "
                    "and ground-truth occupied samples."))
    if is_vae(model.config):
        write_generated(model, run.figure_path("generated"), GENERATED_SHAPES)
        figures.append(("generated.png", f"{GENERATED_SHAPES} shapes decoded from z ~ N(0, I), the prior."))
        if model.latent_fit is not None:
            write_generated(model, run.figure_path("generated_fitted"), GENERATED_SHAPES, latents="fitted")
            figures.append(("generated_fitted.png", f"{GENERATED_SHAPES} shapes decoded from draws of the "
                            "Gaussian fitted to the training shapes' posterior means "
                            "(what isofield generate samples)."))
        pair = most_distant_pair(posterior_means(model, shapes))
        write_interpolation(model, shapes, pair, run.figure_path("interpolation"))
        figures.append(("interpolation.png", "Decoded along the straight line between the "
                        f"posterior means of training shapes #{pair[0]} and #{pair[1]}, the two "
                        "whose means lie farthest apart."))
    timings["pictures"] = time.perf_counter() - start
    _write_report(run, model, result, rows, figures, timings)


def write_reconstructions(run: OccupancyRun, model: OccupancyModel,
                          shapes: ShapeTensors) -> list[dict[str, Any]]:
    """``reconstructions.png`` and ``reconstructions/*.ply`` (user frame); a row per shape."""
    rows, tiles, labels = [], [], []
    with_input = has_input(model.config)
    for index in reconstruction_indices(len(shapes), SHOWN_SHAPES):
        inputs = fixed_input(shapes, index, model.config.input, seed=index)
        mesh = mesh_or_none(model, *shape_encoding(model, shapes, index, inputs))
        truth = occupied_points(shapes, index)
        camera = camera_for([truth], TILE, VIEW)
        shape = model.shapes[index]
        mesh_label = "MISE mesh" if mesh else "no surface"
        if with_input:
            tiles.append(input_tile(inputs, camera))
            labels.append(f"#{index} input")
        else:
            mesh_label = f"#{index} {mesh_label} of the posterior mean"
        tiles += [mesh_tile(mesh, camera), render_points(truth, camera)]
        labels += [mesh_label, "occupied samples"]
        row = {"index": index, "shape": shape.ref.key, "faces": 0 if mesh is None else len(mesh.faces)}
        if mesh is not None:
            write_mesh(moved_mesh(mesh, shape.normalization.to_user),
                       run.reconstructions_dir / f"{index:04d}_{shape.ref.shape_id}.ply")
            write_view(run.root / VIEW_DIR / f"{index:04d}_{shape.ref.shape_id}.html", mesh,
                       f"#{index} {shape.ref.key}, canonical frame", points=truth, points_name="occupied samples")
            row["watertight"] = bool(mesh.is_watertight)
        rows.append(row)
    write_png(tile_images(tiles, 3 if with_input else 2, labels), run.figure_path("reconstructions"))
    return rows


def write_generated(model: OccupancyModel, path, count: int, seed: int = 0,
                    latents: str = "prior") -> list[trimesh.Trimesh | None]:
    """Decode ``count`` draws of z (``latents``: "prior" or "fitted", see
    :meth:`OccupancyModel.sample_latents`), draw them in a grid at ``path``; returns the meshes."""
    meshes = [mesh_or_none(model, None, latent) for latent in model.sample_latents(count, seed, latents)]
    tiles = [mesh_tile(mesh, None) for mesh in meshes]
    labels = [f"sample {i}" + (" (empty)" if mesh is None else "") for i, mesh in enumerate(meshes)]
    write_png(tile_images(tiles, min(4, count), labels), path)
    return meshes


def write_interpolation(model: OccupancyModel, shapes: ShapeTensors, pair: tuple[int, int], path,
                        steps: int = INTERPOLATION_STEPS) -> list[trimesh.Trimesh | None]:
    """Decode z along the line between two training shapes' posterior means; a strip at ``path``."""
    ends = [posterior_mean(model, shapes, index) for index in pair]
    meshes = [mesh_or_none(model, None, (1 - t) * ends[0] + t * ends[1]) for t in np.linspace(0, 1, steps)]
    present = [np.asarray(mesh.vertices) for mesh in meshes if mesh is not None]
    camera = camera_for(present, TILE, VIEW) if present else None
    write_png(tile_images([mesh_tile(mesh, camera) for mesh in meshes], steps,
                          [f"t = {t:.2f}" for t in np.linspace(0, 1, steps)]), path)
    return meshes


def shape_encoding(model: OccupancyModel, shapes: ShapeTensors, index: int,
                   inputs: torch.Tensor | None) -> tuple[Any, torch.Tensor | None]:
    """(condition, latent) shape ``index`` decodes with: its input's encoding, or without input
    the VAE's posterior mean."""
    if inputs is None:
        return None, posterior_mean(model, shapes, index)
    return model.condition(inputs), None


def mesh_or_none(model: OccupancyModel, condition, latent, **options: Any) -> trimesh.Trimesh | None:
    """:meth:`OccupancyModel.mesh` (``options``: threshold, resolution), or None where the field
    never reaches the surface level (an empty prediction)."""
    try:
        return model.mesh(condition, latent, **options)[0]
    except InputError:
        return None


def occupied_points(shapes: ShapeTensors, index: int) -> np.ndarray:
    """(≤ TRUTH_POINTS, 3) occupancy samples of shape ``index`` labelled inside, for pictures."""
    inside = shapes.points[index][shapes.occupancies[index]].numpy()
    return inside[np.random.default_rng(0).permutation(len(inside))[:TRUTH_POINTS]]


def moved_mesh(mesh: trimesh.Trimesh, move: Callable[[np.ndarray], np.ndarray]) -> trimesh.Trimesh:
    """``mesh`` with ``move`` applied to its vertices (e.g. a frame's ``to_user``)."""
    return trimesh.Trimesh(move(np.asarray(mesh.vertices)), mesh.faces, process=False)


def input_tile(inputs: torch.Tensor | None, camera: Camera) -> np.ndarray:
    """(H, W, 3) picture of an encoder input: (1, N, 3) points as splats, (1, 3, h, w) image
    enlarged, blank for None."""
    if inputs is None:
        return np.full((*TILE, 3), 255, dtype=np.uint8)
    if inputs.ndim == 4:                                   # (1, 3, H, W) image
        image = (inputs[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        repeat = max(1, TILE[0] // image.shape[0])
        return image.repeat(repeat, axis=0).repeat(repeat, axis=1)
    return render_points(inputs[0].numpy(), camera, radius_px=2.5)


def mesh_tile(mesh: trimesh.Trimesh | None, camera: Camera | None) -> np.ndarray:
    """(H, W, 3) picture of a mesh (own framing without ``camera``), blank for None."""
    if mesh is None:
        return np.full((*TILE, 3), 255, dtype=np.uint8)
    return render_mesh(mesh, None, resolution=TILE, view=VIEW, camera=camera, supersample=2)


def _write_report(run: OccupancyRun, model: OccupancyModel, result: TrainResult,
                  rows: Sequence[dict[str, Any]], figures: Sequence[tuple[str, str]],
                  timings: dict[str, float]) -> None:
    config = model.config
    report = Report(f"isofield train: {config.method} on {len(model.shapes)} shapes (preset {config.preset})",
                    subtitle=f"data: {model.data_dir}")
    summary: dict[str, Any] = {
        "training shapes": len(model.shapes), "input": config.input.kind,
        "VAE latent dimension": config.latent_dim, "steps": result.step,
        "stopped because": result.reason.value,
    }
    summary.update({f"final {name}": value for name, value in result.losses.items()})
    report.add_metrics("Run", summary)
    report.add_table("Shown training shapes", rows)
    if views := view_links(run.root):
        report.add_links("Interactive 3-D views (mesh and occupied samples)", views)
    report.add_closing(figures, timings, to_dict(config)).write(run.report_path)
