"""A procedural shape family as a folder of meshes (``isofield shapes chairs -n 200 -o DIR``).

The folder holds ``<name>_<index:04d>.obj`` (``chair_0000.obj``, ...), watertight meshes in the
family's model units (see :mod:`isofield.geometry.furniture`), and ``parameters.json``:

    {"family": "chairs", "seed": 0, "resolution": 128, "count": 200, "complete": true,
     "frame": {"scale": 1.8, "floor": -0.95},
     "shapes": [{"index": 0, "file": "chair_0000.obj", "parameters": {...}}, ...]}

``parameters.json`` is written first (``"complete": false``) and again at the end, and every
mesh is written atomically, so an interrupted run leaves only whole meshes and a record of the
settings they were made with: calling :func:`write_family` again with the same family, seed and
resolution skips the meshes already there and makes the rest (also with a larger count: shape
``i`` does not depend on the count).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from isofield.errors import InputError
from isofield.extract.api import shape_mesh
from isofield.extract.grid import validate_positive_integer
from isofield.files import write_text_atomic
from isofield.geometry.furniture import FAMILIES, family_parameters
from isofield.geometry.io import write_mesh

MANIFEST_NAME = "parameters.json"
MIN_RESOLUTION = 32
# Mesh names carry a four-digit index.
MAX_COUNT = 10_000
_SETTINGS = ("family", "seed", "resolution")


def mesh_file_name(kind: str, index: int) -> str:
    """``chair_0007.obj`` for ("chairs", 7): the family's singular and a four-digit index."""
    return f"{kind[:-1]}_{index:04d}.obj"


def write_family(
    kind: str,
    count: int,
    out_dir: str | os.PathLike,
    seed: int = 0,
    resolution: int = 128,
    overwrite: bool = False,
    progress: bool = False,
) -> list[Path]:
    """Mesh shapes ``0 .. count - 1`` of the family ``kind`` ("chairs" or "tables") into ``out_dir``.

    Args:
        kind: a name in :data:`isofield.geometry.furniture.FAMILIES`.
        count: number of shapes (1 .. 10000).
        out_dir: output folder (created if missing).
        seed: shape ``i`` has the parameters drawn from ``np.random.default_rng([seed, i])``.
        resolution: cells per axis of each shape's extraction grid (>= 32).
        overwrite: replace meshes and ``parameters.json`` that are already there. Without it,
            a folder made with the same settings is completed (meshes there are kept), and
            one made with other settings, or meshes without ``parameters.json``, are refused.
        progress: show a progress bar on stderr.

    Returns:
        The ``count`` mesh paths, in index order.

    Raises:
        InputError: a bad argument, or existing files that would be overwritten (nothing is written).
    """
    if kind not in FAMILIES:
        raise InputError(f"unknown shape family {kind!r}; known families: {', '.join(sorted(FAMILIES))}")
    count = validate_positive_integer(count, "count", "number of shapes")
    if count > MAX_COUNT:
        raise InputError(f"count must be at most {MAX_COUNT} (mesh names have a four-digit index), got {count}")
    resolution = validate_positive_integer(resolution, "resolution", "cells per axis")
    if resolution < MIN_RESOLUTION:
        raise InputError(f"resolution must be at least {MIN_RESOLUTION} (thin parts vanish below it), got {resolution}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder")
    parameters = [family_parameters(kind, index, seed) for index in range(count)]
    paths = [out_dir / mesh_file_name(kind, index) for index in range(count)]
    manifest = {"family": kind, "seed": seed, "resolution": resolution, "count": count}
    if not overwrite:
        _refuse_foreign_files(out_dir, manifest, paths)

    manifest["frame"] = asdict(FAMILIES[kind].frame)
    manifest["shapes"] = [{"index": index, "file": path.name, "parameters": params.to_dict()}
                          for index, (path, params) in enumerate(zip(paths, parameters))]
    _write_manifest(out_dir, {**manifest, "complete": False})
    for path, params in tqdm(list(zip(paths, parameters)), desc=kind, unit="shape", disable=not progress):
        if overwrite or not path.exists():
            write_mesh(shape_mesh(params.shape(), resolution), path)
    _write_manifest(out_dir, {**manifest, "complete": True})
    return paths


def read_manifest(out_dir: str | os.PathLike) -> dict | None:
    """The ``parameters.json`` of a family folder, or ``None`` if there is none.

    Raises:
        InputError: the file exists but is not a JSON object.
    """
    path = Path(out_dir) / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(manifest, dict):
        raise InputError(f"{path}: expected a JSON object with family, seed, resolution and shapes")
    return manifest


def _refuse_foreign_files(out_dir: Path, manifest: dict, paths: list[Path]) -> None:
    """InputError unless every file that is there was made with the same settings."""
    previous = read_manifest(out_dir)
    if previous is not None:
        old = {key: previous.get(key) for key in _SETTINGS}
        new = {key: manifest[key] for key in _SETTINGS}
        if old != new:
            described = ", ".join(f"{key} {value!r}" for key, value in old.items())
            raise InputError(
                f"{out_dir / MANIFEST_NAME}: exists, made with {described}; "
                "choose another folder or pass overwrite (--overwrite) to replace it"
            )
        return
    existing = next((path for path in paths if path.exists()), None)
    if existing is not None:
        raise InputError(
            f"{existing}: exists, and {out_dir / MANIFEST_NAME} does not say how it was made; "
            "choose another folder or pass overwrite (--overwrite) to replace it"
        )


def _write_manifest(out_dir: Path, manifest: dict) -> None:
    write_text_atomic(out_dir / MANIFEST_NAME, json.dumps(manifest, indent=1) + "\n")
