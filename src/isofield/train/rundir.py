"""What every run directory has: a resolved config, checkpoints, a loss log, pictures, a report.

:class:`RunDirectory` is the shared base of a fit's run (:class:`isofield.fitting.rundir.RunDir`)
and of the runs that train on a set of shapes (:class:`isofield.train.shapes.ShapeSetRun`); each
names its config class and the files that mark a folder as one of its runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, TypeVar

import yaml

from isofield.config import from_dict, load_yaml, to_dict
from isofield.errors import InputError
from isofield.files import write_text_atomic
from isofield.train.checkpoint import CHECKPOINT_DIR, LATEST_NAME
from isofield.train.distributed import on_main_process
from isofield.train.logging import LOG_NAME

Run = TypeVar("Run", bound="RunDirectory")


@dataclass(frozen=True)
class RunDirectory:
    """A run directory ``root``; subclasses set the class attributes below."""

    root: Path

    config_type: ClassVar[type]
    """the dataclass stored in ``config.yaml``"""
    marker_files: ClassVar[tuple[str, ...]] = ("config.yaml",)
    """files that every run of this kind holds"""
    description: ClassVar[str] = "isofield run directory"

    @property
    def config_path(self) -> Path:
        return self.root / "config.yaml"

    @property
    def checkpoint_path(self) -> Path:
        return self.root / CHECKPOINT_DIR / LATEST_NAME

    @property
    def log_path(self) -> Path:
        return self.root / LOG_NAME

    @property
    def report_path(self) -> Path:
        return self.root / "report.html"

    def figure_path(self, name: str) -> Path:
        """``RUN/<name>.png``, e.g. ``figure_path("loss")``."""
        return self.root / f"{name}.png"

    @classmethod
    def create(cls: type[Run], root: str | Path, config: Any) -> Run:
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
    def open(cls: type[Run], root: str | Path) -> Run:
        """An existing run; InputError if ``root`` lacks one of :attr:`marker_files`."""
        run = cls(Path(root))
        if not all((run.root / name).is_file() for name in cls.marker_files):
            raise InputError(f"{root}: not an {cls.description} (no {' and '.join(cls.marker_files)})")
        return run

    def save_config(self, config: Any) -> None:
        write_text_atomic(self.config_path, yaml.safe_dump(to_dict(config), sort_keys=False))

    def load_config(self) -> Any:
        return from_dict(self.config_type, load_yaml(self.config_path), str(self.config_path))

    def config_with_limits(self, config: Any, steps: int | None, time_budget: float | None,
                           resolve: Callable[[list[dict]], Any], device: str | None = None) -> Any:
        """``config`` with ``train.steps`` / ``train.time_budget`` (and ``device``) replaced
        where given, re-validated by ``resolve`` (a list of config layers -> config) and saved by
        the main process; ``config`` itself when none is given."""
        if steps is None and time_budget is None and device is None:
            return config
        config.device = device if device is not None else config.device
        config.train.steps = steps if steps is not None else config.train.steps
        config.train.time_budget = time_budget if time_budget is not None else config.train.time_budget
        config = resolve([to_dict(config)])
        on_main_process(lambda: self.save_config(config))
        return config

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.exists()
