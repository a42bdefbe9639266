"""nearest_points: the same answer as a KD-tree, near and far from the points, in 2-D and 3-D."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from isofield.geometry.nearest import nearest_points


@pytest.mark.parametrize("dim", [2, 3])
def test_nearest_points_match_a_kd_tree_near_and_far(dim):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(2000, dim))
    points /= np.linalg.norm(points, axis=1, keepdims=True)          # a circle / sphere of points
    near = points[:500] + rng.normal(scale=0.01, size=(500, dim))
    far = rng.uniform(-3, 3, size=(500, dim))
    queries = np.concatenate([near, far])
    distance, index = nearest_points(points, queries)
    expected_distance, expected_index = cKDTree(points).query(queries)
    np.testing.assert_allclose(distance, expected_distance, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(index, expected_index)
    assert distance.dtype == np.float64 and index.dtype == np.int64


def test_nearest_points_by_hand_and_with_no_queries():
    points = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    distance, index = nearest_points(points, np.array([[0.2, 0.0, 0.0], [3.0, 4.0, 0.0]]))
    np.testing.assert_allclose(distance, [0.2, np.hypot(2.0, 4.0)])
    np.testing.assert_array_equal(index, [0, 1])
    distance, index = nearest_points(points, np.zeros((0, 3)))
    assert distance.shape == (0,) and index.shape == (0,)
