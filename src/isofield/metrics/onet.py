"""The Occupancy Networks evaluation protocol ("onet"): per-shape metrics, threshold, tables.

Frame: ONet evaluates in its canonical frame, the shape's bounding box fitted into the unit cube
[-0.5, 0.5]^3 (its ``loc`` / ``scale``); every function here takes arrays already in that frame,
so lengths are in units of the unit cube. A shape's reference data are ONet's files: surface
points with normals (``pointcloud.npz``) and labelled volume points (``points.npz``).

Per shape (:func:`onet_mesh_metrics`), as in ONet's and ConvONet's ``MeshEvaluator``:

- ``iou``: |pred & label| / |pred | label| over the labelled volume points, where pred is the
  inside of the predicted mesh: generalised winding number >= 0.5
  (:func:`isofield.geometry.groundtruth.inside_test`: a closed mesh's own, else
  :meth:`~isofield.geometry.groundtruth.MeshDistance.occupancy` after re-orienting faces
  outward), which also holds for nearly closed meshes (ONet casts rays, which needs watertight
  ones); a mesh that encloses no volume (an open sheet) has an empty inside;
- ``accuracy`` = mean distance from ``n_points`` area-weighted samples of the mesh to the
  reference points, ``completeness`` = mean distance from the reference points to those samples,
  ``chamfer_l1`` = 0.5 (accuracy + completeness), ``chamfer_l1_x10`` = 10 chamfer_l1 (the number
  ONet's and ConvONet's paper tables print as "Chamfer-L1": their unit is a tenth of the
  bounding box's longest edge; occupancy_networks issue #61);
- ``normal_consistency``: mean over both directions of |n . n_nearest| (face normals of the
  samples against the reference normals);
- ``f_score`` at ``tau`` (ConvONet: 0.01, 1% of the unit cube's side) with ``precision`` (samples
  within tau of the reference) and ``recall`` (reference points within tau of the samples).
  isofield counts a point strictly closer than tau, ConvONet at most tau: the two differ only on
  exact ties.

Every distance comes from one nearest-neighbour matching
(:func:`isofield.metrics.surface.nearest_neighbours`).
An empty mesh (no faces, or zero area) follows ONet: IoU 0; the surface metrics are None with a
reason in ``skipped`` (ONet's code stores sentinels there instead: sqrt(3) for the distances and
-1 for the normals, which its means then average in).

Across shapes: :func:`choose_threshold` picks the probability threshold on validation shapes
(ONet's released configurations use 0.2), :func:`write_rows_csv` writes one row per shape and
:func:`mean_table` prints means and medians per method.
"""

from __future__ import annotations

import csv
import numbers
import os
from collections.abc import Sequence

import numpy as np
import trimesh

from isofield.errors import InputError
from isofield.files import atomic_path
from isofield.geometry.groundtruth import as_query_points, inside_test
from isofield.geometry.sampling import sample_surface
from isofield.metrics.surface import nearest_neighbours

PROTOCOL_NAME = "onet"
FRAME = "unit cube [-0.5, 0.5]^3 (the shape's bounding box fitted into it)"
DEFAULT_TAU = 0.01
DEFAULT_THRESHOLDS = np.linspace(0.05, 0.95, 19)
SURFACE_METRICS = (
    "chamfer_l1",
    "chamfer_l1_x10",
    "accuracy",
    "completeness",
    "normal_consistency",
    "f_score",
    "precision",
    "recall",
)
ROW_METRICS = ("iou", *SURFACE_METRICS)
TABLE_METRICS = ("iou", "chamfer_l1_x10", "normal_consistency", "f_score")
# column titles of mean_table; other metrics are titled by their key
TABLE_LABELS = {
    "iou": "IoU",
    "chamfer_l1": "CD-L1",
    "chamfer_l1_x10": "CD-L1 x10",
    "normal_consistency": "NC",
    "f_score": "F-score",
}


