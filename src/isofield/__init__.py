"""isofield: neural implicit 3D shapes (signed distance and occupancy fields)."""

__version__ = "0.1.0"
