"""Preprocess a mesh dataset into a DeepSDF data directory or an Occupancy Networks folder: in
parallel, resumable, and reporting every shape.

Per shape (see :func:`preprocess_shape`) the mesh is read and checked, and the ``protocol``
(:class:`Settings`) decides what is written:

- ``"deepsdf"`` (default): the frame is DeepSDF's normalisation (bounding-box centre, farthest
  vertex at radius 1 / 1.03); DeepSDF SDF samples (:func:`~isofield.geometry.samples.sdf_samples`,
  500,000 by default) and surface points with outward normals
  (:func:`~isofield.geometry.samples.surface_samples`, same frame) go to

  - ``SdfSamples/<dataset>/<class>/<id>.npz``: DeepSDF's ``pos``/``neg`` plus ``center``/``scale``,
  - ``SurfaceSamples/<dataset>/<class>/<id>.npz``: ``points``, ``normals``, ``center``, ``scale``,

  so :class:`~isofield.data.datasets.DeepSDFDataDir` reads the result like DeepSDF's own folders.
  No ``NormalizationParameters`` files are written: each npz carries its frame.
- ``"onet"``: the frame is ONet's (bounding box fitted to the unit cube ``[-0.5, 0.5]^3``), and
  ``<out_dir>/<class or dataset>/<id>/`` (:mod:`isofield.data.onet`) gets

  - ``points.npz``: ``samples`` (default 100,000, ONet's ``points_size``) labelled float32
    points, half uniform in the cube grown by 10% (ONet's ``points_padding``) and half surface
    points offset by Gaussian noise of standard deviation 0.01 (ONet's ``points_sigma``). The
    near-surface half follows Convolutional ONet's scene data; ONet's ShapeNet files are all
    uniform, which leaves few labels next to thin parts such as chair legs;
  - ``points_iou.npz``: :data:`ONET_IOU_POINTS` uniform points in the same padded cube (a seed
    of their own), for the volumetric IoU as ONet evaluates it,
  - ``pointcloud.npz``: ``surface_points`` surface points and outward normals (ONet's
    ``pointcloud_size`` is 100,000 too), same frame,
  - with ``views`` > 0: ``img/000.png ...`` and ``img/cameras.npz``
    (:func:`~isofield.data.views.render_views` at :data:`~isofield.data.views.VIEW_RESOLUTION`
    pixels),

  read back by :class:`~isofield.data.onet.OccupancyDataDir`. Points are float32 (ONet's
  float16 would move points next to the surface across it by up to 2.4e-4).

``manifest.json`` records every shape of the run (source mesh, status ``pending`` / ``ok`` /
``failed``, the one-line reason of a failure, vertex and face counts, whether the mesh is
watertight, the inside test that decided the signs and its ambiguous-sign fraction, sample
counts, seconds, the settings used, protocol included) and the run's counts (preprocessed,
skipped because done before, failed, shapes per minute); a shape with many ambiguous signs gets
one warning line on stderr. It is rewritten atomically at the start, at most every
:data:`MANIFEST_INTERVAL` seconds while shapes finish, and at the end (also on Ctrl-C), so a
killed run leaves a valid manifest.

Resuming: a shape is skipped when its manifest entry says ``ok`` with the same settings (the
protocol among them) and all of its files exist; every other shape (pending, failed, other
settings or protocol, a file deleted) is done again. Every file is written atomically, so a kill
never leaves a half-written file.

Failures: a shape whose mesh cannot be read, is empty, has NaN coordinates, has zero area, or
encloses no volume is recorded as failed with its reason and the run goes on. Input files are
only read, never changed or deleted.

Determinism: each shape's seeds derive from (``seed``, class, id) alone, so the files do not
depend on the number of workers or the order in which shapes finish.

Parallelism: ``workers=1`` runs in this process (libigl then uses every core itself);
``workers=N`` runs N spawned processes with one thread each (``OMP_NUM_THREADS``,
``IGL_NUM_THREADS``, ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` set to 1 for them).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import trimesh
from tqdm import tqdm

from isofield.data.datasets import (
    SDF_SAMPLES,
    SURFACE_SAMPLES,
    ShapeRef,
    _unique,
    data_path,
    derived_seed,
    discover,
    match_split,
    read_split,
)
from isofield.data.formats import (
    write_onet_pointcloud,
    write_onet_points,
    write_sdf_samples,
    write_surface_samples,
)
from isofield.data.onet import (
    IOU_POINTS_NAME,
    POINTCLOUD_NAME,
    POINTS_NAME,
    VIEWS_FOLDER,
    shape_dir,
)
from isofield.data.views import (
    CAMERAS_NAME,
    VIEW_RESOLUTION,
    render_views,
    view_file_names,
    write_views,
)
from isofield.errors import InputError
from isofield.files import write_text_atomic
from isofield.geometry.groundtruth import MeshDistance, sign_warning
from isofield.geometry.io import describe_mesh, read_mesh
from isofield.geometry.samples import (
    DEEPSDF_NEAR_FRACTION,
    DEEPSDF_PADDING,
    DEEPSDF_VARIANCES,
    ONET_PADDING,
    occupancy_samples,
    sdf_samples,
    surface_samples,
)
from isofield.geometry.sampling import _positive_count

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "isofield-preprocess-1"
MANIFEST_INTERVAL = 1.0
"""Seconds between two manifest writes while shapes finish (a write per shape would cost
O(shapes^2) on large datasets)."""

_THREAD_VARIABLES = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "IGL_NUM_THREADS"
)

STATUSES = ("pending", "ok", "failed")

ONET_NEAR_FRACTION = 0.5
"""Share of near-surface points in the onet protocol's ``points.npz`` (the rest is uniform)."""

