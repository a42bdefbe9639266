"""Train ShapeGF: config -> run directory -> encoder + score network -> codes -> latent model ->
pictures and report.

    >>> from isofield.shapegf import train_gradient_field, load_gradient_field
    >>> result = train_gradient_field("chairs-gf.yaml", "runs/chairs-gf")    # method: shapegf
    >>> model = load_gradient_field(result.run_dir)

Stage 1 trains the auto-encoder by denoising score matching (:mod:`.task`) with the shared
trainer (checkpoints, resume, SIGINT/SIGTERM, time budget, DDP under torchrun). Stage 2, once
stage 1 finishes, encodes every training shape, stores the codes (``codes.pt``) and fits the
latent model (``latent_model.pt``); it takes seconds and is redone by a resume that trains on.
Only the main process writes files.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

import torch

from isofield.config import load_yaml
from isofield.data.datasets import DeepSDFDataDir
from isofield.files import atomic_path
from isofield.nn.latent import fit_latent_model
from isofield.shapegf.clouds import load_clouds
from isofield.shapegf.config import ShapeGFConfig, resolve_config, sigma_levels
from isofield.shapegf.model import GradientFieldModel, build_networks
from isofield.shapegf.outputs import write_final_outputs
from isofield.shapegf.rundir import ShapeGFRun
from isofield.shapegf.task import GradientFieldTask
from isofield.train.distributed import is_main_process, join_process_group, on_main_process
from isofield.train.loop import StopReason
from isofield.train.settings import TrainingOutcome, build_trainer, steps_per_epoch
from isofield.train.shapes import TrainingShape


def train_gradient_field(config: str | Path | Mapping[str, Any], output: str | Path, *,
                         overrides: Mapping[str, Any] | None = None,
                         exit_after: float | None = None, progress: bool = True) -> TrainingOutcome:
    """Train a new ShapeGF model into ``output`` (new or empty); the data are read and checked
    before anything is written. ``exit_after``: return after that many seconds of training in
    this process (:func:`resume_gradient_field` continues)."""
    layer = load_yaml(config) if isinstance(config, (str, Path)) else dict(config)
    resolved = resolve_config([layer, dict(overrides or {})])
    device = join_process_group(resolved.device)
    data = DeepSDFDataDir(resolved.data)
    refs = data.training_shapes(resolved.split, quiet=not is_main_process())
    clouds, frames = load_clouds(data, refs, resolved.points_per_shape, resolved.seed)
    shapes = [TrainingShape(index, ref, frame, resolved.points_per_shape)
              for index, (ref, frame) in enumerate(zip(refs, frames))]
    on_main_process(lambda: ShapeGFRun.create(output, resolved).save_shapes(data.root, shapes))
    return _train_and_finish(ShapeGFRun.open(output), resolved, data.root, shapes, clouds, device,
                             exit_after, progress)


def resume_gradient_field(run_dir: str | Path, *, steps: int | None = None,
                          time_budget: float | None = None,
                          device: str | None = None, exit_after: float | None = None,
                          progress: bool = True) -> TrainingOutcome:
    """Continue a run from its latest checkpoint; ``steps`` and ``time_budget`` replace its
    limits, and ``device`` its device, when given."""
    run = ShapeGFRun.open(run_dir)
    config = run.load_config()
    target = join_process_group(device or config.device)
    config = run.config_with_limits(config, steps, time_budget, resolve_config, device)
    data_dir, shapes = run.load_shapes()
    clouds, _ = load_clouds(DeepSDFDataDir(data_dir), [s.ref for s in shapes],
                            config.points_per_shape, config.seed)
    return _train_and_finish(run, config, data_dir, shapes, clouds, target, exit_after, progress)


def _train_and_finish(run: ShapeGFRun, config: ShapeGFConfig, data_dir: Path,
                      shapes: list[TrainingShape], clouds: torch.Tensor, device: torch.device,
                      exit_after: float | None, progress: bool) -> TrainingOutcome:
    torch.manual_seed(config.seed)
    encoder, score = (network.to(device) for network in build_networks(config))
    task = GradientFieldTask(encoder, score, clouds.to(device), sigma_levels(config.noise),
                             shapes_per_batch=config.shapes_per_batch,
                             input_points=config.input_points, target_points=config.target_points,
                             lr=config.train.lr)
    result = build_trainer(task, run.root, config.train, config.seed, progress=progress, exit_after=exit_after,
                           steps_per_epoch=steps_per_epoch(len(shapes), config.shapes_per_batch)).run()
    if result.reason in (StopReason.FINISHED, StopReason.TIME_BUDGET) and result.step > 0:
        model = GradientFieldModel(encoder.eval(), score.eval(), config, shapes, data_dir, result.step)
        on_main_process(lambda: _finish(run, model, clouds, result))
    return TrainingOutcome.of(run.root, result)


def _finish(run: ShapeGFRun, model: GradientFieldModel, clouds: torch.Tensor, result) -> None:
    """Stage 2 (codes, latent model) and the pictures and report."""
    timings = {"training": result.elapsed}
    start = time.perf_counter()
    codes = torch.cat([model.encode(batch[:, :model.config.input_points])
                       for batch in clouds.split(64)]).cpu()
    with atomic_path(run.codes_path) as path:
        torch.save(codes, path)
    latent = model.config.latent
    model.latent_model = fit_latent_model(latent.kind, codes.numpy(), latent.options, model.config.seed)
    with atomic_path(run.latent_model_path) as path:
        torch.save(model.latent_model.to_state(), path)
    timings["latent model"] = time.perf_counter() - start
    write_final_outputs(run, model, clouds, result, timings)
