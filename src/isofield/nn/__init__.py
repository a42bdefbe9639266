"""Networks: MLP and SIREN fields, input encodings, and adapters to numpy fields."""

from isofield.nn.encodings import FourierFeatures, MultiResolutionGrid, set_active_levels
from isofield.nn.field import as_numpy_field, build_field, resolve_field_config
from isofield.nn.mlp import MLPField
from isofield.nn.siren import SirenField

__all__ = ["FourierFeatures", "MLPField", "MultiResolutionGrid", "SirenField", "as_numpy_field", "build_field", "resolve_field_config", "set_active_levels"]
