"""The generic training loop shared by every method.

A method says *what* to train through a task object (:class:`TrainTask`: its modules, its
parameter groups, its loss); the :class:`Trainer` owns *how*: the optimiser, learning-rate
schedules, seeded randomness, the progress bar, the CSV loss log (:mod:`.logging`), checkpoints
and resume (:mod:`.checkpoint`), SIGINT/SIGTERM, time limits and the divergence check.

Step numbering: ``task.loss(step, ...)``, the schedules and the log's ``step`` column use the
0-based index of the step being taken; a checkpoint's ``step`` counts the steps completed, i.e.
the index of the next step to take.

Progress: before each step the trainer computes once where the run stands in its schedule, a
:class:`~isofield.train.schedules.StepInfo` (the step index and the run's progress, the fraction
of its limit reached: ``step / steps``, ``elapsed / time_budget``, or the larger of both), and
hands it to the learning-rate schedules and to a :class:`ScheduledTask` (coarse-to-fine levels,
loss-weight anneals). Schedules written in fractions of the run thus go all the way through
under a time budget however slow the steps are. Progress never goes back: a run resumed with a
longer limit holds the progress it had reached until the new limit catches up (checkpoints
record it). Under a step limit it is exact, so resuming changes nothing.

Determinism: the trainer owns two random streams, the sampling ``torch.Generator`` handed to
``task.loss`` (seeded with ``seed``) and torch's default CPU generator (seeded with ``seed + 1``
inside :meth:`Trainer.run` and given back to the caller unchanged afterwards), which dropout and
other global-RNG operations draw from. Both states are checkpointed, so on the CPU the same task,
options and seed give the same numbers, and a run stopped and resumed any number of times ends
bit-identical to an uninterrupted one. For that, a task must draw every other random number from
the generator and keep any other state its loss depends on in :meth:`StatefulTask.extra_state`.

Processes: under a ``torch.distributed`` process group (torchrun, see :mod:`.distributed`) the
same trainer runs on every rank, in lockstep. It needs a :class:`DistributedTask`: the trainer
wraps the task's modules in ``DistributedDataParallel`` (which averages the gradients over the
ranks) and tells the task its :class:`~isofield.train.distributed.Shard` of each step's global
batch. The sampling generator is seeded identically on every rank, so every rank draws the same
global batch as one process would and computes its shard of it; torch's default CPU generator
(dropout) is reseeded at every step from (seed, rank, step), so the ranks' streams differ and a
resumed run needs no per-rank state. Each logged loss term is the ranks' mean; the decision to
stop (``Trainer._stop_reason``) is pooled over the ranks, so they all stop after the same step;
only rank 0 (:func:`is_main_process`) writes files and shows progress, and every rank resumes
from the same ``latest.pt``. N processes with B/N rows each thus train as one with B rows, up to
float rounding.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import torch
from torch import nn
from tqdm import tqdm

from isofield.errors import InputError
from isofield.train import distributed
from isofield.train.averaging import averaged_copies, load_averaged_weights
from isofield.train.checkpoint import Checkpoint, CheckpointStore
from isofield.train.distributed import DataParallelModules, Shard, is_main_process
from isofield.train.logging import LOG_NAME, LossLog
from isofield.train.schedules import Constant, Schedule, StepInfo, run_progress
from isofield.train.spikes import SpikeGuard

OptimizerFactory = Callable[[list[dict[str, Any]]], torch.optim.Optimizer]
"""Builds an optimiser from torch-style parameter-group dicts, e.g. ``torch.optim.Adam``."""

_MAX_SEED = 2**63 - 2


class StopReason(str, Enum):
    """Why :meth:`Trainer.run` returned (compares equal to its string value)."""

    FINISHED = "finished"
    TIME_BUDGET = "time-budget"
    EXIT_AFTER = "exit-after"
    INTERRUPTED = "interrupted"
    PAUSED = "paused"
    """reached ``pause_at`` before the run's end (a caller that trains one run in chunks)"""


