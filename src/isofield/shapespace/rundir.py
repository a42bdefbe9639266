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

import yaml

from isofield.config import from_dict, load_yaml, to_dict
from isofield.data.datasets import ShapeRef
from isofield.errors import InputError
from isofield.files import write_text_atomic
from isofield.geometry.normalization import Normalization
from isofield.shapespace.config import ShapeSpaceConfig
from isofield.train.checkpoint import CHECKPOINT_DIR, LATEST_NAME
from isofield.train.logging import LOG_NAME

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
class ShapeSpaceRun:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def shapes_path(self) -> Path:
        return self.root / "shapes.json"

    @property
    def checkpoint_path(self) -> Path:
        return self.root / CHECKPOINT_DIR / LATEST_NAME

    @property
    def log_path(self) -> Path:
        return self.root / LOG_NAME

    @property
    def code_history_path(self) -> Path:
        return self.root / "code_history.csv"

    @property
    def progress_dir(self) -> Path:
        return self.root / "progress"

    @property
    def reconstructions_dir(self) -> Path:
        return self.root / "reconstructions"

    @property
    def report_path(self) -> Path:
        return self.root / "report.html"

    def figure_path(self, name: str) -> Path:
        """``RUN/<name>.png``, e.g. ``figure_path("loss")``."""
        return self.root / f"{name}.png"

    @classmethod
    def create(cls, root: str | Path, config: ShapeSpaceConfig) -> "ShapeSpaceRun":
        """A new run in ``root``: refuses a folder that already holds files (never overwrites)."""
        path = Path(root)
        if path.exists() and not path.is_dir():
            raise InputError(f"{path}: exists and is not a directory")
        if path.is_dir() and any(path.iterdir()):
            hint = " (it holds a run: use --resume)" if (path / "config.yaml").exists() else ""
            raise InputError(f"{path}: directory is not empty; choose another -o{hint}")
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path)
        run.save_config(config)
        return run

    @classmethod
    def open(cls, root: str | Path) -> "ShapeSpaceRun":
        """An existing run; InputError if ``root`` is not one."""
        run = cls(Path(root))
        if not (run.config_path.is_file() and run.shapes_path.is_file()):
            raise InputError(f"{root}: not an isofield shape-space run (no config.yaml and shapes.json)")
        return run

    def save_config(self, config: ShapeSpaceConfig) -> None:
        write_text_atomic(self.config_path, yaml.safe_dump(to_dict(config), sort_keys=False))

    def load_config(self) -> ShapeSpaceConfig:
        return from_dict(ShapeSpaceConfig, load_yaml(self.config_path), str(self.config_path))

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

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.exists()
