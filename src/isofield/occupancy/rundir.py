"""An occupancy network run directory.

::

    RUN/config.yaml            the resolved configuration (OccupancyConfig)
    RUN/shapes.json            the training shapes in order, the data dir, each shape's frame
    RUN/checkpoints/           latest.pt + numbered snapshots: the network, optimiser, RNG
    RUN/losses.csv             step, total, bce (sald-vae: sal, sald), kl (VAEs), accuracy, lr per logged step
    RUN/loss.png, reconstructions.png, report.html      at the end of training
    RUN/latent_fit.pt          a VAE's Gaussian over its training shapes' posterior means
    RUN/generated.png, generated_fitted.png, interpolation.png   at the end of training a VAE
    RUN/reconstructions/*.ply  the shown training shapes, meshed, in their own coordinates
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from isofield.occupancy.config import OccupancyConfig
from isofield.train.shapes import ShapeSetRun


@dataclass(frozen=True)
class OccupancyRun(ShapeSetRun):
    """The run directory of an occupancy network (see the module notes); it records its
    training shapes in ``shapes.json`` (:mod:`isofield.train.shapes`)."""

    config_type = OccupancyConfig
    description = "isofield occupancy-network run"

    @property
    def latent_fit_path(self) -> Path:
        return self.root / "latent_fit.pt"

    @property
    def reconstructions_dir(self) -> Path:
        return self.root / "reconstructions"