def onet_mesh_metrics(
    mesh: trimesh.Trimesh,
    ref_points: np.ndarray,
    ref_normals: np.ndarray,
    iou_points: np.ndarray,
    iou_labels: np.ndarray,
    n_points: int = 100_000,
    seed: int = 0,
    tau: float = DEFAULT_TAU,
) -> dict:
    """ONet's metrics of a predicted mesh against one shape's reference data (see module doc).

    Args:
        mesh: the prediction, vertices (V, 3) in the unit-cube frame; may be empty.
        ref_points: (M, 3) reference surface points; ref_normals: (M, 3) their normals.
        iou_points: (K, 3) volume points; iou_labels: (K,) bool (or 0/1), True inside the shape.
        n_points: area-weighted samples drawn on the mesh.
        seed: seed of those samples (the stream
            :func:`isofield.metrics.surface.evaluate_mesh_against_points` draws for the same
            seed).
        tau: F-score threshold in unit-cube units.

    Returns:
        A dict with ``protocol`` (name "onet", frame, n_points, n_ref_points, n_iou_points, seed,
        tau, units, sampling, inside_test), ``iou`` and the :data:`SURFACE_METRICS` (plain floats),
        and ``skipped``: {metric: reason} for every metric that is None.

    Raises:
        InputError: bad shapes or values of the arrays, a bad n_points or tau.
    """
    if not isinstance(mesh, trimesh.Trimesh):
        raise InputError(f"predicted mesh: expected a triangle mesh, got {type(mesh).__name__}")
    reference = as_query_points(ref_points, "ref_points")
    normals = as_query_points(ref_normals, "ref_normals")
    if len(reference) == 0 or len(normals) != len(reference):
        raise InputError(
            f"ref_points / ref_normals: expected M >= 1 of each, got {len(reference)} / {len(normals)}"
        )
    queries = as_query_points(iou_points, "iou_points")
    labels = _as_labels(iou_labels, len(queries), "iou_labels")
    if isinstance(n_points, bool) or not isinstance(n_points, numbers.Integral) or n_points < 1:
        raise InputError(f"n_points: expected a positive integer, got {n_points!r}")
    if isinstance(tau, bool) or not (isinstance(tau, numbers.Real) and np.isfinite(tau) and tau > 0):
        raise InputError(f"tau: expected a positive number, got {tau!r}")
    result = {
        "protocol": {
            "name": PROTOCOL_NAME,
            "frame": FRAME,
            "n_points": int(n_points),
            "n_ref_points": len(reference),
            "n_iou_points": len(queries),
            "seed": seed,
            "tau": float(tau),
            "units": "unit-cube side",
            "sampling": f"{n_points} area-weighted surface samples of the mesh; the reference points as given",
            "inside_test": "winding number of the predicted mesh >= 0.5 at the IoU points",
        },
        "iou": 0.0,
        **dict.fromkeys(SURFACE_METRICS),
        "skipped": {},
    }
    if len(mesh.faces) == 0 or not mesh.area > 0:
        for key in SURFACE_METRICS:
            result["skipped"][key] = "empty mesh (no faces or zero area); ONet scores its IoU 0"
        return result
    result["iou"] = iou_from_labels(inside_test(mesh)(queries), labels)
    pred_seed = int(np.random.SeedSequence(seed).generate_state(1)[0])
    samples = sample_surface(mesh, int(n_points), pred_seed)
    matching = nearest_neighbours(samples.points, reference)
    score = matching.f_score(tau)
    chamfer = matching.chamfer_l1()
    result.update(
        chamfer_l1=chamfer,
        chamfer_l1_x10=10.0 * chamfer,
        accuracy=float(matching.distance_ab.mean()),
        completeness=float(matching.distance_ba.mean()),
        normal_consistency=matching.normal_consistency(samples.normals, normals),
        f_score=score.f_score,
        precision=score.precision,
        recall=score.recall,
    )
    return result


def iou_from_labels(predicted: np.ndarray, labels: np.ndarray) -> float:
    """|predicted & labels| / |predicted | labels| of two (K,) bool (or 0/1) arrays.

    When both are empty (union 0) the two sets agree exactly and the IoU is 1.0; ONet's
    ``compute_iou`` divides by zero there (NaN).
    """
    guess = _as_labels(predicted, None, "predicted")
    truth = _as_labels(labels, len(guess), "labels")
    union = int(np.count_nonzero(guess | truth))
    return 1.0 if union == 0 else int(np.count_nonzero(guess & truth)) / union


