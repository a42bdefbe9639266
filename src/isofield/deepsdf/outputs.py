"""What a shape-space run draws: progress pictures while training; at the end the loss curve,
the first code's history, reconstructions against the ground truth, the codes' PCA embedding,
and ``report.html``.

Ground truth for the reconstructions is each shape's source mesh as recorded in the data
directory's ``manifest.json`` (written by ``isofield preprocess``); DeepSDF's own data
directories have none, and then only the reconstructions are drawn.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import trimesh
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from isofield.config import to_dict
from isofield.data.datasets import ShapeRef
from isofield.data.preprocess import MANIFEST_NAME, Manifest
from isofield.data.splits import reconstruction_indices
from isofield.errors import InputError
from isofield.geometry.groundtruth import TriangleDistance
from isofield.geometry.io import read_mesh, write_mesh
from isofield.geometry.raster import Camera, bounding_sphere
from isofield.metrics.surface import evaluate_meshes
from isofield.deepsdf.history import read_code_history
from isofield.deepsdf.rundir import ShapeSpaceRun
from isofield.deepsdf.space import ShapeSpace, code_mesh
from isofield.train.loop import TrainResult
from isofield.train.settings import steps_per_epoch
from isofield.train.shapes import TrainingShape
from isofield.viz.curves import plot_loss_curves
from isofield.viz.render import render_mesh, tile_images, write_png
from isofield.viz.report import Report
from isofield.viz.figures import save_figure
from isofield.viz.viewer import VIEW_DIR, view_links, write_view

VIEW = (35.0, 20.0)
TILE = (256, 256)
PROGRESS_ROWS = 6
LABELLED_POINTS = 200
ONET_POINTS = 100_000
"""Samples per mesh of the ONet-protocol metrics, here and in ``isofield evaluate``: Chamfer-L1
between two samplings of the same chair is 0.17% of its diagonal at 100,000 points but 0.31% at
30,000, so fewer points would hide a good reconstruction under the sampling's own spacing."""


def write_progress(run: ShapeSpaceRun, space: ShapeSpace) -> list[tuple[Path, str]]:
    """The pictures drawn while training, at the current step: the shown shapes' surfaces
    (``progress/step_<step>.png``, one row) and :func:`write_training_curves`."""
    indices = reconstruction_indices(len(space.shapes), space.config.reconstruction_shapes)
    meshes = [_canonical_mesh(space, index, space.config.extract.progress_resolution)
              for index in indices]
    tiles = [_render(mesh, _camera([mesh])) for mesh in meshes]
    labels = [f"#{i} {space.shapes[i].ref.shape_id}" for i in indices]
    write_png(tile_images(tiles, len(tiles), labels), run.progress_dir / f"step_{space.step:06d}.png")
    return write_training_curves(run, space)


def write_training_curves(run: ShapeSpaceRun, space: ShapeSpace) -> list[tuple[Path, str]]:
    """``loss.png``, ``code_history.png`` and ``progress.png`` (the progress pictures up to the
    current step); returns (path, caption) of each picture written."""
    figures = []
    plot_loss_curves(run.log_path, run.figure_path("loss"), title="auto-decoder: loss terms")
    figures.append((run.figure_path("loss"), "Loss terms per logged step (log scale); learning "
                    "rates of the decoder and the codes below."))
    steps, history = read_code_history(run.code_history_path)
    plot_code_history(steps, history, run.figure_path("code_history"),
                      title=f"first code z1 ({space.shapes[0].ref.shape_id}) during training")
    figures.append((run.figure_path("code_history"), "Each column is the code of shape #0 at one "
                    "logged step; each row one of its dimensions."))
    progress = [path for path in sorted(run.progress_dir.glob("step_*.png"))
                if int(path.stem.removeprefix("step_")) <= space.step]
    if progress:
        write_progress_summary(progress, run.figure_path("progress"))
        figures.append((run.figure_path("progress"), "Reconstructions while training."))
    return figures


def write_final_outputs(run: ShapeSpaceRun, space: ShapeSpace, result: TrainResult,
                        timings: dict[str, float]) -> list[dict[str, Any]]:
    """Pictures, reconstruction meshes and ``report.html`` of a finished run; returns one row of
    metrics per reconstructed shape (``evaluate_meshes`` against its source mesh, when known)."""
    start = time.perf_counter()
    figures = write_training_curves(run, space)
    timings["pictures"] = time.perf_counter() - start

    start = time.perf_counter()
    rows = write_reconstructions(run, space)
    timings["reconstructions"] = time.perf_counter() - start
    if rows:
        figures.append((run.figure_path("reconstructions"), "Training shapes from their learned "
                        "codes (bottom) and their source meshes (top, where known); CD: Chamfer-L1 "
                        "in % of the source mesh's bounding-box diagonal."))
    plot_code_embedding(space.codes.numpy(), run.figure_path("embedding"))
    figures.append((run.figure_path("embedding"), "The codes' first two principal components, "
                    "labelled by code index."))
    _write_report(run, space, result, rows, figures, timings)
    return rows