@dataclass(frozen=True)
class ParamGroup:
    """Parameters trained with one base learning rate.

    Attributes:
        name: names the group's schedule (when the trainer has one per group) and, when there
            are several groups, its ``lr_<name>`` log column, e.g. ``"decoder"``, ``"latents"``.
        params: the tensors to optimise.
        lr: base learning rate, multiplied by the schedule's factor at each step.
        options: further optimiser options for this group (``weight_decay``, ``betas``, ...).
    """

    name: str
    params: Sequence[torch.Tensor]
    lr: float
    options: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class TrainTask(Protocol):
    """What a method hands the trainer."""

    def modules(self) -> Mapping[str, nn.Module]:
        """Every module whose state is checkpointed, by stable names, e.g. ``{"field": mlp}``
        or ``{"decoder": decoder, "latents": embedding}``; the same objects at every call."""
        ...

    def param_groups(self) -> Sequence[ParamGroup]:
        """The parameters to optimise, one group per base learning rate."""
        ...

    def loss(self, step: int, generator: torch.Generator) -> Mapping[str, torch.Tensor]:
        """Scalar (one-element) loss tensors of step ``step`` (0-based): ``"total"`` is
        minimised, every term (``"total"`` included) is logged. Random draws use ``generator``."""
        ...


@runtime_checkable
class ScheduledTask(TrainTask, Protocol):
    """A task with schedules of its own (coarse-to-fine grid levels, annealed loss weights)."""

    def set_progress(self, info: StepInfo) -> Mapping[str, float]:
        """Called before each ``loss`` with where the run stands; set what depends on it, from
        ``info`` alone (so a resumed run continues alike), and return it by name for the log
        (its ``schedule_<name>`` columns) and the result, e.g. ``{"grid_levels": 5.0}``."""
        ...


@runtime_checkable
class StatefulTask(TrainTask, Protocol):
    """A task with state beyond its modules' (a normalisation record, a data order, ...)."""

    def extra_state(self) -> dict[str, Any]:
        """Saved with every checkpoint. Plain data only (it is loaded with
        ``weights_only=True``): dicts, lists, tuples, str, int, float, bool, None and tensors,
        e.g. ``{"normalization": normalization.to_dict()}``."""
        ...

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`extra_state` returned, when a run resumes from a checkpoint."""
        ...


@runtime_checkable
class DistributedTask(TrainTask, Protocol):
    """A task that can also train on several processes (DDP under torchrun).

    Under a process group, ``loss(step, generator)`` computes this rank's part of the step:
    it draws the whole global batch from ``generator`` exactly as one process would (the
    generator is seeded identically on every rank and must be used alike on all of them), takes
    its shard's rows (:meth:`Shard.take`) and returns each term as its part of the global value,
    so that the mean of the parts over the ranks is the single-process value: a mean over the
    batch via :meth:`Shard.mean`, a term that does not depend on the batch (a weight penalty)
    whole. DDP averages the gradients, the trainer logs the mean of the parts.
    """

    def distribute(self, shard: Shard, modules: Mapping[str, nn.Module]) -> None:
        """Called once by the trainer's constructor, in every run (one process too).

        Args:
            shard: this process's part of each step's global batch (``Shard()`` in one process).
            modules: the names of :meth:`modules`, mapped to what every forward pass must call:
                under a process group the ``DistributedDataParallel`` wrapper of each module with
                trainable parameters (calling the bare module skips the gradient averaging; the
                trainer raises ValueError when it sees gradients without a wrapper call), else
                the module itself. Each wrapper may be called several times per step; every
                parameter of a wrapped module must get a gradient at every step (DDP runs with
                ``find_unused_parameters=False``).
        """
        ...


class TrainingDivergedError(InputError):
    """A loss term or a parameter became NaN or Inf; the last good checkpoint is kept."""


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :meth:`Trainer.run`.

    Attributes:
        step: steps completed in total, across resumes.
        steps_run: steps taken by this call.
        elapsed: seconds of training in total, across resumes.
        reason: why training stopped.
        losses: loss terms of the last completed step (empty if none was ever taken).
        checkpoint: the run's ``latest.pt``, holding the state after ``step`` steps.
        progress: the fraction of the run's limit reached, in [0, 1]; below 1 the run stopped
            before the end of its schedule (``exit-after``, ``interrupted``, ``paused``).
        schedule: the task's schedule values at its last step (:class:`ScheduledTask`, e.g.
            ``grid_levels``; empty for other tasks or before the first step).
    """

    step: int
    steps_run: int
    elapsed: float
    reason: StopReason
    losses: dict[str, float]
    checkpoint: Path
    progress: float = 0.0
    schedule: dict[str, float] = field(default_factory=dict)

    @property
    def steps_per_second(self) -> float:
        """Steps per second of training over the whole run (0 before the first step)."""
        return steps_per_second(self.step, self.elapsed)


