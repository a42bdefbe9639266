"""Fit one shape: configuration, run directory, training, outputs."""

from isofield.fitting.fit import FitResult, fit, load_field, resume

__all__ = ["FitResult", "fit", "load_field", "resume"]
