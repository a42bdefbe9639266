"""One evaluation driver: ``evaluate(run, split, protocol)`` for a run of any family, one results
schema, one formatter and one report.

    >>> result = evaluate("runs/chairs", split="splits/test.json", protocol="complete")
    >>> print(format_results(result.record))

:func:`evaluate` opens the run (:func:`isofield.runs.open_run`), refuses a family without an
``evaluate`` hook in one line, and calls the hook with the protocol (default the family's
first, :attr:`isofield.registry.Family.protocols`): DeepSDF ``reconstruct`` / ``complete``,
occupancy networks ``onet``, ShapeGF ``autoencode``. Files go to ``RUN/evaluation/<protocol>``
unless ``out_dir`` is given.

Every hook builds its record with :func:`results_record` and writes it with
:func:`write_results`: ``results.json`` (the schema below) and ``report.html`` (the summary,
the pictures, an error-coloured render of a few shapes where the protocol has meshes and a
reference, the per-shape table and the settings). ``results.json``::

    format, version          "isofield-evaluation", 2
    family, protocol, title  who was evaluated how ("deepsdf", "complete", "completion")
    run, data, split         where from
    settings                 the protocol's settings
    columns                  the per-shape table: [{key, label, scale, format}, ...]
    shapes                   one row per test shape ("shape": dataset/class/id, metrics)
    summary                  {metric: {mean, median, count}} over the rows with a value
    figures                  [[path relative to the folder, caption], ...]
    ...                      the protocol's own sections (baseline, generation, ...)

:func:`evaluate_mesh_folder` scores a folder of any method's meshes under the Occupancy
Networks protocol; a shape without its mesh is an error naming the path, never a score.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from isofield.errors import InputError
from isofield.files import write_text_atomic
from isofield.metrics.summary import summarise
from isofield.runs import Run, open_run

RESULTS_NAME = "results.json"
RESULTS_FORMAT = "isofield-evaluation"
RESULTS_VERSION = 2
ERROR_PICTURES = 3
"""shapes drawn coloured by their distance to the reference in an evaluation's report"""
ONET_COLUMNS = (("iou", "IoU", 1.0, ".4f"), ("chamfer_l1", "CD-L1", 1.0, ".5f"),
                ("normal_consistency", "NC", 1.0, ".4f"), ("f_score", "F", 1.0, ".4f"),
                ("seconds", "seconds", 1.0, ".1f"))
ONET_METRICS = ("iou", "chamfer_l1", "chamfer_l1_x10", "normal_consistency", "f_score", "seconds")


@dataclass(frozen=True)
class Evaluation:
    """What an evaluation wrote into ``directory``: ``record`` is ``results.json``."""

    directory: Path
    record: dict[str, Any]


def protocol_of(run: Run, protocol: str | None) -> str:
    """``protocol``, or the run's family's default; one its family lacks is an InputError."""
    run.require("evaluate")
    if protocol is None:
        return run.family.protocols[0]
    if protocol not in run.family.protocols:
        raise InputError(f"--mode {protocol}: not used by this kind of run ({run.family.title} is "
                         f"evaluated by {' or '.join(run.family.protocols)})")
    return protocol


def default_directory(run: Run, protocol: str) -> Path:
    """``RUN/evaluation/<protocol>``."""
    return run.root / "evaluation" / protocol


def evaluate(run: Run | str | Path, split: str | Path | None = None, protocol: str | None = None, *,
             out_dir: str | Path | None = None, data: str | Path | None = None, seed: int = 0,
             progress: bool = False, guard: Callable[[Path], Path] | None = None,
             **options: Any) -> Evaluation:
    """Evaluate ``run`` on the test shapes of ``split`` (default: its family's choice, e.g.
    every shape of its data not trained on) by ``protocol``; ``data``: the test shapes' data
    directory (default the run's); ``options``: the family's own (``steps``, ``threshold``,
    ...; one it does not use is an InputError naming its flag); ``guard``: checks the
    ``results.json`` path once the options are checked, before any work (a command's output
    guard)."""
    run = run if isinstance(run, Run) else open_run(run)
    protocol = protocol_of(run, protocol)
    directory = Path(out_dir) if out_dir is not None else default_directory(run, protocol)
    record = run.hook("evaluate")(run, protocol=protocol, split=split, data=data, out_dir=directory,
                                  seed=seed, progress=progress, guard=guard or _unguarded, **options)
    return Evaluation(directory, record)


