"""Shared fixtures: the CGAL test data (skipped cleanly where it was not fetched)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CGAL_DATA = Path(os.environ.get("ISOFIELD_CGAL_DATA", REPO / ".cache" / "cgal" / "data"))


@pytest.fixture(scope="session")
def cgal_data() -> Path:
    """Folder with ``meshes/*.off`` and ``points_3/*`` of Debian's libcgal-demo (`make data`)."""
    if not (CGAL_DATA / "meshes" / "bunny00.off").exists():
        pytest.skip(f"CGAL data not found in {CGAL_DATA} (run `make data`)")
    return CGAL_DATA
