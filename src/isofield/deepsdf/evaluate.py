"""Evaluate a shape space: reconstruct or complete each held-out shape, or mesh each training
shape from its code, and compare with its ground truth (for completion, also with the nearest
training shape).

    >>> result = evaluate_split("runs/chairs", split="splits/test.json", mode="complete")
    >>> print(format_results(result.record))   # isofield.evaluation

Per test shape (from the data directory of the run, or another one):

- ``codes`` (DeepSDF's "representing known shapes"): each *training* shape (of ``split``, else
  all of them) meshed from its trained code; what the space holds of the shapes it was fitted to.
- ``reconstruct``: :func:`~isofield.deepsdf.inference.reconstruct_code` from the shape's SDF
  samples (DeepSDF's protocol), meshed in the frame stored with them.
- ``complete``: a virtual depth scan of the shape's source mesh from ``camera``
  (:func:`~isofield.geometry.scan.depth_scan`), optionally with free-space samples on its rays,
  then :func:`~isofield.deepsdf.inference.complete_fit` in the test shape's stored frame (as
  DeepSDF's shape-completion experiment: the frame of the complete shape is given), in the
  dataset's orientation unless ``rotations`` > 1 asks for the search about the up axis; each
  row records the angle chosen (``rotation_degrees``).

Metrics, each in the ground truth's units (the source mesh's coordinates):

- DeepSDF protocol: ``chamfer_deepsdf`` = mean d² + mean d² (both directions, the SUM, as
  DeepSDF's ``compute_trimesh_chamfer``) between ``deepsdf_points`` (30,000) area-weighted
  samples of the predicted mesh and the shape's ``SurfaceSamples`` (DeepSDF's ground-truth points).
- ONet protocol: ``chamfer_l1`` (mean of the two one-sided mean distances) and
  ``chamfer_l1_percent_of_diagonal`` between ``onet_points`` (100,000) samples of each mesh,
  with ``normal_consistency``, ``f_score`` (threshold 1% of the diagonal) and ``emd``
  (:func:`~isofield.metrics.surface.earth_movers_distance` on 2,048 of those samples per
  mesh), all from :func:`~isofield.metrics.surface.evaluate_meshes`; and whether every part
  survived (:func:`~isofield.metrics.parts.parts_report`, threshold 1% of the diagonal):
  ``components`` against ``components_reference``, ``largest_missing_share`` and ``parts_kept``.
  Without a source mesh (a
  DeepSDF data directory has no manifest), the reference is the ``SurfaceSamples`` points instead
  (``reference: "surface samples"``).

Nearest-training-shape baseline (completion): the training shape whose ground-truth surface
(its ``SurfaceSamples``, in its canonical frame) is nearest to the scan mapped into the test
shape's canonical frame, by the one-sided mean distance scan -> shape; its source mesh (its
learned code's mesh where the source is unknown: ``source: "code"``) is placed in the test
shape's frame and evaluated with the same metrics. It uses the same information as the completion.

Files, under ``RUN/evaluation/<mode>/`` (or ``out_dir``): ``meshes/<dataset>/<class>/<id>.ply`` (user
coordinates), for completion ``scans/.../<id>.ply`` (the partial scan, points and normals) and
``baseline/.../<id>.ply``; ``comparison.png`` (a few shapes: scan, completion, baseline, truth
side by side; or reconstruction and truth), ``errors/*.png`` (the first meshes coloured by their
distance to the truth), and ``results.json`` and ``report.html`` (:mod:`isofield.evaluation`):
per-shape rows, the mean and median of every metric over the shapes that have a mesh, and the
settings.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import trimesh
from scipy.spatial import cKDTree
from tqdm import tqdm

from isofield.data.datasets import DeepSDFDataDir, ShapeRef
from isofield.data.splits import held_out_shapes
from isofield.errors import InputError
from isofield.evaluation import ERROR_PICTURES, Evaluation, column, error_figure, results_record, write_results
from isofield.geometry.io import PointCloud, read_mesh, write_mesh, write_points
from isofield.geometry.normalization import Normalization
from isofield.geometry.raster import Camera, bounding_sphere
from isofield.geometry.sampling import sample_surface
from isofield.geometry.scan import Scan, ScanCamera, depth_scan, free_space_samples
from isofield.metrics.parts import parts_report
from isofield.metrics.summary import summarise
from isofield.metrics.surface import (
    chamfer_deepsdf,
    earth_movers_distance,
    evaluate_mesh_against_points,
    evaluate_meshes,
)
from isofield.deepsdf.inference import Pose, complete_fit, interpolate, mesh_fit, reconstruct_code
from isofield.deepsdf.outputs import ONET_POINTS, source_meshes
from isofield.deepsdf.space import ShapeSpace, load_shape_space
from isofield.train.shapes import TrainingShape
from isofield.viz.render import render_mesh, tile_images, write_png

MODES = ("codes", "reconstruct", "complete")
TITLES = {"codes": "training code", "reconstruct": "reconstruction",
          "complete": "completion"}
COLUMNS = (column("chamfer_l1_percent_of_diagonal", "CD-L1 %diag", 1.0, ".3f"),
           column("normal_consistency", "NC", 1.0, ".3f"), column("f_score", "F", 1.0, ".3f"),
           column("components", "pieces", 1.0, "g"),
           column("largest_missing_share", "missing %", 100.0, ".2f"),
           column("parts_kept", "parts kept", 1.0, "g"),
           column("seconds", "seconds", 1.0, ".1f"))
METRICS = ("chamfer_deepsdf", "chamfer_l1", "chamfer_l1_percent_of_diagonal", "normal_consistency",
           "f_score", "emd", "components", "largest_missing_share", "parts_kept", "seconds")
"""The per-shape numbers summarised by mean and median (``seconds``: optimisation + mesh)."""
TILE = (256, 256)
VIEW = (35.0, 20.0)
PART_TAU = 0.01
"""A ground-truth point farther than this fraction of the diagonal from the prediction is
missed (:func:`~isofield.metrics.parts.parts_report`)."""
SCAN_JUMP = 0.02
"""Neighbouring scan pixels are joined into a triangle for the pictures unless their depths
differ by more than this fraction of the scan's bounding-box diagonal (a silhouette)."""


