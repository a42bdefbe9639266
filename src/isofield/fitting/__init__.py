"""Fit one shape: configuration, run directory, training, outputs."""

from isofield.fitting.config import resolve_config
from isofield.fitting.fit import FitResult, fit, fit_points, load_field, resume, train_prepared

__all__ = ["FitResult", "fit", "fit_points", "load_field", "resolve_config", "resume", "train_prepared"]