def steps_per_second(steps: int, elapsed: float) -> float:
    """``steps / elapsed`` (0 without training time)."""
    return steps / elapsed if elapsed > 0 else 0.0


def describe_stop(reason: str, step: int, elapsed: float, progress: float,
                  schedule: Mapping[str, float] | None = None) -> str:
    """One line on where a run stopped, e.g. ``time-budget after 500 steps (102 s of training,
    4.9 steps/s; schedule at 100%, grid levels 8)``; a run stopped before the end of its schedule
    says so (``...; stopped at 34% of its schedule, grid levels 4)``)."""
    position = "".join(f", {name.replace('_', ' ')} {value:g}" for name, value in (schedule or {}).items())
    where = (f"schedule at {100 * progress:.0f}%" if progress >= 1
             else f"stopped at {100 * progress:.0f}% of its schedule")
    return (f"{reason} after {step} steps ({elapsed:.0f} s of training, "
            f"{steps_per_second(step, elapsed):.3g} steps/s; {where}{position})")


class Trainer:
    """Trains a task's parameters; resumable, seeded, interruptible.

    Under a ``torch.distributed`` process group, build it on every rank with the same arguments
    (construction wraps the modules in DDP, a collective step) and call :meth:`run` on every rank.

    Args:
        task: the method's :class:`TrainTask` (or :class:`StatefulTask`, :class:`ScheduledTask`);
            a :class:`DistributedTask` under a process group.
        run_dir: the run's directory: ``checkpoints/`` and ``losses.csv`` go there.
        steps: stop after this many steps in total (across resumes).
        time_budget: stop after this many seconds of training in total (across resumes).
            At least one of ``steps`` and ``time_budget`` is required; together they define the
            run's progress.
        pause_at: return (reason ``paused``) once this many steps are done in total, before the
            run's limits, which progress is still measured against (training in chunks).
        schedule: one learning-rate schedule for every group, or one per group name
            (:mod:`.schedules`), evaluated at each step's :class:`StepInfo`; default constant.
        optimizer: optimiser factory, called with torch parameter-group dicts.
        checkpoint_every: save ``latest.pt`` and a numbered snapshot every this many steps.
        checkpoint_every_seconds: also save ``latest.pt`` when this many seconds passed since
            the last save.
        keep_numbered: numbered snapshots kept (None: all, 0: none).
        log_every: write a log row for the steps whose index is a multiple of this.
        seed: seeds the sampling generator (``seed``) and torch's CPU generator (``seed + 1``).
        exit_after: return (reason ``exit-after``) once this process has trained this many
            seconds, for preemptible jobs; the next run resumes.
        max_grad_norm: clip the gradient of all parameters together to this L2 norm before
            each step (None: no clipping); the norm before clipping is logged as ``grad_norm``.
        spike_factor: roll back to the state of 100-150 steps earlier instead of taking a step
            whose total loss exceeds this many times the median of the last 100 steps
            (:class:`~isofield.train.spikes.SpikeGuard`; None: never); the number of rollbacks
            so far is logged as ``rollbacks``.
        spike_lr_factor: each rollback multiplies the learning rates by this, in (0, 1].
        ema_decay: keep an exponential moving average of the weights with this decay, in (0, 1)
            (:mod:`~isofield.train.averaging`; None: none). It is checkpointed (and rolled back
            with the weights); when :meth:`run` returns, the modules hold the averaged weights.
        progress: show a tqdm bar on stderr (only when stderr is a terminal).
    """

    def __init__(
        self,
        task: TrainTask,
        run_dir: str | Path,
        *,
        steps: int | None = None,
        time_budget: float | None = None,
        pause_at: int | None = None,
        schedule: Schedule | Mapping[str, Schedule] | None = None,
        optimizer: OptimizerFactory = torch.optim.Adam,
        checkpoint_every: int | None = 1000,
        checkpoint_every_seconds: float | None = 600.0,
        keep_numbered: int | None = 5,
        log_every: int = 1,
        seed: int = 0,
        exit_after: float | None = None,
        max_grad_norm: float | None = None,
        spike_factor: float | None = None,
        spike_lr_factor: float = 1.0,
        ema_decay: float | None = None,
        progress: bool = True,
    ) -> None:
        if steps is None and time_budget is None:
            raise InputError("training needs a limit: give steps, time_budget or both")
        self.steps = _positive_int("steps", steps, optional=True)
        self.time_budget = _optional_positive_number("time_budget", time_budget)
        self.pause_at = _positive_int("pause_at", pause_at, optional=True)
        self.checkpoint_every = _positive_int("checkpoint_every", checkpoint_every, optional=True)
        self.checkpoint_every_seconds = _optional_positive_number(
            "checkpoint_every_seconds", checkpoint_every_seconds
        )
        self.log_every = _positive_int("log_every", log_every, optional=False)
        self.exit_after = _optional_positive_number("exit_after", exit_after, allow_zero=True)
        self.max_grad_norm = _optional_positive_number("max_grad_norm", max_grad_norm)
        self._spike_guard = (None if spike_factor is None
                             else SpikeGuard(spike_factor, lr_factor=spike_lr_factor))
        if not (isinstance(seed, int) and 0 <= seed <= _MAX_SEED):
            raise InputError(f"seed must be an integer in [0, {_MAX_SEED}], got {seed!r}")
        self.seed = seed
        self.progress = progress
        self.log_seconds = log_seconds()
        self.task = task
        self.run_dir = Path(run_dir)
        self._store = CheckpointStore(self.run_dir, keep_numbered)
        self._modules = dict(task.modules())
        self._averages = {} if ema_decay is None else averaged_copies(self._modules, ema_decay)
        groups = list(task.param_groups())
        self._group_names = _unique_group_names(groups)
        self._base_lrs = [float(group.lr) for group in groups]
        self._schedules = _schedules_per_group(schedule, self._group_names)
        self._optimizer = optimizer(
            [{"params": list(group.params), "lr": group.lr, **group.options} for group in groups]
        )
        self._generator = torch.Generator()
        self._parallel = self._distribute(groups)

    @property
    def checkpoint_path(self) -> Path:
        """The run's ``latest.pt``."""
        return self._store.latest

    @property
    def log_path(self) -> Path:
        """The run's CSV loss log."""
        return self.run_dir / LOG_NAME

    def run(self) -> TrainResult:
        """Train until ``steps``, ``time_budget``, ``exit_after`` or SIGINT/SIGTERM stops it.

        Resumes from ``checkpoints/latest.pt`` when the run has one (the log is cut back to
        that step). Always ends with ``latest.pt`` holding the final state, and with the
        modules holding the averaged weights when the trainer keeps an average. SIGINT/SIGTERM
        finish the current step, save and return (reason ``interrupted``); a second signal
        raises KeyboardInterrupt at once. Raises TrainingDivergedError at the first NaN/Inf
        loss term, without saving.
        """
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch.random.fork_rng(devices=[]))
            signals = stack.enter_context(_StopSignals())
            log = stack.enter_context(LossLog(self.log_path))
            state = self._start(log)
            bar = stack.enter_context(
                _ProgressBar(
                    self.progress and is_main_process(), self.steps, self.time_budget, state.step,
                    self.log_seconds, state.clock.elapsed()
                )
            )
            first_step = state.step
            while (reason := self._stop_reason(state, signals)) is None:
                self._advance(state, log, bar)
            state.progress = self._progress(state)
            if state.saved_step != state.step:
                self._save(state, numbered=False)
            if self._parallel is not None:
                distributed.barrier()  # every rank returns once latest.pt is written
            load_averaged_weights(self._modules, self._averages)
        return TrainResult(
            step=state.step,
            steps_run=state.step - first_step,
            elapsed=state.saved_elapsed,
            reason=reason,
            losses=dict(state.losses),
            checkpoint=self._store.latest,
            progress=state.progress,
            schedule=dict(state.schedule),
        )

    def _distribute(self, groups: Sequence[ParamGroup]) -> DataParallelModules | None:
        """Hand a DistributedTask its shard and the modules to call; under a process group,
        wrap the modules in DDP first (returned, else None)."""
        active = distributed.is_active()
        if not isinstance(self.task, DistributedTask):
            if active:
                raise InputError(
                    f"{type(self.task).__name__} cannot train on several processes (it is not "
                    "a DistributedTask); run it as a single process, without torchrun"
                )
            return None
        if not active:
            self.task.distribute(Shard(), dict(self._modules))
            return None
        optimized = [param for group in groups for param in group.params]
        parallel = DataParallelModules(self._modules, optimized)
        self.task.distribute(Shard(*distributed.world()), parallel.for_task)
        return parallel

    def _start(self, log: LossLog) -> "_LoopState":
        """Resume from the latest checkpoint, or seed a fresh run; cut the log back to match."""
        for module in self._modules.values():
            module.train()
        checkpoint = self._store.load_latest()
        if checkpoint is None:
            self._generator.manual_seed(self.seed)
            torch.default_generator.manual_seed(self.seed + 1)
            state = _LoopState(step=0, clock=_Clock(0.0), saved_step=None)
        else:
            self._restore(checkpoint)
            state = _LoopState(
                step=checkpoint.step,
                clock=_Clock(checkpoint.elapsed),
                saved_step=checkpoint.step,
                saved_elapsed=checkpoint.elapsed,
                losses=dict(checkpoint.losses),
                progress=checkpoint.progress,
            )
            if self._spike_guard is not None:
                self._spike_guard.rollbacks = int(checkpoint.losses.get("rollbacks", 0))
        if is_main_process():
            self._store.remove_stale_temporaries()
            log.truncate(before_step=state.step)
        return state

    def _restore(self, checkpoint: Checkpoint) -> None:
        source = self._store.latest
        if set(checkpoint.modules) != set(self._modules):
            raise InputError(
                f"{source}: holds modules {sorted(checkpoint.modules)}, "
                f"the task has {sorted(self._modules)}"
            )
        for name, module in self._modules.items():
            try:
                module.load_state_dict(checkpoint.modules[name])
            except RuntimeError as exc:
                raise InputError(
                    f"{source}: module {name!r} does not fit the task's network "
                    f"({_first_line(exc)})"
                ) from None
        try:
            self._optimizer.load_state_dict(checkpoint.optimizer)
        except (ValueError, KeyError) as exc:
            raise InputError(
                f"{source}: optimizer state does not fit the task ({_first_line(exc)})"
            ) from None
        _check_optimizer_state_shapes(self._optimizer, source)
        for name, average in self._averages.items():
            if name in checkpoint.averages:   # else it starts over from the trained weights
                average.load_state_dict(checkpoint.averages[name])
        self._generator.set_state(checkpoint.generator_state)
        torch.set_rng_state(checkpoint.global_rng_state)
        if isinstance(self.task, StatefulTask):
            self.task.load_extra_state(checkpoint.extra)

    def _stop_reason(self, state: "_LoopState", signals: "_StopSignals") -> StopReason | None:
        """The one place that decides to stop. Under a process group a condition met on any rank
        counts on every rank, so all ranks stop after the same step for the same reason; time
        limits are read on rank 0's clock, whose elapsed time the checkpoints record."""
        timed = is_main_process()
        met = {
            StopReason.FINISHED: self.steps is not None and state.step >= self.steps,
            StopReason.PAUSED: self.pause_at is not None and state.step >= self.pause_at,
            StopReason.INTERRUPTED: signals.received is not None,
            StopReason.TIME_BUDGET: (
                timed and self.time_budget is not None
                and state.clock.elapsed() >= self.time_budget
            ),
            StopReason.EXIT_AFTER: (
                timed and self.exit_after is not None
                and state.clock.in_process() >= self.exit_after
            ),
        }
        if self._parallel is not None:
            met = dict(zip(met, distributed.any_over_ranks(list(met.values()))))
        return next((reason for reason, is_met in met.items() if is_met), None)

    def _progress(self, state: "_LoopState") -> float:
        """The run's progress after ``state.step`` steps (never below what it was), on rank 0's
        clock under a process group."""
        elapsed = state.clock.elapsed()
        if self._parallel is not None and self.time_budget is not None:
            elapsed = distributed.main_process_value(elapsed)
        return max(state.progress, run_progress(state.step, self.steps, elapsed, self.time_budget))

    def _advance(self, state: "_LoopState", log: LossLog, bar: "_ProgressBar") -> None:
        """Take step ``state.step``, log it, and save if a checkpoint is due."""
        step = state.step
        state.progress = self._progress(state)
        info = StepInfo(step, state.progress)
        losses, lrs = self._train_step(info, state)
        state.clock.tick()
        state.step, state.losses = step + 1, losses
        if step % self.log_every == 0 and is_main_process():
            log.append({"step": step, **losses, **_lr_columns(lrs), "progress": info.progress,
                        **{f"schedule_{name}": value for name, value in state.schedule.items()}})
        bar.advance(state.step, losses, state.clock)
        numbered = self.checkpoint_every is not None and state.step % self.checkpoint_every == 0
        timed = (
            self.checkpoint_every_seconds is not None
            and state.clock.in_process() - state.saved_at >= self.checkpoint_every_seconds
        )
        if numbered or timed:
            self._save(state, numbered=numbered)

    def _train_step(
        self, info: StepInfo, state: "_LoopState"
    ) -> tuple[dict[str, float], dict[str, float]]:
        """One optimiser step: (loss terms as floats, learning rate per group). With a spike
        guard, a spike rolls the state back instead (still a step of the count)."""
        step = info.step
        if self._spike_guard is not None:
            self._spike_guard.remember(step, self._guarded_modules(), self._optimizer)
        lrs = self._set_learning_rates(info)
        if isinstance(self.task, ScheduledTask):
            state.schedule = {name: float(value) for name, value in self.task.set_progress(info).items()}
        self._optimizer.zero_grad(set_to_none=True)
        if self._parallel is not None:
            self._parallel.begin_step()
            rank = distributed.world()[0]
            torch.default_generator.manual_seed(distributed.rank_step_seed(self.seed, rank, step))
        terms = self.task.loss(step, self._generator)
        losses = _loss_values(terms, step)
        if self._parallel is not None:
            losses = distributed.mean_over_ranks(losses)
        named_first = [name for name in losses if name != "total"] + ["total"]
        culprits = [name for name in named_first if not math.isfinite(losses[name])]
        if culprits:
            raise TrainingDivergedError(
                f"training diverged at step {step}: loss term {culprits[0]!r} is "
                f"{losses[culprits[0]]}; {self._kept_checkpoint_note(state)}"
            )
        if self._spike_guard is not None and self._spike_guard.is_spike(losses["total"]):
            self._spike_guard.roll_back(self._guarded_modules(), self._optimizer)
            if self.max_grad_norm is not None:
                losses["grad_norm"] = math.nan      # no gradient was taken
        else:
            terms["total"].backward()
            if self._parallel is not None:
                self._parallel.check_synchronised(step)
            if self.max_grad_norm is not None:
                losses["grad_norm"] = self._clip_gradients()
            self._optimizer.step()
            for name, average in self._averages.items():
                average.update_parameters(self._modules[name])
        if self._spike_guard is not None:
            losses["rollbacks"] = float(self._spike_guard.rollbacks)
        return losses, lrs

    def _guarded_modules(self) -> dict[str, nn.Module]:
        """The modules a spike rollback restores: the trained ones and their averages."""
        return {**self._modules, **{f"average of {name}": average
                                    for name, average in self._averages.items()}}

    def _clip_gradients(self) -> float:
        """Scale the gradients to at most ``max_grad_norm`` in total; their norm before."""
        params = [param for group in self._optimizer.param_groups for param in group["params"]]
        return float(torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm))

    def _set_learning_rates(self, info: StepInfo) -> dict[str, float]:
        lrs = {}
        scale = 1.0 if self._spike_guard is None else self._spike_guard.lr_scale
        for group, name, base, schedule in zip(
            self._optimizer.param_groups, self._group_names, self._base_lrs, self._schedules
        ):
            group["lr"] = lrs[name] = base * schedule(info) * scale
        return lrs

    def _save(self, state: "_LoopState", numbered: bool) -> None:
        """Checkpoint the state after ``state.step`` steps (refusing non-finite parameters)."""
        for module_name, module in self._modules.items():
            for param_name, param in module.named_parameters():
                if not bool(torch.isfinite(param).all()):
                    raise TrainingDivergedError(
                        f"training diverged before step {state.step}: parameter "
                        f"{module_name}.{param_name} is not finite; "
                        f"{self._kept_checkpoint_note(state)}"
                    )
        elapsed = state.clock.elapsed()
        if is_main_process():
            self._store.save(self._checkpoint(state, elapsed), numbered)
        state.saved_step, state.saved_elapsed = state.step, elapsed
        state.saved_at = state.clock.in_process()

    def _checkpoint(self, state: "_LoopState", elapsed: float) -> Checkpoint:
        extra = self.task.extra_state() if isinstance(self.task, StatefulTask) else {}
        return Checkpoint(
            step=state.step,
            elapsed=elapsed,
            progress=max(state.progress,
                         run_progress(state.step, self.steps, elapsed, self.time_budget)),
            modules={name: module.state_dict() for name, module in self._modules.items()},
            optimizer=self._optimizer.state_dict(),
            generator_state=self._generator.get_state(),
            global_rng_state=torch.get_rng_state(),
            losses=state.losses,
            extra=extra,
            averages={name: average.state_dict() for name, average in self._averages.items()},
        )

    def _kept_checkpoint_note(self, state: "_LoopState") -> str:
        if state.saved_step is None:
            return "no checkpoint was written"
        return f"the last checkpoint ({self._store.latest}, step {state.saved_step}) is kept"


