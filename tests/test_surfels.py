"""SurfelDistance: the distance to a point cloud read as small discs."""

from __future__ import annotations

import numpy as np
import pytest

from isofield.geometry.groundtruth import PointSetDistance
from isofield.geometry.surfels import SurfelDistance


def test_surfel_distance_is_zero_between_the_samples_of_a_plane_and_exact_off_it():
    grid = np.stack(np.meshgrid(np.arange(11.0), np.arange(11.0), indexing="ij"), -1).reshape(-1, 2)
    plane = np.column_stack([grid * 0.1, np.zeros(len(grid))])  # z = 0, spacing 0.1
    distance = SurfelDistance(plane, neighbours=8)
    between = np.array([[0.45, 0.55, 0.0], [0.35, 0.25, 0.0]])  # half a spacing from the samples
    above = np.array([[0.5, 0.5, 0.3]])
    assert np.allclose(distance(between), 0.0, atol=1e-6)
    assert distance(above)[0] == pytest.approx(0.3, abs=1e-6)
    assert PointSetDistance(plane)(between).min() > 0.05  # the bare points' distance is not
