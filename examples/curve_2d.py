"""Planar problems: SAL, SALD and DiGS on a circle with a missing arc (runs in about a minute).

    python examples/curve_2d.py            # writes curve_2d.png beside this script's run folder

The input is 2000 points on a circle of radius 0.5 without the arc between -45° and +45°. The
shortest curve that closes the gap is the chord at x = 0.354; the picture shows each method's
zero level (black) and signed field, and the terminal the x where it crosses the gap's bisector.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

import isofield
from isofield.geometry.sampling import sample_polyline
from isofield.nn import as_numpy_field
from isofield.viz.slices import plot_field_2d

SMALL_MLP = {"field": {"preset": "paper", "hidden": 64, "depth": 3, "skip": []},
             "options": {"batch": 1024, "pool": 50_000},
             "train": {"lr": 3e-3, "schedule": {"name": "step", "every": 200, "factor": 0.5}}}
SMALL_SIREN = {"field": {"preset": "siren", "hidden": 64, "depth": 3},
               "options": {"batch": 1024,
                           "divergence_schedule": {"name": "anneal", "start": 200, "end": 800}},
               "train": {"lr": 1e-3}}


def main(out_dir: Path) -> None:
    angles = np.linspace(math.pi / 4, 2 * math.pi - math.pi / 4, 200)
    points = sample_polyline(0.5 * np.stack([np.cos(angles), np.sin(angles)], 1), 2000,
                             closed=False, seed=0)
    for method, overrides, steps in [("sal", SMALL_MLP, 600), ("sald", SMALL_MLP, 600),
                                     ("digs", SMALL_SIREN, 1000)]:
        field, frame = isofield.fit_points(points, out_dir / method, method=method, preset="paper",
                                           overrides=overrides, steps=steps, progress=False)
        canonical = as_numpy_field(field)

        def user_field(x: np.ndarray) -> np.ndarray:
            return canonical(frame.to_canonical(x.astype(np.float32))) * frame.scale

        xs = np.linspace(0.0, 0.7, 701, dtype=np.float32)
        values = user_field(np.stack([xs, np.zeros_like(xs)], 1))
        crossings = xs[np.flatnonzero(np.diff(np.sign(values)))]
        print(f"{method}: zero level crosses the gap's bisector at x = {crossings} (chord: 0.354)")
        plot_field_2d(user_field, out_dir / f"{method}.png", bounds=0.75, points=points,
                      title=f"{method}: {steps} steps")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/curve_2d"))
