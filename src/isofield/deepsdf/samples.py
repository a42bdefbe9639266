"""The SDF samples of every training shape, held in memory as one tensor, and batch drawing.

Shape ``i`` owns the rows ``offsets[i] : offsets[i + 1]`` of ``points`` and ``sdf``: first its
``positive[i]`` samples with sdf > 0 (DeepSDF's ``pos``), then the others (``neg``). A batch
draws, per chosen shape, half of its samples from the positive rows and half from the others,
uniformly with replacement, as DeepSDF's ``unpack_sdf_samples`` does; every random number comes
from the generator handed in (the trainer's), so a resumed run draws the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from isofield.data.datasets import SDF_SAMPLES, DeepSDFDataDir, ShapeRef, derived_seed
from isofield.errors import InputError
from isofield.geometry.normalization import Normalization


@dataclass(frozen=True)
class ShapeSamples:
    """SDF samples of N shapes in one tensor (canonical frames).

    Attributes:
        points: (M, 3) float32, every shape's sample positions, shape after shape.
        sdf: (M,) float32 signed distances.
        offsets: (N + 1,) int64 (CPU): shape ``i`` owns rows ``offsets[i] : offsets[i + 1]``.
        positive: (N,) int64 (CPU): the first ``positive[i]`` rows of shape ``i`` have sdf > 0,
            the rest sdf <= 0; both parts are non-empty.
    """

    points: torch.Tensor
    sdf: torch.Tensor
    offsets: torch.Tensor
    positive: torch.Tensor

    @property
    def num_shapes(self) -> int:
        return len(self.positive)

    @classmethod
    def from_arrays(cls, shapes: Sequence[tuple[np.ndarray, np.ndarray]],
                    names: Sequence[str] | None = None) -> "ShapeSamples":
        """Stack ``(points (K_i, 3), sdf (K_i,))`` per shape, positive rows first within each.

        ``names`` (one per shape, e.g. file paths) name a shape in errors. Raises InputError
        when a shape has no sample with sdf > 0 or none with sdf <= 0 (no surface to learn).
        """
        if not shapes:
            raise InputError("no training shapes")
        points, sdf, positive = [], [], []
        for index, (shape_points, shape_sdf) in enumerate(shapes):
            is_positive = np.asarray(shape_sdf) > 0
            count = int(is_positive.sum())
            if count in (0, len(is_positive)):
                name = names[index] if names is not None else f"shape {index}"
                side = "sdf > 0 (outside)" if count == 0 else "sdf <= 0 (inside)"
                raise InputError(f"{name}: no SDF samples with {side}; the shape has no surface")
            order = np.argsort(~is_positive, kind="stable")
            points.append(np.asarray(shape_points, dtype=np.float32)[order])
            sdf.append(np.asarray(shape_sdf, dtype=np.float32)[order])
            positive.append(count)
        sizes = np.array([len(s) for s in sdf], dtype=np.int64)
        return cls(
            points=torch.from_numpy(np.concatenate(points)),
            sdf=torch.from_numpy(np.concatenate(sdf)),
            offsets=torch.from_numpy(np.concatenate([[0], np.cumsum(sizes)])),
            positive=torch.tensor(positive, dtype=torch.int64),
        )

    def to(self, device: torch.device | str) -> "ShapeSamples":
        """The samples on ``device`` (the index tensors stay on the CPU)."""
        return ShapeSamples(self.points.to(device), self.sdf.to(device), self.offsets, self.positive)

    def draw_rows(self, shapes: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
        """Rows of ``count`` samples for each of ``shapes`` (B,) int64 (CPU): ``count // 2`` with
        sdf > 0 then the rest with sdf <= 0, uniform with replacement. Returns (B * count,)
        int64 (CPU), shape by shape."""
        half = count // 2
        starts = self.offsets[shapes]
        positive = self.positive[shapes]
        negative = self.offsets[shapes + 1] - starts - positive
        first = torch.cat([starts[:, None].expand(-1, half),
                           (starts + positive)[:, None].expand(-1, count - half)], dim=1)
        sizes = torch.cat([positive[:, None].expand(-1, half),
                           negative[:, None].expand(-1, count - half)], dim=1)
        uniform = torch.rand(len(shapes), count, generator=generator, dtype=torch.float64)
        offset = torch.minimum((uniform * sizes).long(), sizes - 1)
        return (first + offset).reshape(-1)


def balanced_subset(points: np.ndarray, sdf: np.ndarray, limit: int | None,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """At most ``limit`` of the samples ``points (K, 3)``, ``sdf (K,)``: half with sdf > 0 and
    half with sdf <= 0 where each side has enough, the other side filling up what one lacks;
    drawn without replacement, order kept. ``limit=None`` keeps everything."""
    if limit is None or len(sdf) <= limit:
        return points, sdf
    positive = np.flatnonzero(sdf > 0)
    negative = np.flatnonzero(sdf <= 0)
    keep_positive = min(len(positive), max(limit // 2, limit - len(negative)))
    keep_negative = limit - keep_positive
    chosen = np.concatenate([rng.choice(positive, keep_positive, replace=False),
                             rng.choice(negative, keep_negative, replace=False)])
    chosen.sort()
    return points[chosen], sdf[chosen]


def load_training_samples(data: DeepSDFDataDir, refs: Sequence[ShapeRef], limit: int | None,
                          seed: int) -> tuple[ShapeSamples, list[Normalization]]:
    """Read the SDF samples of ``refs`` (in code order) and each shape's frame.

    Each shape keeps at most ``limit`` samples (:func:`balanced_subset`), drawn with a seed
    derived from ``seed`` and the shape's names, so the subset does not depend on the order or
    number of shapes. Raises InputError naming the file of a shape that cannot be used.
    """
    arrays, frames = [], []
    for ref in refs:
        samples, frame = data.load_sdf(ref)
        rng = np.random.default_rng(derived_seed(seed, ref.dataset, ref.klass, ref.shape_id))
        arrays.append(balanced_subset(samples.points, samples.sdf, limit, rng))
        frames.append(frame)
    names = [str(data.path(SDF_SAMPLES, ref)) for ref in refs]
    return ShapeSamples.from_arrays(arrays, names), frames
