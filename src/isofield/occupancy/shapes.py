"""The training (or test) shapes of an occupancy network, in memory, and the inputs drawn from
them.

Per shape: every occupancy sample of its ``points.npz`` (points and labels, canonical unit-cube
frame), ``cloud_points`` of its ``pointcloud.npz`` surface points (the pool the noisy input clouds
are drawn from, chosen with a seed derived from the shape's names) and, for image input, its
rendered views resized to ``image_size``. A step draws per shape ``K`` occupancy samples and one
input (:func:`draw_batch`); evaluation uses one fixed input per shape (:func:`fixed_input`).
For sald-vae the occupancy samples give way to each shape's unsigned-distance pool, drawn from
its kept surface points without their normals (:func:`~isofield.data.raw_input.unsigned_distance_pool`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from isofield.data.datasets import ShapeRef, derived_seed
from isofield.data.onet import OccupancyDataDir
from isofield.data.raw_input import PoolSpec, RawInput, unsigned_distance_pool
from isofield.errors import InputError
from isofield.geometry.normalization import Normalization
from isofield.occupancy.config import InputConfig

CLOUD_POINTS = 10_000
"""surface points per shape kept in memory for drawing input clouds"""


@dataclass(frozen=True)
class ShapeTensors:
    """Shapes in memory, row i = shape i.

    Attributes:
        points: (S, P, 3) float32 occupancy sample points (canonical frame).
        occupancies: (S, P) bool labels.
        clouds: (S, Q, 3) float32 surface points, or None (no point-cloud input).
        views: (S, V, 3, H, W) uint8 rendered views, or None (no image input).
        frames: each shape's frame (canonical -> its own coordinates).
        pools: sald-vae's training samples instead of the occupancy samples: ``pool`` (S, P, 3),
            ``pool_distance`` (S, P) unsigned distance to the shape's cloud, ``pool_direction``
            (S, P, 3) its gradient; None otherwise.
    """

    points: torch.Tensor
    occupancies: torch.Tensor
    clouds: torch.Tensor | None
    views: torch.Tensor | None
    frames: list[Normalization]
    pools: dict[str, torch.Tensor] | None = None

    def __len__(self) -> int:
        return len(self.points)


def load_shapes(data: OccupancyDataDir, refs: Sequence[ShapeRef], source: InputConfig,
                seed: int, pool: PoolSpec | None = None) -> ShapeTensors:
    """Read ``refs`` (in order) with what ``source.kind`` needs; with ``pool``, each shape's
    unsigned-distance pool from its kept surface points (normals unused, sald-vae).

    Raises InputError naming the file of a shape whose sample counts differ from the first
    shape's, or that lacks the views or point cloud its input needs.
    """
    if not refs:
        raise InputError("no shapes to load")
    points, labels, clouds, views, frames = [], [], [], [], []
    for ref in refs:
        samples, frame = data.load_points(ref)
        if points and len(samples.points) != len(points[0]):
            raise InputError(f"{data.shape_dir(ref)}: {len(samples.points)} occupancy samples, the "
                             f"first shape has {len(points[0])} (preprocess all shapes alike)")
        points.append(samples.points)
        labels.append(samples.occupancies)
        frames.append(frame)
        if source.kind == "pointcloud":
            clouds.append(_cloud_pool(data, ref, seed))
        elif source.kind == "image":
            views.append(_resized_views(data, ref, source.image_size))
    pools = None
    if pool is not None:
        drawn = [unsigned_distance_pool(RawInput(cloud, None, Normalization.identity(), ref.key), pool,
                                        derived_seed(seed, "pool", ref.dataset, ref.klass, ref.shape_id))
                 for cloud, ref in zip(clouds, refs)]
        pools = {key: torch.stack([entry[key] for entry in drawn]) for key in drawn[0]}
    return ShapeTensors(
        torch.from_numpy(np.stack(points)), torch.from_numpy(np.stack(labels)),
        torch.from_numpy(np.stack(clouds)) if clouds else None,
        torch.stack(views) if views else None, frames, pools)


def _cloud_pool(data: OccupancyDataDir, ref: ShapeRef, seed: int) -> np.ndarray:
    cloud, _ = data.load_pointcloud(ref)
    if len(cloud.points) < CLOUD_POINTS:
        raise InputError(f"{data.shape_dir(ref)}: {len(cloud.points)} surface points, fewer than "
                         f"the {CLOUD_POINTS} kept per shape")
    rng = np.random.default_rng(derived_seed(seed, "cloud", ref.dataset, ref.klass, ref.shape_id))
    return cloud.points[rng.choice(len(cloud.points), CLOUD_POINTS, replace=False)].astype(np.float32)


def _resized_views(data: OccupancyDataDir, ref: ShapeRef, size: int) -> torch.Tensor:
    """(V, 3, size, size) uint8."""
    images, _ = data.load_views(ref)
    return resize_images(images, size)


def resize_images(images: np.ndarray, size: int) -> torch.Tensor:
    """images (V, H, W, 3) uint8 -> (V, 3, size, size) uint8 (contiguous), resized with antialiasing."""
    tensor = torch.from_numpy(np.array(images, dtype=np.uint8)).permute(0, 3, 1, 2).float()
    if tensor.shape[-1] != size or tensor.shape[-2] != size:
        tensor = F.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True,
                               align_corners=False)
    return tensor.round().clamp(0, 255).to(torch.uint8).contiguous()


@dataclass(frozen=True)
class Batch:
    """One step's draw for B shapes.

    Attributes:
        shapes: (B,) int64 rows of the ShapeTensors.
        inputs: (B, N, 3) noisy clouds, (B, 3, H, W) images in [0, 1], or None.
        points: (B, K, 3) occupancy sample points, or pool samples (sald-vae).
        occupancies: (B, K) float32 labels (1 inside); zeros for pool samples.
        distances, directions: (B, K) and (B, K, 3) the pool samples' unsigned distances and
            their gradients (sald-vae), else None.
    """

    shapes: torch.Tensor
    inputs: torch.Tensor | None
    points: torch.Tensor
    occupancies: torch.Tensor
    distances: torch.Tensor | None = None
    directions: torch.Tensor | None = None


def draw_batch(shapes: ShapeTensors, count: int, samples: int, source: InputConfig,
               generator: torch.Generator) -> Batch:
    """``count`` shapes without replacement, ``samples`` occupancy samples each (with
    replacement) and one input each; every draw comes from ``generator``."""
    rows = torch.randperm(len(shapes), generator=generator)[:count]
    if shapes.pools is not None:
        pools = shapes.pools
        picks = torch.randint(pools["pool"].shape[1], (len(rows), samples), generator=generator)
        points = pools["pool"][rows[:, None], picks]
        return Batch(rows, _draw_input(shapes, rows, source, generator), points, points.new_zeros(points.shape[:2]),
                     pools["pool_distance"][rows[:, None], picks], pools["pool_direction"][rows[:, None], picks])
    picks = torch.randint(shapes.points.shape[1], (len(rows), samples), generator=generator)
    points = shapes.points[rows[:, None], picks]
    occupancies = shapes.occupancies[rows[:, None], picks].float()
    return Batch(rows, _draw_input(shapes, rows, source, generator), points, occupancies)


def _draw_input(shapes: ShapeTensors, rows: torch.Tensor, source: InputConfig,
                generator: torch.Generator) -> torch.Tensor | None:
    if source.kind == "pointcloud":
        clouds = shapes.clouds[rows]
        order = torch.rand(clouds.shape[:2], generator=generator).argsort(dim=1)[:, :source.points]
        chosen = torch.gather(clouds, 1, order[..., None].expand(-1, -1, 3))
        return chosen + source.noise * torch.randn(chosen.shape, generator=generator)
    if source.kind == "image":
        views = shapes.views[rows]
        which = torch.randint(views.shape[1], (len(rows),), generator=generator)
        return views[torch.arange(len(rows)), which].float() / 255.0
    return None


def fixed_input(shapes: ShapeTensors, row: int, source: InputConfig, seed: int) -> torch.Tensor | None:
    """Shape ``row``'s evaluation input, (1, N, 3) or (1, 3, H, W) or None: a seeded draw of the
    noisy cloud, or the first view."""
    if source.kind == "pointcloud":
        generator = torch.Generator().manual_seed(seed)
        cloud = shapes.clouds[row]
        order = torch.randperm(len(cloud), generator=generator)[:source.points]
        noise = source.noise * torch.randn((len(order), 3), generator=generator)
        return (cloud[order] + noise)[None]
    if source.kind == "image":
        return shapes.views[row, :1].float() / 255.0
    return None
