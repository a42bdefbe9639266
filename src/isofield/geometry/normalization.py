"""Map a shape to the canonical frame and back.

Convention (shared with DeepSDF-style npz files): ``x_user = x_canonical * scale + center``.
Every output written for a user goes back through :meth:`Normalization.to_user`, and the
normalisation is stored beside it (``normalization.json`` in a run, ``center``/``scale`` in npz).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from isofield.errors import InputError
from isofield.files import write_text_atomic


@dataclass(frozen=True)
class Normalization:
    """A similarity transform without rotation: ``x_user = x_canonical * scale + center``.

    Attributes:
        center: (D,) float64, D = 3 (or 2 for planar problems), the user-frame point that maps
            to the origin.
        scale: positive float, user units per canonical unit.
    """

    center: np.ndarray
    scale: float

    def __post_init__(self) -> None:
        center = np.asarray(self.center, dtype=np.float64).reshape(-1)
        if center.shape not in ((2,), (3,)) or not np.all(np.isfinite(center)):
            raise InputError(f"normalization center must be 3 (or 2) finite numbers, got {self.center!r}")
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise InputError(f"normalization scale must be a positive number, got {self.scale!r}")
        object.__setattr__(self, "center", center)
        object.__setattr__(self, "scale", float(self.scale))

    @classmethod
    def identity(cls) -> "Normalization":
        return cls(np.zeros(3), 1.0)

    @classmethod
    def fit(cls, points: np.ndarray, mode: str = "sphere", padding: float = 0.0) -> "Normalization":
        """Fit to points (N, D) of a shape, D = 3 (or 2).

        ``mode="sphere"``: the bounding-box centre goes to the origin and the farthest point to
        radius ``1 / (1 + padding)``. ``mode="cube"``: the bounding box fits in
        ``[-0.5, 0.5]^D`` shrunk by ``1 / (1 + padding)`` (Occupancy Networks' unit cube).
        """
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] not in (2, 3) or len(pts) == 0:
            raise InputError(f"cannot normalise: expected points of shape (N, 3) or (N, 2), got {pts.shape}")
        if not np.all(np.isfinite(pts)):
            raise InputError("cannot normalise: points contain NaN or Inf")
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        center = (lo + hi) / 2
        if mode == "sphere":
            extent = np.linalg.norm(pts - center, axis=1).max()
        elif mode == "cube":
            extent = (hi - lo).max()
        else:
            raise InputError(f"unknown normalization mode {mode!r} (use 'sphere' or 'cube')")
        if extent <= 0:
            raise InputError("cannot normalise: all points coincide")
        return cls(center, extent * (1.0 + padding))

    def to_canonical(self, points: np.ndarray) -> np.ndarray:
        """User-frame points (..., D) -> canonical frame, same dtype."""
        pts = np.asarray(points)
        return ((pts - self.center) / self.scale).astype(pts.dtype, copy=False)

    def to_user(self, points: np.ndarray) -> np.ndarray:
        """Canonical points (..., D) -> user frame, same dtype."""
        pts = np.asarray(points)
        return (pts * self.scale + self.center).astype(pts.dtype, copy=False)

    def distance_to_user(self, values: np.ndarray) -> np.ndarray:
        """Canonical distances (SDF values, Chamfer) -> user units."""
        return np.asarray(values) * self.scale

    def to_dict(self) -> dict:
        return {"center": self.center.tolist(), "scale": self.scale}

    @classmethod
    def from_dict(cls, data: dict) -> "Normalization":
        try:
            return cls(np.asarray(data["center"], dtype=np.float64), float(data["scale"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"invalid normalization record {data!r}: {exc}") from None

    def save(self, path: str | os.PathLike) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Normalization":
        try:
            with open(path, encoding="utf-8") as fh:
                return cls.from_dict(json.load(fh))
        except FileNotFoundError:
            raise InputError(f"{path}: normalization file not found") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON ({exc.msg})") from None
