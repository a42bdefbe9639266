"""Networks: MLP fields, input encodings, and adapters to numpy fields."""

from isofield.nn.encodings import FourierFeatures, MultiResolutionGrid, set_active_levels
from isofield.nn.field import as_numpy_field, build_field, resolve_field_config
from isofield.nn.mlp import MLPField

__all__ = ["FourierFeatures", "MLPField", "MultiResolutionGrid", "as_numpy_field", "build_field", "resolve_field_config", "set_active_levels"]