ONET_SIGMA = 0.01
"""Standard deviation of the near-surface offsets (canonical units: the unit cube's side)."""

ONET_IOU_POINTS = 100_000
"""Uniform points per shape in ``points_iou.npz`` (ONet evaluates IoU on 100,000)."""


@dataclass(frozen=True)
class Settings:
    """What determines a shape's files; a changed setting makes a resumed run redo the shape.

    Attributes:
        samples: SDF samples (deepsdf) or labelled points of ``points.npz`` (onet) per shape;
            None: the protocol's default, DeepSDF's 500,000 or ONet's 100,000.
        surface_points: surface points (with normals) per shape.
        seed: base seed; each shape's seeds derive from it and the shape's class and id.
        protocol: ``"deepsdf"`` or ``"onet"`` (module notes).
        views: rendered views per shape (onet only; 0: none).
    """

    samples: int | None = None
    surface_points: int = 100_000
    seed: int = 0
    protocol: str = "deepsdf"
    views: int = 0

    def __post_init__(self) -> None:
        if self.protocol not in _PROTOCOLS:
            known = ", ".join(_PROTOCOLS)
            raise InputError(
                f"unknown preprocessing protocol {self.protocol!r} (use one of: {known})"
            )
        protocol = _PROTOCOLS[self.protocol]
        samples = protocol.default_samples if self.samples is None else self.samples
        samples = _positive_count(samples, f"number of {protocol.samples}")
        object.__setattr__(self, "samples", samples)
        count = _positive_count(self.surface_points, "number of surface points")
        object.__setattr__(self, "surface_points", count)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise InputError(f"seed must be an integer, got {self.seed!r}")
        if self.views != 0:
            object.__setattr__(self, "views", _positive_count(self.views, "number of views"))
            if self.protocol != "onet":
                raise InputError(
                    f"views are rendered by the onet protocol only, not {self.protocol!r}"
                )

    def to_dict(self) -> dict:
        """The settings and the protocol's constants, as stored in the manifest."""
        common = {
            "protocol": self.protocol,
            "samples": self.samples,
            "surface_points": self.surface_points,
            "seed": int(self.seed),
        }
        if self.protocol == "deepsdf":
            constants = {
                "variances": list(DEEPSDF_VARIANCES),
                "near_fraction": DEEPSDF_NEAR_FRACTION,
                "padding": DEEPSDF_PADDING,
            }
        else:
            constants = {
                "near_fraction": ONET_NEAR_FRACTION,
                "sigma": ONET_SIGMA,
                "padding": ONET_PADDING,
                "iou_points": ONET_IOU_POINTS,
                "views": self.views,
                "view_resolution": VIEW_RESOLUTION,
            }
        return {**common, **constants}