@dataclass(frozen=True)
class EvaluationSettings:
    """How each test shape is inferred and measured (see the module notes).

    Attributes:
        mode: "codes", "reconstruct" or "complete".
        steps, restarts, seed: the optimisation (restarts: completion only).
        rotations: completion's candidate angles about the up axis (1: the dataset's
            orientation, no search).
        samples_per_step: SDF samples per reconstruction step (DeepSDF: 8000).
        points_per_step: observed points per completion step.
        camera: the depth camera of a completion's scan.
        scan_noise: the scan's depth noise, a fraction of the mesh's diagonal.
        free_space: free-space samples per completion (0: none), at least
            ``free_space_margin`` (a fraction of the scan's bounding-box diagonal) before the
            observed points.
        resolution: extraction grid; None: the run's ``extract.resolution``.
        deepsdf_points, onet_points: samples of the DeepSDF and ONet protocols.
        emd: compute the earth mover's distance (about a second per mesh).
        pictures: test shapes drawn in ``comparison.png`` (the first ones with a mesh).
    """

    mode: str = "reconstruct"
    steps: int = 800
    restarts: int = 4
    rotations: int = 1
    seed: int = 0
    samples_per_step: int = 8000
    points_per_step: int = 256
    camera: ScanCamera = ScanCamera()
    scan_noise: float = 0.0
    free_space: int = 0
    free_space_margin: float = 0.01
    resolution: int | None = None
    deepsdf_points: int = 30_000
    onet_points: int = ONET_POINTS
    emd: bool = True
    pictures: int = 4

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"evaluation mode: expected one of {', '.join(MODES)}, got {self.mode!r}")
        if isinstance(self.free_space, bool) or not isinstance(self.free_space, int) or self.free_space < 0:
            raise InputError(f"free-space samples: expected an integer >= 0, got {self.free_space!r}")


@dataclass(frozen=True)
class Truth:
    """A test shape's ground truth in its own coordinates.

    Attributes:
        mesh: the source mesh, or None when the data directory does not record it.
        surface: the shape's ``SurfaceSamples`` (normals where stored), user coordinates.
        frame: the shape's canonical frame (stored with its SDF samples).
    """

    mesh: trimesh.Trimesh | None
    surface: PointCloud
    frame: Normalization


