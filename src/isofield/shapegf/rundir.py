"""A ShapeGF run directory.

::

    RUN/config.yaml            the resolved configuration (ShapeGFConfig)
    RUN/shapes.json            the training shapes in order, the data dir, each shape's frame
    RUN/checkpoints/           latest.pt + numbered snapshots: encoder, score network, optimiser, RNG
    RUN/losses.csv             step, total, lr per logged step
    RUN/codes.pt               the training shapes' codes (N, L), encoded after training
    RUN/latent_model.pt        the second stage fitted to those codes (isofield.nn.latent)
    RUN/loss.png, reconstructions.png, trajectory.png, generated.png, surface.png, report.html
    RUN/surface.ply            the surface meshed from the field of one training shape
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from isofield.shapegf.config import ShapeGFConfig
from isofield.train.shapes import ShapeSetRun


@dataclass(frozen=True)
class ShapeGFRun(ShapeSetRun):
    """The run directory of a ShapeGF model (see the module notes); it records its training
    shapes in ``shapes.json`` (:mod:`isofield.train.shapes`)."""

    config_type = ShapeGFConfig
    description = "isofield ShapeGF run"

    @property
    def codes_path(self) -> Path:
        return self.root / "codes.pt"

    @property
    def latent_model_path(self) -> Path:
        return self.root / "latent_model.pt"
