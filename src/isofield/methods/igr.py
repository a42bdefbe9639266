"""IGR (Gropp et al. 2020): a signed distance field from an oriented point cloud.

L = mean_S |f(x)| + τ mean_S ‖∇f(x) − n(x)‖ + λ mean_Ω (‖∇f(x)‖ − 1)²

Off-surface samples Ω: a Gaussian around each sampled surface point with σ = distance to its
k-th neighbour (local), plus samples uniform in the bounds (global). With ``normal_weight: 0``
(or points without normals) it is IGR's two-term variant; ``normals: estimate`` gives raw points
oriented normals first (:func:`isofield.geometry.normals.estimate_normals`). The preset ``siren``
is SIREN's SDF recipe on the same sampling: cosine normal term, absolute eikonal term and the
off-surface term mean exp(−α|f|) at the uniform samples, on a SIREN field.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import nn

from isofield.diff import gradient
from isofield.errors import InputError
from isofield.geometry.groundtruth import oriented_points_inside
from isofield.geometry.nearest import nearest_points
from isofield.geometry.io import PointCloud, read_geometry
from isofield.geometry.normalization import Normalization
from isofield.geometry.normals import DEFAULT_NEIGHBOURS, estimate_normals
from isofield.geometry.sampling import neighbour_distances, sample_surface
from isofield.losses import (
    eikonal_loss,
    normal_cosine_loss,
    normal_loss,
    off_surface_loss,
    pseudo_sdf_loss,
    surface_loss,
)
from isofield.methods.base import (SETTLING_SCHEDULE, FieldTask, LevelSchedule, PreparedInput,
                                   register)

@dataclass
class IGROptions:
    """Options of the ``igr`` method (config section ``options``)."""

    surface_points: int = 100_000
    """points sampled from a mesh input (a point-cloud input is used as it is)"""
    batch: int = 8192
    """surface points per step; as many local off-surface samples"""
    global_fraction: float = 0.125
    """uniform off-surface samples, as a fraction of ``batch``"""
    neighbour_k: int = 50
    """local σ = distance to the k-th nearest input point"""
    surface_weight: float = 1.0
    """weight of the surface term mean |f(x)| (IGR: 1)"""
    normal_weight: float = 1.0
    """τ; 0 gives the two-term variant (and is required for points without normals)"""
    normal_kind: Literal["difference", "cosine"] = "difference"
    """normal term: IGR's ‖∇f − n‖ or SIREN's 1 − cos∠(∇f, n)"""
    eikonal_weight: float = 0.1
    """λ"""
    eikonal_power: int = 2
    """mean |‖∇f‖ − 1|^p: IGR 2, SIREN 1"""
    off_surface_weight: float = 0.0
    """SIREN's term mean exp(−α|f|) at the uniform samples (0: off)"""
    off_surface_alpha: float = 100.0
    """α of the off-surface term"""
    bounds: float = 1.1
    """uniform samples lie in [-bounds, bounds]^3 (canonical frame)"""
    far_weight: float = 0.0
    """isofield's addition (0 = IGR): at the uniform samples, regress an approximate SDF made
    once from the input (sign: the point cloud's winding number; magnitude: distance to the
    nearest input point) beyond ``far_band``, and penalise only a wrong sign within it. It
    removes the spurious surfaces that IGR leaves far from the data (needs normals)."""
    far_pool: int = 200_000
    """labelled uniform samples drawn from when far_weight > 0"""
    far_band: float = 3.0
    """band half-width, in multiples of the input's median point spacing"""
    normals: Literal["file", "estimate"] = "file"
    """file: the input's normals (a mesh's face normals); estimate: estimate oriented normals
    from the points (isofield.geometry.normals), ignoring any in the file"""
    normals_neighbours: int = DEFAULT_NEIGHBOURS
    """k of the normal estimation"""