def evaluate_split(run_dir: str | Path, data_dir: str | Path | None = None,
                   split: str | Path | Sequence[ShapeRef] | None = None,
                   mode: str = "reconstruct", *, out_dir: str | Path | None = None,
                   progress: bool = False, **options: Any) -> Evaluation:
    """Mesh every training shape from its code, or reconstruct or complete every test shape,
    and measure it (see the module notes).

    Args:
        run_dir: a trained shape-space run.
        data_dir: the DeepSDF data directory of the test shapes; default the run's.
        split: a DeepSDF split file or shapes; default every shape of ``data_dir`` that is not
            a training shape of the run (``codes``: every training shape).
        mode: "codes", "reconstruct" or "complete".
        out_dir: where the files go; default ``RUN/evaluation/<mode>``.
        progress: show a progress bar.
        options: the other fields of :class:`EvaluationSettings` (``camera``, ``steps``, ...).

    Raises:
        InputError: not a run, no test shapes, a test shape without SDF or surface samples,
            (completion) without a source mesh to scan, or (codes) a shape of ``split`` that the
            run was not trained on. A shape whose code has no surface is not an error: its row
            carries ``error`` and no metrics.
    """
    settings = EvaluationSettings(mode=mode, **options)
    space = load_shape_space(run_dir)
    data = DeepSDFDataDir(space.data_dir if data_dir is None else data_dir)
    trained = [shape.ref for shape in space.shapes]
    refs = (_training_shapes(trained, data, split) if settings.mode == "codes"
            else held_out_shapes(trained, data, split))
    truths = [_truth(data, ref, settings.mode) for ref in refs]  # every input checked first
    directory = Path(run_dir) / "evaluation" / settings.mode if out_dir is None else Path(out_dir)
    baseline = _Baseline(space) if settings.mode == "complete" else None
    rows, baseline_rows, pictures, errors = [], [], [], []
    for ref, truth in tqdm(list(zip(refs, truths)), desc=f"evaluate ({settings.mode})", unit="shape",
                           disable=not progress):
        scan = _scan(truth, settings) if settings.mode == "complete" else None
        row, mesh = _infer(space, data, ref, truth, scan, settings)
        rows.append(row)
        if mesh is not None:
            write_mesh(mesh, directory / "meshes" / ref.relative_path(".ply"))
            if len(errors) < min(ERROR_PICTURES, settings.pictures):
                reference = truth.mesh if truth.mesh is not None else truth.surface.points
                errors.append(error_figure(directory, ref.key, mesh, reference, f"the {TITLES[settings.mode]}"))
        nearest = None
        if baseline is not None:
            write_points(scan.point_cloud(), directory / "scans" / ref.relative_path(".ply"))
            nearest_row, nearest = baseline.nearest(ref, scan, truth, settings)
            write_mesh(nearest, directory / "baseline" / ref.relative_path(".ply"))
            baseline_rows.append(nearest_row)
        if mesh is not None and len(pictures) < settings.pictures:
            pictures.append(_picture_row(ref, mesh, truth, scan, nearest, row, baseline_rows,
                                         TITLES[settings.mode]))
    record = _record(run_dir, space, data, split, refs, settings, rows, baseline_rows)
    if pictures:
        write_png(render_rows([tiles for tiles, _ in pictures], [labels for _, labels in pictures]),
                  directory / "comparison.png")
        shown = ("scan | completion | nearest training shape | truth" if baseline
                 else f"{TITLES[settings.mode]} | truth")
        record["figures"].append(["comparison.png", shown])
    record["figures"] += errors
    write_results(directory, record)
    return Evaluation(directory, record)


def _training_shapes(trained: Sequence[ShapeRef], data: DeepSDFDataDir,
                     split: str | Path | Sequence[ShapeRef] | None) -> list[ShapeRef]:
    """The training shapes to mesh from their codes: the split's (each one trained on), or all."""
    if split is None:
        return list(trained)
    refs = data.shapes(split)
    known = set(trained)
    strangers = [ref.key for ref in refs if ref not in known]
    if strangers:
        raise InputError(f"{split if isinstance(split, (str, Path)) else 'split'}: "
                         f"{len(strangers)} shape(s) the run was not trained on "
                         f"({', '.join(strangers[:3])}); --mode codes meshes training shapes "
                         "(use --mode reconstruct for the others)")
    return refs


def _truth(data: DeepSDFDataDir, ref: ShapeRef, mode: str) -> Truth:
    """The ground truth of ``ref``: source mesh (or None) and surface samples, user frame.
    A completion needs the source mesh (it is scanned)."""
    _, frame = data.load_sdf(ref)
    cloud, surface_frame = data.load_surface(ref)
    source = source_meshes(data.root, [ref])[0]
    if source is None and mode == "complete":
        raise InputError(f"{data.root}: shape {ref.key} has no source mesh in the manifest; "
                         "completion scans it (preprocess the meshes with isofield preprocess)")
    surface = PointCloud(surface_frame.to_user(cloud.points), cloud.normals, cloud.source)
    return Truth(None if source is None else read_mesh(source), surface, frame)


