"""The ``extract`` section of a signed-distance family's config (a fit, DeepSDF): how its field
becomes a mesh (:func:`isofield.extract.api.extract_mesh`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from isofield.errors import InputError

MIN_RESOLUTION = 8


@dataclass
class ExtractConfig:
    resolution: int = 256
    """cells per axis of the final mesh's grid"""
    method: Literal["sparse", "mise", "dense"] = "sparse"
    padding: float = 0.05
    """the grid covers [-1 - padding, 1 + padding]^3 of the canonical frame"""


def check_extract_config(extract: ExtractConfig) -> None:
    """Raise InputError naming the first value of ``config.extract`` out of range."""
    if extract.resolution < MIN_RESOLUTION:
        raise InputError(f"config.extract.resolution must be at least {MIN_RESOLUTION}, "
                         f"got {extract.resolution}")
    if not 0 <= extract.padding < math.inf:
        raise InputError(f"config.extract.padding must be >= 0, got {extract.padding}")