class _Clock:
    """Seconds of training: in this process, and in total including earlier processes, as read
    at the last :meth:`tick` (the end of the last step), so that a checkpoint saved after a step
    and the decision to stop after it see the same time."""

    def __init__(self, elapsed_before: float) -> None:
        self._before = elapsed_before
        self._start = time.monotonic()
        self._now = 0.0

    def tick(self) -> None:
        self._now = time.monotonic() - self._start

    def in_process(self) -> float:
        return self._now

    def elapsed(self) -> float:
        return self._before + self._now


@dataclass
class _LoopState:
    """Where a run stands: steps completed, progress and the task's schedule values at the last
    step, last losses, and the last save."""

    step: int
    clock: _Clock
    saved_step: int | None
    saved_elapsed: float = 0.0
    saved_at: float = 0.0
    losses: dict[str, float] = field(default_factory=dict)
    progress: float = 0.0
    schedule: dict[str, float] = field(default_factory=dict)


class _StopSignals:
    """Turns SIGINT/SIGTERM into a flag read between steps; a second one raises
    KeyboardInterrupt. Restores the previous handlers on exit. Inactive outside the main
    thread, where Python cannot install signal handlers."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: object) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name


LOG_SECONDS_VARIABLE = "ISOFIELD_LOG_SECONDS"
"""Environment variable: seconds between progress records when stderr is not a terminal
(default 30; 0: none)."""


def _check_optimizer_state_shapes(optimizer: torch.optim.Optimizer, source: Path) -> None:
    """Refuses per-parameter state (e.g. Adam's moments) shaped unlike its parameter, which
    torch's ``load_state_dict`` accepts and the next step fails on (e.g. a checkpoint written
    with another parameter layout)."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            for name, value in optimizer.state.get(param, {}).items():
                if torch.is_tensor(value) and value.ndim > 0 and value.shape != param.shape:
                    raise InputError(
                        f"{source}: optimizer state does not fit the task ({name!r} of shape "
                        f"{tuple(value.shape)} for a parameter of shape {tuple(param.shape)}; "
                        "written by another isofield version? mesh it, or start a new run)")


