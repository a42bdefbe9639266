"""An exponential moving average (EMA) of a run's weights, the weights a fit's outputs use.

Adam at a fixed learning rate keeps the weights moving within a noise ball around the minimum
whose size grows with the learning rate; averaging them over the last ~1 / (1 - decay) steps
finds its centre without the tiny learning rates (and the steps) needed to shrink it. Measured
on DiGS / the CGAL armadillo as a triangle soup: from a converged state (NC 0.9273 meshed at
256³), 1500 more steps at lr 1.25e-5 leave the trained weights at 0.9274 and give their average
(decay 0.999) 0.9283.

The averages are torch's :class:`~torch.optim.swa_utils.AveragedModel` copies. After each
optimiser step every floating-point parameter and buffer ``a`` of a copy moves towards the
trained one ``w``: ``a <- a + (1 - d) (w - a)`` with ``d = min(decay, (1 + n) / (10 + n))`` at
the ``n``-th update (the warm-up of TensorFlow's ``ExponentialMovingAverage``, so that the
initial weights are forgotten within tens of steps, not thousands); other buffers (counters)
are copied.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from isofield.errors import InputError


def averaged_copies(modules: Mapping[str, nn.Module], decay: float) -> dict[str, AveragedModel]:
    """name -> an EMA copy of each module (update it with ``copy.update_parameters(module)``
    after each step; its ``state_dict()`` holds the averaged weights and the update count)."""
    check_average_decay(decay)

    def warmed_up_ema(average: torch.Tensor, trained: torch.Tensor,
                      updates: torch.Tensor) -> torch.Tensor:
        if not average.is_floating_point():     # a counter, e.g. a grid's active levels
            return trained
        n = float(updates)
        rate = 1.0 - min(decay, (1.0 + n) / (10.0 + n))
        return average + rate * (trained - average)

    return {name: AveragedModel(module, avg_fn=warmed_up_ema, use_buffers=True)
            for name, module in modules.items()}


def load_averaged_weights(modules: Mapping[str, nn.Module],
                          averages: Mapping[str, AveragedModel]) -> None:
    """Load each average's weights into the module of the same name."""
    for name, average in averages.items():
        modules[name].load_state_dict(average.module.state_dict())


def check_average_decay(decay: object) -> None:
    """Raise InputError unless ``decay`` is a number in (0, 1)."""
    if not (isinstance(decay, (int, float)) and not isinstance(decay, bool) and 0 < decay < 1):
        raise InputError(f"ema_decay must be a number in (0, 1), got {decay!r}")
