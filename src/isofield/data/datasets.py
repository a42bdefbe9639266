"""Shape collections: find the meshes of a dataset, read and write train/test splits, read
DeepSDF data directories as they are.

**Dataset layouts** understood by :func:`discover`:

- ShapeNet: ``<synset>/<id>/models/model_normalized.obj`` (ShapeNetCore v2) or
  ``<synset>/<id>/model.obj`` (v1). The root is either one synset folder (dataset = the name of
  the folder above it, class = the synset) or a folder of synsets (dataset = its own name, class =
  each synset). Every ``<id>`` folder of a synset is a shape, also one that lacks its mesh file:
  its ``mesh_path`` then names the missing v2 file, so that preprocessing reports it as failed
  instead of dropping it.
- Flat: mesh files (``.obj .off .ply .stl .glb .gltf``) directly in the root: dataset = the
  folder's name, class = ``""`` (a flat folder has no class level, so its files live at
  ``SdfSamples/<dataset>/<id>.npz``; DeepSDF's loaders join the empty class away too), id = the
  file name without its suffix. Subfolders of a flat folder are not searched.

Names starting with ``.`` (hidden files, temporary files of atomic writes) are ignored.

**Splits** are DeepSDF's JSON, ``{"<dataset>": {"<class>": ["<id>", ...]}}``. Order is kept on
reading and writing: DeepSDF numbers its latent codes in that order.

**DeepSDF data directory** (:class:`DeepSDFDataDir`), one file per shape under each folder:

- ``SdfSamples/<dataset>/<class>/<id>.npz``: ``pos`` (P, 4), ``neg`` (Q, 4) float32 rows
  ``x, y, z, sdf`` in the canonical frame; isofield's files add ``center`` and ``scale``.
- ``SurfaceSamples/<dataset>/<class>/<id>.npz`` (isofield: canonical points and outward normals,
  :func:`~isofield.data.formats.write_surface_samples`) or ``.ply`` (DeepSDF: points in the
  mesh's own frame, no normals).
- ``NormalizationParameters/<dataset>/<class>/<id>.npz`` (DeepSDF only): ``offset`` (3,),
  ``scale`` (1,) with ``x_canonical = (x_user + offset) * scale``, i.e. in isofield's convention
  ``center = -offset`` and ``scale = 1 / scale``.

**Usable shapes** (:class:`PreprocessedDir`, shared with the ONet layout of
:mod:`isofield.data.onet`): a shape can be read when its samples file exists and the folder's
``manifest.json`` (isofield's preprocessing), if any, does not mark it failed or pending.
Listing a folder leaves the others out; :meth:`PreprocessedDir.training_shapes` leaves out the
split shapes that cannot be read with one warning line, and refuses a split of which fewer than
:data:`MIN_USABLE_FRACTION` can be read.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Collection, Hashable, Iterable, Mapping, Sequence

import numpy as np

from isofield.data.formats import _read_npz, read_sdf_samples, read_surface_samples
from isofield.errors import InputError
from isofield.files import write_text_atomic
from isofield.geometry.io import MESH_READ_SUFFIXES, PointCloud, read_points
from isofield.geometry.normalization import Normalization
from isofield.geometry.samples import SdfSamples

SHAPENET_MESH_FILES = ("models/model_normalized.obj", "model.obj")
"""Where a ShapeNet shape folder keeps its mesh: ShapeNetCore v2, then v1."""

SDF_SAMPLES = "SdfSamples"
SURFACE_SAMPLES = "SurfaceSamples"
NORMALIZATION_PARAMETERS = "NormalizationParameters"
"""The folders of a DeepSDF data directory."""


@dataclass(frozen=True, order=True)
class ShapeRef:
    """One shape of a dataset, named as in DeepSDF's splits.

    Attributes:
        dataset: dataset name (e.g. ``"ShapeNetV2"``), non-empty.
        klass: class name (a ShapeNet synset such as ``"03001627"``), ``""`` for a flat folder.
        shape_id: the shape's name within its class, non-empty.
        mesh_path: the source mesh, or ``None`` when unknown (a shape read from a split or a
            data directory). Not part of equality or ordering: a shape is its three names.

    Every name must be usable as one path component (no ``/``, ``\\``, leading ``.``).
    """

    dataset: str
    klass: str
    shape_id: str
    mesh_path: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _check_name(self.dataset, "dataset name")
        _check_name(self.klass, "class name", allow_empty=True)
        _check_name(self.shape_id, "shape id")

    @property
    def key(self) -> str:
        """``"<dataset>/<class>/<id>"`` (``"<dataset>/<id>"`` without a class)."""
        return self.relative_path("").as_posix()

    def relative_path(self, suffix: str = ".npz") -> Path:
        """``<dataset>/<class>/<id><suffix>``, the shape's place under each data folder."""
        return Path(self.dataset, self.klass, self.shape_id + suffix)


