"""Checkpoint files of a training run: their content, atomic storage and safe loading.

A run directory holds ``checkpoints/latest.pt`` (the newest state) and numbered snapshots
``checkpoints/step_000500.pt`` (only the newest ``keep_numbered`` are kept). Every file is written
through :func:`isofield.files.atomic_path`, so ``latest.pt`` is whole at every instant: a process
killed at any moment (``kill -9`` included) loses at most the steps since its last save.

Files are read with ``torch.load(weights_only=True)`` only, never by unpickling arbitrary
objects. What is saved is therefore checked first to hold nothing but dicts, lists, tuples,
strings, numbers, booleans, None and tensors (a ``torch.Generator`` state is a uint8 tensor).
"""

from __future__ import annotations

import io
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from isofield.errors import InputError
from isofield.files import atomic_path

CHECKPOINT_DIR = "checkpoints"
LATEST_NAME = "latest.pt"
FORMAT = "isofield-checkpoint"
VERSION = 1

_NUMBERED = re.compile(r"step_(\d+)\.pt")
_UNPICKLER_DETAIL = re.compile(r"WeightsUnpickler error:\s*(.+?)(?: was not|\n|$)")
_SAFE_LEAVES = (torch.Tensor, str, int, float, bool, type(None))


@dataclass
class Checkpoint:
    """Everything needed to continue a run exactly where it stopped.

    Attributes:
        step: steps completed; training continues with the step of this 0-based index.
        elapsed: seconds of training so far, summed over every process that worked on the run.
        modules: name -> ``state_dict()`` of each module of the task.
        optimizer: the optimizer's ``state_dict()``.
        generator_state: uint8 tensor, state of the trainer's sampling ``torch.Generator``.
        global_rng_state: uint8 tensor, state of torch's default CPU generator (dropout, ...).
        losses: loss terms of the last completed step (empty before the first step).
        extra: the task's own state (see ``StatefulTask`` in :mod:`isofield.train.loop`).
        averages: name -> ``state_dict()`` of the module's weight average
            (:mod:`isofield.train.averaging`; empty when the run keeps none).
        progress: the run's progress through its schedule (:mod:`isofield.train.schedules`),
            in [0, 1]; a resumed run never goes back below it.
    """

    step: int
    elapsed: float
    modules: dict[str, dict[str, torch.Tensor]]
    optimizer: dict[str, Any]
    generator_state: torch.Tensor
    global_rng_state: torch.Tensor
    losses: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    averages: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    progress: float = 0.0

    def weights_to_use(self, name: str) -> dict[str, torch.Tensor]:
        """The weights module ``name``'s outputs are made with: its average when the run keeps
        one, else the trained weights. Raises KeyError for a module the checkpoint lacks."""
        if name not in self.averages:
            return self.modules[name]
        return {key.removeprefix(_AVERAGED_PREFIX): value
                for key, value in self.averages[name].items() if key.startswith(_AVERAGED_PREFIX)}

    def replace_weights_to_use(self, name: str, weights: Mapping[str, torch.Tensor]) -> None:
        """Store ``weights`` (a ``state_dict()``) as module ``name``'s weights to use: in its
        average when the run keeps one (the trained weights stay), else as its trained weights."""
        if name not in self.averages:
            self.modules[name] = dict(weights)
            return
        self.averages[name] = {**self.averages[name],
                               **{_AVERAGED_PREFIX + key: value for key, value in weights.items()}}

    def to_dict(self) -> dict[str, Any]:
        """The plain dict written to disk (loads under ``weights_only=True``)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "step": int(self.step),
            "elapsed": float(self.elapsed),
            "modules": self.modules,
            "optimizer": self.optimizer,
            "generator_state": self.generator_state,
            "global_rng_state": self.global_rng_state,
            "losses": dict(self.losses),
            "extra": self.extra,
            "averages": self.averages,
            "progress": float(self.progress),
        }

    @classmethod
    def from_dict(cls, data: Any, source: str | Path) -> "Checkpoint":
        """Inverse of :meth:`to_dict`; InputError naming ``source`` if ``data`` is not one."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"{source}: not an isofield checkpoint")
        if data.get("version") != VERSION:
            raise InputError(
                f"{source}: checkpoint version {data.get('version')!r} is not supported "
                f"(this isofield reads version {VERSION})"
            )
        try:
            return cls(**{key: data[key] for key in _FIELDS if key in data or key not in _OPTIONAL})
        except KeyError as exc:
            raise InputError(f"{source}: checkpoint lacks the entry {exc.args[0]!r}") from None