def log_seconds() -> float | None:
    """Seconds between progress records (:data:`LOG_SECONDS_VARIABLE`; None: no records)."""
    text = os.environ.get(LOG_SECONDS_VARIABLE, "30")
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not (math.isfinite(seconds) and seconds >= 0):
        raise InputError(f"{LOG_SECONDS_VARIABLE}={text!r}: give seconds between progress records, >= 0 (0: none)")
    return seconds or None


class _ProgressBar:
    """tqdm bar over steps (with ETA) when a step count is set, else a step counter; the
    postfix shows the loss terms and, under a time budget, elapsed/budget and remaining seconds.
    Shown only when enabled and stderr is a terminal; when it is not (a log file, nohup, CI, a
    cluster job), one :func:`progress_record` line every ``log_seconds`` of training instead."""

    def __init__(
        self, enabled: bool, steps: int | None, time_budget: float | None, first_step: int,
        log_seconds: float | None = None, elapsed_before: float = 0.0,
    ) -> None:
        self._steps, self._time_budget = steps, time_budget
        self._first_step = first_step
        self._first_progress = run_progress(first_step, steps, elapsed_before, time_budget)
        self._log_seconds = log_seconds if enabled and not sys.stderr.isatty() else None
        self._next_record = log_seconds
        self._bar = tqdm(
            total=steps,
            initial=first_step,
            unit="step",
            dynamic_ncols=True,
            disable=None if enabled else True,
        )

    def __enter__(self) -> "_ProgressBar":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bar.close()

    def advance(self, step: int, losses: Mapping[str, float], clock: "_Clock") -> None:
        """After step ``step - 1``: move the bar, or print a record when one is due."""
        if not self._bar.disable:
            self._bar.set_postfix_str(progress_postfix(losses, clock.elapsed(), self._time_budget), False)
            self._bar.update(1)
        seconds = clock.in_process()
        if self._log_seconds is None or seconds < self._next_record:
            return
        self._next_record = seconds + self._log_seconds
        progress = run_progress(step, self._steps, clock.elapsed(), self._time_budget)
        gained = progress - self._first_progress
        eta = seconds * (1 - progress) / gained if gained > 0 else None
        print(progress_record(step, self._steps, progress, losses, (step - self._first_step) / seconds, eta),
              file=sys.stderr, flush=True)