def _check_name(value: object, what: str, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string, got {value!r}")
    if not value and allow_empty:
        return
    if not value or value.startswith(".") or any(c in value for c in "/\\\0"):
        raise InputError(
            f"{what} {value!r} cannot name a file (empty, leading '.', or contains a slash)"
        )


def derived_seed(seed: int, *words: str) -> int:
    """A 64-bit seed from ``seed`` and names (e.g. class and shape id), stable across runs,
    machines and Python versions (BLAKE2b, not Python's randomised ``hash``)."""
    text = "\0".join([str(int(seed)), *words]).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


# --------------------------------------------------------------------------------------------
# Discovering the shapes of a mesh folder
# --------------------------------------------------------------------------------------------


def discover(root: str | os.PathLike, dataset: str | None = None) -> list[ShapeRef]:
    """Every shape of a ShapeNet-style or flat mesh folder (see the module notes), sorted.

    Args:
        root: a flat folder of meshes, a ShapeNet synset folder or a folder of synsets.
        dataset: the dataset name to use instead of the one taken from the folder names.

    Returns:
        ShapeRefs with ``mesh_path`` set, sorted by (dataset, class, id).

    Raises:
        InputError: ``root`` is not a folder, holds no shapes, or two files of a flat folder
            have the same name with different suffixes.
    """
    root = Path(root)
    if not root.is_dir():
        reason = "is a file, not a folder" if root.exists() else "folder not found"
        raise InputError(f"{root}: {reason}")
    mesh_files = [
        path
        for path in _visible(root)
        if path.suffix.lower() in MESH_READ_SUFFIXES and path.is_file()
    ]
    if mesh_files:
        refs = _flat_shapes(root, mesh_files, dataset or _folder_name(root))
    elif _is_synset(root):
        refs = _synset_shapes(root, dataset or _folder_name(root.resolve().parent), root.name)
    else:
        name = dataset or _folder_name(root)
        synsets = [folder for folder in _subfolders(root) if _is_synset(folder)]
        refs = [ref for folder in synsets for ref in _synset_shapes(folder, name, folder.name)]
    if not refs:
        suffixes = " ".join(MESH_READ_SUFFIXES)
        raise InputError(
            f"{root}: no shapes found (expected mesh files ({suffixes}) or ShapeNet folders "
            f"<synset>/<id>/{SHAPENET_MESH_FILES[0]})"
        )
    return sorted(refs)


def _visible(folder: Path) -> list[Path]:
    """Entries of ``folder`` whose names do not start with '.', sorted."""
    return sorted(path for path in folder.iterdir() if not path.name.startswith("."))


def _subfolders(folder: Path) -> list[Path]:
    return [path for path in _visible(folder) if path.is_dir()]


def _folder_name(folder: Path) -> str:
    return folder.resolve().name or "dataset"


def _flat_shapes(root: Path, files: list[Path], dataset: str) -> list[ShapeRef]:
    by_id: dict[str, Path] = {}
    for path in files:
        if path.stem in by_id:
            raise InputError(
                f"{root}: two meshes are named {path.stem!r} ({by_id[path.stem].name}, "
                f"{path.name}); rename one"
            )
        by_id[path.stem] = path
    return [ShapeRef(dataset, "", shape_id, path) for shape_id, path in by_id.items()]


def _shapenet_mesh(shape_folder: Path) -> Path | None:
    for relative in SHAPENET_MESH_FILES:
        if (shape_folder / relative).is_file():
            return shape_folder / relative
    return None


def _is_synset(folder: Path) -> bool:
    """Whether any subfolder of ``folder`` holds a ShapeNet mesh file."""
    return any(_shapenet_mesh(sub) is not None for sub in _subfolders(folder))


def _synset_shapes(folder: Path, dataset: str, klass: str) -> list[ShapeRef]:
    """One ShapeRef per shape folder; a missing mesh keeps the v2 path (reported later)."""
    return [
        ShapeRef(dataset, klass, sub.name, _shapenet_mesh(sub) or sub / SHAPENET_MESH_FILES[0])
        for sub in _subfolders(folder)
    ]


# --------------------------------------------------------------------------------------------
# Splits (DeepSDF's JSON)
# --------------------------------------------------------------------------------------------


def read_split(path: str | os.PathLike) -> list[ShapeRef]:
    """Read a DeepSDF split ``{"<dataset>": {"<class>": ["<id>", ...]}}``, in file order.

    Returns ShapeRefs without ``mesh_path``. InputError (naming ``path``) for a missing or
    non-JSON file, a different structure, a name that cannot be a file name, or a shape
    listed twice.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: split file not found") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read split file ({exc})") from None
    layout = 'a JSON object {"<dataset>": {"<class>": ["<id>", ...]}}'
    if not isinstance(data, dict):
        raise InputError(f"{path}: a split must be {layout}")
    refs = []
    for dataset, classes in data.items():
        if not isinstance(classes, dict):
            raise InputError(f"{path}: dataset {dataset!r} must map classes to id lists ({layout})")
        for klass, ids in classes.items():
            if not isinstance(ids, list):
                raise InputError(f"{path}: class {dataset}/{klass} must be a list of shape ids")
            try:
                refs += [ShapeRef(dataset, klass, shape_id) for shape_id in ids]
            except InputError as exc:
                raise InputError(f"{path}: {exc}") from None
    return _unique(refs, str(path))


def write_split(path: str | os.PathLike, refs: Iterable[ShapeRef]) -> None:
    """Write ``refs`` as a DeepSDF split (atomically). Datasets, classes and ids keep the order
    in which they first appear in ``refs``; InputError if a shape is listed twice."""
    layout: dict[str, dict[str, list[str]]] = {}
    for ref in _unique(list(refs), str(path)):
        layout.setdefault(ref.dataset, {}).setdefault(ref.klass, []).append(ref.shape_id)
    write_text_atomic(path, json.dumps(layout, indent=2) + "\n")


def _unique(refs: list[ShapeRef], where: str) -> list[ShapeRef]:
    seen: set[ShapeRef] = set()
    for ref in refs:
        if ref in seen:
            raise InputError(f"{where}: shape {ref.key} is listed twice")
        seen.add(ref)
    return refs


def make_split(
    refs: Sequence[ShapeRef],
    test_fraction: float,
    seed: int = 0,
    held_out: Collection[ShapeRef] = (),
) -> tuple[list[ShapeRef], list[ShapeRef]]:
    """Split shapes into train and test, class by class.

    The shapes of ``held_out`` (e.g. from :func:`find_shapes`) go to test. Of the n other shapes
    of each (dataset, class), ``floor(test_fraction * n + 0.5)`` chosen at random join them. The
    draw depends only on ``seed`` and the names of those n shapes, not on the order of ``refs``
    nor on the other classes.

    Returns:
        (train, test), each sorted by (dataset, class, id).
    """
    if not 0.0 <= test_fraction <= 1.0:
        raise InputError(f"test fraction must be in [0, 1], got {test_fraction!r}")
    held = set(held_out)
    groups: dict[tuple[str, str], list[ShapeRef]] = {}
    for ref in sorted(_unique(list(refs), "shapes to split")):
        if ref not in held:
            groups.setdefault((ref.dataset, ref.klass), []).append(ref)
    train, test = [], [ref for ref in sorted(refs) if ref in held]
    for (dataset, klass), members in groups.items():
        rng = np.random.default_rng(derived_seed(seed, dataset, klass))
        chosen = set(rng.permutation(len(members))[: int(test_fraction * len(members) + 0.5)])
        for index, ref in enumerate(members):
            (test if index in chosen else train).append(ref)
    return train, sorted(test)


def find_shapes(refs: Sequence[ShapeRef], names: Iterable[str], where: str) -> list[ShapeRef]:
    """The shapes of ``refs`` that ``names`` give, each by its id, ``<class>/<id>`` or key
    (``<dataset>/<class>/<id>``, ``<dataset>/<id>`` without a class), in the order of ``names``
    (a shape named twice is listed once).

    Raises:
        InputError: naming ``where`` (e.g. the dataset folder), for names that match no shape
            (all of them listed) or an id that several classes share.
    """
    by_name: dict[str, list[ShapeRef]] = {}
    for ref in refs:
        within_class = {f"{ref.klass}/{ref.shape_id}"} if ref.klass else set()
        for name in {ref.shape_id, ref.key} | within_class:
            by_name.setdefault(name, []).append(ref)
    names = list(dict.fromkeys(names))
    unknown = [name for name in names if name not in by_name]
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        raise InputError(
            f"{where}: no shape named {listed} among its {len(refs)} shapes "
            "(give an id, class/id or dataset/class/id)"
        )
    for name in names:
        if len(by_name[name]) > 1:
            keys = ", ".join(ref.key for ref in by_name[name][:3])
            raise InputError(
                f"{where}: shape id {name!r} is ambiguous ({keys}); give class/id or "
                "dataset/class/id"
            )
    return list(dict.fromkeys(by_name[name][0] for name in names))


def match_split(split: Sequence[ShapeRef], available: Sequence[ShapeRef]) -> list[ShapeRef]:
    """The shapes of ``split`` with the mesh paths of ``available`` (e.g. :func:`discover`).

    Shapes are matched by class and id, so a split naming the dataset ``"ShapeNetV2"`` finds
    the meshes of a folder called ``ShapeNetCore.v2``; the split's names are kept. A split
    shape that is not available keeps ``mesh_path=None`` (preprocessing reports it).
    """
    meshes = {(ref.klass, ref.shape_id): ref.mesh_path for ref in available}
    return [
        ShapeRef(ref.dataset, ref.klass, ref.shape_id, meshes.get((ref.klass, ref.shape_id)))
        for ref in split
    ]


# --------------------------------------------------------------------------------------------
# DeepSDF data directories
# --------------------------------------------------------------------------------------------


def data_path(root: str | os.PathLike, folder: str, ref: ShapeRef, suffix: str = ".npz") -> Path:
    """``root/<folder>/<dataset>/<class>/<id><suffix>``; ``folder`` is one of
    :data:`SDF_SAMPLES`, :data:`SURFACE_SAMPLES`, :data:`NORMALIZATION_PARAMETERS`."""
    return Path(root) / folder / ref.relative_path(suffix)


REFUSED_STATUSES = {"failed": "preprocessing failed", "pending": "preprocessing unfinished"}
"""Manifest statuses (:mod:`isofield.data.preprocess`) of shapes that cannot be trained on, and
how warnings name them; other statuses count as preprocessed."""

NO_SAMPLES = "no samples"
"""How warnings name a shape whose samples file is missing and that no manifest refuses."""

MIN_USABLE_FRACTION = 0.5
"""Training stops when fewer than this share of a split's shapes have samples: so many missing
shapes mean a split written for other data, not a few meshes that preprocessing refused."""

LISTED_SHAPES = 5
"""Warnings name at most this many shapes, then count the rest."""


def warn(message: str) -> None:
    """One line ``isofield: warning: MESSAGE`` on stderr."""
    print(f"isofield: warning: {message}", file=sys.stderr)


def describe_shapes(reasons: Mapping[ShapeRef, str], limit: int = LISTED_SHAPES) -> str:
    """``"a/x (why), a/y (why) and 3 more"``: the first ``limit`` shapes with their reasons."""
    items = [f"{ref.key} ({why})" for ref, why in list(reasons.items())[:limit]]
    more = len(reasons) - len(items)
    return ", ".join(items) + (f" and {more} more" if more else "")


class PreprocessedDir:
    """What DeepSDF and ONet data directories share: which shapes of a split have samples, and
    which shapes the folder's ``manifest.json`` (isofield's preprocessing) refused.

    A shape is *usable* when its samples file exists and the manifest, if any, does not mark it
    failed or pending (:data:`REFUSED_STATUSES`): files left from an earlier run of a shape
    that failed since are not read. Subclasses give the layout: :meth:`_samples_path`,
    :meth:`_read_split`, :meth:`_present_shapes`, :meth:`_files_key`, :attr:`samples_name`.
    """

    root: Path
    samples_name = "samples"
    """What a shape's samples file holds, for messages (e.g. "SDF samples")."""

    def _samples_path(self, ref: ShapeRef) -> Path:
        """The file whose presence makes ``ref`` usable."""
        raise NotImplementedError

    def _read_split(self, split: str | os.PathLike) -> list[ShapeRef]:
        """The shapes of a split file, in its order."""
        raise NotImplementedError

    def _split_refs(self, split: str | os.PathLike | Sequence[ShapeRef]) -> list[ShapeRef]:
        return self._read_split(split) if isinstance(split, (str, os.PathLike)) else list(split)

    def _present_shapes(self) -> list[ShapeRef]:
        """Every shape with a samples file, sorted."""
        raise NotImplementedError

    def _files_key(self, ref: ShapeRef) -> Hashable:
        """What identifies ``ref``'s files: two refs with the same key read the same files."""
        return ref

    @cached_property
    def _manifest_records(self) -> dict[Hashable, tuple[ShapeRef, str]]:
        """``files key -> (ref, status)`` of the manifest's shapes (empty without a manifest);
        an ``ok`` entry wins over others with the same files."""
        # Imported here: preprocess writes these folders and imports this module.
        from isofield.data.preprocess import MANIFEST_NAME, Manifest

        path = self.root / MANIFEST_NAME
        records: dict[Hashable, tuple[ShapeRef, str]] = {}
        for ref, record in (Manifest.load(path).records if path.is_file() else {}).items():
            key = self._files_key(ref)
            if key not in records or record.status == "ok":
                records[key] = (ref, record.status)
        return records

    def refused(self) -> dict[ShapeRef, str]:
        """The shapes that the manifest marks failed or pending, in its order, with the reason
        as warnings name it (:data:`REFUSED_STATUSES`)."""
        return {
            ref: REFUSED_STATUSES[status]
            for ref, status in self._manifest_records.values()
            if status in REFUSED_STATUSES
        }

    def unusable(self, refs: Sequence[ShapeRef]) -> dict[ShapeRef, str]:
        """The shapes of ``refs`` that cannot be read, in order, each with its reason."""
        records = self._manifest_records
        reasons = {}
        for ref in refs:
            status = records.get(self._files_key(ref), (ref, "ok"))[1]
            if status in REFUSED_STATUSES:
                reasons[ref] = REFUSED_STATUSES[status]
            elif not self._samples_path(ref).is_file():
                reasons[ref] = NO_SAMPLES
        return reasons

    def shapes(
        self,
        split: str | os.PathLike | Sequence[ShapeRef] | None = None,
        skip_missing: bool = False,
    ) -> list[ShapeRef]:
        """The usable shapes of a split (a split file or ShapeRefs, order kept), or every usable
        shape (sorted) when ``split`` is None.

        A split shape that is not usable raises InputError naming the first one's samples file
        and the count, unless ``skip_missing`` leaves such shapes out silently.
        """
        if split is None:
            present = self._present_shapes()
            unusable = self.unusable(present)
            return [ref for ref in present if ref not in unusable]
        refs = self._split_refs(split)
        unusable = self.unusable(refs)
        if unusable and not skip_missing:
            first, why = next(iter(unusable.items()))
            what = f"{self.samples_name} not found" if why == NO_SAMPLES else why
            raise InputError(
                f"{self._samples_path(first)}: {what} ({len(unusable)} of the {len(refs)} "
                "shapes of the split have none or were refused by preprocessing)"
            )
        return [ref for ref in refs if ref not in unusable]

    def training_shapes(
        self, split: str | os.PathLike | Sequence[ShapeRef] | None = None, quiet: bool = False
    ) -> list[ShapeRef]:
        """The shapes to train on: the usable shapes of ``split`` (order kept), or every usable
        shape when ``split`` is None. Shapes left out (split shapes that are not usable, or,
        without a split, those the manifest refused) are named in one warning line with the
        reason (unless ``quiet``, e.g. on the other ranks of a multi-process run).

        Raises:
            InputError: the split is empty, the folder has no usable shape, or fewer than
                :data:`MIN_USABLE_FRACTION` of the split's shapes are usable.
        """
        if split is None:
            refs, refused = self.shapes(), self.refused()
            if not refs:
                raise InputError(f"{self.root}: no training shapes (no preprocessed shapes)")
            if refused and not quiet:
                warn(f"{self.root}: training without {describe_shapes(refused)}")
            return refs
        refs = self._split_refs(split)
        where = str(split) if isinstance(split, (str, os.PathLike)) else "the split"
        if not refs:
            raise InputError(f"{where}: no training shapes (the split is empty)")
        unusable = self.unusable(refs)
        usable = len(refs) - len(unusable)
        if usable < MIN_USABLE_FRACTION * len(refs):
            raise InputError(
                f"{where}: only {usable} of its {len(refs)} shapes can be read from {self.root}, "
                f"not {describe_shapes(unusable, 2)}; preprocess them, or split the preprocessed "
                f"folder: isofield split {self.root} -o SPLITS"
            )
        if unusable and not quiet:
            warn(
                f"training without {len(unusable)} of the {len(refs)} shapes of {where}: "
                f"{describe_shapes(unusable)}"
            )
        return [ref for ref in refs if ref not in unusable]