def write_reconstructions(run: ShapeSpaceRun, space: ShapeSpace) -> list[dict[str, Any]]:
    """Mesh the shown shapes from their codes (``reconstructions/<index>_<id>.ply``, each in its
    own coordinates), draw them under their source meshes (``reconstructions.png``) and
    evaluate them against those; returns one row per shape."""
    indices = reconstruction_indices(len(space.shapes), space.config.reconstruction_shapes)
    sources = source_meshes(space.data_dir, [space.shapes[i].ref for i in indices])
    rows, truth_tiles, learned_tiles, truth_labels, learned_labels = [], [], [], [], []
    for index, source in zip(indices, sources):
        shape = space.shapes[index]
        row: dict[str, Any] = {"index": index, "shape": shape.ref.key}
        learned = _user_mesh(space, shape, space.config.extract.resolution)
        truth = read_mesh(source) if source is not None else None
        if learned is not None:
            write_mesh(learned, run.reconstructions_dir / f"{index:04d}_{shape.ref.shape_id}.ply")
        view = run.root / VIEW_DIR / f"{index:04d}_{shape.ref.shape_id}.html"
        if learned is not None and truth is not None:
            metrics = evaluate_meshes(learned, truth, n_points=ONET_POINTS, iou=False)
            row.update({key: metrics[key] for key in
                        ("chamfer_l1", "chamfer_l1_percent_of_diagonal", "normal_consistency", "f_score")})
            write_view(view, learned, f"#{index} {shape.ref.key} from its code, against its source mesh",
                       TriangleDistance(np.asarray(truth.vertices), np.asarray(truth.faces)),
                       metrics["reference_bbox_diagonal"], reference=truth)
        elif learned is not None:
            write_view(view, learned, f"#{index} {shape.ref.key} from its code")
        rows.append(row)
        camera = _camera([mesh for mesh in (learned, truth) if mesh is not None])
        truth_tiles.append(_render(truth, camera, color=(0.80, 0.78, 0.72)))
        learned_tiles.append(_render(learned, camera))
        truth_labels.append(f"#{index} source mesh" if truth is not None else f"#{index}: no source mesh")
        learned_labels.append(f"#{index} from its code" + (
            f", CD {row['chamfer_l1_percent_of_diagonal']:.2f}%" if "chamfer_l1" in row else ""))
    if rows:
        image = tile_images(truth_tiles + learned_tiles, len(rows), truth_labels + learned_labels)
        write_png(image, run.figure_path("reconstructions"))
    return rows


def source_meshes(data_dir: Path, refs: Sequence[ShapeRef]) -> list[Path | None]:
    """Each shape's source mesh as recorded in ``data_dir/manifest.json``, or None where the
    manifest is missing or unreadable, does not list the shape, or its file is gone."""
    try:
        records = Manifest.load(data_dir / MANIFEST_NAME).records
    except InputError:
        return [None] * len(refs)
    paths = [records[ref].ref.mesh_path if ref in records else None for ref in refs]
    return [path if path is not None and path.is_file() else None for path in paths]