def _unguarded(path: Path) -> Path:
    return path


# --------------------------------------------------------------------------------------------
# The schema, the formatter, the report
# --------------------------------------------------------------------------------------------


def column(key: str, label: str, scale: float = 1.0, spec: str = ".4f") -> dict[str, Any]:
    """A column of the per-shape table: ``row[key] * scale`` formatted by ``spec``."""
    return {"key": key, "label": label, "scale": scale, "format": spec}


def results_record(*, family: str | None, protocol: str, title: str, run: str | Path | None,
                   data: str | Path | None, split: str | Path | None, settings: Mapping[str, Any],
                   columns: Sequence[Mapping[str, Any]], shapes: Sequence[dict[str, Any]],
                   metrics: Sequence[str], **sections: Any) -> dict[str, Any]:
    """The ``results.json`` record (module notes): ``summary`` over ``metrics`` of ``shapes``;
    ``sections`` are the protocol's own keys."""
    return {"format": RESULTS_FORMAT, "version": RESULTS_VERSION, "family": family,
            "protocol": protocol, "title": title,
            "run": None if run is None else str(Path(run).resolve()),
            "data": None if data is None else str(data),
            "split": str(split) if isinstance(split, (str, Path)) else None,
            "settings": dict(settings), "columns": [dict(c) for c in columns],
            "shapes": list(shapes), "summary": summarise(shapes, metrics), "figures": [],
            **sections}


def write_results(directory: str | Path, record: dict[str, Any]) -> Path:
    """Write ``results.json`` and ``report.html`` into ``directory``; returns the results path."""
    directory = Path(directory)
    path = directory / RESULTS_NAME
    write_text_atomic(path, json.dumps(record, indent=1) + "\n")
    write_report(directory, record)
    return path


def format_results(record: Mapping[str, Any]) -> str:
    """A results record as text: a header, a line per shape, the mean and median of every
    metric (beside the baseline's, where there is one), and the protocol's own sections."""
    rows, columns = record["shapes"], record["columns"]
    baseline = record.get("baseline", {})
    lines = [_header(record), _shape_table(rows, columns, baseline.get("shapes")), "",
             _summary_table(record["summary"], columns, baseline.get("summary", {}))]
    if baseline:
        wins = baseline["better_than_baseline"]
        lines.append(f"better than the {baseline['name']} (Chamfer-L1) on {wins['chamfer_l1']} of "
                     f"{wins['of']} shapes")
    choice = record["settings"].get("threshold_choice")
    if choice is not None:
        threshold = record["settings"]["threshold"]
        level = "surface:" if threshold is None else f"threshold {threshold:g}"
        lines.append(f"{level} ({choice['rule']})")
    if "generation" in record:
        from isofield.metrics.clouds import format_generation_metrics

        lines += ["", format_generation_metrics(record["generation"])]
    return "\n".join(lines)


def _header(record: Mapping[str, Any]) -> str:
    count = len(record["shapes"])
    parts = [f"{record['title']}, {count} shape{'' if count == 1 else 's'}"]
    if "points" in record:
        parts.append(f"{record['points']} points")
    failures = sum("error" in row for row in record["shapes"])
    if failures:
        parts.append(f"{failures} without a surface")
    return ", ".join(parts)


def _name(row: Mapping[str, Any]) -> str:
    return str(row.get("id", row["shape"]))


def _cell(value: float | None, col: Mapping[str, Any], width: int) -> str:
    if value is None:
        return f"{'-':>{width}}"
    return f"{value * col['scale']:>{width}{col['format']}}"