def choose_threshold(
    probabilities: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    candidates: np.ndarray = DEFAULT_THRESHOLDS,
) -> tuple[float, np.ndarray]:
    """The probability threshold that maximises the mean per-shape IoU on validation shapes.

    A point counts as inside where its probability is >= the threshold (ONet's rule).

    Args:
        probabilities: one (K_i,) array of occupancy probabilities per shape, at its IoU points.
        labels: one (K_i,) bool (or 0/1) array per shape, True inside.
        candidates: (C,) thresholds to try.

    Returns:
        (the best candidate (the smallest one on a tie), (C,) float64 mean IoU per candidate).
    """
    if len(probabilities) != len(labels) or len(labels) == 0:
        raise InputError(
            f"choose_threshold needs one label array per probability array and at least one shape, "
            f"got {len(probabilities)} and {len(labels)}"
        )
    thresholds = np.asarray(candidates, dtype=np.float64)
    if thresholds.ndim != 1 or len(thresholds) == 0 or not np.all(np.isfinite(thresholds)):
        raise InputError(
            f"threshold candidates: expected a non-empty 1-D array of finite numbers, got shape {thresholds.shape}"
        )
    per_shape = np.zeros((len(labels), len(thresholds)))
    for shape, (probability, label) in enumerate(zip(probabilities, labels)):
        values = np.asarray(probability, dtype=np.float64)
        if values.ndim != 1:
            raise InputError(f"probabilities of shape {shape}: expected a (K,) array, got shape {values.shape}")
        truth = _as_labels(label, len(values), f"labels of shape {shape}")
        per_shape[shape] = [iou_from_labels(values >= threshold, truth) for threshold in thresholds]
    mean_iou = per_shape.mean(axis=0)
    return float(thresholds[np.argmax(mean_iou)]), mean_iou


def onet_row(shape: str, result: dict) -> dict:
    """One flat CSV/table row of an :func:`onet_mesh_metrics` result.

    Keys: ``shape``, the :data:`ROW_METRICS` (None where skipped), and ``skipped``
    ("metric: reason; ..." or "").
    """
    skipped = "; ".join(f"{key}: {reason}" for key, reason in result["skipped"].items())
    return {"shape": shape, **{key: result[key] for key in ROW_METRICS}, "skipped": skipped}


def write_rows_csv(rows: list[dict], path: str | os.PathLike) -> None:
    """Write rows (one per shape, flat dicts of scalars) as CSV, atomically.

    Columns: the first row's keys in order, then keys first seen in later rows. None and absent
    values are written as empty cells; floats as ``repr`` (they read back exactly).
    """
    if not rows:
        raise InputError(f"{path}: no rows to write")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows({key: "" if value is None else value for key, value in row.items()} for row in rows)


def mean_table(results: dict[str, list[dict]], metrics: Sequence[str] = TABLE_METRICS) -> str:
    """A fixed-width table of "mean (median)" over shapes of each metric, one line per method.

    Args:
        results: method name -> rows (flat dicts, e.g. :func:`onet_row`), one per shape.
        metrics: row keys to tabulate; titled by :data:`TABLE_LABELS` (``chamfer_l1_x10``:
            "CD-L1 x10").

    A value that is None or absent in some rows (an empty mesh) is averaged over the other rows,
    and a note below the table says for how many shapes it is missing; "n/a" where no row has it.
    """
    if not results:
        raise InputError("mean_table: no methods to tabulate")
    for metric in metrics:
        if not any(row.get(metric) is not None for rows in results.values() for row in rows):
            raise InputError(f"mean_table: metric {metric!r} has a value in no row")
    header = ["method", "shapes", *(f"{TABLE_LABELS.get(metric, metric)} mean (median)" for metric in metrics)]
    lines, notes = [], []
    for method, rows in results.items():
        cells = [method, str(len(rows))]
        for metric in metrics:
            values = np.array([row[metric] for row in rows if row.get(metric) is not None], dtype=np.float64)
            cells.append(f"{values.mean():.4f} ({np.median(values):.4f})" if len(values) else "n/a")
            if len(values) < len(rows):
                notes.append(
                    f"{method}: {TABLE_LABELS.get(metric, metric)} missing for {len(rows) - len(values)} "
                    f"of {len(rows)} shapes"
                )
        lines.append(cells)
    widths = [max(len(line[column]) for line in [header, *lines]) for column in range(len(header))]
    table = [
        "  ".join([line[0].ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(line[1:], widths[1:]))])
        for line in [header, *lines]
    ]
    return "\n".join(table + notes)


def _as_labels(labels: np.ndarray, count: int | None, name: str) -> np.ndarray:
    """(count,) bool from a bool or 0/1 array; InputError on another shape or other values."""
    array = np.asarray(labels)
    if array.ndim != 1 or (count is not None and len(array) != count):
        wanted = "(K,)" if count is None else f"({count},)"
        raise InputError(f"{name}: expected a {wanted} array of booleans, got shape {array.shape}")
    zero_one = np.issubdtype(array.dtype, np.integer) and np.all((array == 0) | (array == 1))
    if array.dtype != bool and not zero_one:
        raise InputError(f"{name}: expected booleans (or 0/1), got dtype {array.dtype}")
    return array.astype(bool)