def plot_code_history(steps: np.ndarray, codes: np.ndarray, path: str | Path, title: str) -> None:
    """Heat-map strip of one code over training: x = logged step, y = code dimension, colour =
    value (diverging, symmetric about 0). ``steps`` (R,) ascending, evenly spaced; ``codes`` (R, L)."""
    if len(steps) == 0:
        raise InputError(f"{path}: no code history to draw")
    figure = Figure(figsize=(8.0, 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    limit = float(np.abs(codes).max()) or 1.0
    spacing = float(steps[1] - steps[0]) if len(steps) > 1 else 1.0
    extent = (steps[0] - spacing / 2, steps[-1] + spacing / 2, codes.shape[1] - 0.5, -0.5)
    image = ax.imshow(codes.T, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit,
                      interpolation="nearest", extent=extent)
    figure.colorbar(image, ax=ax, label="value")
    ax.set_xlabel("step")
    ax.set_ylabel("code dimension")
    ax.set_title(title)
    save_figure(figure, path)


def plot_code_embedding(codes: np.ndarray, path: str | Path) -> None:
    """Scatter of codes (N, L) on their first two principal components, each point labelled by
    its index (up to 200 codes; beyond that the colour gives the index)."""
    coordinates, explained = principal_components(codes, 2)
    figure = Figure(figsize=(6.4, 5.6) if len(codes) <= 60 else (8.4, 7.2), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    index = np.arange(len(codes))
    points = ax.scatter(coordinates[:, 0], coordinates[:, 1], c=index, cmap="viridis", s=22,
                        edgecolors="0.2", linewidths=0.4)
    if len(codes) <= LABELLED_POINTS:
        for i, (x, y) in enumerate(coordinates):
            ax.annotate(str(i), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7)
    else:
        figure.colorbar(points, ax=ax, label="code index")
    ax.set_xlabel(f"PC 1 ({100 * explained[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * explained[1]:.0f}% of variance)")
    ax.set_title(f"{len(codes)} codes of dimension {codes.shape[1]}: PCA")
    ax.grid(True, alpha=0.3)
    save_figure(figure, path)


def principal_components(values: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``values`` (N, L) projected on their first ``count`` principal axes (N, count)
    and each axis's share of the variance (count,); missing axes (N or L too small) are zero."""
    centred = np.asarray(values, dtype=np.float64) - np.mean(values, axis=0)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    variance = singular ** 2
    share = variance / variance.sum() if variance.sum() > 0 else np.zeros_like(variance)
    coordinates = np.zeros((len(values), count))
    explained = np.zeros(count)
    kept = min(count, len(singular))
    coordinates[:, :kept] = centred @ axes[:kept].T
    explained[:kept] = share[:kept]
    return coordinates, explained


def write_progress_summary(pictures: Sequence[Path], path: Path) -> None:
    """Stack up to :data:`PROGRESS_ROWS` progress pictures (evenly chosen, the last included),
    each under its step."""
    chosen = [pictures[i] for i in reconstruction_indices(len(pictures), PROGRESS_ROWS)]
    images = [_read_png(picture) for picture in chosen]
    labels = [f"step {int(picture.stem.removeprefix('step_'))}" for picture in chosen]
    width = max(image.shape[1] for image in images)
    height = max(image.shape[0] for image in images)
    padded = [_pad(image, height, width) for image in images]
    write_png(tile_images(padded, 1, labels), path)


def _read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _pad(image: np.ndarray, height: int, width: int) -> np.ndarray:
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    canvas[: image.shape[0], : image.shape[1]] = image
    return canvas


def _canonical_mesh(space: ShapeSpace, index: int, resolution: int) -> trimesh.Trimesh | None:
    """Shape ``index`` from its code in the canonical frame, or None while it has no surface."""
    try:
        return code_mesh(space.decoder, space.codes[index], space.config, resolution)[0]
    except InputError:
        return None


def _user_mesh(space: ShapeSpace, shape: TrainingShape, resolution: int) -> trimesh.Trimesh | None:
    try:
        return code_mesh(space.decoder, space.codes[shape.index], space.config, resolution,
                         shape.normalization)[0]
    except InputError:
        return None


def _camera(meshes: Sequence[trimesh.Trimesh | None]) -> Camera | None:
    """One camera framing every given mesh (None when there is none)."""
    present = [np.asarray(mesh.vertices) for mesh in meshes if mesh is not None]
    if not present:
        return None
    center, radius = bounding_sphere(np.concatenate(present))
    return Camera.looking_at(center, radius, TILE, VIEW)


def _render(mesh: trimesh.Trimesh | None, camera: Camera | None, **options: Any) -> np.ndarray:
    """A rendered tile, or a light grey one where there is no mesh."""
    if mesh is None or camera is None:
        return np.full((TILE[1], TILE[0], 3), 235, dtype=np.uint8)
    return render_mesh(mesh, None, camera=camera, supersample=2, **options)


def _write_report(run: ShapeSpaceRun, space: ShapeSpace, result: TrainResult,
                  rows: list[dict[str, Any]], figures: list[tuple[Path, str]],
                  timings: dict[str, float]) -> None:
    config = space.config
    decoder = config.decoder
    norms = np.linalg.norm(space.codes.numpy(), axis=1)
    report = Report(f"isofield train: {config.method} on {len(space.shapes)} shapes "
                    f"(preset {config.preset})", subtitle=f"data: {space.data_dir}")
    summary: dict[str, Any] = {
        "training shapes": len(space.shapes),
        "decoder": f"{decoder['depth']}x{decoder['hidden']} {decoder['activation']} MLP, "
                   f"skip {decoder['skip']}, weight norm: {decoder['weight_norm']}",
        "code dimension": config.latent_dim,
        "steps": result.step,
        "epochs": result.step / steps_per_epoch(len(space.shapes), config.shapes_per_batch),
        "stopped because": result.reason.value,
        "code norm (mean)": float(norms.mean()),
        "code norm (max)": float(norms.max()),
    }
    summary.update({f"final loss {name}": value for name, value in result.losses.items()})
    report.add_metrics("Run", summary)
    if rows:
        report.add_table("Reconstructed training shapes (user units; CD = Chamfer-L1)", rows)
    if views := view_links(run.root):
        report.add_links("Interactive 3-D views (coloured by the distance to the source mesh, where known)", views)
    report.add_closing(figures, timings, to_dict(config)).write(run.report_path)
