"""Per-shape metrics summarised over a test set: the mean, median and count of each metric.

    >>> summarise([{"iou": 0.5}, {"iou": 0.7}, {"iou": None}], ("iou",))
    {'iou': {'mean': 0.6, 'median': 0.6, 'count': 2}}
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def summarise(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> dict[str, dict[str, float | int]]:
    """Mean, median and count of every key of ``keys`` over the rows that have a value for it
    (a row without the key, or with None, is left out; a key no row has is left out)."""
    summary = {}
    for key in keys:
        values = np.array([row[key] for row in rows if row.get(key) is not None], dtype=np.float64)
        if len(values):
            summary[key] = {"mean": float(values.mean()), "median": float(np.median(values)),
                            "count": len(values)}
    return summary