def _scan(truth: Truth, settings: EvaluationSettings) -> Scan:
    """The depth scan of the truth's mesh from ``settings.camera``."""
    return depth_scan(truth.mesh, settings.camera, settings.scan_noise, settings.seed)


def _free_space(scan: Scan, settings: EvaluationSettings) -> np.ndarray | None:
    """Free-space samples on the scan's rays (user frame), or None when none are asked for."""
    if not settings.free_space:
        return None
    diagonal = float(np.linalg.norm(np.ptp(scan.points, axis=0)))
    return free_space_samples(scan, settings.free_space, settings.seed,
                              settings.free_space_margin * diagonal)


def _infer(space: ShapeSpace, data: DeepSDFDataDir, ref: ShapeRef, truth: Truth, scan: Scan | None,
           settings: EvaluationSettings) -> tuple[dict[str, Any], trimesh.Trimesh | None]:
    """(row with the fit and the metrics, the mesh in user coordinates or None when the
    fitted code has no surface)."""
    if settings.mode == "codes":
        return _code_row(space, ref, truth, settings)
    if scan is None:
        samples, _ = data.load_sdf(ref)
        fit = reconstruct_code(space, samples, steps=settings.steps, seed=settings.seed,
                               samples_per_step=settings.samples_per_step)
        pose = Pose.of(truth.frame)
    else:
        fit, pose = complete_fit(space, scan.points, scan.normals, truth.frame, _free_space(scan, settings),
                                 rotations=settings.rotations, restarts=settings.restarts,
                                 steps=settings.steps, seed=settings.seed,
                                 points_per_step=settings.points_per_step)
    row: dict[str, Any] = {"shape": ref.key, "id": ref.shape_id, "restart": fit.best,
                           "loss_initial": fit.initial_loss, "loss_final": fit.final_loss,
                           "optimisation_seconds": fit.seconds}
    if scan is not None:
        row["rotation_degrees"] = pose.degrees
    try:
        inference = mesh_fit(space, fit, pose, settings.resolution)
    except InputError as exc:
        row["error"] = str(exc)
        return row, None
    row.update(mesh_seconds=inference.mesh_seconds, seconds=inference.seconds)
    row.update(_metrics(inference.mesh, truth, settings))
    return row, inference.mesh


def _code_row(space: ShapeSpace, ref: ShapeRef, truth: Truth,
              settings: EvaluationSettings) -> tuple[dict[str, Any], trimesh.Trimesh | None]:
    """(row with the metrics, the mesh of the training shape's own code in its user coordinates
    or None when that code has no surface)."""
    index = next(shape.index for shape in space.shapes if shape.ref == ref)
    row: dict[str, Any] = {"shape": ref.key, "id": ref.shape_id, "index": index}
    started = time.perf_counter()
    try:
        mesh = space.mesh(index, settings.resolution)
    except InputError as exc:
        row["error"] = str(exc)
        return row, None
    seconds = time.perf_counter() - started
    row.update(mesh_seconds=seconds, seconds=seconds)
    row.update(_metrics(mesh, truth, settings))
    return row, mesh


def _metrics(mesh: trimesh.Trimesh, truth: Truth, settings: EvaluationSettings) -> dict[str, Any]:
    """The DeepSDF and ONet protocol numbers of ``mesh`` against ``truth`` (module notes)."""
    samples = sample_surface(mesh, settings.deepsdf_points, settings.seed).points
    row: dict[str, Any] = {"chamfer_deepsdf": chamfer_deepsdf(samples, truth.surface.points)}
    if truth.mesh is not None:
        onet = evaluate_meshes(mesh, truth.mesh, n_points=settings.onet_points, seed=settings.seed,
                               iou=False, emd=settings.emd)
        row["reference"] = "mesh"
        row.update(parts_report(mesh, truth.mesh, PART_TAU * onet["reference_bbox_diagonal"],
                                n_points=settings.onet_points, seed=settings.seed))
    else:
        onet = evaluate_mesh_against_points(mesh, truth.surface.points, truth.surface.normals,
                                            n_points=settings.onet_points, seed=settings.seed)
        if settings.emd:
            predicted = sample_surface(mesh, settings.onet_points, settings.seed).points
            onet["emd"] = earth_movers_distance(predicted, truth.surface.points, seed=settings.seed)
        row["reference"] = "surface samples"
    for key in ("chamfer_l1", "chamfer_l1_percent_of_diagonal", "normal_consistency", "f_score", "emd"):
        row[key] = onet.get(key)
    return row


