"""Sample files (npz): DeepSDF SDF samples, Occupancy Networks points/point clouds, ours.

Layouts (all coordinates in the canonical frame; ``x_user = x * scale + center``):

- SDF samples, DeepSDF-compatible: ``pos`` (P, 4) float32 rows ``x, y, z, sdf`` with
  sdf > 0, ``neg`` (Q, 4) with the other rows (sdf <= 0), plus our ``center`` (3,) and
  ``scale`` (). DeepSDF's own files have only ``pos``/``neg`` (its normalisation lives in a
  separate file with the inverse convention ``x_canonical = (x_user + offset) * scale``); they
  read with the identity normalisation, and rows with NaN are dropped as DeepSDF's loader does.
  A round trip keeps every row and value; rows come back pos first, then neg.
- Occupancy samples, Occupancy Networks' ``points.npz``: ``points`` (N, 3) float32 (ONet
  writes float16; both read), ``occupancies`` = ``np.packbits`` of the (N,) bool labels,
  ``loc`` (3,), ``scale`` (). ONet's ``sample_mesh.py`` stores the bounding-box centre as
  ``loc`` and largest extent / (1 - bbox_padding) as ``scale``, and maps
  ``x_user = x * scale + loc``: our convention, with ``loc`` for ``center``.
- Surface samples: ``points`` (N, 3), ``normals`` (N, 3), ``center``, ``scale``; Occupancy
  Networks' ``pointcloud.npz`` is the same with ``loc`` for ``center``. Both layouts read.

Every write is atomic; every reading problem raises :class:`InputError` naming the file.
"""

from __future__ import annotations

import os
import zipfile
from typing import Callable

import numpy as np

from isofield.errors import InputError
from isofield.files import atomic_path
from isofield.geometry.normalization import Normalization
from isofield.geometry.samples import OccupancySamples, Samples, SdfSamples, SurfaceSamples


def _write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write arrays uncompressed to ``path`` atomically (no ``.npz`` suffix is appended)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as stream:
        np.savez(stream, **arrays)


def _read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of an npz file, loaded into memory; InputError if it cannot be read."""
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise InputError(f"{path}: not an .npz archive (a single .npy array)")
        with data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except InputError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise InputError(f"{path}: not a readable .npz file ({exc})") from None


def _array(
    arrays: dict[str, np.ndarray], key: str, shape: tuple[int | None, ...], path: os.PathLike | str
) -> np.ndarray:
    """``arrays[key]`` as a real-valued array of ``shape`` (None: any length)."""
    if key not in arrays:
        found = ", ".join(sorted(arrays)) or "none"
        raise InputError(f"{path}: missing array '{key}' (found: {found})")
    value = arrays[key]
    fits = value.ndim == len(shape) and all(
        want is None or got == want for got, want in zip(value.shape, shape)
    )
    if not fits:
        wanted = "(" + ", ".join("N" if want is None else str(want) for want in shape) + ")"
        raise InputError(f"{path}: array '{key}' must have shape {wanted}, got {value.shape}")
    if value.dtype.kind not in "fiu":
        raise InputError(f"{path}: array '{key}' must be numeric, got dtype {value.dtype}")
    return value


def _normalization(
    arrays: dict[str, np.ndarray], center_key: str, path: os.PathLike | str
) -> Normalization:
    """The stored normalisation, or the identity when neither key is present."""
    present = [key for key in (center_key, "scale") if key in arrays]
    if not present:
        return Normalization.identity()
    center = _array(arrays, center_key, (3,), path)
    scale = arrays.get("scale", np.empty(0))
    if scale.size != 1 or scale.dtype.kind not in "fiu":
        raise InputError(f"{path}: '{center_key}' needs a single number 'scale' beside it")
    try:
        return Normalization(center, float(scale.reshape(())))
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def _frame(normalization: Normalization, center_key: str = "center") -> dict[str, np.ndarray]:
    return {center_key: normalization.center, "scale": np.float64(normalization.scale)}


def _finite(values: np.ndarray, key: str, path: os.PathLike | str) -> np.ndarray:
    if not np.all(np.isfinite(values)):
        raise InputError(f"{path}: array '{key}' contains NaN or Inf")
    return values


def write_sdf_samples(
    samples: SdfSamples, normalization: Normalization, path: str | os.PathLike
) -> None:
    """DeepSDF layout: ``pos``/``neg`` (·, 4) float32 rows, plus ``center`` and ``scale``."""
    rows = np.column_stack([samples.points, samples.sdf]).astype(np.float32)
    positive = samples.sdf > 0
    _write_npz(path, {"pos": rows[positive], "neg": rows[~positive], **_frame(normalization)})


def read_sdf_samples(path: str | os.PathLike) -> tuple[SdfSamples, Normalization]:
    """Read our SDF npz or one written by DeepSDF (pos/neg only: identity normalisation)."""
    arrays = _read_npz(path)
    rows = np.concatenate([_array(arrays, key, (None, 4), path) for key in ("pos", "neg")])
    rows = rows[np.isfinite(rows).all(axis=1)].astype(np.float32)
    if len(rows) == 0:
        raise InputError(f"{path}: no finite SDF samples in 'pos' and 'neg'")
    samples = SdfSamples(np.ascontiguousarray(rows[:, :3]), rows[:, 3].copy())
    return samples, _normalization(arrays, "center", path)


def write_onet_points(
    samples: OccupancySamples,
    normalization: Normalization,
    path: str | os.PathLike,
    half_precision: bool = False,
) -> None:
    """Occupancy Networks' ``points.npz``; ``half_precision`` stores float16 points as ONet does
    (the labels belong to the float32 points, so a few next to the surface may then be off)."""
    dtype = np.float16 if half_precision else np.float32
    arrays = {
        "points": samples.points.astype(dtype),
        "occupancies": np.packbits(samples.occupancies.astype(bool)),
    }
    _write_npz(path, {**arrays, **_frame(normalization, "loc")})


def read_onet_points(path: str | os.PathLike) -> tuple[OccupancySamples, Normalization]:
    """Read an Occupancy Networks ``points.npz`` (float16 or float32 points, packed labels)."""
    arrays = _read_npz(path)
    points = _finite(_array(arrays, "points", (None, 3), path), "points", path)
    packed = _array(arrays, "occupancies", (None,), path)
    expected = (len(points) + 7) // 8
    if packed.dtype != np.uint8 or len(packed) != expected:
        raise InputError(
            f"{path}: 'occupancies' must be np.packbits of {len(points)} labels "
            f"({expected} uint8 bytes), got {len(packed)} of {packed.dtype}"
        )
    labels = np.unpackbits(packed, count=len(points)).astype(bool)
    samples = OccupancySamples(points.astype(np.float32), labels)
    return samples, _normalization(arrays, "loc", path)


def _write_surface(
    samples: SurfaceSamples, normalization: Normalization, path: str | os.PathLike, center_key: str
) -> None:
    arrays = {
        "points": samples.points.astype(np.float32),
        "normals": samples.normals.astype(np.float32),
    }
    _write_npz(path, {**arrays, **_frame(normalization, center_key)})


def write_surface_samples(
    samples: SurfaceSamples, normalization: Normalization, path: str | os.PathLike
) -> None:
    """Our surface samples: ``points``, ``normals``, ``center``, ``scale``."""
    _write_surface(samples, normalization, path, "center")


def write_onet_pointcloud(
    samples: SurfaceSamples, normalization: Normalization, path: str | os.PathLike
) -> None:
    """Occupancy Networks' ``pointcloud.npz``: ``points``, ``normals``, ``loc``, ``scale``."""
    _write_surface(samples, normalization, path, "loc")


