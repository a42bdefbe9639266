"""Evaluate a ShapeGF run on held-out shapes: auto-encoding and generation (PointFlow's protocol).

Per test shape, 2 x ``points`` distinct surface points are drawn: the first half is encoded, the
second half is the reference the reconstruction (``points`` Langevin samples from the code) is
compared with, so a perfect model scores the sampling floor, the distance between the two
halves, which is reported too. Chamfer (sum of the two one-sided means of squared distances)
is printed x10^4, EMD (exact assignment) x10^2, both in the canonical frame (unit sphere), as
ShapeGF and PointFlow report them.

Generation: ``generated`` shapes from the latent model, ``points`` points each, against the
test shapes' reference halves: MMD, COV and 1-NNA for CD and EMD
(:func:`isofield.metrics.clouds.generation_metrics`).

Files, in ``out_dir``: ``reconstructions.png``, ``generated.png``, ``results.json`` (the schema of
:mod:`isofield.evaluation`, with ``points``, ``generation`` and ``sampling_seconds_per_shape``)
and ``report.html``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm import tqdm

from isofield.data.datasets import DeepSDFDataDir, ShapeRef
from isofield.data.splits import held_out_shapes
from isofield.evaluation import Evaluation, column, results_record, write_results
from isofield.metrics.clouds import CD_SCALE, EMD_SCALE, chamfer_distance, emd, generation_metrics
from isofield.shapegf.clouds import load_clouds
from isofield.shapegf.model import GradientFieldModel, load_gradient_field
from isofield.shapegf.outputs import TILE, VIEW, render_clouds
from isofield.viz.points import camera_for, render_points
from isofield.viz.render import tile_images, write_png

SAMPLING_BATCH = 8
SUMMARY_KEYS = ("cd", "cd_floor", "emd", "emd_floor")
SHOWN_SHAPES = 8
COLUMNS = (column("cd", "CD x10^4", CD_SCALE, ".2f"), column("cd_floor", "floor", CD_SCALE, ".2f"),
           column("emd", "EMD x10^2", EMD_SCALE, ".3f"), column("emd_floor", "floor", EMD_SCALE, ".3f"))
DEFINITION = ("PointFlow/ShapeGF: CD = sum of one-sided mean squared distances, EMD = exact "
              "assignment; canonical frame")


def evaluate_gradient_field(run_dir: str | Path, out_dir: str | Path, *,
                            split: str | Path | Sequence[ShapeRef] | None = None,
                            data_dir: str | Path | None = None, points: int = 2048,
                            generated: int = 100, seed: int = 0, with_emd: bool = True,
                            progress: bool = True) -> Evaluation:
    """Auto-encode every test shape and generate ``generated`` shapes (0: skip); write
    ``results.json``, ``report.html``, ``reconstructions.png`` and ``generated.png`` into
    ``out_dir``."""
    model = load_gradient_field(run_dir)
    data = DeepSDFDataDir(data_dir or model.data_dir)
    refs = held_out_shapes([shape.ref for shape in model.shapes], data, split)
    clouds, _ = load_clouds(data, refs, 2 * points, seed)
    inputs, references = clouds[:, :points], clouds[:, points:]
    start = time.perf_counter()
    reconstructions = _sample(model, model.encode(inputs), points, seed, progress, "auto-encode")
    seconds_per_shape = (time.perf_counter() - start) / len(refs)
    rows = [_row(ref, reconstruction, inputs[i].numpy(), references[i].numpy(), with_emd)
            for i, (ref, reconstruction) in enumerate(zip(refs, reconstructions))]
    out = Path(out_dir)
    record = results_record(family="shapegf", protocol="autoencode", title="auto-encoding", run=run_dir,
                            data=data.root, split=split,
                            settings={"points": points, "generated": generated, "seed": seed, "emd": with_emd},
                            columns=COLUMNS if with_emd else COLUMNS[:2], shapes=rows, metrics=SUMMARY_KEYS,
                            definition=DEFINITION, points=points, seed=seed,
                            sampling_seconds_per_shape=seconds_per_shape)
    _draw_reconstructions(rows, inputs.numpy(), reconstructions, out / "reconstructions.png")
    record["figures"].append(["reconstructions.png", "input points over their reconstruction (Langevin "
                              "samples from the code)"])
    if generated:
        codes = model.generate_codes(generated, seed=seed)
        clouds_generated = _sample(model, codes, points, seed, progress, "generate")
        distances = ("cd", "emd") if with_emd else ("cd",)
        record["generation"] = generation_metrics(clouds_generated, references.numpy(),
                                                  distances=distances, seed=seed)
        render_clouds(clouds_generated[:16], out / "generated.png")
        record["figures"].append(["generated.png", "shapes drawn from the latent model"])
    write_results(out, record)
    return Evaluation(out, record)


def _sample(model: GradientFieldModel, codes: torch.Tensor, points: int, seed: int,
            progress: bool, what: str) -> np.ndarray:
    """Langevin samples (B, points, 3) of codes (B, L), a few shapes at a time."""
    batches = codes.split(SAMPLING_BATCH)
    bar = tqdm(batches, desc=what, disable=not progress, leave=False)
    return np.concatenate([model.sample(batch, points, seed=seed + index).points.cpu().numpy()
                           for index, batch in enumerate(bar)])


def _row(ref: ShapeRef, reconstruction: np.ndarray, given: np.ndarray, reference: np.ndarray,
         with_emd: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"shape": ref.key,
                           "cd": chamfer_distance(reconstruction, reference),
                           "cd_floor": chamfer_distance(given, reference)}
    if with_emd:
        row.update(emd=emd(reconstruction, reference), emd_floor=emd(given, reference))
    return row


def _draw_reconstructions(rows: Sequence[dict[str, Any]], inputs: np.ndarray,
                          reconstructions: np.ndarray, path: Path) -> None:
    """Input over reconstruction for the first test shapes."""
    count = min(SHOWN_SHAPES, len(rows))
    top, bottom, top_labels, bottom_labels = [], [], [], []
    for index in range(count):
        camera = camera_for([inputs[index]], TILE, VIEW)
        top.append(render_points(inputs[index], camera))
        bottom.append(render_points(reconstructions[index], camera))
        top_labels.append(rows[index]["shape"].split("/")[-1])
        bottom_labels.append(f"CD {CD_SCALE * rows[index]['cd']:.1f}")
    write_png(tile_images(top + bottom, count, top_labels + bottom_labels), path)
