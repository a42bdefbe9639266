"""Learn a shape space: config -> run directory -> decoder + one code per shape -> pictures, report.

    >>> from isofield.deepsdf import train_shape_space, load_shape_space
    >>> result = train_shape_space("chairs.yaml", "runs/chairs")     # method: deepsdf
    >>> space = load_shape_space(result.run_dir)

The trainer is the shared one built from the ``train`` section
(:func:`isofield.train.settings.build_trainer`: the decoder and the codes as two parameter groups,
gradient clipping, spike rollback, a weight average). Training runs in chunks of
``reconstruction_every`` steps: each chunk is one
:meth:`~isofield.train.loop.Trainer.run` with its step limit at the chunk's end, which saves a
checkpoint there; between chunks a few training shapes are reconstructed and drawn
(``progress/step_*.png``), and the next chunk resumes from that checkpoint. A resumed run is
bit-identical to an uninterrupted one on the CPU, so chunking changes no number; it costs one
checkpoint save and load per chunk. SIGINT/SIGTERM during a chunk stop training cleanly (the
trainer saves); during the drawing between chunks the checkpoint of that step is already saved.

Multi-process training: run the same command under ``torchrun --nproc_per_node N``. Every process
loads the data and trains its shard of each global batch (:mod:`isofield.train.distributed`);
only the main process writes the run directory, the pictures and the report.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from isofield.config import load_yaml
from isofield.data.datasets import DeepSDFDataDir, ShapeRef
from isofield.nn import build_field
from isofield.deepsdf.autodecoder import AutoDecoderTask, make_codes
from isofield.deepsdf.config import ShapeSpaceConfig, resolve_config
from isofield.deepsdf.history import CodeHistoryRecorder
from isofield.deepsdf.outputs import write_final_outputs, write_progress
from isofield.deepsdf.rundir import ShapeSpaceRun
from isofield.deepsdf.samples import ShapeSamples, load_training_samples
from isofield.deepsdf.space import ShapeSpace
from isofield.train.checkpoint import load_checkpoint
from isofield.train.distributed import is_main_process, join_process_group, on_main_process
from isofield.train.logging import LossLog
from isofield.train.loop import StopReason, TrainResult
from isofield.train.settings import TrainingOutcome, build_trainer, step_limit, steps_per_epoch
from isofield.train.shapes import TrainingShape


@dataclass
class _Prepared:
    shapes: list[TrainingShape]
    samples: ShapeSamples
    data_dir: Path


def train_shape_space(config: str | Path | Mapping[str, Any], output: str | Path, *,
                      overrides: Mapping[str, Any] | None = None,
                      exit_after: float | None = None, progress: bool = True) -> TrainingOutcome:
    """Train a new shape space into ``output`` (which must be new or empty).

    Args:
        config: a YAML file or a mapping (keys of :class:`~.config.ShapeSpaceConfig`).
        output: the run directory.
        overrides: config keys that win over ``config`` (e.g. ``{"train": {"steps": 100}}``).
        exit_after: return (reason "exit-after") after this many seconds of training in this
            process; :func:`resume_shape_space` continues.
        progress: show a progress bar.

    The data are read and checked before anything is written.
    """
    layer = load_yaml(config) if isinstance(config, (str, Path)) else dict(config)
    resolved = resolve_config([layer, dict(overrides or {})])
    device = join_process_group(resolved.device)
    data = DeepSDFDataDir(resolved.data)
    refs = data.training_shapes(resolved.split, quiet=not is_main_process())
    prepared = _prepare(resolved, data, refs)
    on_main_process(lambda: ShapeSpaceRun.create(output, resolved).save_shapes(data.root, prepared.shapes))
    return _train_and_finish(ShapeSpaceRun.open(output), resolved, prepared, device, exit_after,
                             progress)


def resume_shape_space(run_dir: str | Path, *, steps: int | None = None,
                       time_budget: float | None = None,
                       device: str | None = None, exit_after: float | None = None,
                       progress: bool = True) -> TrainingOutcome:
    """Continue a run from its latest checkpoint on the shapes recorded in its ``shapes.json``;
    ``steps`` (in ``train.unit``) and ``time_budget`` replace the run's limits, and
    ``device`` its device, when given."""
    run = ShapeSpaceRun.open(run_dir)
    config = run.load_config()
    target = join_process_group(device or config.device)
    config = run.config_with_limits(config, steps, time_budget, resolve_config, device)
    data_dir, shapes = run.load_shapes()
    prepared = _prepare(config, DeepSDFDataDir(data_dir), [shape.ref for shape in shapes])
    return _train_and_finish(run, config, prepared, target, exit_after, progress)


def _prepare(config: ShapeSpaceConfig, data: DeepSDFDataDir, refs: list[ShapeRef]) -> _Prepared:
    samples, frames = load_training_samples(data, refs, config.max_samples_per_shape, config.seed)
    counts = (samples.offsets[1:] - samples.offsets[:-1]).tolist()
    shapes = [TrainingShape(index, ref, frame, count)
              for index, (ref, frame, count) in enumerate(zip(refs, frames, counts))]
    return _Prepared(shapes, samples, data.root)


def _train_and_finish(run: ShapeSpaceRun, config: ShapeSpaceConfig, prepared: _Prepared,
                      device: torch.device, exit_after: float | None,
                      progress: bool) -> TrainingOutcome:
    torch.manual_seed(config.seed)
    decoder = build_field(config.decoder).to(device)
    codes = make_codes(len(prepared.shapes), config.latent_dim, config.code_init_std,
                       config.code_bound).to(device)
    task = AutoDecoderTask(
        decoder, codes, prepared.samples.to(device), clamp=config.clamp,
        prior_weight=1.0 / config.code_prior_sigma ** 2,
        shapes_per_batch=config.shapes_per_batch, samples_per_shape=config.samples_per_shape,
        lr_decoder=config.train.group_lr("decoder"), lr_codes=config.train.group_lr("codes"))

    def current_space(step: int) -> ShapeSpace:
        return ShapeSpace(decoder, codes.weight.detach().cpu().clone(), config, prepared.shapes,
                          prepared.data_dir, step)

    result = _train_in_chunks(run, config, task, codes, current_space, exit_after, progress)
    rows: list[dict[str, Any]] = []
    if result.reason in (StopReason.FINISHED, StopReason.TIME_BUDGET) and result.step > 0:
        timings = {"training": result.elapsed}
        rows = on_main_process(
            lambda: write_final_outputs(run, current_space(result.step), result, timings)) or []
    return TrainingOutcome.of(run.root, result, rows)


def _train_in_chunks(run: ShapeSpaceRun, config: ShapeSpaceConfig, task: AutoDecoderTask,
                     codes: torch.nn.Embedding, current_space: Callable[[int], ShapeSpace],
                     exit_after: float | None,
                     progress: bool) -> TrainResult:
    """Train until a limit, drawing progress pictures every ``reconstruction_every`` steps."""
    epoch = steps_per_epoch(len(codes.weight), config.shapes_per_batch)
    total = step_limit(config.train, epoch)
    step, elapsed_before = _checkpoint_position(run)
    trained = 0.0
    with LossLog(run.code_history_path) if is_main_process() else contextlib.nullcontext() as history:
        if history is not None:
            history.truncate(before_step=step)
        recorder = CodeHistoryRecorder(task, codes, history, config.train.log_every)
        every = config.reconstruction_every if config.reconstruction_shapes else None
        while True:
            stop = _next_stop(step, total, every)
            trainer = build_trainer(
                recorder, run.root, config.train, config.seed, progress=progress,
                exit_after=None if exit_after is None else max(0.0, exit_after - trained),
                pause_at=stop, steps_per_epoch=epoch)
            result = trainer.run()
            step, trained = result.step, result.elapsed - elapsed_before
            if result.reason != StopReason.PAUSED:
                return result
            on_main_process(lambda: write_progress(run, current_space(step)))


def _next_stop(step: int, total: int | None, every: int | None) -> int | None:
    """The step at which the next chunk ends: the next multiple of ``every`` above ``step``,
    capped at ``total`` (None: no step limit)."""
    if every is None:
        return total
    boundary = (step // every + 1) * every
    return boundary if total is None else min(boundary, total)


def _checkpoint_position(run: ShapeSpaceRun) -> tuple[int, float]:
    """(steps, seconds of training) of the run's latest checkpoint; (0, 0) before the first."""
    if not run.has_checkpoint():
        return 0, 0.0
    checkpoint = load_checkpoint(run.checkpoint_path)
    return checkpoint.step, checkpoint.elapsed