def read_surface_samples(path: str | os.PathLike) -> tuple[SurfaceSamples, Normalization]:
    """Read our surface npz or ONet's ``pointcloud.npz`` (``loc`` instead of ``center``)."""
    arrays = _read_npz(path)
    points = _finite(_array(arrays, "points", (None, 3), path), "points", path)
    normals = _finite(_array(arrays, "normals", (len(points), 3), path), "normals", path)
    samples = SurfaceSamples(points.astype(np.float32), normals.astype(np.float32))
    return samples, _normalization(arrays, "loc" if "loc" in arrays else "center", path)


_WRITERS: dict[str, tuple[type, Callable[..., None]]] = {
    "sdf": (SdfSamples, write_sdf_samples),
    "occupancy": (OccupancySamples, write_onet_points),
    "surface": (SurfaceSamples, write_surface_samples),
}
_READERS: dict[str, Callable[[str | os.PathLike], tuple[Samples, Normalization]]] = {
    "sdf": read_sdf_samples,
    "occupancy": read_onet_points,
    "surface": read_surface_samples,
}


def _known_kind(kind: str) -> str:
    if kind not in _READERS:
        raise InputError(f"unknown sample kind {kind!r} (use one of: {', '.join(_READERS)})")
    return kind


def write_samples(
    kind: str, samples: Samples, normalization: Normalization, path: str | os.PathLike
) -> None:
    """Write ``samples`` of ``kind`` ('sdf', 'occupancy', 'surface') and their frame to ``path``.

    Layouts: DeepSDF pos/neg, Occupancy Networks ``points.npz``, our surface npz.
    """
    sample_type, write = _WRITERS[_known_kind(kind)]
    if not isinstance(samples, sample_type):
        got = type(samples).__name__
        raise TypeError(f"{kind!r} samples must be {sample_type.__name__}, got {got}")
    write(samples, normalization, path)


def read_samples(kind: str, path: str | os.PathLike) -> tuple[Samples, Normalization]:
    """Read an npz of ``kind`` ('sdf', 'occupancy', 'surface'); see the module notes."""
    return _READERS[_known_kind(kind)](path)