def progress_record(step: int, steps: int | None, progress: float, losses: Mapping[str, float],
                    steps_per_second: float, eta: float | None) -> str:
    """One line of progress for logs, e.g. ``step 1200/3000 (40%), loss 0.0123, 8.1 steps/s,
    ETA 3 min``: the loss is the ``total`` term (else the first), ``eta`` seconds left."""
    of = "" if steps is None else f"/{steps}"
    loss = losses.get("total", next(iter(losses.values()), math.nan))
    return (f"step {step}{of} ({100 * progress:.0f}%), loss {loss:.4g}, {steps_per_second:.1f} steps/s, "
            f"ETA {_duration(eta)}")


def _duration(seconds: float | None) -> str:
    """``45 s``, ``3 min``, ``2 h 05 min``; ``?`` when unknown."""
    if seconds is None:
        return "?"
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes // 60} h {minutes % 60:02d} min"


def progress_postfix(
    losses: Mapping[str, float], elapsed: float, time_budget: float | None
) -> str:
    """Text after the progress bar: the loss terms and, under a time budget, training time so far
    / budget and time left, e.g. ``total=0.0123 eikonal=0.004 time=00:12/01:00 left=00:48``."""
    text = " ".join(f"{name}={value:.4g}" for name, value in losses.items())
    if time_budget is None:
        return text
    used, budget = tqdm.format_interval(elapsed), tqdm.format_interval(time_budget)
    left = tqdm.format_interval(max(0.0, time_budget - elapsed))
    return f"{text} time={used}/{budget} left={left}"


