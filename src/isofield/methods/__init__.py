"""Fitting recipes, registered by name (``isofield fit --method NAME``)."""

from isofield.methods import digs, igr, sal, sdf  # noqa: F401  (importing registers them)
from isofield.methods.base import get_method, method_names

__all__ = ["get_method", "method_names"]
