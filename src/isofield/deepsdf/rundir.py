"""A shape-space run directory: everything needed to resume, reuse or re-draw a trained space.

::

    RUN/config.yaml            the resolved configuration (ShapeSpaceConfig)
    RUN/shapes.json            the training shapes in code order, the data dir, each shape's frame
                               (isofield.train.shapes)
    RUN/checkpoints/           latest.pt + numbered snapshots: decoder, codes, optimiser, RNG
    RUN/losses.csv             step, total, sdf, code_prior, lr_decoder, lr_codes per logged step
    RUN/code_history.csv       step, dim_0 .. dim_{L-1}: the first code z_1 at each logged step
    RUN/progress/step_*.png    a few training shapes from their codes, every reconstruction_every steps
    RUN/loss.png, code_history.png, progress.png   redrawn with every progress picture and at the end
    RUN/reconstructions/*.ply  those shapes at the end, from their codes, in user coordinates
    RUN/reconstructions.png, embedding.png, report.html   at the end
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from isofield.deepsdf.config import ShapeSpaceConfig
from isofield.train.shapes import ShapeSetRun


@dataclass(frozen=True)
class ShapeSpaceRun(ShapeSetRun):
    """The run directory of a shape space (see the module notes)."""

    config_type = ShapeSpaceConfig
    description = "isofield shape-space run"

    @property
    def code_history_path(self) -> Path:
        return self.root / "code_history.csv"

    @property
    def progress_dir(self) -> Path:
        return self.root / "progress"

    @property
    def reconstructions_dir(self) -> Path:
        return self.root / "reconstructions"