def _loss_values(terms: Mapping[str, torch.Tensor], step: int) -> dict[str, float]:
    """Loss terms as floats, ``total`` first; ValueError if the task broke the contract."""
    if not isinstance(terms, Mapping) or "total" not in terms:
        raise ValueError(f"task.loss(step={step}) must return a mapping with a 'total' entry")
    values = {}
    for name in ["total", *(key for key in terms if key != "total")]:
        term = terms[name]
        if not isinstance(term, torch.Tensor) or term.numel() != 1:
            raise ValueError(f"task.loss(step={step}): term {name!r} is not a one-element tensor")
        values[name] = float(term.detach())
    return values


def _lr_columns(lrs: dict[str, float]) -> dict[str, float]:
    """Log columns of the learning rates: ``lr`` for a single group, else ``lr_<group>``."""
    if len(lrs) == 1:
        return {"lr": next(iter(lrs.values()))}
    return {f"lr_{name}": lr for name, lr in lrs.items()}


def _unique_group_names(groups: Sequence[ParamGroup]) -> list[str]:
    names = [group.name for group in groups]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"task.param_groups() must give uniquely named groups, got {names}")
    return names


def _schedules_per_group(
    schedule: Schedule | Mapping[str, Schedule] | None, names: list[str]
) -> list[Schedule]:
    if schedule is None:
        return [Constant()] * len(names)
    if not isinstance(schedule, Mapping):
        return [schedule] * len(names)
    if set(schedule) != set(names):
        raise InputError(
            f"learning-rate schedules are given for groups {sorted(schedule)}, "
            f"the task's groups are {sorted(names)}"
        )
    return [schedule[name] for name in names]


def _positive_int(name: str, value: int | None, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return value


def _optional_positive_number(
    name: str, value: float | None, allow_zero: bool = False
) -> float | None:
    if value is None:
        return None
    valid = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > 0 or (allow_zero and value == 0))
    )
    if not valid:
        bound = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name} must be a number of seconds {bound}, got {value!r}")
    return float(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
