"""Input checks shared by the metric modules: each returns the checked value (as float64 arrays
or Python numbers) or raises :class:`~isofield.errors.InputError` naming the argument."""

from __future__ import annotations

import numpy as np
import trimesh

from isofield.errors import InputError


def checked_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both point sets checked (see :func:`checked_points`) and of the same dimension."""
    points_a = checked_points(a, "a")
    points_b = checked_points(b, "b")
    if points_a.shape[1] != points_b.shape[1]:
        raise InputError(
            f"point sets differ in dimension: a is {points_a.shape[1]}-D, "
            f"b is {points_b.shape[1]}-D"
        )
    return points_a, points_b


def checked_points(points: np.ndarray, name: str) -> np.ndarray:
    """Finite points as (N, D) float64, N >= 1, D in {2, 3}; else InputError."""
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{name}: not a numeric array") from None
    if array.ndim != 2 or array.shape[1] not in (2, 3):
        raise InputError(f"{name}: expected an array of shape (N, 3) or (N, 2), got {array.shape}")
    if len(array) == 0:
        raise InputError(f"{name}: the point set is empty")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{name}: contains NaN or Inf coordinates")
    return array


def checked_normals(normals: np.ndarray, count: int, name: str) -> np.ndarray:
    """(count, D) unit-length float64 normals; InputError on wrong shape, NaN or zero length."""
    array = checked_points(normals, name)
    if len(array) != count:
        raise InputError(f"{name}: {len(array)} normals for {count} points")
    length = np.linalg.norm(array, axis=1, keepdims=True)
    if np.any(length == 0):
        raise InputError(f"{name}: contains zero-length normals")
    return array / length


def checked_mesh(mesh: trimesh.Trimesh, name: str) -> None:
    if not isinstance(mesh, trimesh.Trimesh):
        raise InputError(f"{name}: expected a triangle mesh, got {type(mesh).__name__}")
    if len(mesh.faces) == 0:
        raise InputError(f"{name}: has no faces")
    if not np.all(np.isfinite(mesh.vertices)):
        raise InputError(f"{name}: contains NaN or Inf vertex coordinates")


def checked_bounds(bounds: np.ndarray) -> np.ndarray:
    box = np.asarray(bounds, dtype=np.float64)
    if box.shape != (2, 3) or not np.all(np.isfinite(box)) or not np.all(box[0] < box[1]):
        raise InputError(
            "bounds: expected finite [[xmin, ymin, zmin], [xmax, ymax, zmax]] with min < max, "
            f"got {bounds!r}"
        )
    return box


def checked_count(n: int, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise InputError(f"{name}: expected a positive integer, got {n!r}")
    return int(n)


def checked_positive(value: float, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a positive number, got {value!r}") from None
    if not (np.isfinite(number) and number > 0):
        raise InputError(f"{name}: expected a positive number, got {value!r}")
    return number
