"""Occupancy Networks' data layout: written by :func:`~isofield.data.preprocess.preprocess`
(``protocol="onet"``) and read, as is, from folders ONet's own scripts preprocessed.

Layout, one folder per shape, all coordinates in the shape's canonical frame (bounding box fitted
to the unit cube ``[-0.5, 0.5]^3``; ``x_user = x * scale + loc``):

- ``ROOT/<category>/<id>/points.npz``: labelled points (``points`` (N, 3), ``occupancies``
  packed bits, ``loc``, ``scale``; :func:`~isofield.data.formats.read_onet_points`). ONet's own
  files hold 100,000 float16 points uniform in the padded cube; isofield's hold float32 points,
  half uniform and half near the surface (see :mod:`isofield.data.preprocess`).
- ``points_iou.npz`` (isofield): uniform points only, same layout, for the volumetric IoU.
- ``pointcloud.npz``: surface points and normals (``points``, ``normals`` (N, 3), ``loc``,
  ``scale``).
- ``img/000.png ...`` + ``img/cameras.npz`` (isofield, optional): rendered views
  (:mod:`isofield.data.views`); ONet's ``img_choy2016/000.jpg ...`` also read.
- Splits: ``ROOT/<category>/{train,val,test}.lst``, one shape id per line, as ONet ships them.

Shapes are :class:`~isofield.data.datasets.ShapeRef`; a ref lives in
``ROOT/<klass or dataset>/<shape_id>``, so isofield's JSON splits (``{"chairs": {"": [...]}}``
for a flat mesh folder ``chairs``, or ``{"ShapeNetV2": {"03001627": [...]}}``) and ONet's
``.lst`` files both name the same folders. The layout drops one of the three names (the class
of a flat folder, the dataset of ShapeNet's), so shapes found by reading a root take their names
from the folder's ``manifest.json``, written by the preprocessing: the names the mesh folder gave
them, as in the DeepSDF layout of the same meshes, so that one split file serves both. Shapes
that no manifest names (ONet's own folders) are ``ShapeRef(<ROOT's name>, <category>, <id>)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from isofield.data.datasets import (
    SDF_SAMPLES,
    DeepSDFDataDir,
    PreprocessedDir,
    ShapeRef,
    _check_name,
    _folder_name,
    _subfolders,
    read_split,
)
from isofield.data.formats import read_onet_points, read_surface_samples
from isofield.data.views import read_views
from isofield.errors import InputError
from isofield.files import write_text_atomic
from isofield.geometry.normalization import Normalization
from isofield.geometry.samples import OccupancySamples, SurfaceSamples

POINTS_NAME = "points.npz"
IOU_POINTS_NAME = "points_iou.npz"
POINTCLOUD_NAME = "pointcloud.npz"
VIEWS_FOLDER = "img"
ONET_VIEWS_FOLDER = "img_choy2016"
"""File and folder names inside a shape folder."""


def shape_dir(root: str | os.PathLike, ref: ShapeRef) -> Path:
    """``root/<ref.klass or ref.dataset>/<ref.shape_id>``: the folder of one shape."""
    return Path(root) / (ref.klass or ref.dataset) / ref.shape_id


def read_lst(path: str | os.PathLike) -> list[str]:
    """Shape ids of an ONet ``.lst`` split (one per line, blank lines ignored), in file order.

    InputError naming ``path``: missing or unreadable file, an id that cannot name a folder, an
    id listed twice.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: split file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read split file ({exc})") from None
    ids = [line.strip() for line in lines if line.strip()]
    _check_ids(ids, path)
    return ids


def write_lst(path: str | os.PathLike, ids: Iterable[str]) -> None:
    """Write shape ids as an ONet ``.lst`` split, one per line, atomically."""
    ids = list(ids)
    _check_ids(ids, Path(path))
    write_text_atomic(path, "".join(f"{shape_id}\n" for shape_id in ids))


def _check_ids(ids: list[str], path: Path) -> None:
    seen: set[str] = set()
    for shape_id in ids:
        try:
            _check_name(shape_id, "shape id")
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None
        if shape_id in seen:
            raise InputError(f"{path}: shape {shape_id!r} is listed twice")
        seen.add(shape_id)