_FIELDS = tuple(Checkpoint.__dataclass_fields__)
_OPTIONAL = ("averages", "progress")  # absent from checkpoints written before weight averaging
                                      # and progress schedules
_AVERAGED_PREFIX = "module."    # AveragedModel's state_dict: "module.<key>" and "n_averaged"


def check_weights_only_safe(value: Any, where: str = "checkpoint") -> None:
    """Raise TypeError naming the entry (e.g. ``checkpoint['extra']['norm']``) that would not
    load under ``torch.load(weights_only=True)``."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where}: key {key!r} is not a str or int")
            check_weights_only_safe(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_weights_only_safe(item, f"{where}[{index}]")
    elif not isinstance(value, _SAFE_LEAVES):
        raise TypeError(
            f"{where} is a {type(value).__name__}; checkpoints hold only dicts, lists, tuples, "
            "str, int, float, bool, None and tensors"
        )


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint with ``torch.load(weights_only=True)``, tensors on the CPU.

    Raises InputError naming ``path`` if it is missing, corrupt or not an isofield checkpoint.
    """
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{path}: checkpoint not found") from None
    except pickle.UnpicklingError as exc:
        detail = _UNPICKLER_DETAIL.search(str(exc))
        reason = detail.group(1).strip() if detail else "refused by torch.load(weights_only=True)"
        raise InputError(f"{path}: corrupt or unsafe checkpoint ({reason})") from None
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        reason = type(exc).__name__
        raise InputError(f"{path}: corrupt or unreadable checkpoint ({reason})") from None
    return Checkpoint.from_dict(data, path)


class CheckpointStore:
    """The ``checkpoints/`` folder of a run: ``latest.pt`` plus numbered snapshots.

    Only one process writes to a store (rank 0 under DDP; the trainer decides).
    """

    def __init__(self, run_dir: str | Path, keep_numbered: int | None = 5) -> None:
        """``keep_numbered``: how many numbered snapshots to keep (None: all; 0: none)."""
        valid = keep_numbered is None or (isinstance(keep_numbered, int) and keep_numbered >= 0)
        if not valid:
            raise InputError(f"keep_numbered must be None or an integer >= 0: {keep_numbered!r}")
        self.directory = Path(run_dir) / CHECKPOINT_DIR
        self.keep_numbered = keep_numbered

    @property
    def latest(self) -> Path:
        return self.directory / LATEST_NAME

    def numbered_path(self, step: int) -> Path:
        return self.directory / f"step_{step:06d}.pt"

    def numbered_steps(self) -> list[int]:
        """Steps of the numbered snapshots present, ascending."""
        if not self.directory.is_dir():
            return []
        matches = (_NUMBERED.fullmatch(path.name) for path in self.directory.iterdir())
        return sorted(int(match.group(1)) for match in matches if match)

    def load_latest(self) -> Checkpoint | None:
        """The newest checkpoint, or None where the run has none yet."""
        return load_checkpoint(self.latest) if self.latest.exists() else None

    def save(self, checkpoint: Checkpoint, numbered: bool = False) -> Path:
        """Write ``latest.pt`` (and ``step_XXXXXX.pt`` if ``numbered`` and snapshots are kept)
        atomically, then prune old snapshots. Returns the path of ``latest.pt``.

        Raises TypeError, before writing anything, if the content would not load under
        ``weights_only=True``.
        """
        data = checkpoint.to_dict()
        check_weights_only_safe(data)
        buffer = io.BytesIO()
        torch.save(data, buffer)
        payload = buffer.getvalue()
        _write_bytes_atomic(self.latest, payload)
        if numbered and self.keep_numbered != 0:
            _write_bytes_atomic(self.numbered_path(checkpoint.step), payload)
            self._prune()
        return self.latest

    def remove_stale_temporaries(self) -> None:
        """Delete half-written temporary files left by a process killed while saving."""
        if self.directory.is_dir():
            for path in self.directory.glob(".*.pt"):
                path.unlink(missing_ok=True)

    def _prune(self) -> None:
        if self.keep_numbered is None:
            return
        steps = self.numbered_steps()
        for step in steps[: max(0, len(steps) - self.keep_numbered)]:
            self.numbered_path(step).unlink(missing_ok=True)


def _write_bytes_atomic(path: Path, payload: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