@dataclass
class ShapeRecord:
    """The manifest entry of one shape (None: not known, e.g. for a failed or pending shape).

    Attributes:
        ref: the shape; ``ref.mesh_path`` is the source mesh.
        status: ``"pending"``, ``"ok"`` or ``"failed"``.
        error: one-line reason of a failure.
        settings: :meth:`Settings.to_dict` of the run that wrote the files.
        vertices, faces: counts of the mesh as read.
        watertight: every edge shared by exactly two faces
            (:func:`~isofield.geometry.io.describe_mesh`).
        sign_method: the inside test that decided the signs, ``"winding"`` or ``"flood-fill"``
            (:attr:`~isofield.geometry.groundtruth.MeshDistance.sign_method`).
        ambiguous_sign_fraction: the share of the mesh's probe points whose sign that test
            leaves in doubt (:attr:`~isofield.geometry.groundtruth.MeshDistance.ambiguous_fraction`);
            above :data:`~isofield.geometry.groundtruth.HIGH_AMBIGUITY` a warning is printed.
        sdf_samples, positive_samples: SDF sample count and how many have sdf > 0 (``pos``)
            (deepsdf).
        occupancy_samples, inside_samples: points of ``points.npz`` and how many are inside
            (onet).
        iou_points, iou_inside: the same for the uniform ``points_iou.npz`` (onet);
            ``iou_inside / iou_points`` estimates the share of the padded cube that the shape
            fills.
        surface_points: surface sample count.
        views: rendered views (onet).
        seconds: wall-clock time spent on the shape.
    """

    ref: ShapeRef
    status: str = "pending"
    error: str | None = None
    settings: dict | None = None
    vertices: int | None = None
    faces: int | None = None
    watertight: bool | None = None
    sign_method: str | None = None
    ambiguous_sign_fraction: float | None = None
    sdf_samples: int | None = None
    positive_samples: int | None = None
    occupancy_samples: int | None = None
    inside_samples: int | None = None
    iou_points: int | None = None
    iou_inside: int | None = None
    surface_points: int | None = None
    views: int | None = None
    seconds: float | None = None

    def to_json(self) -> dict:
        source = None if self.ref.mesh_path is None else str(self.ref.mesh_path)
        names = {"dataset": self.ref.dataset, "class": self.ref.klass, "id": self.ref.shape_id}
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "ref"}
        return {**names, "source": source, **values}

    @classmethod
    def from_json(cls, data: dict) -> "ShapeRecord":
        source = data.get("source")
        ref = ShapeRef(data["dataset"], data["class"], data["id"], Path(source) if source else None)
        known = {f.name for f in fields(cls)} - {"ref"}
        record = cls(ref, **{key: value for key, value in data.items() if key in known})
        if record.status not in STATUSES:
            raise ValueError(f"unknown status {record.status!r} of {ref.key}")
        return record


@dataclass
class RunSummary:
    """What one call of :func:`preprocess` did.

    Attributes:
        shapes: shapes asked for; ok: preprocessed now; skipped: done before (kept);
        failed: failed now; workers: processes used; seconds: wall-clock time of the run.
    """

    shapes: int
    workers: int
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0

    @property
    def shapes_per_minute(self) -> float | None:
        """Shapes preprocessed per minute of this run (None before any time has passed)."""
        return 60.0 * self.ok / self.seconds if self.seconds > 0 else None

    def to_json(self) -> dict:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**values, "shapes_per_minute": self.shapes_per_minute}