class OccupancyDataDir(PreprocessedDir):
    """A folder in Occupancy Networks' layout (module notes), ours or ONet's, read as it is.

    Shapes found in the folder (and those of ``.lst`` splits) are named as the folder's
    ``manifest.json`` names them, the names of the meshes they came from, so that they match
    the DeepSDF preprocessing of the same meshes; shapes that no manifest names (ONet's own
    folders) are ``ShapeRef(<root's name>, <category>, <id>)``. A shape is usable when it has
    ``points.npz`` (:class:`~isofield.data.datasets.PreprocessedDir`).

    A split (of :meth:`shapes`, :meth:`training_shapes`) is a JSON split file (``.json``), one
    ONet ``.lst`` file (its folder names the category), a split name such as ``"train"``
    (``<category>/train.lst`` of every category folder, categories sorted), or ShapeRefs.
    """

    samples_name = "occupancy points"

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            reason = "is a file, not a folder" if self.root.exists() else "folder not found"
            raise InputError(f"{self.root}: not an occupancy data directory ({reason})")
        self.name = _folder_name(self.root)

    def shape_dir(self, ref: ShapeRef) -> Path:
        """The folder of ``ref`` (see :func:`shape_dir`)."""
        return shape_dir(self.root, ref)

    def _samples_path(self, ref: ShapeRef) -> Path:
        return self.shape_dir(ref) / POINTS_NAME

    def _files_key(self, ref: ShapeRef) -> tuple[str, str]:
        return ref.klass or ref.dataset, ref.shape_id

    def _named(self, category: str, shape_id: str) -> ShapeRef:
        """The shape in ``<category>/<shape_id>``, named by the manifest when it lists it."""
        record = self._manifest_records.get((category, shape_id))
        return ShapeRef(self.name, category, shape_id) if record is None else record[0]

    def _present_shapes(self) -> list[ShapeRef]:
        return sorted(
            self._named(category.name, shape.name)
            for category in _subfolders(self.root)
            for shape in _subfolders(category)
            if (shape / POINTS_NAME).is_file()
        )

    def _read_split(self, split: str | os.PathLike) -> list[ShapeRef]:
        path = Path(split)
        if path.suffix == ".json":
            return read_split(path)
        if path.suffix == ".lst":
            return self._lst_refs(path, path.resolve().parent.name)
        if path.suffix or len(path.parts) != 1:
            raise InputError(
                f"{split}: a split is a .json file, a .lst file or a split name such as 'train'"
            )
        categories = _subfolders(self.root)
        files = [category / f"{path.name}.lst" for category in categories]
        absent = [file for file in files if not file.is_file()]
        if not files or absent:
            first = absent[0] if absent else self.root / "<category>" / f"{path.name}.lst"
            raise InputError(
                f"{first}: split file not found ({len(absent)} of the {len(files)} category "
                f"folders of {self.root} have no {path.name}.lst)"
            )
        return [ref for file in files for ref in self._lst_refs(file, file.parent.name)]

    def _lst_refs(self, path: Path, category: str) -> list[ShapeRef]:
        return [self._named(category, shape_id) for shape_id in read_lst(path)]

    def load_points(self, ref: ShapeRef) -> tuple[OccupancySamples, Normalization]:
        """``points.npz``: labelled points (N, 3) / (N,) in the canonical frame, and the frame."""
        return read_onet_points(self.shape_dir(ref) / POINTS_NAME)

    def load_iou_points(self, ref: ShapeRef) -> tuple[OccupancySamples, Normalization]:
        """Uniform labelled points for the volumetric IoU: ``points_iou.npz``, or, in ONet's own
        folders (which have none), ``points.npz``, whose points are all uniform there."""
        folder = self.shape_dir(ref)
        path = folder / IOU_POINTS_NAME
        return read_onet_points(path if path.is_file() else folder / POINTS_NAME)

    def load_pointcloud(self, ref: ShapeRef) -> tuple[SurfaceSamples, Normalization]:
        """``pointcloud.npz``: surface points (N, 3) and normals (N, 3), canonical, and the
        frame."""
        return read_surface_samples(self.shape_dir(ref) / POINTCLOUD_NAME)

    def load_views(self, ref: ShapeRef) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Rendered views: images (V, H, W, 3) uint8 and cameras (see :mod:`isofield.data.views`)
        from ``img/``, or from ONet's ``img_choy2016/``."""
        folder = self.shape_dir(ref)
        for name in (VIEWS_FOLDER, ONET_VIEWS_FOLDER):
            if (folder / name).is_dir():
                return read_views(folder / name)
        raise InputError(
            f"{folder / VIEWS_FOLDER}: shape {ref.key} has no rendered views (nor "
            f"{ONET_VIEWS_FOLDER}/); preprocess with views > 0 to render them"
        )


def open_data_dir(root: str | os.PathLike) -> PreprocessedDir | None:
    """The preprocessed data directory at ``root``: DeepSDF's layout when it has ``SdfSamples/``,
    Occupancy Networks' when it has a ``<category>/<id>/points.npz``; None for any other folder
    (e.g. a folder of meshes)."""
    root = Path(root)
    if (root / SDF_SAMPLES).is_dir():
        return DeepSDFDataDir(root)
    if root.is_dir() and next(root.glob(f"*/*/{POINTS_NAME}"), None) is not None:
        return OccupancyDataDir(root)
    return None
