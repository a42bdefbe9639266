"""The history of the first code z_1 during training (``code_history.csv``).

One row per logged step, ``step, dim_0, ..., dim_{L-1}``: the code as it was when that step
began, i.e. after ``step`` optimiser updates (the row pairs with the loss row of the same step).
The file is a :class:`~isofield.train.logging.LossLog`, so rows are flushed one by one and a
resumed run cuts it back to the checkpoint's step exactly as it cuts ``losses.csv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from isofield.train.logging import LossLog, read_loss_log
from isofield.train.distributed import Shard
from isofield.train.loop import DistributedTask, ParamGroup


class CodeHistoryRecorder:
    """A trainer task that records code ``index`` every ``every`` steps, then runs ``task``.

    It forwards ``modules``, ``param_groups``, ``distribute`` and ``loss`` to ``task``; before
    the loss of a step whose index is a multiple of ``every`` it appends the code's current
    values to ``log`` (on the main process; ``log`` is None on the others). Call
    ``log.truncate(before_step=...)`` with the checkpoint's step before training resumes.
    """

    def __init__(self, task: DistributedTask, codes: nn.Embedding, log: LossLog | None, every: int,
                 index: int = 0) -> None:
        self.task, self.codes, self.log = task, codes, log
        self.every, self.index = every, index

    def modules(self) -> Mapping[str, nn.Module]:
        return self.task.modules()

    def param_groups(self) -> Sequence[ParamGroup]:
        return self.task.param_groups()

    def distribute(self, shard: Shard, modules: Mapping[str, nn.Module]) -> None:
        self.task.distribute(shard, modules)

    def loss(self, step: int, generator: torch.Generator) -> Mapping[str, torch.Tensor]:
        if step % self.every == 0 and self.log is not None:
            code = self.codes.weight[self.index].detach().cpu().tolist()
            self.log.append({"step": step, **{f"dim_{d}": value for d, value in enumerate(code)}})
        return self.task.loss(step, generator)


def read_code_history(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(steps (R,) int64, codes (R, L) float64) from a ``code_history.csv``."""
    columns = read_loss_log(path)
    steps = columns.pop("step")
    names = sorted(columns, key=lambda name: int(name.removeprefix("dim_")))
    codes = np.stack([columns[name] for name in names], axis=1) if names else np.empty((len(steps), 0))
    return steps, codes