@dataclass
class Manifest:
    """``manifest.json`` of a preprocessed data directory.

    Attributes:
        path: the manifest file.
        settings: settings of the latest run (:meth:`Settings.to_dict`).
        records: one entry per shape ever preprocessed here, keyed by the shape (names only).
        run: the latest run's counts, or None when unknown.
    """

    path: Path
    settings: dict
    records: dict[ShapeRef, ShapeRecord] = field(default_factory=dict)
    run: RunSummary | None = None

    def shapes(self, status: str | None = None) -> list[ShapeRef]:
        """The shapes of the manifest, in its order; only those with ``status`` if given."""
        return [ref for ref, rec in self.records.items() if status in (None, rec.status)]

    def counts(self) -> dict[str, int]:
        """How many entries have each status."""
        return {s: sum(rec.status == s for rec in self.records.values()) for s in STATUSES}

    def to_json(self) -> dict:
        return {
            "format": MANIFEST_FORMAT,
            "settings": self.settings,
            "run": None if self.run is None else self.run.to_json(),
            "totals": self.counts(),
            "shapes": [record.to_json() for record in self.records.values()],
        }

    def save(self) -> None:
        """Write the manifest atomically: indented, one line per shape."""
        data = self.to_json()
        shapes = ",\n  ".join(json.dumps(entry) for entry in data.pop("shapes"))
        head = json.dumps(data, indent=1)[: -len("\n}")]
        write_text_atomic(self.path, f'{head},\n "shapes": [\n  {shapes}\n ]\n}}\n')

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Manifest":
        """Read a manifest; InputError naming ``path`` if it is missing or not one."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: manifest not found") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: cannot read manifest ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise InputError(f"{path}: not an isofield preprocessing manifest ({MANIFEST_FORMAT})")
        try:
            records = [ShapeRecord.from_json(entry) for entry in data["shapes"]]
            run = data.get("run")
            summary = None if run is None else RunSummary(
                **{f.name: run[f.name] for f in fields(RunSummary)}
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"{path}: invalid manifest entry ({exc})") from None
        return cls(path, data.get("settings", {}), {rec.ref: rec for rec in records}, summary)

    def summary(self, max_failures: int = 10) -> str:
        """A few lines for people: the latest run's counts and speed, its failures, the path."""
        lines = []
        if self.run is not None:
            run = self.run
            speed = run.shapes_per_minute
            rate = "-" if speed is None else f"{speed:.1f}"
            lines.append(
                f"{run.shapes} shapes: {run.ok} preprocessed, {run.skipped} skipped (done before), "
                f"{run.failed} failed; {rate} shapes/min ({run.ok} in {run.seconds:.1f} s, "
                f"{run.workers} worker{'s' if run.workers != 1 else ''})"
            )
        failed = [rec for rec in self.records.values() if rec.status == "failed"]
        lines += [f"failed: {rec.ref.key}: {rec.error}" for rec in failed[:max_failures]]
        if len(failed) > max_failures:
            lines.append(f"... and {len(failed) - max_failures} more failures (see the manifest)")
        lines.append(f"manifest: {self.path}")
        return "\n".join(lines)


def output_paths(
    out_dir: str | os.PathLike, ref: ShapeRef, settings: Settings | None = None
) -> tuple[Path, ...]:
    """Every file that ``settings`` (default: :class:`Settings`'s, the deepsdf protocol) writes
    for ``ref`` under ``out_dir``."""
    settings = Settings() if settings is None else settings
    return _PROTOCOLS[settings.protocol].paths(Path(out_dir), ref, settings)


def preprocess_shape(ref: ShapeRef, out_dir: str | os.PathLike, settings: Settings) -> ShapeRecord:
    """Preprocess one shape into ``out_dir``. Never raises for a bad mesh (nor for any other
    exception): the returned record is then ``failed`` with a one-line reason."""
    start = time.perf_counter()
    try:
        values = _write_shape(ref, Path(out_dir), settings)
    except Exception as error:  # any problem of one mesh is recorded; the run goes on
        return ShapeRecord(ref, "failed", error=_one_line(error), seconds=_since(start))
    return ShapeRecord(ref, "ok", settings=settings.to_dict(), seconds=_since(start), **values)


def _since(start: float) -> float:
    """Seconds since ``start`` (a ``time.perf_counter()`` value), to the millisecond."""
    return round(time.perf_counter() - start, 3)