def _shape_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Mapping[str, Any]],
                 baseline: Sequence[Mapping[str, Any]] | None) -> str:
    name_width = max([len("shape")] + [len(_name(row)) for row in rows]) + 2
    widths = [max(len(col["label"]) + 2, 9) for col in columns]
    header = f"{'shape':<{name_width}}" + "".join(f"{col['label']:>{w}}" for col, w in zip(columns, widths))
    if baseline:
        header += f"{'baseline ' + columns[0]['label']:>{len(columns[0]['label']) + 11}}"
    lines = [header]
    for index, row in enumerate(rows):
        line = f"{_name(row):<{name_width}}" + "".join(
            _cell(row.get(col["key"]), col, w) for col, w in zip(columns, widths))
        if baseline:
            line += _cell(baseline[index].get(columns[0]["key"]), columns[0], len(columns[0]["label"]) + 11)
        lines.append(line)
    return "\n".join(lines)


def _summary_table(summary: Mapping[str, Mapping[str, float]], columns: Sequence[Mapping[str, Any]],
                   baseline: Mapping[str, Mapping[str, float]]) -> str:
    scales = {col["key"]: col["scale"] for col in columns}
    header = f"{'metric':<36}{'mean':>12}{'median':>12}"
    if baseline:
        header += f"{'baseline mean':>16}{'median':>12}"
    lines = [header]
    for key, values in summary.items():
        scale = scales.get(key, 1.0)
        name = key if scale == 1.0 else f"{key} {_scale_label(scale)}"
        line = f"{name:<36}{scale * values['mean']:>12.5g}{scale * values['median']:>12.5g}"
        if key in baseline:
            line += f"{scale * baseline[key]['mean']:>16.5g}{scale * baseline[key]['median']:>12.5g}"
        lines.append(line)
    return "\n".join(lines)


def _scale_label(scale: float) -> str:
    """``x10^4`` for 1e4, ``x0.5`` for 0.5."""
    exponent = round(math.log10(scale))
    return f"x10^{exponent}" if math.isclose(scale, 10.0 ** exponent) else f"x{scale:g}"


def write_report(directory: str | Path, record: Mapping[str, Any]) -> Path:
    """``report.html`` of an evaluation folder: the summary, the figures of ``record`` (paths
    relative to ``directory``), the per-shape table and the settings."""
    from isofield.viz.report import Report

    directory = Path(directory)
    what = f"{record['family']} run {record['run']}" if record.get("run") else "meshes"
    report = Report(f"Evaluation: {record['title']}",
                    f"{what}; {len(record['shapes'])} "
                    f"{'training' if record['protocol'] == 'codes' else 'test'} shapes"
                    + (f" of {record['data']}" if record.get("data") else ""))
    summary = [{"metric": key, **values} for key, values in record["summary"].items()]
    report.add_table("Summary (mean and median over the shapes)", summary,
                     ["metric", "mean", "median", "count"])
    if "baseline" in record:
        baseline = [{"metric": key, **values} for key, values in record["baseline"]["summary"].items()]
        report.add_table(f"Baseline: {record['baseline']['name']}", baseline, ["metric", "mean", "median", "count"])
    for path, caption in record["figures"]:
        report.add_figure(path, caption)
    keys = [col["key"] for col in record["columns"]]
    report.add_table("Per shape", [{"shape": _name(row), **{key: row.get(key) for key in keys}}
                                   for row in record["shapes"]], ["shape", *keys])
    report.add_config(dict(record["settings"]), heading="Settings")
    return report.write(directory)


# --------------------------------------------------------------------------------------------
# Error-coloured renders
# --------------------------------------------------------------------------------------------


def error_figure(directory: Path, name: str, mesh: Any, reference: Any, what: str) -> list[str]:
    """Write ``directory/errors/<name>.png``: ``mesh`` coloured by its distance to
    ``reference`` (a mesh or points (N, 3) in the same frame), in % of the reference's bbox
    diagonal; returns the figure entry ``[relative path, caption]`` of ``results.json``."""
    from isofield.geometry.groundtruth import reference_distance
    from isofield.viz.error_map import error_values, render_error

    points = reference if isinstance(reference, np.ndarray) else np.asarray(reference.vertices)
    diagonal = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    distance = reference_distance(reference)(np.asarray(mesh.vertices, dtype=np.float64))
    relative = Path("errors") / f"{name.replace('/', '_')}.png"
    top = render_error(mesh, error_values(distance, diagonal), directory / relative)
    truth = "ground-truth points" if points is reference else "ground-truth mesh"
    return [str(relative), f"{name}: {what} coloured by its distance to the {truth}, in % of its "
                           f"bounding-box diagonal (scale to the 99th percentile, {top:.3g} %)."]