class _Baseline:
    """The nearest training shape of a scan, by one-sided mean distance scan -> its ground-truth
    surface, both in the canonical frame (module notes)."""

    def __init__(self, space: ShapeSpace) -> None:
        training = DeepSDFDataDir(space.data_dir)
        self.space = space
        self.trees = [cKDTree(training.load_surface(shape.ref)[0].points) for shape in space.shapes]
        self.sources = source_meshes(space.data_dir, [shape.ref for shape in space.shapes])
        self.meshes: dict[int, tuple[trimesh.Trimesh, str]] = {}

    def nearest(self, ref: ShapeRef, scan: Scan, truth: Truth,
                settings: EvaluationSettings) -> tuple[dict[str, Any], trimesh.Trimesh]:
        """(row with the metrics, the nearest training shape's mesh in the test shape's frame)."""
        points = truth.frame.to_canonical(scan.points)
        distances = np.array([tree.query(points, workers=-1)[0].mean() for tree in self.trees])
        shape = self.space.shapes[int(np.argmin(distances))]
        mesh, source = self._mesh(shape)
        placed = trimesh.Trimesh(truth.frame.to_user(shape.normalization.to_canonical(mesh.vertices)),
                                 mesh.faces, process=False)
        row: dict[str, Any] = {"shape": ref.key, "id": ref.shape_id, "nearest": shape.ref.key,
                               "nearest_index": shape.index, "source": source,
                               "scan_distance": float(truth.frame.distance_to_user(distances.min()))}
        row.update(_metrics(placed, truth, settings))
        return row, placed

    def _mesh(self, shape: TrainingShape) -> tuple[trimesh.Trimesh, str]:
        """A training shape's source mesh ("mesh"), else its code's mesh ("code"), in its own
        coordinates."""
        if shape.index not in self.meshes:
            source = self.sources[shape.index]
            self.meshes[shape.index] = ((read_mesh(source), "mesh") if source is not None
                                        else (self.space.mesh(shape.index), "code"))
        return self.meshes[shape.index]


# --------------------------------------------------------------------------------------------
# results.json
# --------------------------------------------------------------------------------------------


def _record(run_dir: str | Path, space: ShapeSpace, data: DeepSDFDataDir,
            split: str | Path | Sequence[ShapeRef] | None, refs: Sequence[ShapeRef],
            settings: EvaluationSettings, rows: list[dict[str, Any]],
            baseline_rows: list[dict[str, Any]]) -> dict[str, Any]:
    definitions = {
        "deepsdf": f"chamfer_deepsdf: mean d^2 + mean d^2 between {settings.deepsdf_points} "
                   "samples of the mesh and the SurfaceSamples (squared mesh units)",
        "onet": f"chamfer_l1: 0.5 (mean d + mean d) between {settings.onet_points} samples of "
                "each mesh (mesh units); normal consistency, F-score at 1% of the diagonal, "
                "EMD on 2048 of those samples",
    }
    record = results_record(family="deepsdf", protocol=settings.mode, title=TITLES[settings.mode],
                            run=run_dir, data=data.root, split=split, settings=asdict(settings),
                            columns=COLUMNS, shapes=rows, metrics=METRICS, mode=settings.mode,
                            step=space.step, shapes_evaluated=len(refs),
                            failures=sum("error" in row for row in rows), definitions=definitions)
    if baseline_rows:
        better = sum(row.get("chamfer_l1") is not None and row["chamfer_l1"] < nearest["chamfer_l1"]
                     for row, nearest in zip(rows, baseline_rows))
        record["baseline"] = {"name": "nearest training shape", "shapes": baseline_rows,
                              "summary": summarise(baseline_rows, METRICS),
                              "better_than_baseline": {"chamfer_l1": better, "of": len(rows)}}
    return record


# --------------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------------


TRUTH_COLOR = (0.80, 0.78, 0.72)
SCAN_COLOR = (0.55, 0.75, 0.60)


