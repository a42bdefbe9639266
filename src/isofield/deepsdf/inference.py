"""Inference in a trained shape space: a new code from data with the decoder frozen, and meshes.

    >>> space = load_shape_space("runs/chairs")
    >>> samples, frame = read_sdf_samples("chair.npz")
    >>> result = reconstruct(space, samples, frame)           # result.mesh in the user's frame
    >>> result = complete(space, scan.points, scan.normals, frame=None)   # frame from the scan

**Reconstruction** (:func:`reconstruct_code`) follows DeepSDF's ``reconstruct.py``: one code,
started ``N(0, 0.01²)`` per component (``stat = 0.01``, also the paper's initialisation), is
optimised by Adam for 800 steps at learning rate 5e-3, divided by 10 after half the steps, on
8000 SDF samples per step (half with sdf > 0, half with sdf <= 0, drawn with replacement, as
DeepSDF's ``unpack_sdf_samples_from_ram``). The objective is the one the codes were trained with
(:mod:`~isofield.deepsdf.autodecoder`): ``mean |clamp(f(x, z), δ) − clamp(s, δ)| + (1/σ²)‖z‖²``
with the run's δ and σ, i.e. the code's maximum a posteriori estimate under the training prior.
DeepSDF's script adds ``1e-4 · mean_k z_k²`` instead, L times weaker than ``1e-4 · ‖z‖²``.

**Completion** (:func:`complete_code`) fits a code to a partial oriented point cloud S (points
with outward normals, e.g. one depth view) and optional free-space points F (seen through, so
outside the shape)::

    loss(z) = w_s mean_S |f(x, z)| + w_n mean_S ‖∇f(x, z) − n(x)‖
              + w_e mean_R |‖∇f(x, z)‖ − 1| + w_f mean_F relu(margin − f(x, z)) + (1/σ²) ‖z‖²

where R is half points of S moved by Gaussian noise (σ = δ / 2, where the decoder learned an
SDF) and half uniform in the canonical box [-1, 1]^3 (|R| = |S| / 2 per step), and free-space
points outside the extraction box are dropped (the decoder never saw anything there). ∇f is
taken by forward differences (step :data:`DIFFERENCE_STEP`), not autograd: DeepSDF's decoder
is a ReLU network, piecewise linear, so the autograd ∇f does not change with z within a linear
piece and the normal and eikonal terms would give the code no gradient at all. The weights
(:class:`CompletionWeights`) were chosen by measurement (``docs/deepsdf-ablations.md``). Restarts start from codes
drawn ``N(0, s²)`` with ``s`` the root-mean-square component of the trained codes (the spread of
the training codes, so restarts try different shapes); they are optimised together (one
batched forward pass; Adam is per coordinate, so they do not interact) for ``steps // 8``
steps, then the full objective on fixed points decides which one continues alone to the end.
So K restarts cost about ``1 + (K − 1) / 8`` single runs. The schedule is reconstruction's.

**Orientation.** The decoder knows its shapes in the dataset's orientation (procedural chairs and
ShapeNet: ``y`` up, front ``+z``; :data:`SPACE_UP`, :data:`SPACE_FRONT`); a scan in the user's
coordinates may face anywhere. :func:`complete` places the scan by a :class:`Pose`, a rotation
then a normalisation. Given ``up`` and ``front`` (user coordinates) the rotation takes them to
the space's; otherwise it takes ``up`` (default: the space's own, ``y``) to the space's up and
tries ``rotations`` angles about it (:func:`candidate_poses`). The candidates are C placements of
the same scan, fitted as C x K rows of one batch, screened together with the restarts after
``steps // 8`` steps (the full objective of every row on the same fixed points, each in its own
placement); the best row continues alone. The frame of each candidate is fitted to the rotated
scan (:func:`~isofield.geometry.frames.scan_frame`): the complete shape's bounding box is
axis-aligned in the space's orientation, and a one-view scan's box is not centred on it, so the
box of the rotated scan, not the rotated box, is the estimate. A known frame is rotated about its centre instead. C
candidates cost about ``1 + (C K − 1) / 8`` single runs, plus the full objective of every row
twice (8 x 4 rows: about 4x one fit; measurements in ``docs/architecture.md``).

**Frames.** The decoder lives in the canonical frame in which its training shapes were
normalised (DeepSDF's: bounding-box centre at the origin, farthest vertex at radius 1/1.03). The
``*_code`` functions take canonical inputs. :func:`reconstruct` and :func:`complete` take inputs
in the user's frame with a :class:`~isofield.geometry.normalization.Normalization` and return
meshes in that frame:

- SDF samples of a shape carry their frame (the npz's ``center``/``scale``, as preprocessing
  wrote them); reconstruction uses it.
- For a partial scan the true frame of the complete shape is unknown. When it is known, pass it:
  the evaluation of a test split uses each test shape's stored normalisation, as DeepSDF's
  shape-completion experiment does. Without one,
  :func:`~isofield.geometry.frames.scan_frame` estimates it as if the scan were the whole shape:
  DeepSDF's normalisation fitted to the scanned points (their bounding-box centre, farthest point
  at radius 1/1.03), smaller than the true frame and shifted towards the camera (measured in
  :mod:`isofield.geometry.frames`), so the completion is too large by the same factor.

Every random number comes from a ``torch.Generator`` seeded with ``seed``: the same inputs and
seed give the same code. The decoder is never changed: its parameters are frozen
(``requires_grad = False``, eval mode) for the optimisation and restored afterwards.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import trimesh
from scipy.spatial.transform import Rotation
from torch import nn

from isofield.data.datasets import DeepSDFDataDir, ShapeRef
from isofield.data.formats import read_sdf_samples
from isofield.errors import InputError
from isofield.geometry.frames import scan_frame
from isofield.geometry.normalization import Normalization
from isofield.geometry.samples import SdfSamples
from isofield.losses import clamped_l1, eikonal_loss, normal_loss, surface_loss
from isofield.deepsdf.samples import ShapeSamples
from isofield.deepsdf.space import ShapeSpace, canonical_bounds, code_mesh

DEEPSDF_STEPS = 800
DEEPSDF_LR = 5e-3
DEEPSDF_INIT_STD = 0.01
DEEPSDF_SAMPLES_PER_STEP = 8000
LR_DROP = 0.1
"""DeepSDF's reconstruct.py divides the learning rate by 10 after half the steps."""
EVALUATION_POINTS = 8192
"""Points of each kind (surface, eikonal, free space) on which a completion's final loss is
compared between restarts; the same fixed points for every restart."""
SCREEN_FRACTION = 8
"""Completion restarts are compared after ``steps // SCREEN_FRACTION`` steps (100 of 800)."""
DIFFERENCE_STEP = 0.005
"""h of the forward differences (f(x + h e_i) − f(x)) / h that give ∇f in the completion loss,
canonical units (a third of a cell of a 128-cell grid over [-1, 1]); they reuse f(x) of the
surface term, so a surface point costs 4 decoder evaluations (central differences: 7)."""
EVALUATION_CHUNK = 65536
"""SDF samples per forward pass when a reconstruction's loss is evaluated on all samples."""
SPACE_UP = np.array([0.0, 1.0, 0.0])
SPACE_FRONT = np.array([0.0, 0.0, 1.0])
"""The orientation of the training shapes (procedural chairs and ShapeNet: ``y`` up, front
``+z``; see :mod:`isofield.geometry.furniture`)."""
DEFAULT_ROTATIONS = 8
"""Angles about the up axis a completion tries when the scan's front is unknown (every 45°);
chosen by measurement (``docs/architecture.md``)."""


