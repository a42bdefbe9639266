"""Which shapes of a data directory a model is tested on, and which few it shows.

:func:`held_out_shapes` gives the test shapes of a trained model (a split's, or every shape it
did not train on); :func:`reconstruction_indices` picks a few shapes (or pictures) spread evenly
over a list, for progress pictures and reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from isofield.data.datasets import DeepSDFDataDir, ShapeRef
from isofield.errors import InputError


def held_out_shapes(trained: Sequence[ShapeRef], data: DeepSDFDataDir,
                    split: str | Path | Sequence[ShapeRef] | None) -> list[ShapeRef]:
    """The test shapes: the split's, or every shape of ``data`` not among ``trained``."""
    if split is not None:
        refs = data.shapes(split)
        where = str(split) if isinstance(split, (str, Path)) else "split"
    else:
        training = set(trained)
        refs = [ref for ref in data.shapes() if ref not in training]
        where = f"{data.root} (every shape not trained on)"
    if not refs:
        raise InputError(f"{where}: no test shapes")
    return refs


def reconstruction_indices(num_shapes: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``0 .. num_shapes - 1``, starting with 0."""
    if count <= 0:
        return []
    return sorted(set(np.linspace(0, num_shapes - 1, min(count, num_shapes)).round().astype(int).tolist()))