def _picture_row(ref: ShapeRef, mesh: trimesh.Trimesh, truth: Truth, scan: Scan | None,
                 nearest: trimesh.Trimesh | None, row: dict[str, Any],
                 baseline_rows: list[dict[str, Any]], title: str) -> tuple[list, list[str]]:
    """([(mesh or None, colour), ...], labels) of one shape in ``comparison.png``."""
    error = _percent(row)
    truth_tile = (truth.mesh, TRUTH_COLOR)
    if scan is None:
        return [(mesh, None), truth_tile], [f"{ref.shape_id}: {title}, {error}", "ground truth"]
    nearest_error = _percent(baseline_rows[-1])
    return ([(scan_mesh(scan), SCAN_COLOR), (mesh, None), (nearest, None), truth_tile],
            [f"{ref.shape_id}: scan ({len(scan.points)} points)", f"completion, {error}",
             f"nearest training shape, {nearest_error}", "ground truth"])


def _percent(row: dict[str, Any]) -> str:
    value = row.get("chamfer_l1_percent_of_diagonal")
    return "CD n/a" if value is None else f"CD {value:.2f}%"


def render_rows(rows: Sequence[Sequence[tuple[trimesh.Trimesh | None, Any]]],
                labels: Sequence[Sequence[str]], tile: tuple[int, int] = TILE,
                view: tuple[float, float] = VIEW) -> np.ndarray:
    """Meshes drawn in a grid, one row per list of ``(mesh or None, colour or None)`` (None: a
    light grey tile; colour None: the default), each row seen by one camera that frames all its
    meshes, so sizes compare along a row. All rows have the same length. Returns an (H, W, 3)
    uint8 image (e.g. an interpolation strip: one row)."""
    tiles = []
    for row in rows:
        present = [np.asarray(mesh.vertices) for mesh, _ in row if mesh is not None]
        camera = None
        if present:
            center, radius = bounding_sphere(np.concatenate(present))
            camera = Camera.looking_at(center, radius, tile, view)
        for mesh, color in row:
            if mesh is None or camera is None:
                tiles.append(np.full((tile[1], tile[0], 3), 235, dtype=np.uint8))
            else:
                options = {} if color is None else {"color": color}
                tiles.append(render_mesh(mesh, None, camera=camera, supersample=2, **options))
    return tile_images(tiles, len(rows[0]), [label for row in labels for label in row])


def write_interpolation(space: ShapeSpace, code_a: int | np.ndarray, code_b: int | np.ndarray,
                        count: int, out_dir: str | Path, resolution: int | None = None,
                        names: tuple[str, str] = ("a", "b")) -> list[Path]:
    """Meshes of the codes between two training shapes (indices) or codes (L,), in the
    canonical frame, as ``out_dir/step_<k>.ply``, and ``out_dir/interpolation.png`` (one strip,
    one camera, labelled with t and ``names`` at the ends). Returns the paths written."""
    meshes = interpolate(space, code_a, code_b, count, resolution)
    paths = [Path(out_dir) / f"step_{k:02d}.ply" for k in range(count)]
    for mesh, path in zip(meshes, paths):
        write_mesh(mesh, path)
    labels = [f"t = {t:.2f}" for t in np.linspace(0.0, 1.0, count)]
    labels[0], labels[-1] = f"{names[0]} (t = 0)", f"{names[1]} (t = 1)"
    picture = Path(out_dir) / "interpolation.png"
    write_png(render_rows([[(mesh, None) for mesh in meshes]], [labels]), picture)
    return paths + [picture]


def scan_mesh(scan: Scan, jump: float = SCAN_JUMP) -> trimesh.Trimesh | None:
    """The scan's points joined into triangles along its depth image's pixel grid (two per 2x2
    block of covered pixels whose depths differ by less than ``jump`` times the points'
    bounding-box diagonal), for pictures; None when no block qualifies."""
    covered = np.isfinite(scan.depth)
    index = np.full(covered.shape, -1, dtype=np.int64)
    index[covered] = np.arange(covered.sum())
    depth = np.where(covered, scan.depth, 0.0)
    corners = [(slice(None, -1), slice(None, -1)), (slice(None, -1), slice(1, None)),
               (slice(1, None), slice(None, -1)), (slice(1, None), slice(1, None))]
    quad_index = np.stack([index[c] for c in corners], axis=-1)           # (H-1, W-1, 4)
    quad_depth = np.stack([depth[c] for c in corners], axis=-1)
    limit = jump * float(np.linalg.norm(np.ptp(scan.points, axis=0)))
    usable = (quad_index >= 0).all(axis=-1) & (np.ptp(quad_depth, axis=-1) < limit)
    quads = quad_index[usable]
    if len(quads) == 0:
        return None
    faces = np.concatenate([quads[:, [0, 2, 1]], quads[:, [1, 2, 3]]])
    return trimesh.Trimesh(scan.points, faces, process=False)
