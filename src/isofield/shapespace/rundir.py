"""A shape-space run directory: everything needed to resume, reuse or re-draw a trained space.

::

    RUN/config.yaml            the resolved configuration (ShapeSpaceConfig)
    RUN/shapes.json            the training shapes in code order, the data dir, each shape's frame
    RUN/checkpoints/           latest.pt + numbered snapshots: decoder, codes, optimiser, RNG
    RUN/losses.csv             step, total, sdf, code_prior, lr_decoder, lr_codes per logged step
    RUN/code_history.csv       step, dim_0 .. dim_{L-1}: the first code z_1 at each logged step
    RUN/progress/step_*.png    a few training shapes from their codes, every reconstruction_every steps
    RUN/loss.png, code_history.png, progress.png   redrawn with every progress picture and at the end
    RUN/reconstructions/*.ply  those shapes at the end, from their codes, in user coordinates
    RUN/reconstructions.png, embedding.png, report.html   at the end
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isofield.data.datasets import ShapeRef
from isofield.errors import InputError
from isofield.files import write_text_atomic
from isofield.geometry.normalization import Normalization
from isofield.shapespace.config import ShapeSpaceConfig
from isofield.train.rundir import RunDirectory

SHAPES_FORMAT = "isofield-shape-space-shapes"
SHAPES_VERSION = 1


@dataclass(frozen=True)
class TrainingShape:
    """One training shape: its code is row ``index`` of the code table.

    Attributes:
        index: code index (0-based, the order of the split or of the data directory).
        ref: the shape's names in the data directory.
        normalization: maps its canonical frame (where its code's field lives) to its own
            coordinates.
        samples: SDF samples kept for training.
    """

    index: int
    ref: ShapeRef
    normalization: Normalization
    samples: int

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "dataset": self.ref.dataset, "class": self.ref.klass,
                "id": self.ref.shape_id, "samples": self.samples,
                "normalization": self.normalization.to_dict()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrainingShape":
        ref = ShapeRef(data["dataset"], data["class"], data["id"])
        return cls(int(data["index"]), ref, Normalization.from_dict(data["normalization"]),
                   int(data["samples"]))


@dataclass(frozen=True)
class ShapeSpaceRun(RunDirectory):
    """The run directory of a shape space (see the module notes)."""

    config_type = ShapeSpaceConfig
    marker_files = ("config.yaml", "shapes.json")
    description = "isofield shape-space run"

    @property
    def shapes_path(self) -> Path:
        return self.root / "shapes.json"

    @property
    def code_history_path(self) -> Path:
        return self.root / "code_history.csv"

    @property
    def progress_dir(self) -> Path:
        return self.root / "progress"

    @property
    def reconstructions_dir(self) -> Path:
        return self.root / "reconstructions"

    def save_shapes(self, data_dir: str | Path, shapes: list[TrainingShape]) -> None:
        """Write ``shapes.json``: the data directory and the shapes in code order."""
        record = {"format": SHAPES_FORMAT, "version": SHAPES_VERSION, "data": str(data_dir),
                  "shapes": [shape.to_json() for shape in shapes]}
        write_text_atomic(self.shapes_path, json.dumps(record, indent=1) + "\n")

    def load_shapes(self) -> tuple[Path, list[TrainingShape]]:
        """(data directory, shapes in code order) from ``shapes.json``."""
        try:
            record = json.loads(self.shapes_path.read_text(encoding="utf-8"))
            if record.get("format") != SHAPES_FORMAT or record.get("version") != SHAPES_VERSION:
                raise ValueError(f"not {SHAPES_FORMAT} version {SHAPES_VERSION}")
            shapes = [TrainingShape.from_json(entry) for entry in record["shapes"]]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{self.shapes_path}: cannot read the training shapes ({exc})") from None
        if [shape.index for shape in shapes] != list(range(len(shapes))):
            raise InputError(f"{self.shapes_path}: shape indices are not 0 .. N-1 in order")
        return Path(record["data"]), shapes