@dataclass(frozen=True)
class CompletionWeights:
    """Weights of the completion loss (see the module notes); ``prior`` None: the run's 1/σ².

    ``margin``: free-space points are penalised where f < margin (canonical units). The
    defaults were chosen by measurement (``docs/deepsdf-ablations.md``): a weak normal term
    and a weaker eikonal term, since the decoder's ‖∇f‖ is not 1.
    """

    surface: float = 1.0
    normal: float = 0.1
    eikonal: float = 0.01
    free_space: float = 1.0
    prior: float | None = None
    margin: float = 0.0

    def __post_init__(self) -> None:
        for name in ("surface", "normal", "eikonal", "free_space", "prior", "margin"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value >= 0):
                raise InputError(f"completion weight {name}: expected a number >= 0, got {value!r}")


@dataclass(frozen=True)
class FittedCode:
    """A code found by test-time optimisation.

    Restarts (K of them), in each of C candidate placements of the data (completion's rotation
    search; otherwise C = 1), are optimised together as C x K rows (row ``c * K + k``: placement
    c, restart k) for the first ``screen_steps``; then the row with the lowest full objective
    continues alone to ``steps``.

    Attributes:
        code: (L,) float32 on the CPU, the chosen code.
        best: index k of the chosen restart.
        candidate: index c of the chosen placement (0 when C = 1).
        initial_codes: (K, L) the restarts' initial codes (the same in every placement).
        initial_losses: (C K,) the full objective at each row's initial code.
        screened_losses: (C K,) the full objective of each row after ``screen_steps`` (all
            of them after the last step when C K = 1 or ``screen_steps >= steps``).
        final_loss: the full objective at ``code``.
        history: (steps,) the minibatch objective of the chosen row at each step.
        screen_steps: steps before the rows were compared.
        seconds: wall-clock time of the optimisation.
    """

    code: torch.Tensor
    best: int
    candidate: int
    initial_codes: torch.Tensor
    initial_losses: np.ndarray
    screened_losses: np.ndarray
    final_loss: float
    history: np.ndarray
    screen_steps: int
    seconds: float

    @property
    def initial_loss(self) -> float:
        """The full objective at the chosen row's initial code."""
        return float(self.initial_losses[self.candidate * len(self.initial_codes) + self.best])


