"""The training shapes of a model of many shapes, and the run directory that records them.

A DeepSDF shape space, an occupancy network and a ShapeGF model all train on a set of shapes
from a data directory; their runs keep the shapes in training order in ``RUN/shapes.json``
(the data directory, each shape's names, frame and kept sample count), beside what every run
has (:class:`isofield.train.rundir.RunDirectory`). Each family's run class subclasses
:class:`ShapeSetRun`, naming its config class and its own files.
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
from isofield.train.checkpoint import Checkpoint, load_checkpoint
from isofield.train.rundir import RunDirectory

SHAPES_FORMAT = "isofield-shape-space-shapes"
SHAPES_VERSION = 1


@dataclass(frozen=True)
class TrainingShape:
    """One training shape, row ``index`` of the model's per-shape tables (e.g. DeepSDF's codes).

    Attributes:
        index: 0-based position in training order (the order of the split or of the data
            directory).
        ref: the shape's names in the data directory.
        normalization: maps its canonical frame (where the model sees it) to its own
            coordinates.
        samples: samples of the shape kept for training (SDF samples, occupancy points or
            surface points, by family).
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
class ShapeSetRun(RunDirectory):
    """A run directory that also holds ``shapes.json``; subclasses set ``config_type`` and
    ``description`` (see :class:`~isofield.train.rundir.RunDirectory`)."""

    marker_files = ("config.yaml", "shapes.json")

    @property
    def shapes_path(self) -> Path:
        return self.root / "shapes.json"

    def save_shapes(self, data_dir: str | Path, shapes: list[TrainingShape]) -> None:
        """Write ``shapes.json``: the data directory and the shapes in training order."""
        record = {"format": SHAPES_FORMAT, "version": SHAPES_VERSION, "data": str(data_dir),
                  "shapes": [shape.to_json() for shape in shapes]}
        write_text_atomic(self.shapes_path, json.dumps(record, indent=1) + "\n")

    def load_shapes(self) -> tuple[Path, list[TrainingShape]]:
        """(data directory, shapes in training order) from ``shapes.json``."""
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

    def load_trained(self) -> tuple[Any, Path, list[TrainingShape], Checkpoint]:
        """(config, data directory, shapes in code order, latest checkpoint) of a run that
        has trained; InputError when it has no checkpoint yet."""
        config = self.load_config()
        data_dir, shapes = self.load_shapes()
        if not self.has_checkpoint():
            raise InputError(f"{self.root}: the run has no checkpoint yet")
        return config, data_dir, shapes, load_checkpoint(self.checkpoint_path)
