"""Fit one shape: config -> run directory -> trained field -> mesh, pictures, report.

    >>> import isofield
    >>> result = isofield.fit("bunny.ply", method="igr", time_budget=120, output="runs/bunny")
    >>> result.mesh_path, result.metrics["chamfer_l1"]
"""

from __future__ import annotations

import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field as _field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from isofield.config import from_dict, load_yaml, to_dict
from isofield.data.raw_input import raw_input_from_arrays
from isofield.errors import InputError
from isofield.fitting.config import FitConfig, chosen_method, level_schedule, resolve_config
from isofield.fitting.rundir import RunDir
from isofield.methods import get_method
from isofield.geometry.normalization import Normalization
from isofield.methods.base import PreparedInput
from isofield.nn import build_field
from isofield.runs import ALREADY_FINISHED
from isofield.train.checkpoint import load_checkpoint
from isofield.train.distributed import resolve_device
from isofield.train.loop import StopReason, Trainer, TrainResult
from isofield.train.schedules import run_progress
from isofield.train.settings import build_trainer


@dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`fit` / :func:`resume`.

    Attributes:
        run_dir: the run directory.
        reason: why training stopped ("finished", "time-budget", "exit-after", "interrupted"),
            or :data:`ALREADY_FINISHED` (a resumed run that had reached its limits).
        step: steps trained in total.
        elapsed: seconds of training in total.
        mesh_path: the mesh in user coordinates (None when training was only paused).
        metrics: metrics against the reference (empty without one).
        progress: the fraction of the run's limit reached (below 1: training was only paused,
            before the end of its schedule).
        schedule: the task's schedule values at the last step (e.g. ``grid_levels``).
    """

    run_dir: Path
    reason: str
    step: int
    elapsed: float
    mesh_path: Path | None
    metrics: dict[str, Any]
    progress: float = 0.0
    schedule: dict[str, float] = _field(default_factory=dict)


def fit(
    input: str | Path,
    *,
    method: str | None = None,
    preset: str | None = None,
    output: str | Path | None = None,
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    steps: int | None = None,
    time_budget: float | None = None,
    reference: str | Path | None = None,
    exit_after: float | None = None,
    progress: bool = True,
) -> FitResult:
    """Fit a neural field to ``input`` and write a run directory (see :mod:`.rundir`).

    Config layers, later winning: method preset < ``config_file`` < ``overrides`` < the keyword
    arguments (``method``: the file's, else igr). ``output`` defaults to
    ``runs/<input stem>-<method>``. Everything that can be checked is checked before training
    (input, reference, device, output folder); a run folder this call created is removed again
    when it fails before training starts.
    """
    path = Path(input)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    file_layer = load_yaml(config_file) if config_file else {}
    kwargs_layer: dict[str, Any] = {"input": str(path.resolve()), "method": chosen_method(method, file_layer)}
    if preset is not None:
        kwargs_layer["preset"] = preset
    if reference is not None:
        kwargs_layer["reference"] = str(Path(reference).resolve())
    train: dict[str, Any] = {}
    if steps is not None:
        train["steps"] = steps
    if time_budget is not None:
        train["time_budget"] = time_budget
    if train:
        kwargs_layer["train"] = train
    method_obj = get_method(kwargs_layer["method"])
    config = resolve_config(method_obj.presets, [file_layer, dict(overrides or {}), kwargs_layer])
    resolve_device(config.device)
    found = _read_reference(config)
    run_root = Path(output or Path("runs") / f"{path.stem}-{config.method}")
    with _removed_on_failure(run_root):
        run = RunDir.create(run_root, config)
        prepared = _prepare(config)
        trainer = _before_training(run, config, prepared, exit_after, progress)
    return _train_and_finish(run, config, prepared, trainer, found)


def resume(
    run_dir: str | Path,
    *,
    steps: int | None = None,
    time_budget: float | None = None,
    device: str | None = None,
    method: str | None = None,
    preset: str | None = None,
    reference: str | Path | None = None,
    exit_after: float | None = None,
    progress: bool = True,
) -> FitResult:
    """Continue a run from its latest checkpoint, optionally with new training limits or on
    another device (both saved in its config).

    ``method``, ``preset`` and ``reference`` may only repeat what the run was made with (a
    resumed run keeps its config): anything else is an InputError. A run that already reached
    its limits is not trained again: if it stopped before its report (killed while writing its
    outputs), the outputs are written; else they are left as they are and the result's reason
    is ``already-finished``.
    """
    run = RunDir.open(run_dir)
    config = run.load_config()
    given = {"method": method, "preset": preset,
             "reference": None if reference is None else str(Path(reference).resolve())}
    for name, value in given.items():
        made = getattr(config, name)
        if value is not None and value != made:
            made_with = "without one" if made is None else f"with {made}"
            raise InputError(f"--{name} {value}: run {run.root} was made {made_with}; "
                             f"a resumed run keeps its config (leave the flag out, or start a new run)")
    if steps is not None or time_budget is not None:
        config.train.steps = steps if steps is not None else config.train.steps
        config.train.time_budget = time_budget if time_budget is not None else config.train.time_budget
        config = resolve_config(get_method(config.method).presets, [to_dict(config)])
    if run.has_checkpoint():
        checkpoint = load_checkpoint(run.checkpoint_path)
        finished = run_progress(checkpoint.step, config.train.steps, checkpoint.elapsed,
                                config.train.time_budget) >= 1
        if finished and run.report_path.is_file():
            return FitResult(run.root, ALREADY_FINISHED, checkpoint.step, checkpoint.elapsed,
                             run.mesh_path if run.mesh_path.exists() else None, {}, 1.0)
    if device is not None:
        config.device = device
    resolve_device(config.device)
    found = _read_reference(config)
    prepared = _prepare(config)
    trainer = _before_training(run, config, prepared, exit_after, progress)
    run.save_config(config)
    return _train_and_finish(run, config, prepared, trainer, found)


def fit_points(points: np.ndarray, run_dir: str | Path, *, method: str = "sald",
               preset: str = "fast", overrides: Mapping[str, Any] | None = None,
               steps: int | None = None, time_budget: float | None = None,
               seed: int = 0, progress: bool = True) -> tuple[nn.Module, Normalization]:
    """Fit a raw-data method (``sal``, ``sald``, ``digs``) to unoriented points given as an
    array ``(N, 3)`` or ``(N, 2)``: planar curves train a field over the plane.

    The network's ``in_dim`` follows the points. Checkpoints and the loss log go to ``run_dir``;
    nothing else is written (no mesh: use :func:`isofield.extract_mesh` or, in 2-D,
    :func:`isofield.viz.slices.plot_field_2d`). Returns the trained field (canonical frame, eval
    mode) and the normalisation that maps the canonical frame to the points' coordinates.
    """
    method_obj = get_method(method)
    if not hasattr(method_obj, "prepare_raw"):
        raise InputError(f"method {method!r} does not fit raw points (use sal, sald or digs)")
    train: dict[str, Any] = {}
    if steps is not None:
        train["steps"] = steps
    if time_budget is not None:
        train["time_budget"] = time_budget
    dims = {"field": {"in_dim": int(np.shape(points)[-1])}} if np.ndim(points) == 2 else {}
    layers = [dims, dict(overrides or {}), {"method": method, "preset": preset, "seed": seed,
                                            "train": train}]
    config = resolve_config(method_obj.presets, layers)
    options = from_dict(method_obj.options_type, config.options, "config.options")
    raw = raw_input_from_arrays(points)
    data = method_obj.prepare_raw(raw, options, seed)
    field, _ = train_prepared(config, data, run_dir, progress=progress)
    return field.eval(), raw.normalization


def load_field(run: RunDir | str | Path, config: FitConfig | None = None) -> nn.Module:
    """The trained field of a run (CPU, eval mode, canonical frame), from its latest checkpoint
    (its weight average when the run keeps one)."""
    run = run if isinstance(run, RunDir) else RunDir.open(run)
    config = config or run.load_config()
    field = build_field(config.field)
    if not run.has_checkpoint():
        raise InputError(f"{run.root}: the run has no checkpoint yet")
    field.load_state_dict(load_checkpoint(run.checkpoint_path).weights_to_use("field"))
    return field.eval()


def _prepare(config: FitConfig) -> PreparedInput:
    """The method's input data, read in the canonical frame (options validated first); its
    notes go to stderr, one line each."""
    method = get_method(config.method)
    options = from_dict(method.options_type, config.options, "config.options")
    data = method.prepare(Path(config.input), options, config.seed)
    for note in data.notes:
        print(f"isofield: note: {note}", file=sys.stderr)
    return data


def train_prepared(config: FitConfig, data: PreparedInput, run_dir: str | Path, *,
                   exit_after: float | None = None,
                   progress: bool = True) -> tuple[nn.Module, TrainResult]:
    """Train ``config``'s method and network on prepared data; checkpoints go to ``run_dir``.

    The data's points may be 2-D (set ``field.in_dim: 2``): this is how planar problems are
    fitted (see ``examples/curve_2d.py``). Returns the field (resumed from the run's latest
    checkpoint when there is one; with ``train.ema_decay``, holding the averaged weights) and the
    trainer's result.
    """
    field, trainer = _trainer(config, data, run_dir, exit_after, progress)
    return field, trainer.run()


def _trainer(config: FitConfig, data: PreparedInput, run_dir: str | Path, exit_after: float | None,
             progress: bool) -> tuple[nn.Module, Trainer]:
    """The field (on the config's device) and the trainer that trains it into ``run_dir``."""
    method = get_method(config.method)
    options = from_dict(method.options_type, config.options, "config.options")
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    field = build_field(config.field).to(device)
    levels = level_schedule(config.train)
    task = method.task(field, data, options, device, config.train.lr, levels)
    trainer = build_trainer(task, run_dir, config.train, config.seed, progress=progress,
                            exit_after=exit_after)
    return field, trainer


def _read_reference(config: FitConfig) -> tuple[Path, Any] | None:
    """The reference read before training (see :func:`.outputs.reference_geometry`), so that a
    missing or broken one is an error before any work."""
    from isofield.fitting.outputs import reference_geometry

    return reference_geometry(config)


def _before_training(run: RunDir, config: FitConfig, data: PreparedInput, exit_after: float | None,
                     progress: bool) -> tuple[nn.Module, Trainer]:
    """The run's normalisation written, and the field and trainer built: the last steps that
    may fail before training."""
    run.save_normalization(data.normalization)
    return _trainer(config, data, run.root, exit_after, progress)


@contextmanager
def _removed_on_failure(root: Path) -> Iterator[None]:
    """Remove what a new run wrote into ``root`` when the block fails: the folders created for it,
    or the files written into it when it was an empty folder (a folder that held anything is
    refused by :meth:`RunDir.create` before it writes, and is left alone)."""
    created = root
    while not created.parent.exists():
        created = created.parent
    fresh = not root.exists()
    was_empty = root.is_dir() and not any(root.iterdir())
    try:
        yield
    except BaseException:
        if fresh:
            shutil.rmtree(created, ignore_errors=True)
        elif was_empty:
            for entry in root.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        raise


def _train_and_finish(run: RunDir, config: FitConfig, data: PreparedInput,
                      trainer: tuple[nn.Module, Trainer], found: tuple[Path, Any] | None) -> FitResult:
    from isofield.fitting.outputs import write_outputs

    field, result = trainer[0], trainer[1].run()
    done = result.reason in (StopReason.FINISHED, StopReason.TIME_BUDGET)
    metrics: dict[str, Any] = {}
    mesh_path = None
    if done:
        metrics = write_outputs(run, config, field.eval(), data, result, found)
        mesh_path = run.mesh_path
    return FitResult(run.root, result.reason.value, result.step, result.elapsed, mesh_path, metrics,
                     result.progress, dict(result.schedule))
