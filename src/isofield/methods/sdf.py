"""DeepSDF's single-shape recipe: regress signed distance samples with a clamped L1 loss.

L = mean |clamp(f(x), δ) − clamp(s, δ)|, δ = 0.1 by default, from a DeepSDF-style SDF-sample npz
(``pos``/``neg``), or from a mesh whose samples are made on the fly (DeepSDF's protocol).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from isofield.data.formats import read_sdf_samples
from isofield.errors import InputError
from isofield.geometry.io import PointCloud, read_geometry
from isofield.geometry.samples import sdf_samples
from isofield.losses import clamped_l1
from isofield.methods.base import (SETTLING_SCHEDULE, FieldTask, LevelSchedule, PreparedInput,
                                   register)


@dataclass
class SDFOptions:
    """Options of the ``sdf`` method (config section ``options``)."""

    clamp: float = 0.1
    """δ: SDF values and predictions are clamped to [-δ, δ]"""
    batch: int = 16384
    """samples per step"""
    samples: int = 500_000
    """samples made from a mesh input (an npz input is used as it is)"""


class SDFTask(FieldTask):
    """Trainer task: a random batch of (point, sdf) pairs per step; data ``points (N, 3)``,
    ``sdf (N,)``."""

    def step_loss(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        points, sdf = self.data["points"], self.data["sdf"]
        index = torch.randint(len(points), (self.options.batch,), generator=generator)
        index = index.to(self.device)
        l1 = clamped_l1(self.field(points[index]), sdf[index], self.options.clamp)
        return {"clamped_l1": l1, "total": l1}


class SDF:
    """The ``sdf`` method."""

    name = "sdf"
    options_type = SDFOptions
    presets = {
        "fast": {"field": {"preset": "fast"}, "train": {"lr": 5e-3, "schedule": SETTLING_SCHEDULE}},
        "paper": {
            "field": {"preset": "paper"},
            "train": {"lr": 5e-4, "schedule": {"name": "step", "every": 2000, "factor": 0.5}},
        },
    }

    def prepare(self, path: Path, options: SDFOptions, seed: int) -> PreparedInput:
        if options.clamp <= 0:
            raise InputError(f"options.clamp must be positive, got {options.clamp}")
        if path.suffix.lower() == ".npz":
            samples, normalization = read_sdf_samples(path)
            origin = f"{len(samples.points)} SDF samples from {path.name}"
        else:
            mesh = read_geometry(path)
            if isinstance(mesh, PointCloud):
                raise InputError(
                    f"{path}: holds points, not a mesh; sdf needs a mesh or an SDF-sample .npz "
                    f"(for points: --method sald, digs or sal, or igr with --normals estimate)")
            samples, normalization = sdf_samples(mesh, n=options.samples, seed=seed)
            origin = f"{len(samples.points)} SDF samples made from {path.name} (DeepSDF protocol)"
        tensors = {
            "points": torch.from_numpy(np.asarray(samples.points, dtype=np.float32)),
            "sdf": torch.from_numpy(np.asarray(samples.sdf, dtype=np.float32)),
        }
        return PreparedInput(tensors, normalization, origin)

    def task(self, field: nn.Module, data: PreparedInput, options: SDFOptions,
             device: torch.device, lr: float, levels: LevelSchedule) -> SDFTask:
        return SDFTask(field, data, options, device, lr, levels)


register(SDF())
