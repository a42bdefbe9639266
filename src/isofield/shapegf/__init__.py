"""ShapeGF: shapes as learned gradient fields of their points' log-density, point clouds sampled
by annealed Langevin dynamics, new shapes from a latent model over the codes."""

from isofield.shapegf.config import PRESETS, ShapeGFConfig, resolve_config, sigma_levels
from isofield.shapegf.model import GradientFieldModel, load_gradient_field
from isofield.shapegf.train import resume_gradient_field, train_gradient_field

__all__ = ["GradientFieldModel", "PRESETS", "ShapeGFConfig",
           "load_gradient_field", "resolve_config", "resume_gradient_field", "sigma_levels",
           "train_gradient_field"]
