"""Metrics of reconstructed and generated shapes, one module per protocol family.

- :mod:`isofield.metrics.surface`: a predicted against a reference shape (Chamfer variants,
  Hausdorff, normal consistency, F-score, volumetric IoU, EMD; protocol "isofield-v1").
- :mod:`isofield.metrics.onet`: the Occupancy Networks protocol (IoU at labelled points in the
  unit cube, Chamfer-L1 x10, NC, F@1%; threshold choice; per-shape CSV rows).
- :mod:`isofield.metrics.clouds`: PointFlow's point-cloud metrics (CD, EMD exact or Sinkhorn,
  pairwise matrices, MMD, COV, 1-NNA).
- :mod:`isofield.metrics.checks`: the input checks they share.
- :mod:`isofield.metrics.summary`: per-shape metrics summarised over a test set (mean, median).

Import the submodule you need; none of them imports torch (only a Sinkhorn EMD loads it, when it
runs).
"""