class DeepSDFDataDir(PreprocessedDir):
    """A DeepSDF data directory, written by DeepSDF or by
    :func:`~isofield.data.preprocess.preprocess`, read as it is (layout: see the module notes).
    A shape is usable when it has an SDF samples file (:class:`PreprocessedDir`)."""

    samples_name = "SDF samples"

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not (self.root / SDF_SAMPLES).is_dir():
            reason = "folder not found" if not self.root.exists() else f"no {SDF_SAMPLES} folder"
            raise InputError(f"{self.root}: not a DeepSDF data directory ({reason})")

    def path(self, folder: str, ref: ShapeRef, suffix: str = ".npz") -> Path:
        """The file of ``ref`` under ``folder`` (see :func:`data_path`)."""
        return data_path(self.root, folder, ref, suffix)

    def _samples_path(self, ref: ShapeRef) -> Path:
        return self.path(SDF_SAMPLES, ref)

    def _read_split(self, split: str | os.PathLike) -> list[ShapeRef]:
        return read_split(split)

    def _present_shapes(self) -> list[ShapeRef]:
        refs = []
        for dataset in _subfolders(self.root / SDF_SAMPLES):
            refs += _npz_shapes(dataset, dataset.name, "")
            for klass in _subfolders(dataset):
                refs += _npz_shapes(klass, dataset.name, klass.name)
        return sorted(refs)

    def load_sdf(self, ref: ShapeRef) -> tuple[SdfSamples, Normalization]:
        """SDF samples of one shape (rows of ``pos`` then ``neg``, NaN rows dropped as DeepSDF
        does) and their frame: the file's own ``center``/``scale`` when it has them, else the
        shape's NormalizationParameters file, else the identity."""
        path = self.path(SDF_SAMPLES, ref)
        samples, frame = read_sdf_samples(path)
        if _npz_keys(path).isdisjoint({"center", "scale"}):
            frame = self._deepsdf_frame(ref) or frame
        return samples, frame

    def load_surface(self, ref: ShapeRef) -> tuple[PointCloud, Normalization]:
        """Surface points of one shape in the canonical frame, and the frame.

        isofield's ``.npz`` gives points with normals; else DeepSDF's ``.ply`` (mesh frame, no
        normals) is mapped to the canonical frame with the shape's NormalizationParameters,
        which must then exist.
        """
        ours = self.path(SURFACE_SAMPLES, ref)
        if ours.is_file():
            samples, frame = read_surface_samples(ours)
            return PointCloud(samples.points, samples.normals, source=str(ours)), frame
        theirs = self.path(SURFACE_SAMPLES, ref, ".ply")
        if not theirs.is_file():
            raise InputError(f"{ours}: surface samples not found (nor {theirs.name})")
        frame = self._deepsdf_frame(ref)
        if frame is None:
            raise InputError(
                f"{self.path(NORMALIZATION_PARAMETERS, ref)}: not found; it is needed to map "
                f"{theirs} to the canonical frame"
            )
        cloud = read_points(theirs)
        return PointCloud(frame.to_canonical(cloud.points), cloud.normals, str(theirs)), frame

    def _deepsdf_frame(self, ref: ShapeRef) -> Normalization | None:
        """The shape's NormalizationParameters in isofield's convention, or None if absent."""
        path = self.path(NORMALIZATION_PARAMETERS, ref)
        return read_deepsdf_normalization(path) if path.is_file() else None