# --------------------------------------------------------------------------------------------
# The Occupancy Networks protocol on stored truth, for a run's meshes or any method's
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnetTruth:
    """A test shape's stored truth in the ONet layout, canonical (unit-cube) frame: surface
    points with normals (``SurfaceSamples``), the labelled uniform IoU points
    (``OccupancySamples``), and the frame (canonical -> the shape's own coordinates)."""

    surface: Any
    iou: Any
    frame: Any


def onet_truth(data: Any, ref: Any) -> OnetTruth:
    """The truth of ``ref`` in an :class:`~isofield.data.onet.OccupancyDataDir`."""
    cloud, frame = data.load_pointcloud(ref)
    iou_samples, _ = data.load_iou_points(ref)
    return OnetTruth(cloud, iou_samples, frame)


def onet_score(mesh: Any | None, truth: OnetTruth, key: str, seed: int) -> dict[str, Any]:
    """The ONet metrics row of a canonical-frame mesh (None: the model predicted nothing, an
    empty prediction) against the shape's truth."""
    import trimesh

    from isofield.metrics.onet import onet_mesh_metrics, onet_row

    empty = trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    result = onet_mesh_metrics(mesh if mesh is not None else empty, truth.surface.points,
                               truth.surface.normals, truth.iou.points, truth.iou.occupancies, seed=seed)
    return onet_row(key, result)


def onet_columns() -> list[dict[str, Any]]:
    return [column(*spec) for spec in ONET_COLUMNS]


def evaluate_mesh_folder(mesh_dir: str | Path, data_dir: str | Path, split: str | Path,
                         out_dir: str | Path | None = None, *, seed: int = 0,
                         progress: bool = True) -> Evaluation:
    """Score meshes ``mesh_dir/<dataset>/<class>/<id>.ply`` (user coordinates, as every
    isofield evaluation writes them) of the shapes of ``split`` of the ONet-layout
    ``data_dir`` under the ONet protocol; ``out_dir`` defaults to ``MESH_DIR/../onet``.

    Every mesh is looked for before any is scored: a missing one is an InputError naming its
    path (a folder in another layout is not a set of empty predictions)."""
    import trimesh
    from tqdm import tqdm

    from isofield.data.onet import OccupancyDataDir
    from isofield.geometry.io import read_mesh
    from isofield.metrics.onet import write_rows_csv

    data = OccupancyDataDir(data_dir)
    folder = Path(mesh_dir)
    if not folder.is_dir():
        raise InputError(f"{folder}: mesh folder not found")
    refs = data.shapes(split)
    paths = [folder / ref.relative_path(".ply") for ref in refs]
    missing = [path for path in paths if not path.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more of {len(paths)})" if len(missing) > 1 else ""
        raise InputError(f"{missing[0]}: no mesh for this test shape{more}; the folder must hold "
                         "<dataset>/<class>/<id>.ply for every shape of the split")
    rows = []
    for ref, path in tqdm(list(zip(refs, paths)), desc="score", disable=not progress):
        start = time.perf_counter()
        truth = onet_truth(data, ref)
        mesh = read_mesh(path)
        canonical = trimesh.Trimesh(truth.frame.to_canonical(np.asarray(mesh.vertices)), mesh.faces,
                                    process=False)
        row = onet_score(canonical, truth, ref.key, seed)
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
    out = Path(out_dir) if out_dir is not None else folder.parent / "onet"
    record = results_record(family=None, protocol="onet", title="ONet protocol", run=None,
                            data=data.root, split=split, settings={"meshes": str(folder.resolve()), "seed": seed},
                            columns=onet_columns(), shapes=rows, metrics=ONET_METRICS)
    write_rows_csv(rows, out / "scores.csv")
    write_results(out, record)
    return Evaluation(out, record)
