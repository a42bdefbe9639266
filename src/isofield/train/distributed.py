"""Multi-process (data-parallel) training: the process group, batch shards and DDP wrappers.

Launch: ``torchrun --nproc_per_node N PROGRAM`` starts N copies of the program and tells each its
place through environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``). The program calls :func:`init_from_env` before it builds its task and
:class:`isofield.train.loop.Trainer`, and :func:`shutdown` at the end; the trainer notices the
process group by itself (:func:`is_active`). Without torchrun :func:`init_from_env` does nothing,
and training is the single-process one. :func:`join_process_group` does both for a config's
device name (:func:`resolve_device`: ``auto``, ``cpu``, ``cuda``, ``cuda:N``).

How N processes train exactly as one process with the same global batch:

- every rank draws the *whole* global batch of a step from the trainer's sampling generator,
  which is seeded identically on every rank, and computes only its :class:`Shard` of it;
- each rank's loss is its part of the global mean (:meth:`Shard.mean`: sum over its rows
  times ``world_size / count``), so the mean of the parts over the ranks is the global mean
  whatever the split;
- ``DistributedDataParallel`` averages the gradients over the ranks, which is then the gradient of
  the global mean: for a shared decoder and for per-shape latent codes alike (rows of an
  ``nn.Embedding`` that a rank did not touch have a zero gradient there);
- the trainer logs the ranks' mean of each loss term, i.e. the single-process value.

Whatever a forward pass changes in place must change alike on every rank: an ``nn.Embedding`` with
``max_norm`` renormalises the rows it looks up, so every rank looks up the codes of the whole
global batch and then takes its shard's rows (else the ranks' code tables drift apart).
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from isofield.errors import InputError

Rows = TypeVar("Rows")
Result = TypeVar("Result")

_LAUNCH_HINT = "start multi-process training with torchrun, e.g. `torchrun --nproc_per_node 2 ...`"


def init_from_env(device: str | torch.device = "cpu") -> torch.device:
    """Join the process group that torchrun describes in the environment.

    Args:
        device: ``"cpu"`` or ``"cuda"``: the kind of device this process trains on. Under torchrun
            a CUDA process uses ``cuda:LOCAL_RANK`` (which becomes the current CUDA device) and
            the NCCL backend; a CPU process uses gloo.

    Returns:
        The device to put this process's modules and data on: ``device`` itself when the
        environment names no group (no ``WORLD_SIZE``, or ``WORLD_SIZE=1``), else ``cpu`` or
        ``cuda:LOCAL_RANK``. Calling it again once the group exists only returns the device.

    Raises:
        InputError: a variable is missing or malformed (e.g. ``WORLD_SIZE`` without
            ``MASTER_ADDR``), a CUDA device index conflicts with ``LOCAL_RANK``, or the group
            cannot be joined.
    """
    device = torch.device(device)
    world_size = _env_int("WORLD_SIZE", minimum=1, default=1)
    if world_size == 1:
        return device
    rank = _env_int("RANK", minimum=0, below=world_size)
    own_device = _process_device(device, world_size)
    if is_active():
        return own_device
    address = _env_text("MASTER_ADDR")
    port = _env_int("MASTER_PORT", minimum=1, below=65536)
    cuda = own_device.type == "cuda"
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(own_device)
    try:
        dist.init_process_group(
            backend, init_method="env://", rank=rank, world_size=world_size,
            device_id=own_device if cuda else None,
        )
    except (RuntimeError, ValueError) as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(
            f"could not join the {backend} process group at {address}:{port} as rank {rank} "
            f"of {world_size} ({detail})"
        ) from None
    return own_device


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


def join_process_group(device: str) -> torch.device:
    """The device to train on; under torchrun, after joining the process group (the device
    kind of the config, ``cuda:LOCAL_RANK`` for CUDA)."""
    resolved = resolve_device(device)
    joined = init_from_env(resolved.type)
    return joined if is_active() else resolved


def shutdown(finished: bool = False) -> None:
    """Leave the process group, if this process is in one (call it at the end of the program).

    ``finished``: the program ran to its end on every rank, so each first waits for the others:
    no rank then closes its connections while another is still in a collective, which gloo can
    answer by aborting the process. DDP wrappers that only reference cycles still hold are
    collected before the group goes, while the interpreter is fully alive. After an error this
    process leaves at once (another rank may never reach the barrier).
    """
    if not is_active():
        return
    if finished:
        dist.barrier()
    gc.collect()
    dist.destroy_process_group()


def is_active() -> bool:
    """True when this process is in a ``torch.distributed`` process group."""
    return dist.is_available() and dist.is_initialized()


def world() -> tuple[int, int]:
    """``(rank, world_size)`` of this process; ``(0, 1)`` without a process group."""
    return (dist.get_rank(), dist.get_world_size()) if is_active() else (0, 1)


def is_main_process() -> bool:
    """True in a single-process run and on rank 0 of a ``torch.distributed`` group: the one
    process that writes checkpoints and logs and shows progress."""
    return world()[0] == 0


@dataclass(frozen=True)
class Shard:
    """The part of each step's global batch that rank ``rank`` of ``world_size`` computes.

    A global batch of ``count`` rows (shapes, samples, ...) is cut into contiguous blocks in rank
    order whose sizes differ by at most one (the first ``count % world_size`` ranks take one
    more). ``Shard()`` is the whole batch of a single process.
    """

    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank must be in [0, {self.world_size}), got {self.rank}")

    def rows(self, count: int) -> slice:
        """This rank's rows ``[start, stop)`` of a global batch of ``count`` rows."""
        base, extra = divmod(count, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def take(self, rows: Rows) -> Rows:
        """This rank's rows of a global batch (a tensor, an array or a sequence, by its first
        axis), e.g. the shape indices of the step drawn by every rank alike."""
        return rows[self.rows(len(rows))]

    def mean(self, values: torch.Tensor, count: int) -> torch.Tensor:
        """This rank's part of the mean of a global batch of ``count`` values.

        Args:
            values: this rank's values (any shape): the elements of its rows of the batch.
            count: number of values of the whole global batch (``values.numel()`` summed over
                the ranks), e.g. shapes x samples per shape.

        Returns:
            Scalar ``values.sum() * world_size / count``: the mean of these parts over the
            ranks is the mean of the global batch exactly, even when the shards differ in size.
        """
        return values.sum() * (self.world_size / count)


class DataParallelModules:
    """A task's modules wrapped in ``DistributedDataParallel``, and the check that the task's
    forward passes went through the wrappers (a call of a bare module computes gradients that
    DDP silently leaves un-averaged).

    Construction is collective (DDP copies rank 0's parameters and buffers to every rank): every
    rank builds it at the same point. Modules without trainable parameters are not wrapped.
    """

    def __init__(self, modules: Mapping[str, nn.Module], optimized: Iterable[torch.Tensor]) -> None:
        self._modules = dict(modules)
        self._wrapped = {
            name: DistributedDataParallel(module)
            for name, module in self._modules.items()
            if any(param.requires_grad for param in module.parameters())
        }
        _check_all_in_modules(optimized, self._wrapped.values())
        self._calls = dict.fromkeys(self._wrapped, 0)
        for name, wrapper in self._wrapped.items():
            wrapper.register_forward_pre_hook(self._counter(name))

    @property
    def for_task(self) -> dict[str, nn.Module]:
        """Name -> what the task must call: the DDP wrapper, or the module itself when it has
        no trainable parameter."""
        return {name: self._wrapped.get(name, module) for name, module in self._modules.items()}

    def begin_step(self) -> None:
        """Forget the calls of the previous step."""
        self._calls = dict.fromkeys(self._calls, 0)

    def check_synchronised(self, step: int) -> None:
        """After the backward pass: ValueError if a module has gradients but its wrapper was
        not called during this step."""
        for name, wrapper in self._wrapped.items():
            has_gradients = any(param.grad is not None for param in wrapper.module.parameters())
            if has_gradients and self._calls[name] == 0:
                raise ValueError(
                    f"task.loss(step={step}) gave gradients to module {name!r} without calling "
                    "its DistributedDataParallel wrapper (from distribute()), so they were not "
                    "averaged across processes"
                )

    def _counter(self, name: str):
        def count_call(module: nn.Module, inputs: object) -> None:
            self._calls[name] += 1

        return count_call


def mean_over_ranks(values: Mapping[str, float]) -> dict[str, float]:
    """The mean of each value over the ranks (same keys, same order on every rank)."""
    sums = _sum_over_ranks(list(values.values()))
    size = dist.get_world_size()
    return {name: total / size for name, total in zip(values, sums)}


def any_over_ranks(flags: Sequence[bool]) -> list[bool]:
    """For each flag: True when it is set on at least one rank."""
    return [total > 0 for total in _sum_over_ranks([float(flag) for flag in flags])]


def main_process_value(value: float) -> float:
    """Rank 0's ``value`` on every rank (e.g. its clock, which time limits are read on)."""
    return _sum_over_ranks([value if is_main_process() else 0.0])[0]


def barrier() -> None:
    """Wait until every rank reaches this point."""
    dist.barrier()


def on_main_process(action: Callable[[], Result]) -> Result | None:
    """Run ``action`` on the main process only (e.g. write a run's files) and return its result
    there, None on the other ranks, which wait until it is done. An InputError of ``action`` is
    raised on every rank (the others name rank 0's message), so no rank is left waiting. Without
    a process group this is just ``action()``."""
    if not is_active():
        return action()
    result, message = None, None
    if is_main_process():
        try:
            result = action()
        except InputError as exc:
            message = str(exc)
    shared = [message]
    dist.broadcast_object_list(shared, src=0)
    if shared[0] is not None:
        raise InputError(shared[0])
    return result


def rank_step_seed(seed: int, rank: int, step: int) -> int:
    """A 64-bit seed that depends on (seed, rank, step) only: gives every rank its own random
    stream (dropout masks) at every step, with nothing to checkpoint."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, np.uint64)[0])


def _sum_over_ranks(values: list[float]) -> list[float]:
    device = torch.device("cuda", torch.cuda.current_device()) if _uses_nccl() else None
    buffer = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
    return buffer.tolist()


def _uses_nccl() -> bool:
    return dist.get_backend() == "nccl"


def _check_all_in_modules(
    optimized: Iterable[torch.Tensor], wrapped: Iterable[DistributedDataParallel]
) -> None:
    covered = {id(param) for wrapper in wrapped for param in wrapper.module.parameters()}
    if any(id(param) not in covered for param in optimized):
        raise ValueError(
            "task.param_groups() optimises a tensor that belongs to none of task.modules(); "
            "its gradient could not be averaged across processes"
        )


def _process_device(device: torch.device, world_size: int) -> torch.device:
    """``cpu``, or ``cuda:LOCAL_RANK`` checked against the visible CUDA devices."""
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise InputError(f"device {str(device)!r}: multi-process training runs on cpu or cuda")
    local_rank = _env_int("LOCAL_RANK", minimum=0, below=world_size)
    if device.index is not None and device.index != local_rank:
        raise InputError(
            f"device {str(device)!r}: under torchrun each process uses cuda:LOCAL_RANK "
            f"(here cuda:{local_rank}); give the device as 'cuda'"
        )
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if local_rank >= visible:
        raise InputError(
            f"LOCAL_RANK={local_rank} but {visible} CUDA device(s) are visible; start at most "
            f"{visible} processes per node (torchrun --nproc_per_node)"
        )
    return torch.device("cuda", local_rank)


def _env_text(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise InputError(
            f"environment variable {name} is not set although WORLD_SIZE is; {_LAUNCH_HINT}"
        )
    return value


def _env_int(name: str, minimum: int, below: int | None = None, default: int | None = None) -> int:
    if default is not None and not os.environ.get(name, "").strip():
        return default
    text = _env_text(name)
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum or (below is not None and value >= below):
        upper = f" and below {below}" if below is not None else ""
        raise InputError(
            f"environment variable {name}={text!r} must be an integer >= {minimum}{upper}; "
            f"{_LAUNCH_HINT}"
        )
    return value

