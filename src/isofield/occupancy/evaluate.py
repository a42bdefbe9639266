"""Evaluate occupancy networks, or any method's meshes, on held-out shapes under the Occupancy
Networks protocol (:mod:`isofield.occupancy_metrics`).

    >>> result = evaluate_occupancy("runs/chairs-onet", split="test.json", validation="val.json")
    >>> scores = evaluate_mesh_folder("runs/chairs/evaluation/reconstruct/meshes", "data-onet", "test.json")

Per test shape of an ONet-layout data directory:

1. the run's input of the shape: a seeded noisy cloud of ``input.points`` points from its
   ``pointcloud.npz`` (seed = ``seed`` + the shape's row), its first rendered view, or, for a
   VAE without input, the posterior mean of its occupancy samples;
2. the mesh {probability = threshold} (sald-vae: {f = 0}) by MISE in the shape's canonical unit-cube frame;
3. the ONet metrics in that frame: IoU against the labels of ``points_iou.npz`` (100k uniform
   points in the padded cube), Chamfer-L1 (and x10 as ONet prints it) and normal consistency
   against the 100k points of ``pointcloud.npz``, F-score at 1% of the unit cube.

The threshold is chosen on ``validation`` shapes when given (:func:`~isofield.occupancy_metrics.
choose_threshold` over the network's probabilities at their IoU points), else the run's
``extract.threshold``. Meshes of other methods (user coordinates, ``<dataset>/<class>/<id>.ply``
as every isofield evaluation writes them) are mapped to the same frame with the shape's stored
normalisation and scored alike (:func:`evaluate_mesh_folder`).

Files, under ``RUN/evaluation/onet`` (or ``out_dir``): ``meshes/<dataset>/<class>/<id>.ply``
(user coordinates), ``scores.csv`` (a row per shape), ``comparison.png``, ``results.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import trimesh
from tqdm import tqdm

from isofield.data.datasets import ShapeRef
from isofield.data.onet import OccupancyDataDir
from isofield.errors import InputError
from isofield.files import write_text_atomic
from isofield.geometry.io import read_mesh, write_mesh
from isofield.geometry.normalization import Normalization
from isofield.geometry.samples import OccupancySamples, SurfaceSamples
from isofield.occupancy.config import is_sdf
from isofield.occupancy.model import OccupancyModel, load_occupancy_model
from isofield.occupancy.outputs import (TILE, VIEW, input_tile, mesh_or_none, mesh_tile, moved_mesh,
                                         occupied_points, shape_encoding)
from isofield.occupancy.shapes import fixed_input, load_shapes
from isofield.occupancy_metrics import choose_threshold, onet_mesh_metrics, onet_row, write_rows_csv
from isofield.shapespace.evaluate import summarise
from isofield.viz.points import camera_for, render_points
from isofield.viz.render import tile_images, write_png

METRICS = ("iou", "chamfer_l1", "chamfer_l1_x10", "normal_consistency", "f_score", "seconds")
RESULTS_FORMAT = "isofield-onet-evaluation"
PICTURES = 4
THRESHOLD_CANDIDATES = np.linspace(0.05, 0.95, 19)
"""probabilities tried when choosing the threshold on validation shapes"""


@dataclass(frozen=True)
class OccupancyEvaluation:
    """What an evaluation wrote: ``record`` is the content of ``results.json``."""

    directory: Path
    record: dict[str, Any]


def evaluate_occupancy(run_dir: str | Path, split: str | Path, out_dir: str | Path | None = None, *,
                       validation: str | Path | None = None, data_dir: str | Path | None = None,
                       threshold: float | None = None, resolution: int | None = None, seed: int = 0,
                       progress: bool = True) -> OccupancyEvaluation:
    """Mesh and score every shape of ``split`` (see the module notes).

    Args:
        run_dir: an occupancy-network run.
        split: the test shapes (JSON split, .lst file or .lst name).
        out_dir: default ``RUN/evaluation/onet``.
        validation: shapes to choose the threshold on; ignored when ``threshold`` is given.
        data_dir: default the run's data directory.
        resolution: MISE's final grid; default the run's ``extract.resolution``.
    """
    model = load_occupancy_model(run_dir)
    data = OccupancyDataDir(data_dir or model.data_dir)
    out = Path(out_dir or Path(run_dir) / "evaluation" / "onet")
    choice: dict[str, Any] = {"rule": "given" if threshold is not None else "run config"}
    if is_sdf(model.config):
        if threshold is not None or validation is not None:
            raise InputError("this run meshes the zero level of a signed distance: it has no "
                             "threshold to give or to choose on validation shapes")
        choice = {"rule": "the zero level of the signed distance"}
    else:
        if threshold is None and validation is not None:
            threshold, choice = _validation_threshold(model, data, validation, seed)
        threshold = model.config.extract.threshold if threshold is None else threshold
    refs = data.shapes(split)
    shapes = load_shapes(data, refs, model.config.input, model.config.seed)
    rows, shown = [], []
    for row, ref in enumerate(tqdm(refs, desc="evaluate", disable=not progress)):
        start = time.perf_counter()
        inputs = fixed_input(shapes, row, model.config.input, seed + row)
        mesh = mesh_or_none(model, *shape_encoding(model, shapes, row, inputs), threshold=threshold,
                            resolution=resolution)
        scores = _score(mesh, _truth(data, ref), ref, seed)
        scores["seconds"] = time.perf_counter() - start
        if mesh is not None:
            write_mesh(moved_mesh(mesh, shapes.frames[row].to_user), out / "meshes" / ref.relative_path(".ply"))
        rows.append(scores)
        if len(shown) < PICTURES:
            shown.append((inputs, mesh, shapes, row))
    record = _record(rows, {"run": str(Path(run_dir).resolve()), "split": str(split),
                            "threshold": threshold, "threshold_choice": choice,
                            "resolution": resolution or model.config.extract.resolution,
                            "input": model.config.input.kind, "seed": seed})
    _write(out, rows, record)
    _write_comparison(out / "comparison.png", shown)
    return OccupancyEvaluation(out, record)


def evaluate_mesh_folder(mesh_dir: str | Path, data_dir: str | Path, split: str | Path,
                         out_dir: str | Path | None = None, *, seed: int = 0,
                         progress: bool = True) -> OccupancyEvaluation:
    """Score meshes ``mesh_dir/<dataset>/<class>/<id>.ply`` (user coordinates) of the shapes of
    ``split`` under the ONet protocol; a missing mesh scores as an empty prediction."""
    data = OccupancyDataDir(data_dir)
    folder = Path(mesh_dir)
    if not folder.is_dir():
        raise InputError(f"{folder}: mesh folder not found")
    rows = []
    for ref in tqdm(data.shapes(split), desc="score", disable=not progress):
        truth = _truth(data, ref)
        path = folder / ref.relative_path(".ply")
        mesh = moved_mesh(read_mesh(path), truth.frame.to_canonical) if path.is_file() else None
        rows.append(_score(mesh, truth, ref, seed))
    record = _record(rows, {"meshes": str(folder.resolve()), "split": str(split), "seed": seed})
    out = Path(out_dir or folder.parent / "onet")
    _write(out, rows, record)
    return OccupancyEvaluation(out, record)


def _validation_threshold(model: OccupancyModel, data: OccupancyDataDir, split: str | Path,
                          seed: int) -> tuple[float, dict[str, Any]]:
    refs = data.shapes(split)
    shapes = load_shapes(data, refs, model.config.input, model.config.seed)
    probabilities, labels = [], []
    for row, ref in enumerate(refs):
        samples, _ = data.load_iou_points(ref)
        condition, latent = shape_encoding(model, shapes, row, fixed_input(shapes, row, model.config.input, seed + row))
        logits = model.logits(torch.from_numpy(samples.points)[None], condition, latent)[0]
        probabilities.append(torch.sigmoid(logits).cpu().numpy())
        labels.append(samples.occupancies)
    candidates = THRESHOLD_CANDIDATES
    best, mean_iou = choose_threshold(probabilities, labels, candidates)
    return float(best), {"rule": f"best mean IoU on {len(refs)} validation shapes",
                         "validation": str(split),
                         "candidates": [round(float(c), 4) for c in candidates],
                         "mean_iou": [round(float(v), 5) for v in mean_iou]}


@dataclass(frozen=True)
class _Truth:
    """A test shape's stored truth, canonical frame: surface points with normals, the labelled
    uniform IoU points, and the frame (canonical -> the shape's own coordinates)."""

    surface: SurfaceSamples
    iou: OccupancySamples
    frame: Normalization


def _truth(data: OccupancyDataDir, ref: ShapeRef) -> _Truth:
    cloud, frame = data.load_pointcloud(ref)
    iou_samples, _ = data.load_iou_points(ref)
    return _Truth(cloud, iou_samples, frame)


def _score(mesh: trimesh.Trimesh | None, truth: _Truth, ref: ShapeRef, seed: int) -> dict[str, Any]:
    """The ONet metrics row of a canonical-frame mesh (None: empty) against the shape's truth."""
    empty = trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    result = onet_mesh_metrics(mesh if mesh is not None else empty, truth.surface.points, truth.surface.normals,
                               truth.iou.points, truth.iou.occupancies, seed=seed)
    return onet_row(ref.key, result)


def _record(rows: Sequence[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    return {"format": RESULTS_FORMAT, "version": 1, "protocol": "onet", "settings": settings,
            "summary": summarise(rows, METRICS), "shapes": list(rows)}


def _write(out: Path, rows: Sequence[dict[str, Any]], record: dict[str, Any]) -> None:
    write_rows_csv(list(rows), out / "scores.csv")
    write_text_atomic(out / "results.json", json.dumps(record, indent=1) + "\n")


def _write_comparison(path: Path, shown: Sequence[tuple]) -> None:
    """input | prediction | occupied truth samples for the first shapes."""
    tiles, labels = [], []
    for inputs, mesh, shapes, row in shown:
        truth = occupied_points(shapes, row)
        camera = camera_for([truth], TILE, VIEW)
        tiles += [input_tile(inputs, camera), mesh_tile(mesh, camera), render_points(truth, camera)]
        labels += ["input", "prediction" if mesh is not None else "empty prediction", "truth (occupied)"]
    if tiles:
        write_png(tile_images(tiles, 3, labels), path)


def format_evaluation(record: dict[str, Any]) -> str:
    """The summary of ``results.json`` as a small table: mean and median per metric."""
    summary = record["summary"]
    lines = [f"{'metric':<22}{'mean':>12}{'median':>12}"]
    for name in METRICS:
        if name in summary:
            stats = summary[name]
            lines.append(f"{name:<22}{_fmt(stats.get('mean')):>12}{_fmt(stats.get('median')):>12}")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