def _write_shape(ref: ShapeRef, out_dir: Path, settings: Settings) -> dict:
    """Read and check one mesh, write its protocol's files; returns the record's diagnostics."""
    if ref.mesh_path is None:
        raise InputError("no mesh for this shape in the dataset (it is only in the split)")
    mesh = read_mesh(ref.mesh_path)
    if not mesh.area > 0:
        raise InputError(f"{ref.mesh_path}: mesh has zero surface area")
    description = describe_mesh(mesh)
    distance = MeshDistance(mesh)
    values = _PROTOCOLS[settings.protocol].write(distance, ref, out_dir, settings)
    return {
        "vertices": description["vertices"],
        "faces": description["faces"],
        "watertight": description["watertight"],
        "sign_method": distance.sign_method,
        "ambiguous_sign_fraction": round(distance.ambiguous_fraction, 5),
        **values,
    }


def _seed(settings: Settings, ref: ShapeRef, *stream: str) -> int:
    """The seed of one of ``ref``'s draws (:func:`~isofield.data.datasets.derived_seed`)."""
    return derived_seed(settings.seed, ref.klass, ref.shape_id, *stream)


def _deepsdf_paths(out_dir: Path, ref: ShapeRef, settings: Settings) -> tuple[Path, ...]:
    """The SDF samples and surface samples files of ``ref``."""
    return data_path(out_dir, SDF_SAMPLES, ref), data_path(out_dir, SURFACE_SAMPLES, ref)


def _write_deepsdf(
    distance: MeshDistance, ref: ShapeRef, out_dir: Path, settings: Settings
) -> dict:
    """The deepsdf protocol's files of one shape; returns the record's sample counts."""
    sdf, frame = sdf_samples(distance, settings.samples, _seed(settings, ref))
    surface, _ = surface_samples(
        distance, settings.surface_points, _seed(settings, ref, "surface"), frame
    )
    sdf_path, surface_path = _deepsdf_paths(out_dir, ref, settings)
    write_sdf_samples(sdf, frame, sdf_path)
    write_surface_samples(surface, frame, surface_path)
    values = {
        "sdf_samples": len(sdf.sdf),
        "positive_samples": int(np.count_nonzero(sdf.sdf > 0)),
        "surface_points": len(surface.points),
    }
    return values


def _onet_paths(out_dir: Path, ref: ShapeRef, settings: Settings) -> tuple[Path, ...]:
    """``points.npz``, ``points_iou.npz``, ``pointcloud.npz`` and the views' files of ``ref``."""
    folder = shape_dir(out_dir, ref)
    samples = tuple(folder / name for name in (POINTS_NAME, IOU_POINTS_NAME, POINTCLOUD_NAME))
    if not settings.views:
        return samples
    views = [*view_file_names(settings.views), CAMERAS_NAME]
    return samples + tuple(folder / VIEWS_FOLDER / name for name in views)


def _write_onet(
    distance: MeshDistance, ref: ShapeRef, out_dir: Path, settings: Settings
) -> dict:
    """The onet protocol's files of one shape (module notes); returns the record's counts."""
    points, frame = occupancy_samples(
        distance, settings.samples, _seed(settings, ref),
        near_fraction=ONET_NEAR_FRACTION, sigma=ONET_SIGMA, padding=ONET_PADDING,
    )
    uniform, _ = occupancy_samples(
        distance, ONET_IOU_POINTS, _seed(settings, ref, "iou"), frame,
        near_fraction=0.0, padding=ONET_PADDING,
    )
    surface, _ = surface_samples(
        distance, settings.surface_points, _seed(settings, ref, "surface"), frame
    )
    folder = shape_dir(out_dir, ref)
    write_onet_points(points, frame, folder / POINTS_NAME)
    write_onet_points(uniform, frame, folder / IOU_POINTS_NAME)
    write_onet_pointcloud(surface, frame, folder / POINTCLOUD_NAME)
    if settings.views:
        vertices = frame.to_canonical(distance.surface.vertices.astype(np.float64))
        canonical = trimesh.Trimesh(vertices, distance.oriented_faces, process=False)
        seed = _seed(settings, ref, "views")
        images, cameras = render_views(canonical, settings.views, seed=seed)
        write_views(folder / VIEWS_FOLDER, images, cameras)
    values = {
        "occupancy_samples": len(points.points),
        "inside_samples": int(np.count_nonzero(points.occupancies)),
        "iou_points": len(uniform.points),
        "iou_inside": int(np.count_nonzero(uniform.occupancies)),
        "surface_points": len(surface.points),
        "views": settings.views,
    }
    return values