@dataclass(frozen=True)
class Pose:
    """Places user coordinates in a shape space's canonical frame:
    ``x_canonical = frame.to_canonical(x_user @ rotation.T)``.

    Attributes:
        rotation: (3, 3) float64 proper rotation, user axes -> the space's orientation; its rows
            are the user-frame directions of the space's x, up (:data:`SPACE_UP`) and front
            (:data:`SPACE_FRONT`).
        frame: the normalisation of the rotated coordinates.
        degrees: the rotation about the space's up axis after the user's up was aligned with it
            (the searched angle, in [0, 360); 0 when the rotation was given).
    """

    rotation: np.ndarray
    frame: Normalization
    degrees: float = 0.0

    @classmethod
    def of(cls, frame: Normalization) -> "Pose":
        """No rotation: ``frame`` alone."""
        return cls(np.eye(3), frame)

    @property
    def up(self) -> np.ndarray:
        """(3,) the space's up axis in user coordinates."""
        return self.rotation[1]

    @property
    def front(self) -> np.ndarray:
        """(3,) the space's front direction in user coordinates."""
        return self.rotation[2]

    def to_canonical(self, points: np.ndarray) -> np.ndarray:
        """User points (N, 3) -> canonical (N, 3) float32."""
        rotated = np.asarray(points, dtype=np.float64) @ self.rotation.T
        return self.frame.to_canonical(rotated).astype(np.float32)

    def directions_to_canonical(self, directions: np.ndarray) -> np.ndarray:
        """User directions (N, 3) (normals) -> canonical (N, 3) float32: rotated only."""
        return (np.asarray(directions, dtype=np.float64) @ self.rotation.T).astype(np.float32)

    def to_user(self, points: np.ndarray) -> np.ndarray:
        """Canonical points (N, 3) -> user coordinates (N, 3), float64."""
        return self.frame.to_user(np.asarray(points, dtype=np.float64)) @ self.rotation


@dataclass(frozen=True)
class Inference:
    """A fitted code with its mesh in the user's frame.

    Attributes:
        fit: the optimisation's result.
        mesh: the code's zero level set, in the user's coordinates.
        pose: maps the user's coordinates to the canonical frame the code lives in.
        mesh_seconds: wall-clock time of the extraction.
    """

    fit: FittedCode
    mesh: trimesh.Trimesh
    pose: Pose
    mesh_seconds: float

    @property
    def frame(self) -> Normalization:
        """The pose's normalisation (of the rotated coordinates; the user's when unrotated)."""
        return self.pose.frame

    @property
    def rotation_degrees(self) -> float:
        """The chosen rotation about the space's up axis (see :class:`Pose`)."""
        return self.pose.degrees

    @property
    def seconds(self) -> float:
        """Optimisation and extraction."""
        return self.fit.seconds + self.mesh_seconds


# --------------------------------------------------------------------------------------------
# Reconstruction from SDF samples
# --------------------------------------------------------------------------------------------


def reconstruct_code(space: ShapeSpace, samples: SdfSamples, *, steps: int = DEEPSDF_STEPS,
                     lr: float = DEEPSDF_LR, init_std: float = DEEPSDF_INIT_STD,
                     prior: float | None = None, samples_per_step: int = DEEPSDF_SAMPLES_PER_STEP,
                     seed: int = 0) -> FittedCode:
    """A code for SDF ``samples`` (canonical frame) by DeepSDF's protocol (module notes).

    ``prior`` is the weight on ‖z‖² (None: the run's 1/σ²). The initial and final losses are the
    objective on every sample (not a minibatch), so they compare with :func:`sdf_objective` of
    any other code. Raises InputError for empty samples, samples on one side of the surface only,
    or a bad setting.
    """
    _check_schedule(steps, lr, init_std, samples_per_step)
    prior = _prior(space, prior)
    table = ShapeSamples.from_arrays([(samples.points, samples.sdf)], names=["SDF samples"])
    device = _device(space.decoder)
    points, sdf = table.points.to(device), table.sdf.to(device)
    init_generator, generator = _generators(seed)
    clamp = space.config.clamp

    def objective(codes: torch.Tensor, _: torch.Tensor) -> torch.Tensor:
        rows = table.draw_rows(torch.zeros(1, dtype=torch.int64), samples_per_step, generator).to(device)
        predicted = space.decoder(points[rows], codes[0])
        return (clamped_l1(predicted, sdf[rows], clamp) + prior * codes[0].square().sum())[None]

    def full_objective(code: torch.Tensor, _: int) -> float:
        return sdf_objective(space, samples, code, prior)

    init = torch.randn(1, space.codes.shape[1], generator=init_generator) * init_std
    return _fit(space.decoder, init, objective, full_objective, steps, lr, steps)


