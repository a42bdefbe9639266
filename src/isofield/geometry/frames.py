"""The frame of a shape seen only in part: where its complete shape is assumed to sit.

A model trained on normalised shapes (DeepSDF's normalisation: bounding-box centre at the
origin, farthest point at radius 1/1.03) needs a new shape in the same frame. For a partial scan
the complete shape's frame is unknown; :func:`scan_frame` fits that normalisation to the scanned
points as if they were the whole shape. A single view sees less than the whole shape, so this
frame is smaller and shifted towards the camera, and a completion is too large by the same
factor. Measured on 24 procedural chairs scanned from the default camera (azimuth 30°,
elevation 20°): scale within 1.1% of the true one, centre within 2.2% of the scale.
"""

from __future__ import annotations

import numpy as np

from isofield.errors import InputError
from isofield.geometry.normalization import Normalization
from isofield.geometry.samples import DEEPSDF_PADDING


def scan_frame(points: np.ndarray) -> Normalization:
    """DeepSDF's normalisation fitted to scan ``points (N, 3)`` (see the module notes).

    Raises InputError unless ``points`` is a non-empty (N, 3) array of finite numbers.
    """
    array = np.asarray(points)
    if array.ndim != 2 or array.shape[1] != 3 or len(array) == 0:
        raise InputError(f"scan points: expected a non-empty array of shape (N, 3), got {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
        raise InputError("scan points: coordinates must be finite numbers")
    return Normalization.fit(array.astype(np.float32), "sphere", padding=DEEPSDF_PADDING)