@dataclass(frozen=True)
class _Protocol:
    """What a protocol writes: ``paths(out_dir, ref, settings)`` lists a shape's files,
    ``write(distance, ref, out_dir, settings)`` writes them and returns the record's counts;
    ``samples`` names what :attr:`Settings.samples` counts, ``default_samples`` its default."""

    samples: str
    default_samples: int
    paths: Callable[[Path, ShapeRef, Settings], tuple[Path, ...]]
    write: Callable[[MeshDistance, ShapeRef, Path, Settings], dict]


_PROTOCOLS: dict[str, _Protocol] = {
    "deepsdf": _Protocol("SDF samples", 500_000, _deepsdf_paths, _write_deepsdf),
    "onet": _Protocol("occupancy samples", 100_000, _onet_paths, _write_onet),
}


def _one_line(error: Exception) -> str:
    """The error's message on one line; other than InputError, prefixed with its type."""
    text = " ".join(str(error).split()) or "(no message)"
    return text if isinstance(error, InputError) else f"{type(error).__name__}: {text}"


def preprocess(
    dataset: str | os.PathLike | Sequence[ShapeRef],
    out_dir: str | os.PathLike,
    *,
    split: str | os.PathLike | None = None,
    workers: int = 1,
    samples: int | None = None,
    surface_points: int = 100_000,
    seed: int = 0,
    protocol: str = "deepsdf",
    views: int = 0,
    progress: bool = True,
) -> Manifest:
    """Preprocess a mesh dataset into a DeepSDF data directory or an Occupancy Networks folder
    (see the module notes).

    Args:
        dataset: a mesh folder (:func:`~isofield.data.datasets.discover`) or ShapeRefs with
            mesh paths.
        out_dir: the data directory: new, empty, or written by an earlier call (resumed; shapes
            done with other settings or another protocol are done again).
        split: a DeepSDF split file; only its shapes are preprocessed (matched by class and
            id, written under the split's dataset name; a shape with no mesh is recorded failed).
        workers: processes; 1 runs here.
        samples: SDF samples (deepsdf) or labelled points (onet) per shape; None: the
            protocol's default (500,000 or 100,000). surface_points: surface points per shape.
        seed: base seed. protocol: ``"deepsdf"`` or ``"onet"``.
        views: rendered views per shape (onet; e.g. 24). progress: show a progress bar and
            failures on stderr.

    Returns:
        The manifest, also in ``out_dir/manifest.json``; :meth:`Manifest.summary` describes the
        run.

    Raises:
        InputError: bad arguments, no shapes, a split or manifest that cannot be read, or an
            ``out_dir`` that holds other files and no manifest. Broken meshes do not raise.
    """
    settings = Settings(samples, surface_points, seed, protocol, views)
    workers = _positive_count(workers, "number of workers")
    refs = _shapes(dataset, split)
    manifest = _open_manifest(Path(out_dir), settings)
    todo = [ref for ref in refs if not _is_done(manifest.records.get(ref), settings, out_dir)]
    for ref in todo:
        manifest.records[ref] = ShapeRecord(ref)
    run = manifest.run = RunSummary(len(refs), workers, skipped=len(refs) - len(todo))
    manifest.save()
    if progress:
        print(
            f"preprocessing {len(todo)} of {len(refs)} shapes into {out_dir} "
            f"({run.skipped} done before; {workers} worker{'s' if workers != 1 else ''})",
            file=sys.stderr,
        )
    _collect(manifest, _results(todo, Path(out_dir), settings, workers), len(todo), progress)
    return manifest


