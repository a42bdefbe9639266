"""Occupancy networks: ONet (global encoding, conditional batch-norm decoder, optional VAE) and
Convolutional ONet (plane / grid features), trained on ONet-layout data, meshed by MISE."""

from isofield.occupancy.config import METHODS, PRESETS, OccupancyConfig, resolve_config
from isofield.occupancy.model import OccupancyModel, load_occupancy_model
from isofield.occupancy.train import resume_occupancy_network, train_occupancy_network

__all__ = ["METHODS", "OccupancyConfig", "OccupancyModel", "PRESETS",
           "load_occupancy_model", "resolve_config", "resume_occupancy_network",
           "train_occupancy_network"]
