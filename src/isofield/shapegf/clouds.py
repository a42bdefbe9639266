"""The surface point clouds of the training (or test) shapes, in memory as one tensor.

Every shape keeps ``count`` of its surface samples (canonical frame), drawn without replacement
with a seed derived from ``seed`` and the shape's names, so a shape's points do not depend on
the order or number of shapes. A step draws, per shape, encoder inputs and noisy targets from
these points (:func:`draw_points`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from isofield.data.datasets import SURFACE_SAMPLES, DeepSDFDataDir, ShapeRef, derived_seed
from isofield.errors import InputError
from isofield.geometry.normalization import Normalization


def load_clouds(data: DeepSDFDataDir, refs: Sequence[ShapeRef], count: int,
                seed: int) -> tuple[torch.Tensor, list[Normalization]]:
    """(clouds (S, count, 3) float32, each shape's frame) for ``refs`` in order.

    Raises InputError naming the file of a shape with fewer than ``count`` surface points or
    with non-finite ones.
    """
    clouds, frames = [], []
    for ref in refs:
        cloud, frame = data.load_surface(ref)
        points = np.asarray(cloud.points, dtype=np.float32)
        where = data.path(SURFACE_SAMPLES, ref)
        if len(points) < count:
            raise InputError(f"{where}: {len(points)} surface points, fewer than the {count} "
                             f"needed per shape (lower points_per_shape)")
        if not np.isfinite(points).all():
            raise InputError(f"{where}: surface points contain NaN or Inf")
        rng = np.random.default_rng(derived_seed(seed, ref.dataset, ref.klass, ref.shape_id))
        clouds.append(points[rng.choice(len(points), count, replace=False)])
        frames.append(frame)
    if not clouds:
        raise InputError("no shapes to load")
    return torch.from_numpy(np.stack(clouds)), frames


def draw_points(clouds: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` points of each cloud, without replacement: clouds (B, P, D) -> (B, count, D)."""
    order = torch.rand(clouds.shape[:2], generator=generator).argsort(dim=1)[:, :count]
    return torch.gather(clouds, 1, order.to(clouds.device)[..., None].expand(-1, -1, clouds.shape[2]))
