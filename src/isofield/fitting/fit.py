"""Fit one shape: config -> run directory -> trained field -> mesh, pictures, report.

    >>> import isofield
    >>> result = isofield.fit("bunny.ply", method="igr", time_budget=120, output="runs/bunny")
    >>> result.mesh_path, result.metrics["chamfer_l1"]
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field as _field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from isofield.config import from_dict, load_yaml
from isofield.errors import InputError
from isofield.fitting.config import FitConfig, level_schedule, resolve_config
from isofield.fitting.rundir import RunDir
from isofield.methods import get_method
from isofield.geometry.normalization import Normalization
from isofield.methods.base import PreparedInput
from isofield.methods.raw_input import raw_input_from_arrays
from isofield.nn import build_field
from isofield.train.checkpoint import load_checkpoint
from isofield.train.loop import StopReason, TrainResult
from isofield.train.settings import build_trainer


@dataclass(frozen=True)
class FitResult:
    """Outcome of :func:`fit` / :func:`resume`.

    Attributes:
        run_dir: the run directory.
        reason: why training stopped ("finished", "time-budget", "exit-after", "interrupted").
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
    method: str = "igr",
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
    arguments. ``output`` defaults to ``runs/<input stem>-<method>``.
    """
    path = Path(input)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    file_layer = load_yaml(config_file) if config_file else {}
    kwargs_layer: dict[str, Any] = {"input": str(path.resolve()), "method": file_layer.get("method", method)}
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
    prepared = _prepare(config)  # read and check the input before anything is written
    run = RunDir.create(output or Path("runs") / f"{path.stem}-{config.method}", config)
    return _train_and_finish(run, config, prepared, exit_after, progress)


def resume(
    run_dir: str | Path,
    *,
    steps: int | None = None,
    time_budget: float | None = None,
    exit_after: float | None = None,
    progress: bool = True,
) -> FitResult:
    """Continue a run from its latest checkpoint (optionally with new training limits)."""
    run = RunDir.open(run_dir)
    config = run.load_config()
    if steps is not None or time_budget is not None:
        config.train.steps = steps if steps is not None else config.train.steps
        config.train.time_budget = time_budget if time_budget is not None else config.train.time_budget
        run.save_config(config)
    return _train_and_finish(run, config, _prepare(config), exit_after, progress)


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


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; otherwise the named device (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} asked for, but CUDA is not available here")
    return device


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
    method = get_method(config.method)
    options = from_dict(method.options_type, config.options, "config.options")
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    field = build_field(config.field).to(device)
    levels = level_schedule(config.train)
    task = method.task(field, data, options, device, config.train.lr, levels)
    trainer = build_trainer(task, run_dir, config.train, config.seed, progress=progress,
                            exit_after=exit_after, ema_decay=config.train.ema_decay)
    return field, trainer.run()


def _train_and_finish(run: RunDir, config: FitConfig, data: PreparedInput,
                      exit_after: float | None, progress: bool) -> FitResult:
    from isofield.fitting.outputs import write_outputs

    run.save_normalization(data.normalization)
    field, result = train_prepared(config, data, run.root, exit_after=exit_after, progress=progress)
    done = result.reason in (StopReason.FINISHED, StopReason.TIME_BUDGET)
    metrics: dict[str, Any] = {}
    mesh_path = None
    if done:
        metrics = write_outputs(run, config, field.eval(), data, result)
        mesh_path = run.mesh_path
    return FitResult(run.root, result.reason.value, result.step, result.elapsed, mesh_path, metrics,
                     result.progress, dict(result.schedule))
