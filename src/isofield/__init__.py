"""isofield: neural implicit 3D shapes (signed distance and occupancy fields).

The main entry points::

    isofield.fit(input, method="igr", ...)      # fit one shape -> run directory, mesh, report
    isofield.fit_points(points, run_dir, ...)   # sal / sald / digs on an array (N, 3) or (N, 2)
    isofield.resume(run_dir)                    # continue a run
    isofield.load_field(run_dir)                # the trained torch module (canonical frame)
    isofield.as_numpy_field(module)             # -> f(points (N, 3)) -> (N,), for extraction
    isofield.extract_mesh(field, ...)           # field -> mesh (sparse or dense marching cubes)

Importing ``isofield`` loads none of them (nor torch): each name is imported on first use
(PEP 562), so the CLI, the geometry and the metrics start without the training stack.
"""

from __future__ import annotations

import importlib

from isofield._version import __version__

# name -> the module that defines it
_LAZY = {
    "as_numpy_field": "isofield.nn",
    "extract_mesh": "isofield.extract.api",
    "fit": "isofield.fitting",
    "fit_points": "isofield.fitting",
    "load_field": "isofield.fitting",
    "resume": "isofield.fitting",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> object:
    """Import an entry point on first access (``isofield.fit`` imports the fitting stack)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'isofield' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
