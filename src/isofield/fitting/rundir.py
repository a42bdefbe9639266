"""A run directory: the unit of reproducibility of a fit.

Given the directory alone, a run can be resumed, re-meshed and re-evaluated::

    RUN/config.yaml          the resolved configuration
    RUN/normalization.json   canonical frame -> user coordinates
    RUN/losses.csv           every loss term per logged step
    RUN/checkpoints/         latest.pt + numbered snapshots
    RUN/mesh.ply             the surface, in user coordinates
    RUN/metrics.json         against the reference, when there is one
    RUN/*.png, RUN/report.html
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from isofield.fitting.config import FitConfig
from isofield.geometry.normalization import Normalization
from isofield.train.rundir import RunDirectory


@dataclass(frozen=True)
class RunDir(RunDirectory):
    """The run directory of a fit (see the module notes)."""

    config_type = FitConfig

    @property
    def normalization_path(self) -> Path:
        return self.root / "normalization.json"

    @property
    def mesh_path(self) -> Path:
        return self.root / "mesh.ply"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.json"

    def save_normalization(self, normalization: Normalization) -> None:
        normalization.save(self.normalization_path)

    def load_normalization(self) -> Normalization:
        return Normalization.load(self.normalization_path)
