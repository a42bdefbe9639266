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
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

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
    refs: Sequence[ShapeRef], test_fraction: float, seed: int = 0
) -> tuple[list[ShapeRef], list[ShapeRef]]:
    """Split shapes into train and test, class by class.

    In each (dataset, class) of n shapes, ``floor(test_fraction * n + 0.5)`` shapes chosen at
    random go to test. The draw depends only on ``seed`` and the names in that class, not on
    the order of ``refs`` nor on the other classes.

    Returns:
        (train, test), each sorted by (dataset, class, id).
    """
    if not 0.0 <= test_fraction <= 1.0:
        raise InputError(f"test fraction must be in [0, 1], got {test_fraction!r}")
    groups: dict[tuple[str, str], list[ShapeRef]] = {}
    for ref in sorted(_unique(list(refs), "shapes to split")):
        groups.setdefault((ref.dataset, ref.klass), []).append(ref)
    train, test = [], []
    for (dataset, klass), members in groups.items():
        rng = np.random.default_rng(derived_seed(seed, dataset, klass))
        chosen = set(rng.permutation(len(members))[: int(test_fraction * len(members) + 0.5)])
        for index, ref in enumerate(members):
            (test if index in chosen else train).append(ref)
    return train, test


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


class DeepSDFDataDir:
    """A DeepSDF data directory, written by DeepSDF or by
    :func:`~isofield.data.preprocess.preprocess`, read as it is (layout: see the module notes)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not (self.root / SDF_SAMPLES).is_dir():
            reason = "folder not found" if not self.root.exists() else f"no {SDF_SAMPLES} folder"
            raise InputError(f"{self.root}: not a DeepSDF data directory ({reason})")

    def path(self, folder: str, ref: ShapeRef, suffix: str = ".npz") -> Path:
        """The file of ``ref`` under ``folder`` (see :func:`data_path`)."""
        return data_path(self.root, folder, ref, suffix)

    def shapes(
        self,
        split: str | os.PathLike | Sequence[ShapeRef] | None = None,
        skip_missing: bool = False,
    ) -> list[ShapeRef]:
        """The shapes of a split (a split file or ShapeRefs, order kept), or every shape with SDF
        samples (sorted) when ``split`` is None.

        A split shape without an SDF samples file raises InputError naming the first missing
        file and the count, unless ``skip_missing`` leaves such shapes out.
        """
        if split is None:
            return self._all_shapes()
        refs = read_split(split) if isinstance(split, (str, os.PathLike)) else list(split)
        missing = [ref for ref in refs if not self.path(SDF_SAMPLES, ref).is_file()]
        if missing and not skip_missing:
            raise InputError(
                f"{self.path(SDF_SAMPLES, missing[0])}: SDF samples not found "
                f"({len(missing)} of the {len(refs)} shapes of the split have none)"
            )
        absent = set(missing)
        return [ref for ref in refs if ref not in absent]

    def _all_shapes(self) -> list[ShapeRef]:
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
