"""Learn a shape space: DeepSDF's auto-decoder (a decoder f(x, z) and one code per shape)."""

from isofield.deepsdf.config import PRESETS, ShapeSpaceConfig, resolve_config
from isofield.deepsdf.evaluate import evaluate_split, write_interpolation
from isofield.deepsdf.inference import (
    complete,
    interpolate,
    load_samples,
    reconstruct,
    training_index,
)
from isofield.deepsdf.space import ShapeSpace, load_shape_space
from isofield.deepsdf.train import resume_shape_space, train_shape_space

__all__ = ["PRESETS", "ShapeSpace", "ShapeSpaceConfig", "complete",
           "evaluate_split", "interpolate", "load_samples", "load_shape_space",
           "reconstruct", "resolve_config", "resume_shape_space", "train_shape_space",
           "training_index", "write_interpolation"]