def sdf_objective(space: ShapeSpace, samples: SdfSamples, code: torch.Tensor,
                  prior: float | None = None) -> float:
    """``mean |clamp(f(x, z), δ) − clamp(s, δ)| + prior · ‖z‖²`` over every sample, for
    ``code`` (L,); ``prior`` None: the run's 1/σ². The reconstruction objective."""
    prior = _prior(space, prior)
    device = _device(space.decoder)
    code = torch.as_tensor(code, dtype=torch.float32).to(device)
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(samples.sdf), EVALUATION_CHUNK):
            points = torch.as_tensor(samples.points[start:start + EVALUATION_CHUNK]).to(device)
            sdf = torch.as_tensor(samples.sdf[start:start + EVALUATION_CHUNK]).to(device)
            error = clamped_l1(space.decoder(points, code), sdf, space.config.clamp)
            total += float(error) * len(sdf)
    return total / len(samples.sdf) + prior * float(code.square().sum())


def reconstruct(space: ShapeSpace, samples: SdfSamples, frame: Normalization,
                resolution: int | None = None, **options) -> Inference:
    """:func:`reconstruct_code` of canonical ``samples``, then its mesh in ``frame``'s user
    coordinates at ``resolution`` (default the run's ``extract.resolution``). ``options`` go to
    :func:`reconstruct_code`. Raises InputError when the code's field has no surface."""
    return mesh_fit(space, reconstruct_code(space, samples, **options), frame, resolution)


# --------------------------------------------------------------------------------------------
# Completion from a partial oriented point cloud
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CompletionPoints:
    """The points of one evaluation of the completion loss in each of C placements (canonical,
    on the decoder's device).

    surface (C, P, 3) with normals (C, P, 3); eikonal (C, R, 3); free (C, F, 3), F may be 0."""

    surface: torch.Tensor
    normals: torch.Tensor
    eikonal: torch.Tensor
    free: torch.Tensor


