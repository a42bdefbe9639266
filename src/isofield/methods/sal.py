"""SAL and SALD (Atzmon & Lipman 2020, 2021): signed fields from unsigned distances.

SAL:  L = mean_x | |f(x)| − h(x) |
SALD: L = SAL + λ mean_x min(‖∇f(x) − ∇h(x)‖, ‖∇f(x) + ∇h(x)‖), λ on a schedule
(``derivative_schedule``: constant, as the paper; the fast preset anneals it to 0.3 of its start)

h is the unsigned distance to the raw input (a point cloud, or a triangle soup used face by
face), known at a pool of samples drawn once
(:func:`isofield.data.raw_input.unsigned_distance_pool`). The loss does not see any sign: the
sign comes from the geometric initialisation (a signed sphere enclosing the shape), which the
optimisation deforms without flipping.
"""

from __future__ import annotations

from dataclasses import dataclass, field as _field
from pathlib import Path

import torch
from torch import nn

from isofield.data.raw_input import PoolSpec, RawInput, read_raw_input, unsigned_distance_pool
from isofield.diff import gradient
from isofield.losses import outside_sign_loss, sign_agnostic_gradient_loss, sign_agnostic_loss
from isofield.methods.base import (SETTLING_SCHEDULE, FieldTask, LevelSchedule, PreparedInput,
                                   register)
from isofield.train.schedules import Schedule, schedule_from_spec


@dataclass
class SALOptions:
    """Options of the ``sal`` method (config section ``options``)."""

    surface_points: int = 100_000
    """points sampled from a mesh / soup input to place the Gaussians (a point cloud is used as it is)"""
    batch: int = 8192
    """samples per step"""
    pool: int = 1_000_000
    """samples (with their unsigned distances) drawn once before training, at most"""
    pool_per_point: int = 0
    """if positive, an input of N points draws ``pool_per_point`` x N samples, at least
    ``pool_min`` and at most ``pool`` (the fast preset: 64; 0: ``pool`` whatever the input).
    The kitten's 5,210 points took 1.25 s of nearest-surfel queries for 1M samples and 0.35 s
    for 333k, with the same fit (docs/fit-ablations.md, "SALD's pool")"""
    pool_min: int = 250_000
    """the fewest samples ``pool_per_point`` leaves: the sparse CGAL oni (1,435 points) kept its
    normal consistency with 250k and lost 0.01 with 92k"""
    neighbour_k: int = 50
    """local σ = distance to the k-th nearest input point (SAL: 50)"""
    global_sigma: float = 0.3
    """σ of the global Gaussians (canonical units; the shape fits in the unit sphere)"""
    global_fraction: float = 0.3
    """share of the pool from the global Gaussians"""
    uniform_fraction: float = 0.2
    """share of the pool uniform in [-bounds, bounds]^D"""
    bounds: float = 1.5
    """beyond the initial sphere (radius 1): the zero level must close inside the sampled
    region, which makes SALD close gaps (measured in 2-D: with 1.1 a gap stays open)"""
    surfel_k: int = 10
    """point clouds: distances to discs fitted to each point's k nearest neighbours instead of
    to the bare points (data.raw_input.PoolSpec; isofield's addition); 0: bare points, as SAL. The
    distance to bare points dips between them, so a sparse cloud's surface came out dimpled: the
    CGAL oni (1435 points), sald 60 s: normal consistency 0.86 with bare points, 0.935 with
    surfels (k = 10); the kitten (5210 points): 0.991 and 0.996"""
    outside_weight: float = 0.0
    """weight of relu(−f) on samples beyond ``outside_radius`` (isofield's addition; 0: off, as
    SAL). The fast preset sets 100: SAL's loss sees |f| only, and the grid field has no global
    shape, so a region the initial sphere made negative stayed negative: the open neck of the
    CGAL oni grew into a tube to the edge of the box (weight 1 did not stop it, 100 closed it).
    An MLP extrapolates like its initial sphere and needs no guard; with one, a 150-step fit of
    a sphere by a 3x64 MLP came out 1-2% too small"""
    outside_radius: float = 1.1
    """every input point lies within the unit sphere (canonical frame), with a margin; the fast
    preset extracts the mesh over [-1.15, 1.15]^3, so a surface the guard closes is not cut"""


@dataclass
class SALDOptions(SALOptions):
    """Options of the ``sald`` method: SAL's, and the derivative term's weight."""

    derivative_weight: float = 0.1
    """λ of the term min(‖∇f − ∇h‖, ‖∇f + ∇h‖) at the start; multiplied by
    ``derivative_schedule``"""
    derivative_schedule: dict = _field(default_factory=lambda: {"name": "constant"})
    """a schedule of isofield.train.schedules (e.g. name anneal: start, end, final, unit
    steps|progress). The fast preset anneals λ to 0.3 of its start between 20% and 60% of the
    run: on a noisy scan ∇h comes from surfels fitted to noisy neighbours, and the field
    followed that noise (docs/fit-ablations.md, "SALD's derivative term, annealed")"""


