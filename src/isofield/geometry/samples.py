"""Training samples from a mesh: DeepSDF SDF samples, occupancy samples, surface samples.

Samples live in a canonical frame given by a :class:`Normalization` (``x_user = x * scale +
center``), which is either passed in or fitted to the mesh, and every sampler returns it beside
the samples: ``samples, normalization = sdf_samples(mesh)``. Distances and labels are computed
on the user's mesh (:class:`MeshDistance`) at the float32 sample points mapped back to the user
frame, then divided by ``scale``; so they belong exactly to the stored points. Every draw is
seeded: the same arguments give the same samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import trimesh

from isofield.errors import InputError
from isofield.geometry.groundtruth import MeshDistance
from isofield.geometry.normalization import Normalization
from isofield.geometry.sampling import _positive_count, sample_surface

DEEPSDF_VARIANCES = (0.005, 0.0005)
"""Variances of the Gaussian offsets of DeepSDF's near-surface samples (canonical units^2)."""

DEEPSDF_NEAR_FRACTION = 47 / 50
"""Share of near-surface samples in DeepSDF's ``PreprocessMesh`` (the rest is uniform)."""

DEEPSDF_PADDING = 0.03
"""DeepSDF's buffer: the farthest vertex lands at radius 1 / 1.03 of the unit sphere."""

ONET_PADDING = 0.1
"""Occupancy Networks' uniform samples fill the unit cube grown by this fraction."""

_NOISE_STREAM = 1  # second seed word: offsets and uniform points, independent of the surface draw


@dataclass(frozen=True)
class SdfSamples:
    """Signed distance samples in the canonical frame.

    Attributes:
        points: (N, 3) float32, canonical coordinates.
        sdf: (N,) float32, signed distance in canonical units (negative inside).
    """

    points: np.ndarray
    sdf: np.ndarray


@dataclass(frozen=True)
class OccupancySamples:
    """Inside/outside labels in the canonical frame.

    Attributes:
        points: (N, 3) float32, canonical coordinates.
        occupancies: (N,) bool, True inside.
    """

    points: np.ndarray
    occupancies: np.ndarray


@dataclass(frozen=True)
class SurfaceSamples:
    """Points on the surface with outward unit normals, in the canonical frame.

    Attributes:
        points: (N, 3) float32, canonical coordinates.
        normals: (N, 3) float32, unit, outward (from the re-oriented mesh).
    """

    points: np.ndarray
    normals: np.ndarray


Samples = SdfSamples | OccupancySamples | SurfaceSamples


def _as_mesh_distance(mesh: MeshDistance | trimesh.Trimesh) -> MeshDistance:
    return mesh if isinstance(mesh, MeshDistance) else MeshDistance(mesh)


def _fit(distance: MeshDistance, mode: str, padding: float = 0.0) -> Normalization:
    """Normalization fitted to the triangle corners (unreferenced vertices are ignored)."""
    corners = distance.surface.vertices[distance.surface.faces].reshape(-1, 3)
    return Normalization.fit(corners, mode, padding)


def _fraction(value: float, what: str) -> float:
    if not 0.0 <= value <= 1.0:
        raise InputError(f"{what} must be in [0, 1], got {value!r}")
    return float(value)