def complete_code(space: ShapeSpace, points: np.ndarray, normals: np.ndarray | None,
                  free_space: np.ndarray | None = None, *, restarts: int = 4,
                  steps: int = DEEPSDF_STEPS, lr: float = DEEPSDF_LR, init_std: float | None = None,
                  weights: CompletionWeights = CompletionWeights(), points_per_step: int = 256,
                  difference_step: float = DIFFERENCE_STEP, screen_steps: int | None = None,
                  seed: int = 0) -> FittedCode:
    """A code for a partial oriented point cloud by the completion loss (module notes).

    Args:
        space: the trained shape space (its decoder is not changed).
        points: (N, 3) observed surface points, canonical frame; or (C, N, 3), C candidate
            placements of the same points (e.g. rotations of a scan): the fit chooses one
            (:attr:`FittedCode.candidate`).
        normals: their outward unit normals, the shape of ``points`` (required).
        free_space: (M, 3) points known to be outside the shape (e.g.
            :func:`isofield.geometry.scan.free_space_samples` mapped to the canonical frame), or
            (C, M, 3) in each placement, or None; those outside the canonical extraction box in
            any placement are dropped.
        restarts: K, codes optimised from different random starts (the same K in every
            placement), together for ``screen_steps`` (None: ``steps // 8``); then the best
            row continues alone.
        steps, lr: Adam's schedule (the learning rate drops 10x after half the steps).
        init_std: standard deviation of each initial code component; None: the root-mean-square
            component of the trained codes.
        weights: the loss weights.
        points_per_step: P observed points per step (with replacement); P / 2 eikonal points
            and, when given, P free-space points.
        seed: seed of every draw.

    Returns:
        A :class:`FittedCode` whose losses are the objective on fixed points
        (:data:`EVALUATION_POINTS` of each kind), the same for every row.
    """
    surface, unit_normals = _placements(points, normals)
    free = _free_placements(space, free_space, len(surface))
    restarts = _positive_int(restarts, "restarts")
    if init_std is None:
        init_std = float(space.codes.square().mean().sqrt())
    _check_schedule(steps, lr, init_std, points_per_step)
    if not (isinstance(difference_step, (int, float)) and 0 < difference_step < np.inf):
        raise InputError(f"difference step: expected a positive number, got {difference_step!r}")
    screen = (max(1, steps // SCREEN_FRACTION) if screen_steps is None
              else _positive_int(screen_steps, "screen steps"))
    prior = _prior(space, weights.prior)
    device = _device(space.decoder)
    init_generator, generator = _generators(seed)
    surface_t, normals_t, free_t = (torch.from_numpy(array) for array in (surface, unit_normals, free))
    near_std = space.config.clamp / 2

    def draw(count: int) -> _CompletionPoints:
        rows = torch.randint(surface_t.shape[1], (count,), generator=generator)
        near = surface_t[:, rows[: count // 4]] + near_std * torch.randn(count // 4, 3, generator=generator)
        box = 2 * torch.rand(count // 2 - count // 4, 3, generator=generator) - 1
        seen_through = (free_t[:, torch.randint(free_t.shape[1], (count,), generator=generator)]
                        if free_t.shape[1] else free_t)
        eikonal = torch.cat([near, box.expand(len(surface_t), -1, -1)], dim=1)
        return _CompletionPoints(surface_t[:, rows].to(device), normals_t[:, rows].to(device),
                                 eikonal.to(device), seen_through.to(device))

    def objective(codes: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return _completion_loss(space.decoder, codes, rows // restarts, draw(points_per_step), weights,
                                prior, difference_step)

    fixed = draw(EVALUATION_POINTS)

    def full_objective(code: torch.Tensor, row: int) -> float:
        placement = torch.tensor([row // restarts], device=device)
        with torch.no_grad():
            return float(_completion_loss(space.decoder, code[None].to(device), placement, fixed, weights,
                                          prior, difference_step)[0])

    init = torch.randn(restarts, space.codes.shape[1], generator=init_generator) * init_std
    return _fit(space.decoder, init, objective, full_objective, steps, lr, screen, len(surface))


def _completion_loss(decoder: nn.Module, codes: torch.Tensor, placements: torch.Tensor,
                     batch: _CompletionPoints, weights: CompletionWeights, prior: float,
                     step: float) -> torch.Tensor:
    """The completion loss (K,) of codes (K, L), code k on the points of placement
    ``placements[k]`` of ``batch`` (the same draw in every placement); ∇f by forward
    differences of width ``step`` (see :func:`_stencil`)."""
    count = len(codes)
    stencil = _stencil(torch.cat([batch.surface, batch.eikonal], dim=1), step)[placements]  # (K, 4, S, 3)
    points = torch.cat([stencil.reshape(count, -1, 3), batch.free[placements]], dim=1)  # (K, Q, 3)
    values = decoder(points.reshape(-1, 3), codes.repeat_interleave(points.shape[1], dim=0))
    values = values.reshape(count, -1)
    around = values[:, : stencil.shape[1] * stencil.shape[2]].reshape(stencil.shape[:3])
    gradients = (around[:, 1:] - around[:, :1]).transpose(1, 2) / step      # (K, S, 3)
    surface = batch.surface.shape[1]
    normals = batch.normals[placements]
    free = values[:, stencil.shape[1] * stencil.shape[2]:]
    losses = []
    for k in range(count):
        loss = (weights.surface * surface_loss(around[k, 0, :surface])
                + weights.normal * normal_loss(gradients[k, :surface], normals[k])
                + weights.eikonal * eikonal_loss(gradients[k, surface:], power=1)
                + prior * codes[k].square().sum())
        if free.shape[1]:
            loss = loss + weights.free_space * torch.relu(weights.margin - free[k]).mean()
        losses.append(loss)
    return torch.stack(losses)


def _free_placements(space: ShapeSpace, free_space: np.ndarray | None, count: int) -> np.ndarray:
    """(C, M', 3) float32 free-space points in each of ``count`` = C placements, from (M, 3)
    (the same in every placement) or (C, M, 3); only the points inside the canonical extraction
    box in every placement are kept: the decoder never saw anything beyond it, and a free-space
    ray reaches back to the camera, far outside."""
    if free_space is None:
        return np.zeros((count, 0, 3), dtype=np.float32)
    array = np.asarray(free_space)
    placed = array if array.ndim == 3 else np.broadcast_to(array, (count, *array.shape))
    if len(placed) != count:
        raise InputError(f"free-space points: {len(placed)} placements for {count} of the scan")
    checked = np.stack([_point_array(points, "free-space points") for points in placed])
    low, high = canonical_bounds(space.config)
    return checked[:, np.all((checked >= low) & (checked <= high), axis=(0, 2))]


def _stencil(points: torch.Tensor, step: float) -> torch.Tensor:
    """(C, 4, N, 3): the points (C, N, 3), then moved by ``step`` along x, y and z.

    The completion loss takes ∇f from these by forward differences instead of autograd: the
    decoder is a ReLU network (DeepSDF's, and isofield's presets), whose ∇f is piecewise
    constant in x and z, so the autograd gradient of ‖∇f − n‖ with respect to the code is zero
    almost everywhere; differences of values depend on the code smoothly.
    """
    offsets = torch.cat([torch.zeros(1, 3), torch.eye(3)]).to(points) * step
    return points[:, None] + offsets[None, :, None]


def complete(space: ShapeSpace, points: np.ndarray, normals: np.ndarray | None,
             frame: Normalization | None = None, free_space: np.ndarray | None = None,
             resolution: int | None = None, **options) -> Inference:
    """:func:`complete_fit` of a partial scan given in the user's coordinates, then its mesh
    there (``resolution``: default the run's ``extract.resolution``). Raises InputError when
    the code's field has no surface."""
    fit, pose = complete_fit(space, points, normals, frame, free_space, **options)
    return mesh_fit(space, fit, pose, resolution)


def complete_fit(space: ShapeSpace, points: np.ndarray, normals: np.ndarray | None,
                 frame: Normalization | None = None, free_space: np.ndarray | None = None, *,
                 up: Sequence[float] | None = None, front: Sequence[float] | None = None,
                 rotations: int | None = None, **options) -> tuple[FittedCode, Pose]:
    """:func:`complete_code` of a partial scan in the user's coordinates, in the best of the
    :func:`candidate_poses` (module notes, "Orientation").

    Args:
        points, normals: (N, 3) the scan's points and outward normals, user coordinates.
        frame: the canonical frame of the complete shape when known (e.g. a test shape's
            stored normalisation); None: :func:`scan_frame` of the points in each candidate.
        free_space: (M, 3) points outside the shape, user coordinates, or None.
        up, front, rotations: the orientation, see :func:`candidate_poses`.
        options: go to :func:`complete_code`.

    Returns:
        (the fit, the chosen pose: user coordinates -> the code's canonical frame).
    """
    surface, unit_normals = _oriented_points(points, normals)
    poses = candidate_poses(surface, frame, up=up, front=front, rotations=rotations)
    free = None if free_space is None else _point_array(free_space, "free-space points")
    fit = complete_code(space, np.stack([pose.to_canonical(surface) for pose in poses]),
                        np.stack([pose.directions_to_canonical(unit_normals) for pose in poses]),
                        None if free is None else np.stack([pose.to_canonical(free) for pose in poses]),
                        **options)
    return fit, poses[fit.candidate]


def candidate_poses(points: np.ndarray, frame: Normalization | None = None, *,
                    up: Sequence[float] | None = None, front: Sequence[float] | None = None,
                    rotations: int | None = None) -> list[Pose]:
    """The placements of a scan a completion tries (module notes, "Orientation").

    Args:
        points: (N, 3) the scan, user coordinates.
        frame: the complete shape's normalisation in the user's coordinates, rotated about its
            centre; None: :func:`scan_frame` of the rotated points.
        up: (3,) the shape's up direction in user coordinates; None: the space's (:data:`SPACE_UP`).
        front: (3,) the shape's front (needs ``up``): fixes the rotation, nothing is searched.
        rotations: angles about the up axis, ``360° j / rotations``; None: :data:`DEFAULT_ROTATIONS`,
            or 1 when ``front`` is given.

    Returns:
        ``rotations`` poses, the j-th rotated by ``360° j / rotations`` about the space's up.
    """
    alignment = _alignment(up, front)
    if rotations is None:
        rotations = DEFAULT_ROTATIONS if front is None else 1
    rotations = _positive_int(rotations, "rotations")
    if front is not None and rotations > 1:
        raise InputError(f"rotations: up and front fix the rotation, nothing to search ({rotations} "
                         "rotations asked for)")
    surface = _point_array(points, "scan points").astype(np.float64)
    poses = []
    for degrees in 360.0 * np.arange(rotations) / rotations:
        rotation = Rotation.from_rotvec(np.radians(degrees) * SPACE_UP).as_matrix() @ alignment
        placed = (scan_frame(surface @ rotation.T) if frame is None
                  else Normalization(rotation @ frame.center, frame.scale))
        poses.append(Pose(rotation, placed, float(degrees)))
    return poses


def _alignment(up: Sequence[float] | None, front: Sequence[float] | None) -> np.ndarray:
    """(3, 3) the rotation taking the user's ``up`` to :data:`SPACE_UP` (the smallest such
    rotation), and ``front`` (its part orthogonal to ``up``) to :data:`SPACE_FRONT` when given."""
    if up is None:
        if front is not None:
            raise InputError("front direction: needs the up direction too (--up X Y Z)")
        return np.eye(3)
    up_unit = _direction(up, "up")
    if front is None:
        return Rotation.align_vectors(SPACE_UP[None], up_unit[None])[0].as_matrix()
    front_unit = _direction(front, "front")
    across = front_unit - (front_unit @ up_unit) * up_unit
    if np.linalg.norm(across) < 1e-6:
        raise InputError(f"front direction {_vector(front)} is parallel to the up direction {_vector(up)}")
    across /= np.linalg.norm(across)
    return np.stack([np.cross(up_unit, across), up_unit, across])


def _direction(vector: Sequence[float], name: str) -> np.ndarray:
    """(3,) unit float64 ``vector``; InputError for a wrong shape, a non-finite or zero vector."""
    array = np.asarray(vector, dtype=np.float64)
    if array.shape != (3,) or not np.all(np.isfinite(array)) or not np.linalg.norm(array) > 0:
        raise InputError(f"{name} direction: expected 3 finite numbers, not all zero, got {_vector(vector)}")
    return array / np.linalg.norm(array)


def _vector(vector: Sequence[float]) -> str:
    return " ".join(f"{float(value):g}" for value in np.ravel(vector))


# --------------------------------------------------------------------------------------------
# Interpolation
# --------------------------------------------------------------------------------------------


def interpolation_codes(space: ShapeSpace, code_a: int | torch.Tensor | np.ndarray,
                        code_b: int | torch.Tensor | np.ndarray, count: int) -> torch.Tensor:
    """(count, L) codes ``(1 − t) a + t b`` for ``t = 0, 1/(count−1), ..., 1``: row 0 is exactly
    ``a`` and the last row exactly ``b`` (training shape indices or codes (L,))."""
    count = _positive_int(count, "interpolation count")
    if count < 2:
        raise InputError(f"interpolation count: expected at least 2 (both ends), got {count}")
    a, b = space.code(code_a), space.code(code_b)
    t = torch.linspace(0.0, 1.0, count)[:, None]  # exactly 0 and 1 at the ends
    return (1 - t) * a + t * b


def interpolate(space: ShapeSpace, code_a: int | torch.Tensor | np.ndarray,
                code_b: int | torch.Tensor | np.ndarray, count: int, resolution: int | None = None,
                frame: Normalization | None = None) -> list[trimesh.Trimesh]:
    """Meshes of :func:`interpolation_codes`, in the canonical frame (or ``frame``'s user
    coordinates). Raises InputError naming the step whose code has no surface."""
    meshes = []
    for step, code in enumerate(interpolation_codes(space, code_a, code_b, count)):
        try:
            meshes.append(_mesh(space, code, frame, resolution))
        except InputError as exc:
            raise InputError(f"interpolation step {step} of {count}: {exc}") from None
    return meshes


# --------------------------------------------------------------------------------------------
# Naming shapes
# --------------------------------------------------------------------------------------------


def find_shape(refs: Sequence[ShapeRef], name: str, where: str) -> ShapeRef:
    """The shape of ``refs`` named ``name``: its key (``dataset/class/id``) or its id when that
    is unique. InputError naming ``where`` (e.g. the data directory) otherwise."""
    matches = [ref for ref in refs if name in (ref.key, ref.shape_id)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        keys = ", ".join(ref.key for ref in matches[:3])
        raise InputError(f"{where}: shape id {name!r} is ambiguous ({keys}); give dataset/class/id")
    raise InputError(f"{where}: no shape {name!r} among its {len(refs)} shapes")


def training_index(space: ShapeSpace, name: str | int) -> int:
    """The code index of a training shape given by index, key or id."""
    if isinstance(name, (int, np.integer)) or str(name).isdigit():
        index = int(name)
        space.code(index)  # InputError when out of range
        return index
    ref = find_shape([shape.ref for shape in space.shapes], str(name), "training shapes of the run")
    return next(shape.index for shape in space.shapes if shape.ref == ref)


def load_samples(space: ShapeSpace, shape: str | Path) -> tuple[SdfSamples, Normalization, str]:
    """(SDF samples, their frame, a name) of ``shape``: an SDF samples ``.npz`` file, or a shape
    of the run's data directory named by key or id."""
    path = Path(shape)
    if path.suffix == ".npz":
        samples, frame = read_sdf_samples(path)
        return samples, frame, path.stem
    data = DeepSDFDataDir(space.data_dir)
    ref = find_shape(data.shapes(), str(shape), str(data.root))
    samples, frame = data.load_sdf(ref)
    return samples, frame, ref.shape_id


# --------------------------------------------------------------------------------------------
# The optimisation
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def frozen(decoder: nn.Module) -> Iterator[nn.Module]:
    """``decoder`` in eval mode with ``requires_grad = False`` on every parameter; its mode and
    flags are restored afterwards."""
    flags = [parameter.requires_grad for parameter in decoder.parameters()]
    was_training = decoder.training
    decoder.eval()
    for parameter in decoder.parameters():
        parameter.requires_grad_(False)
    try:
        yield decoder
    finally:
        for parameter, flag in zip(decoder.parameters(), flags):
            parameter.requires_grad_(flag)
        decoder.train(was_training)


def _fit(decoder: nn.Module, init: torch.Tensor,
         objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
         full_objective: Callable[[torch.Tensor, int], float], steps: int, lr: float,
         screen_steps: int, placements: int = 1) -> FittedCode:
    """Adam on the C x K rows (row ``c * K + k`` starts from ``init[k]``; C = ``placements``) of
    codes from ``init`` (K, L) minimising ``objective(codes (R, L), rows (R,)) -> (R,)``
    (summed; each term depends on its own code only), the learning rate times :data:`LR_DROP`
    from step ``steps // 2`` on. After ``screen_steps`` only the row with the lowest
    ``full_objective(code, row)`` is optimised further (Adam is per coordinate: the other rows
    get no gradient and are discarded)."""
    started = time.perf_counter()
    device = _device(decoder)
    starts = init.repeat(placements, 1)
    with frozen(decoder):
        initial = np.array([full_objective(code, row) for row, code in enumerate(starts)])
        codes = starts.clone().to(device).requires_grad_(True)
        optimiser = torch.optim.Adam([codes], lr=lr)
        rows = torch.arange(len(starts), device=device)
        history = np.empty((len(starts), steps))
        screened = None
        for step in range(steps):
            if step == screen_steps and len(starts) > 1:
                screened = np.array([full_objective(code, row) for row, code in enumerate(codes.detach())])
                rows = rows[int(np.argmin(screened))][None]
            if step == steps // 2 and step > 0:
                for group in optimiser.param_groups:
                    group["lr"] = lr * LR_DROP
            optimiser.zero_grad(set_to_none=True)
            losses = objective(codes[rows], rows)
            losses.sum().backward()
            optimiser.step()
            history[rows.cpu().numpy(), step] = losses.detach().cpu().numpy()
        if screened is None:  # every row ran to the end
            screened = np.array([full_objective(code, row) for row, code in enumerate(codes.detach())])
            chosen = int(np.argmin(screened))
            final = float(screened[chosen])
        else:
            chosen = int(rows[0])
            final = full_objective(codes.detach()[chosen], chosen)
    candidate, best = divmod(chosen, len(init))
    return FittedCode(codes.detach()[chosen].cpu().clone(), best, candidate, init, initial, screened,
                      final, history[chosen], min(screen_steps, steps), time.perf_counter() - started)


# --------------------------------------------------------------------------------------------
# Meshes
# --------------------------------------------------------------------------------------------


def mesh_fit(space: ShapeSpace, fit: FittedCode, placement: Normalization | Pose,
             resolution: int | None = None) -> Inference:
    """The mesh of a fitted code in the user coordinates of ``placement`` (a frame, or a
    :class:`Pose`: rotated back) at ``resolution`` (default the run's ``extract.resolution``);
    InputError when the code's field has no surface."""
    started = time.perf_counter()
    pose = placement if isinstance(placement, Pose) else Pose.of(placement)
    mesh = _mesh(space, fit.code, pose.frame, resolution)
    if not np.array_equal(pose.rotation, np.eye(3)):
        back = np.eye(4)
        back[:3, :3] = pose.rotation.T  # x_user = x_rotated @ rotation
        mesh.apply_transform(back)
    return Inference(fit, mesh, pose, time.perf_counter() - started)


def _mesh(space: ShapeSpace, code: torch.Tensor, frame: Normalization | None,
          resolution: int | None) -> trimesh.Trimesh:
    mesh, _ = code_mesh(space.decoder, code, space.config,
                        resolution or space.config.extract.resolution, frame)
    return mesh


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _generators(seed: int) -> tuple[torch.Generator, torch.Generator]:
    """Two independent generators from ``seed``: one for the initial codes, one for the points
    drawn at each step, so restart k starts from the same code whatever the number of restarts
    and every restart sees the same points."""
    init_seed, draw_seed = np.random.SeedSequence(seed).generate_state(2)
    return torch.Generator().manual_seed(int(init_seed)), torch.Generator().manual_seed(int(draw_seed))


def _device(decoder: nn.Module) -> torch.device:
    return next(decoder.parameters()).device


def _prior(space: ShapeSpace, prior: float | None) -> float:
    if prior is None:
        return 1.0 / space.config.code_prior_sigma ** 2
    if not (np.isfinite(prior) and prior >= 0):
        raise InputError(f"code prior weight: expected a number >= 0, got {prior!r}")
    return float(prior)


def _check_schedule(steps: int, lr: float, init_std: float, per_step: int) -> None:
    _positive_int(steps, "steps")
    _positive_int(per_step, "points per step")
    if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
        raise InputError(f"learning rate: expected a positive number, got {lr!r}")
    if not (isinstance(init_std, (int, float)) and np.isfinite(init_std) and init_std >= 0):
        raise InputError(f"initial code std: expected a number >= 0, got {init_std!r}")


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _point_array(points: np.ndarray, name: str) -> np.ndarray:
    """(N, 3) finite float32 points, N >= 1, else InputError naming ``name``."""
    array = np.asarray(points)
    if array.ndim != 2 or array.shape[1] != 3 or len(array) == 0:
        raise InputError(f"{name}: expected a non-empty array of shape (N, 3), got {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
        raise InputError(f"{name}: coordinates must be finite numbers")
    return array.astype(np.float32)


def _placements(points: np.ndarray, normals: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Checked (C, N, 3) points and unit normals from (N, 3) arrays (C = 1) or (C, N, 3) ones."""
    array = np.asarray(points)
    if array.ndim != 3:
        surface, unit = _oriented_points(points, normals)
        return surface[None], unit[None]
    if len(array) == 0:
        raise InputError("partial point cloud: no placements (an array of shape (0, N, 3))")
    if normals is not None and np.shape(normals) != array.shape:
        raise InputError(f"partial point cloud: normals of shape {np.shape(normals)} for points of shape "
                         f"{array.shape}")
    pairs = [_oriented_points(placed, None if normals is None else normals[c])
             for c, placed in enumerate(array)]
    return np.stack([surface for surface, _ in pairs]), np.stack([unit for _, unit in pairs])


def _oriented_points(points: np.ndarray, normals: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Checked (N, 3) points and unit normals; InputError when the normals are missing."""
    surface = _point_array(points, "partial point cloud")
    if normals is None:
        raise InputError("partial point cloud: has no normals; completion needs oriented points "
                         "(e.g. a PLY with nx/ny/nz, as `isofield scan` writes)")
    unit = _point_array(normals, "partial point cloud normals")
    if len(unit) != len(surface):
        raise InputError(f"partial point cloud: {len(unit)} normals for {len(surface)} points")
    lengths = np.linalg.norm(unit, axis=1, keepdims=True)
    if np.any(lengths == 0):
        raise InputError("partial point cloud: has normals of zero length")
    return surface, (unit / lengths).astype(np.float32)
