"""Evaluate occupancy networks on held-out shapes under the Occupancy Networks protocol
(:mod:`isofield.metrics.onet`), in the results schema of :mod:`isofield.evaluation`.

    >>> result = evaluate_occupancy("runs/chairs-onet", split="test.json", validation="val.json")

Per test shape of an ONet-layout data directory:

1. the run's input of the shape: a seeded noisy cloud of ``input.points`` points from its
   ``pointcloud.npz`` (seed = ``seed`` + the shape's row), its first rendered view, or, for a
   VAE without input, the posterior mean of its occupancy samples;
2. the mesh {probability = threshold} (sald-vae: {f = 0}) by MISE in the shape's canonical unit-cube frame;
3. the ONet metrics in that frame: IoU against the labels of ``points_iou.npz`` (100k uniform
   points in the padded cube), Chamfer-L1 (and x10 as ONet prints it) and normal consistency
   against the 100k points of ``pointcloud.npz``, F-score at 1% of the unit cube.

The threshold is chosen on ``validation`` shapes when given (:func:`~isofield.metrics.onet.
choose_threshold` over the network's probabilities at their IoU points), else the run's
``extract.threshold``. Meshes of other methods are scored alike by
:func:`isofield.evaluation.evaluate_mesh_folder`.

Files, under ``RUN/evaluation/onet`` (or ``out_dir``): ``meshes/<dataset>/<class>/<id>.ply``
(user coordinates), ``scores.csv`` (a row per shape), ``comparison.png``, ``errors/*.png`` (the
first meshes coloured by their distance to the truth's points), ``results.json``, ``report.html``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm import tqdm

from isofield.data.onet import OccupancyDataDir
from isofield.errors import InputError
from isofield.evaluation import (ERROR_PICTURES, ONET_METRICS, Evaluation, error_figure, onet_columns,
                                 onet_score, onet_truth, results_record, write_results)
from isofield.geometry.io import write_mesh
from isofield.metrics.onet import choose_threshold, write_rows_csv
from isofield.occupancy.config import is_sdf
from isofield.occupancy.model import OccupancyModel, load_occupancy_model
from isofield.occupancy.outputs import (TILE, VIEW, input_tile, mesh_or_none, mesh_tile, moved_mesh,
                                         occupied_points, shape_encoding)
from isofield.occupancy.shapes import fixed_input, load_shapes
from isofield.viz.points import camera_for, render_points
from isofield.viz.render import tile_images, write_png

PICTURES = 4
THRESHOLD_CANDIDATES = np.linspace(0.05, 0.95, 19)
"""probabilities tried when choosing the threshold on validation shapes"""


def evaluate_occupancy(run_dir: str | Path, split: str | Path, out_dir: str | Path | None = None, *,
                       validation: str | Path | None = None, data_dir: str | Path | None = None,
                       threshold: float | None = None, resolution: int | None = None, seed: int = 0,
                       progress: bool = True) -> Evaluation:
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
    rows, shown, figures = [], [], []
    for row, ref in enumerate(tqdm(refs, desc="evaluate", disable=not progress)):
        start = time.perf_counter()
        inputs = fixed_input(shapes, row, model.config.input, seed + row)
        mesh = mesh_or_none(model, *shape_encoding(model, shapes, row, inputs), threshold=threshold,
                            resolution=resolution)
        truth = onet_truth(data, ref)
        scores = onet_score(mesh, truth, ref.key, seed)
        scores["seconds"] = time.perf_counter() - start
        if mesh is not None:
            write_mesh(moved_mesh(mesh, shapes.frames[row].to_user), out / "meshes" / ref.relative_path(".ply"))
            if len(figures) < ERROR_PICTURES:
                figures.append(error_figure(out, ref.key, mesh, truth.surface.points, "the prediction"))
        rows.append(scores)
        if len(shown) < PICTURES:
            shown.append((inputs, mesh, shapes, row))
    settings = {"threshold": threshold, "threshold_choice": choice,
                "resolution": resolution or model.config.extract.resolution,
                "input": model.config.input.kind, "seed": seed}
    record = results_record(family="occupancy", protocol="onet", title="ONet protocol", run=run_dir,
                            data=data.root, split=split, settings=settings, columns=onet_columns(),
                            shapes=rows, metrics=ONET_METRICS)
    if _write_comparison(out / "comparison.png", shown):
        record["figures"].append(["comparison.png", "input | prediction | occupied truth samples"])
    record["figures"] += figures
    write_rows_csv(rows, out / "scores.csv")
    write_results(out, record)
    return Evaluation(out, record)


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


def _write_comparison(path: Path, shown: Sequence[tuple]) -> bool:
    """input | prediction | occupied truth samples for the first shapes; False when there are none."""
    tiles, labels = [], []
    for inputs, mesh, shapes, row in shown:
        truth = occupied_points(shapes, row)
        camera = camera_for([truth], TILE, VIEW)
        tiles += [input_tile(inputs, camera), mesh_tile(mesh, camera), render_points(truth, camera)]
        labels += ["input", "prediction" if mesh is not None else "empty prediction", "truth (occupied)"]
    if tiles:
        write_png(tile_images(tiles, 3, labels), path)
    return bool(tiles)