def _canonical_surface(
    distance: MeshDistance, n: int, seed: int, normalization: Normalization
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` area-uniform surface points (n, 3) and outward normals (n, 3), canonical, float64."""
    cloud = sample_surface(distance.oriented_mesh, n, seed)
    points = normalization.to_canonical(cloud.points.astype(np.float64))
    return points, cloud.normals.astype(np.float64)


def sdf_samples(
    mesh: MeshDistance | trimesh.Trimesh,
    n: int = 500_000,
    seed: int = 0,
    normalization: Normalization | None = None,
    variances: tuple[float, float] = DEEPSDF_VARIANCES,
    near_fraction: float = DEEPSDF_NEAR_FRACTION,
) -> tuple[SdfSamples, Normalization]:
    """DeepSDF's sampling protocol with exact signed distances.

    ``k = floor(n * near_fraction / 2)`` surface points are drawn by area; each gives one sample
    offset by isotropic Gaussian noise of variance ``variances[0]`` and one of ``variances[1]``
    (standard deviations 0.0707 and 0.0224 by default). The remaining ``n - 2k`` samples are
    uniform in [-1, 1]^3. Rows are ordered: the k wide-noise samples, the k narrow-noise
    samples, then the uniform ones.

    Args:
        mesh: a mesh, or a :class:`MeshDistance` to reuse its acceleration structures.
        n: number of samples.
        seed: the same seed gives the same samples.
        normalization: canonical frame; default: fitted to the vertices with DeepSDF's rule
            (bounding-box centre, farthest vertex at radius 1 / 1.03).
        variances: the two noise variances, canonical units squared.
        near_fraction: share of near-surface samples.

    Returns:
        SdfSamples with points (n, 3) and sdf (n,) in the canonical frame, and the frame.
    """
    n = _positive_count(n, "number of SDF samples")
    near_fraction = _fraction(near_fraction, "near-surface fraction")
    if len(variances) != 2 or not min(variances) > 0:
        raise InputError(f"variances must be two positive numbers, got {variances!r}")
    distance = _as_mesh_distance(mesh)
    norm = _fit(distance, "sphere", DEEPSDF_PADDING) if normalization is None else normalization
    pairs = int(n * near_fraction) // 2
    rng = np.random.default_rng((seed, _NOISE_STREAM))
    parts = []
    if pairs:
        surface, _ = _canonical_surface(distance, pairs, seed, norm)
        parts += [surface + rng.normal(0.0, np.sqrt(v), surface.shape) for v in variances]
    parts.append(rng.uniform(-1.0, 1.0, (n - 2 * pairs, 3)))
    points = np.concatenate(parts).astype(np.float32)
    return SdfSamples(points, distance.signed_in(norm)(points)), norm


def occupancy_samples(
    mesh: MeshDistance | trimesh.Trimesh,
    n: int = 100_000,
    seed: int = 0,
    normalization: Normalization | None = None,
    near_fraction: float = 0.5,
    sigma: float = 0.01,
    padding: float = ONET_PADDING,
) -> tuple[OccupancySamples, Normalization]:
    """Occupancy Networks-style labelled points: uniform in a padded cube plus near-surface.

    The uniform share is drawn in ``[-(1 + padding) / 2, (1 + padding) / 2]^3``; the
    ``floor(n * near_fraction)`` others are surface points offset by isotropic Gaussian noise
    of standard deviation ``sigma``. Rows: uniform first, then near-surface. Labels come from
    the winding number (``|w| >= 0.5``), so meshes with holes or flipped faces work.
    ``near_fraction=0`` reproduces ONet's own ``points.npz`` (all uniform).

    Args:
        mesh: a mesh, or a :class:`MeshDistance`.
        n: number of samples.
        seed: the same seed gives the same samples.
        normalization: canonical frame; default: the bounding box fitted to [-0.5, 0.5]^3
            (ONet's unit cube).
        near_fraction: share of near-surface samples.
        sigma: standard deviation of the near-surface offsets, canonical units.
        padding: relative growth of the unit cube for the uniform samples.

    Returns:
        OccupancySamples with points (n, 3) and occupancies (n,) in the canonical frame, and
        the frame.
    """
    n = _positive_count(n, "number of occupancy samples")
    n_near = int(n * _fraction(near_fraction, "near-surface fraction"))
    if not sigma > 0 or not padding >= 0:
        raise InputError(f"sigma must be > 0 and padding >= 0, got {sigma!r} and {padding!r}")
    distance = _as_mesh_distance(mesh)
    norm = _fit(distance, "cube") if normalization is None else normalization
    rng = np.random.default_rng((seed, _NOISE_STREAM))
    half = (1.0 + padding) / 2
    parts = [rng.uniform(-half, half, (n - n_near, 3))]
    if n_near:
        surface, _ = _canonical_surface(distance, n_near, seed, norm)
        parts.append(surface + rng.normal(0.0, sigma, surface.shape))
    points = np.concatenate(parts).astype(np.float32)
    inside = distance.occupancy(norm.to_user(points.astype(np.float64)))
    return OccupancySamples(points, inside), norm


def surface_samples(
    mesh: MeshDistance | trimesh.Trimesh,
    n: int = 100_000,
    seed: int = 0,
    normalization: Normalization | None = None,
) -> tuple[SurfaceSamples, Normalization]:
    """``n`` area-uniform surface points with outward unit normals, canonical frame.

    Normals come from the re-oriented mesh (:func:`~isofield.geometry.groundtruth.orient_outward`),
    so flipped faces in the input do not flip them. Default normalization: bounding-box centre,
    farthest vertex at radius 1. Returns the samples and the frame.
    """
    n = _positive_count(n, "number of surface samples")
    distance = _as_mesh_distance(mesh)
    norm = _fit(distance, "sphere") if normalization is None else normalization
    points, normals = _canonical_surface(distance, n, seed, norm)
    return SurfaceSamples(points.astype(np.float32), normals.astype(np.float32)), norm


SAMPLERS: dict[str, Callable[..., tuple[Samples, Normalization]]] = {
    "sdf": sdf_samples,
    "occupancy": occupancy_samples,
    "surface": surface_samples,
}
"""The sample kinds by name, as the CLI and the npz writers call them."""


def make_samples(
    mesh: MeshDistance | trimesh.Trimesh, kind: str, n: int | None = None, seed: int = 0
) -> tuple[Samples, Normalization]:
    """Samples of ``kind`` ('sdf', 'occupancy', 'surface') and their frame.

    Every other argument is the sampler's default; ``n=None`` keeps its default count too.
    """
    if kind not in SAMPLERS:
        raise InputError(f"unknown sample kind {kind!r} (use one of: {', '.join(SAMPLERS)})")
    counts = {} if n is None else {"n": n}
    return SAMPLERS[kind](mesh, seed=seed, **counts)