def read_oriented_points(path: Path, surface_points: int, seed: int) -> PointCloud:
    """Points (and normals when present) from a point file, or sampled from a mesh file."""
    geometry = read_geometry(path)
    if isinstance(geometry, PointCloud):
        return geometry
    return sample_surface(geometry, surface_points, seed=seed)


def far_field_samples(points: np.ndarray, normals: np.ndarray, spacing: float, options: IGROptions,
                      seed: int) -> dict[str, torch.Tensor]:
    """Uniform samples (P, 3) with approximate signed distances (P,) and the band half-width.

    Sign from the oriented points' (N, 3) winding number, magnitude from the distance to the
    nearest input point (an over-estimate by at most about the point ``spacing``).
    """
    rng = np.random.default_rng(seed)
    pool = rng.uniform(-options.bounds, options.bounds, (options.far_pool, 3)).astype(np.float32)
    distance, _ = nearest_points(points, pool)
    inside = oriented_points_inside(points, normals, pool)
    return {
        "pool": torch.from_numpy(pool),
        "pool_sdf": torch.from_numpy(np.where(inside, -distance, distance).astype(np.float32)),
        "band": torch.tensor(options.far_band * spacing),
    }


class IGRTask(FieldTask):
    """Trainer task: one batch of surface and off-surface samples per step.

    Data: ``points (N, 3)``, ``sigmas (N,)``, optional ``normals (N, 3)``, and with the far-field
    term ``pool (P, 3)``, ``pool_sdf (P,)``, ``band ()``.
    """

    def step_loss(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        opt, data = self.options, self.data
        pool = data.get("pool")
        index = torch.randint(len(data["points"]), (opt.batch,), generator=generator).to(self.device)
        surface = data["points"][index]
        noise = torch.randn(surface.shape, generator=generator).to(self.device)
        local = surface + noise * data["sigmas"][index, None]
        n_global = max(1, int(opt.global_fraction * opt.batch))
        if pool is None:
            uniform = ((torch.rand((n_global, 3), generator=generator) * 2 - 1) * opt.bounds).to(self.device)
        else:
            chosen = torch.randint(len(pool), (n_global,), generator=generator).to(self.device)
            uniform = pool[chosen]
        samples = torch.cat([surface, local, uniform]).requires_grad_(True)
        values = self.field(samples)
        grads = gradient(values, samples)

        terms = {"surface": surface_loss(values[: opt.batch])}
        total = opt.surface_weight * terms["surface"]
        if opt.normal_weight > 0:
            normal_term = normal_cosine_loss if opt.normal_kind == "cosine" else normal_loss
            terms["normal"] = normal_term(grads[: opt.batch], data["normals"][index])
            total = total + opt.normal_weight * terms["normal"]
        terms["eikonal"] = eikonal_loss(grads[opt.batch:], opt.eikonal_power)
        total = total + opt.eikonal_weight * terms["eikonal"]
        if opt.off_surface_weight > 0:
            terms["off_surface"] = off_surface_loss(values[2 * opt.batch:], opt.off_surface_alpha)
            total = total + opt.off_surface_weight * terms["off_surface"]
        if pool is not None:
            far_values = values[2 * opt.batch:]
            terms["far"] = pseudo_sdf_loss(far_values, data["pool_sdf"][chosen], float(data["band"]))
            total = total + opt.far_weight * terms["far"]
        terms["total"] = total
        return terms


class IGR:
    """The ``igr`` method.

    Schedules: the ``fast`` preset's are fractions of the run (grid levels 2, 3, ... every 10%,
    all 8 from 60%; the learning rate a cosine down to 2% of its start, ``SETTLING_SCHEDULE``),
    so a time budget goes through them on any machine. The ``paper`` preset keeps IGR's
    schedule in steps (halved every 2000), exactly the paper's at any length: written as a
    fraction of the paper's long run it would halve the rate dozens of times in a short one.
    """

    name = "igr"
    options_type = IGROptions
    presets = {
        "fast": {
            "field": {"preset": "fast"},
            "options": {"far_weight": 1.0, "global_fraction": 0.5, "batch": 2048},
            "train": {
                "lr": 2e-2,
                "schedule": SETTLING_SCHEDULE,
                "grid_levels_start": 2,
                "grid_levels_every": 0.1,
                "grid_levels_unit": "progress",
            },
        },
        "paper": {
            "field": {"preset": "paper"},
            "options": {"batch": 16384},
            "train": {"lr": 5e-3, "schedule": {"name": "step", "every": 2000, "factor": 0.5}},
        },
        # SIREN's SDF recipe (Sitzmann et al. 2020): 4x256 sine layers, surface 3e3,
        # normal (1 - cos) 1e2, eikonal |‖∇f‖ − 1| 5e1, off-surface exp(−100|f|) 1e2 at as many
        # uniform samples as surface points; Adam 1e-4. The network starts as a sphere (mfgi):
        # from the paper's init (field.init: siren) the far field has no sign, and short runs
        # leave spurious surfaces at the edges of the box (measured: a 300-step test fit).
        "siren": {
            "field": {"preset": "siren"},
            "options": {"surface_weight": 3000.0, "normal_weight": 100.0, "normal_kind": "cosine",
                        "eikonal_weight": 50.0, "eikonal_power": 1, "off_surface_weight": 100.0,
                        "global_fraction": 1.0},
            "train": {"lr": 1e-4},
        },
    }

    def prepare(self, path: Path, options: IGROptions, seed: int) -> PreparedInput:
        cloud = read_oriented_points(path, options.surface_points, seed)
        if len(cloud.points) < 2 * options.neighbour_k:
            raise InputError(f"{path}: only {len(cloud.points)} points; igr needs at least {2 * options.neighbour_k}")
        notes = (cloud.note,) if cloud.note else ()
        origin = ""
        if options.normals == "estimate":
            start = time.perf_counter()
            normals = estimate_normals(cloud.points, options.normals_neighbours)
            cloud = PointCloud(cloud.points, normals, source=cloud.source)
            origin = (f", normals estimated ({options.normals_neighbours} neighbours, "
                      f"{time.perf_counter() - start:.1f} s)")
        needs_normals = [name for name in ("normal_weight", "far_weight") if getattr(options, name) > 0]
        if needs_normals and cloud.normals is None:
            zeros = " and ".join(f"options.{name}: 0" for name in needs_normals)
            raise InputError(
                f"{path}: points have no normals; igr needs oriented points: estimate them with "
                f"--normals estimate (options.normals: estimate), or set {zeros} in a --config "
                f"file for IGR's two-term variant"
            )
        normalization = Normalization.fit(cloud.points, "sphere")
        points = normalization.to_canonical(cloud.points).astype(np.float32)
        tree = cKDTree(points)
        neighbours = neighbour_distances(tree, options.neighbour_k)
        tensors = {
            "points": torch.from_numpy(points),
            "sigmas": torch.from_numpy(neighbours[:, -1].astype(np.float32)),  # k-th neighbour
        }
        if cloud.normals is not None:
            tensors["normals"] = torch.from_numpy(np.asarray(cloud.normals, dtype=np.float32))
        if options.far_weight > 0:
            spacing = float(np.median(neighbours[:, 1]))
            tensors.update(far_field_samples(tree.data, cloud.normals, spacing, options, seed))
        kind = "oriented points" if cloud.normals is not None else "points without normals"
        return PreparedInput(tensors, normalization, f"{len(points)} {kind} from {path.name}{origin}",
                             notes)

    def task(self, field: nn.Module, data: PreparedInput, options: IGROptions,
             device: torch.device, lr: float, levels: LevelSchedule) -> IGRTask:
        return IGRTask(field, data, options, device, lr, levels)


register(IGR())
