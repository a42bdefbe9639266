"""Train an occupancy network (ONet, ConvONet, their VAE): config -> run directory -> network ->
pictures and report.

    >>> from isofield.occupancy import train_occupancy_network, load_occupancy_model
    >>> result = train_occupancy_network("chairs-onet.yaml", "runs/chairs-onet")  # method: onet
    >>> model = load_occupancy_model(result.run_dir)

Training goes through the shared trainer (checkpoints, resume, SIGINT/SIGTERM, time budget, DDP
under torchrun). Only the main process writes files. When training ends (not when it pauses), the
batch-norm statistics are recomputed over 100 training batches and stored in the latest
checkpoint (:mod:`isofield.nn.batch_norm`), and a VAE's Gaussian over its training shapes'
posterior means is written (:mod:`isofield.occupancy.latents`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

import torch

from isofield.config import load_yaml
from isofield.data.onet import OccupancyDataDir
from isofield.data.raw_input import PoolSpec
from isofield.files import atomic_path
from isofield.nn.batch_norm import recompute_batch_norm_statistics
from isofield.occupancy.config import OccupancyConfig, is_sdf, is_vae, resolve_config
from isofield.occupancy.latents import fit_latent_gaussian, posterior_means
from isofield.occupancy.model import OccupancyModel
from isofield.occupancy.network import build_network
from isofield.occupancy.outputs import write_final_outputs
from isofield.occupancy.rundir import OccupancyRun
from isofield.occupancy.shapes import ShapeTensors, load_shapes
from isofield.occupancy.task import OccupancyTask
from isofield.train.checkpoint import CheckpointStore
from isofield.train.distributed import is_main_process, join_process_group, on_main_process
from isofield.train.loop import StopReason
from isofield.train.settings import TrainingOutcome, build_trainer, steps_per_epoch
from isofield.train.shapes import TrainingShape

BATCH_NORM_BATCHES = 100
"""training batches the final batch-norm statistics are averaged over"""


def train_occupancy_network(config: str | Path | Mapping[str, Any], output: str | Path, *,
                            overrides: Mapping[str, Any] | None = None,
                            exit_after: float | None = None, progress: bool = True) -> TrainingOutcome:
    """Train a new network into ``output`` (new or empty); the data are read and checked before
    anything is written. ``exit_after``: return after that many seconds of training in this
    process (:func:`resume_occupancy_network` continues)."""
    layer = load_yaml(config) if isinstance(config, (str, Path)) else dict(config)
    resolved = resolve_config([layer, dict(overrides or {})])
    device = join_process_group(resolved.device)
    data = OccupancyDataDir(resolved.data)
    refs = data.training_shapes(resolved.split, quiet=not is_main_process())
    shapes = load_shapes(data, refs, resolved.input, resolved.seed, pool_spec(resolved))
    records = [TrainingShape(index, ref, frame, shapes.points.shape[1])
               for index, (ref, frame) in enumerate(zip(refs, shapes.frames))]
    on_main_process(lambda: OccupancyRun.create(output, resolved).save_shapes(data.root, records))
    return _train_and_finish(OccupancyRun.open(output), resolved, data.root, records, shapes, device,
                             exit_after, progress)


def resume_occupancy_network(run_dir: str | Path, *, steps: int | None = None,
                             time_budget: float | None = None,
                             device: str | None = None, exit_after: float | None = None,
                             progress: bool = True) -> TrainingOutcome:
    """Continue a run from its latest checkpoint; ``steps`` and ``time_budget`` replace its
    limits, and ``device`` its device, when given."""
    run = OccupancyRun.open(run_dir)
    config = run.load_config()
    target = join_process_group(device or config.device)
    config = run.config_with_limits(config, steps, time_budget, resolve_config, device)
    data_dir, records = run.load_shapes()
    shapes = load_shapes(OccupancyDataDir(data_dir), [record.ref for record in records], config.input,
                         config.seed, pool_spec(config))
    return _train_and_finish(run, config, data_dir, records, shapes, target, exit_after, progress)


def pool_spec(config: OccupancyConfig) -> PoolSpec | None:
    """sald-vae's unsigned-distance pool per shape; None for the occupancy methods."""
    if not is_sdf(config):
        return None
    raw = config.sign_agnostic
    return PoolSpec(raw.pool, raw.neighbour_k, raw.global_sigma, raw.global_fraction, raw.uniform_fraction,
                    raw.bounds, raw.surfel_k)


def _train_and_finish(run: OccupancyRun, config: OccupancyConfig, data_dir: Path,
                      records: list[TrainingShape], shapes: ShapeTensors, device: torch.device,
                      exit_after: float | None, progress: bool) -> TrainingOutcome:
    torch.manual_seed(config.seed)
    network = build_network(config).to(device)
    task = OccupancyTask(network, shapes, config)
    result = build_trainer(task, run.root, config.train, config.seed, progress=progress, exit_after=exit_after,
                           steps_per_epoch=steps_per_epoch(len(records), config.shapes_per_batch)).run()
    if result.reason in (StopReason.FINISHED, StopReason.TIME_BUDGET) and result.step > 0:
        model = OccupancyModel(network.eval(), config, records, data_dir, result.step)
        on_main_process(lambda: _finish(run, model, task, result))
    return TrainingOutcome.of(run.root, result)


def _calibrate_batch_norm(run: OccupancyRun, task: OccupancyTask) -> None:
    """Recompute the network's batch-norm statistics over :data:`BATCH_NORM_BATCHES` seeded
    training batches (:mod:`isofield.nn.batch_norm`) and store them in the latest checkpoint
    (in the weight average when the run keeps one, whose weights the network holds);
    training resumed from it is unchanged (train mode uses batch statistics)."""
    generator = torch.Generator().manual_seed(task.config.seed)
    if recompute_batch_norm_statistics(task.network, lambda: task.forward_batch(generator), BATCH_NORM_BATCHES):
        store = CheckpointStore(run.root)
        checkpoint = store.load_latest()
        checkpoint.replace_weights_to_use(
            "network", {name: value.detach().cpu() for name, value in task.network.state_dict().items()})
        store.save(checkpoint)


def _finish(run: OccupancyRun, model: OccupancyModel, task: OccupancyTask, result) -> None:
    start = time.perf_counter()
    _calibrate_batch_norm(run, task)
    timings = {"training": result.elapsed, "batch-norm statistics": time.perf_counter() - start}
    if is_vae(model.config):
        start = time.perf_counter()
        model.latent_fit = fit_latent_gaussian(posterior_means(model, task.shapes))
        with atomic_path(run.latent_fit_path) as path:
            torch.save(model.latent_fit.to_state(), path)
        timings["latent fit"] = time.perf_counter() - start
    write_final_outputs(run, model, task.shapes, result, timings)
