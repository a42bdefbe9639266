"""isofield: neural implicit 3D shapes (signed distance and occupancy fields).

The main entry points::

    isofield.fit(input, method="igr", ...)      # fit one shape -> run directory, mesh, report
    isofield.fit_points(points, run_dir, ...)   # sal / sald / digs on an array (N, 3) or (N, 2)
    isofield.resume(run_dir)                    # continue a run
    isofield.load_field(run_dir)                # the trained torch module (canonical frame)
    isofield.as_numpy_field(module)             # -> f(points (N, 3)) -> (N,), for extraction
    isofield.extract_mesh(field, ...)           # field -> mesh (sparse or dense marching cubes)
"""

from isofield.extract.api import extract_mesh
from isofield.fitting import fit, fit_points, load_field, resume
from isofield.nn import as_numpy_field

__version__ = "0.1.0"
__all__ = ["as_numpy_field", "extract_mesh", "fit", "fit_points", "load_field", "resume"]