def _npz_shapes(folder: Path, dataset: str, klass: str) -> list[ShapeRef]:
    return [
        ShapeRef(dataset, klass, path.stem)
        for path in _visible(folder)
        if path.suffix == ".npz" and path.is_file()
    ]


def _npz_keys(path: Path) -> set[str]:
    """Names of the arrays of an npz file (reads only its directory)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return {name.removesuffix(".npy") for name in archive.namelist()}
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable .npz file ({exc})") from None


def read_deepsdf_normalization(path: str | os.PathLike) -> Normalization:
    """A DeepSDF NormalizationParameters npz (``offset`` (3,), ``scale`` (1,) or ()), where
    ``x_canonical = (x_user + offset) * scale``, as isofield's ``Normalization``
    (``center = -offset``, ``scale = 1 / scale``)."""
    arrays = _read_npz(path)
    for key in ("offset", "scale"):
        if key not in arrays or arrays[key].dtype.kind not in "fiu":
            raise InputError(f"{path}: needs a numeric array '{key}' (DeepSDF's offset and scale)")
    offset = np.asarray(arrays["offset"], dtype=np.float64).reshape(-1)
    scale = np.asarray(arrays["scale"], dtype=np.float64).reshape(-1)
    if offset.shape != (3,) or scale.shape != (1,) or not scale[0] > 0:
        raise InputError(
            f"{path}: needs 'offset' of 3 numbers and one positive 'scale', "
            f"got shapes {offset.shape} and {scale.shape}"
        )
    try:
        return Normalization(-offset, 1.0 / float(scale[0]))
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