def derivative_factor(options: SALOptions) -> Schedule:
    """SALD's factor of λ by step (its ``derivative_schedule``); SAL has none: constant 1."""
    return schedule_from_spec(getattr(options, "derivative_schedule", {"name": "constant"}))


def pool_size(options: SALOptions, points: int) -> int:
    """Samples in the pool of an input of ``points`` points (see ``pool_per_point``)."""
    if options.pool_per_point > 0:
        return min(options.pool, max(options.pool_min, options.pool_per_point * points))
    return options.pool


class SignAgnosticTask(FieldTask):
    """Trainer task: a random batch of the pool per step.

    Data: ``pool (P, D)``, ``pool_distance (P,)``, ``pool_direction (P, D)``. SALD's term is
    logged when its ``derivative_weight`` is positive, as 0 at steps where its schedule makes
    the weight 0 (the term is not computed there).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.derivative = getattr(self.options, "derivative_weight", 0.0)  # 0: SAL
        self.derivative_factor = derivative_factor(self.options)

    def step_loss(self, step: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        data = self.data
        index = torch.randint(len(data["pool"]), (self.options.batch,), generator=generator)
        index = index.to(self.device)
        weight = self.derivative * self.derivative_factor(self.at)
        samples = data["pool"][index].requires_grad_(weight > 0)
        values = self.field(samples)
        terms = {"sal": sign_agnostic_loss(values, data["pool_distance"][index])}
        total = terms["sal"]
        if self.options.outside_weight > 0:
            terms["outside"] = outside_sign_loss(values, samples, self.options.outside_radius)
            total = total + self.options.outside_weight * terms["outside"]
        if weight > 0:
            grads = gradient(values, samples)
            terms["sald"] = sign_agnostic_gradient_loss(grads, data["pool_direction"][index])
            total = total + weight * terms["sald"]
        elif self.derivative > 0:
            terms["sald"] = torch.zeros((), device=self.device)
        terms["total"] = total
        return terms


class SignAgnostic:
    """Shared ``prepare``/``task`` of ``sal`` and ``sald``. The ``fast`` preset's schedules are
    fractions of the run, the ``paper`` preset's count steps (as IGR's presets, see
    :class:`isofield.methods.igr.IGR`)."""

    presets = {
        "fast": {
            "field": {"preset": "fast"},
            "train": {
                "lr": 1e-2,
                "schedule": SETTLING_SCHEDULE,
                "grid_levels_start": 2,
                "grid_levels_every": 0.1,
                "grid_levels_unit": "progress",
            },
            "options": {"outside_weight": 100.0, "batch": 4096, "pool_per_point": 64},
            "extract": {"padding": 0.15},
        },
        "paper": {
            "field": {"preset": "paper"},
            "options": {"batch": 16384},
            "train": {"lr": 5e-4, "schedule": {"name": "step", "every": 2000, "factor": 0.5}},
        },
    }

    def prepare(self, path: Path, options: SALOptions, seed: int) -> PreparedInput:
        return self.prepare_raw(read_raw_input(path, options.surface_points, seed), options, seed)

    def prepare_raw(self, raw: RawInput, options: SALOptions, seed: int) -> PreparedInput:
        """Training data from raw input already in the canonical frame (any dimension D)."""
        derivative_factor(options)  # a bad schedule fails before training
        size = pool_size(options, len(raw.points))
        spec = PoolSpec(size, options.neighbour_k, options.global_sigma, options.global_fraction,
                        options.uniform_fraction, options.bounds, options.surfel_k)
        return PreparedInput(unsigned_distance_pool(raw, spec, seed), raw.normalization,
                             raw.description, raw.notes)

    def task(self, field: nn.Module, data: PreparedInput, options: SALOptions,
             device: torch.device, lr: float, levels: LevelSchedule) -> SignAgnosticTask:
        return SignAgnosticTask(field, data, options, device, lr, levels)


class SAL(SignAgnostic):
    """The ``sal`` method."""

    name = "sal"
    options_type = SALOptions


class SALD(SignAgnostic):
    """The ``sald`` method: SAL's presets, the fast one with λ annealed to 0.3 of its start
    between 20% and 60% of the run (``derivative_schedule``)."""

    name = "sald"
    options_type = SALDOptions
    presets = {
        **SignAgnostic.presets,
        "fast": {**SignAgnostic.presets["fast"],
                 "options": {**SignAgnostic.presets["fast"]["options"],
                             "derivative_schedule": {"name": "anneal", "start": 0.2, "end": 0.6,
                                                     "final": 0.3, "unit": "progress"}}},
    }


register(SAL())
register(SALD())