def _collect(
    manifest: Manifest, records: Iterator[ShapeRecord], count: int, progress: bool
) -> None:
    """Enter ``count`` finished records into the manifest and its run counts, saving it every
    :data:`MANIFEST_INTERVAL` seconds and once more at the end, also when interrupted."""
    run = manifest.run
    start = last_save = time.perf_counter()
    bar = tqdm(total=count, unit="shape", disable=None if progress else True)
    try:
        for record in records:
            manifest.records[record.ref] = record
            run.ok += record.status == "ok"
            run.failed += record.status == "failed"
            if record.status == "failed" and progress:
                bar.write(f"failed: {record.ref.key}: {record.error}", file=sys.stderr)
            warning = _sign_warning(record)
            if warning and progress:
                bar.write(warning, file=sys.stderr)
            bar.update()
            if time.perf_counter() - last_save >= MANIFEST_INTERVAL:
                run.seconds, last_save = _since(start), time.perf_counter()
                manifest.save()
    finally:
        bar.close()
        run.seconds = _since(start)
        manifest.save()


def _sign_warning(record: ShapeRecord) -> str | None:
    """The warning line of a shape preprocessed with many ambiguous signs, else None."""
    if record.status != "ok" or record.ambiguous_sign_fraction is None:
        return None
    return sign_warning(record.ref.key, record.sign_method, record.ambiguous_sign_fraction)


def _shapes(
    dataset: str | os.PathLike | Sequence[ShapeRef], split: str | os.PathLike | None
) -> list[ShapeRef]:
    if isinstance(dataset, (str, os.PathLike)):
        refs = discover(dataset)
    else:
        refs = _unique(list(dataset), "shapes to preprocess")
    if split is not None:
        refs = match_split(read_split(split), refs)
    if not refs:
        raise InputError("no shapes to preprocess")
    return refs


def _open_manifest(out_dir: Path, settings: Settings) -> Manifest:
    """The manifest of ``out_dir`` (resumed), or a new one for a new or empty folder."""
    path = out_dir / MANIFEST_NAME
    if path.is_file():
        manifest = Manifest.load(path)
        manifest.settings = settings.to_dict()
        return manifest
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: is a file, not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise InputError(
            f"{out_dir}: folder is not empty and has no {MANIFEST_NAME}; preprocess into a new "
            "or empty folder, or one written by an earlier preprocess"
        )
    return Manifest(path, settings.to_dict())


def _is_done(record: ShapeRecord | None, settings: Settings, out_dir: str | os.PathLike) -> bool:
    """Whether a shape can be skipped: ok with the same settings and all its files present."""
    if record is None or record.status != "ok" or record.settings != settings.to_dict():
        return False
    return all(path.is_file() for path in output_paths(out_dir, record.ref, settings))


def _results(
    refs: list[ShapeRef], out_dir: Path, settings: Settings, workers: int
) -> Iterator[ShapeRecord]:
    """Records of ``refs`` as they finish: here one by one, or from ``workers`` processes."""
    if workers == 1 or len(refs) <= 1:
        for ref in refs:
            yield preprocess_shape(ref, out_dir, settings)
        return
    with _single_threaded_children():
        executor = ProcessPoolExecutor(
            max_workers=min(workers, len(refs)), mp_context=multiprocessing.get_context("spawn")
        )
        try:
            futures = {
                executor.submit(preprocess_shape, ref, out_dir, settings): ref for ref in refs
            }
            for future in as_completed(futures):
                yield _record(future, futures[future])
        finally:
            executor.shutdown(wait=True, cancel_futures=True)


def _record(future: Future, ref: ShapeRef) -> ShapeRecord:
    """A finished future's record; a worker that died makes the shape failed (retried later)."""
    try:
        return future.result()
    except Exception as error:  # e.g. BrokenProcessPool: recorded, the rerun retries it
        return ShapeRecord(ref, "failed", error=f"worker process failed: {_one_line(error)}")


@contextlib.contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Set the thread-count variables to 1 while worker processes are started (they inherit the
    environment; this process's libraries already chose their thread counts)."""
    saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    os.environ.update({name: "1" for name in _THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
