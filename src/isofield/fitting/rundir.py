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

import yaml

from isofield.config import from_dict, load_yaml, to_dict
from isofield.errors import InputError
from isofield.files import write_text_atomic
from isofield.fitting.config import FitConfig
from isofield.geometry.normalization import Normalization
from isofield.train.checkpoint import CHECKPOINT_DIR, LATEST_NAME


@dataclass(frozen=True)
class RunDir:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def normalization_path(self) -> Path:
        return self.root / "normalization.json"

    @property
    def checkpoint_path(self) -> Path:
        return self.root / CHECKPOINT_DIR / LATEST_NAME

    @property
    def mesh_path(self) -> Path:
        return self.root / "mesh.ply"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.json"

    @property
    def log_path(self) -> Path:
        return self.root / "losses.csv"

    @property
    def report_path(self) -> Path:
        return self.root / "report.html"

    @classmethod
    def create(cls, root: str | Path, config: FitConfig) -> "RunDir":
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
    def open(cls, root: str | Path) -> "RunDir":
        """An existing run; InputError if ``root`` is not one."""
        run = cls(Path(root))
        if not run.config_path.exists():
            raise InputError(f"{root}: not an isofield run directory (no config.yaml)")
        return run

    def save_config(self, config: FitConfig) -> None:
        write_text_atomic(self.config_path, yaml.safe_dump(to_dict(config), sort_keys=False))

    def load_config(self) -> FitConfig:
        return from_dict(FitConfig, load_yaml(self.config_path), str(self.config_path))

    def save_normalization(self, normalization: Normalization) -> None:
        normalization.save(self.normalization_path)

    def load_normalization(self) -> Normalization:
        return Normalization.load(self.normalization_path)

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.exists()
