"""Evaluation metrics between a predicted and a reference shape, under a named protocol.

Point-set metrics compare a predicted set ``a`` (N, D) with a reference set ``b`` (M, D),
D = 2 or 3, in the units of the inputs. The papers of the field disagree on what "Chamfer
distance" means, so every variant here has its own name and exact definition. With
``d_ab[i] = min_j |a_i - b_j|`` (Euclidean) and ``d_ba[j] = min_i |b_j - a_i|``:

- ``chamfer_l1``      = 0.5 * (mean d_ab + mean d_ba)            (Occupancy Networks' "Chamfer-L1")
- ``chamfer_l2``      = 0.5 * (mean d_ab**2 + mean d_ba**2)      (mean of the two one-sided means
                                                                  of squared distances)
- ``chamfer_deepsdf`` = mean d_ab**2 + mean d_ba**2              (DeepSDF's CD: their sum)
- ``hausdorff``       = max(max d_ab, max d_ba)
- ``normal_consistency`` = 0.5 * (mean_i |n_a[i] . n_b[nn_b(i)]| + mean_j |n_b[j] . n_a[nn_a(j)]|)
  (Occupancy Networks; the absolute value makes it blind to flipped orientation)
- ``f_score(tau)``: precision = fraction of a with d_ab < tau, recall = fraction of b with
  d_ba < tau, F = 2PR / (P + R) (0 when both are 0) (Tatarchenko et al. 2019)
- ``surface_chamfer_l1`` = 0.5 * (mean_i dist(a_i, B) + mean_j dist(b_j, A)) for surface samples
                        a, b of meshes A, B: the distances to the other mesh's triangles, not to
                        its samples. It has no floor from the sampling: a mesh against itself
                        gives 0, where ``chamfer_l1`` of two 100k samplings of CGAL's bunny gives
                        0.15% of its diagonal (:func:`evaluate_meshes` with ``surface=True``)
- ``emd``             = min over bijections pi of mean_i |a_i - b_pi(i)| between equal-size random
                        subsets (``EMD_POINTS`` each) of the two sets: the earth mover's distance
                        with Euclidean ground cost, solved exactly (:func:`earth_movers_distance`)

Both nearest-neighbour directions are found once (:func:`nearest_neighbours`, SciPy's cKDTree
on all cores) and every metric but EMD is derived from that matching (EMD costs about a second,
so the evaluations compute it only when asked: ``emd=True``). :func:`evaluate_meshes` and
:func:`evaluate_points` return all metrics in one dict that names its protocol ("isofield-v1"),
its sampling, its F-score threshold and its units; :func:`format_metrics` prints that dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import trimesh
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree
from scipy.spatial.distance import cdist

from isofield.errors import InputError
from isofield.geometry.groundtruth import MeshDistance, TriangleDistance, inside_test
from isofield.geometry.sampling import sample_surface
from isofield.metrics.checks import (
    checked_bounds,
    checked_count,
    checked_mesh,
    checked_normals,
    checked_pair,
    checked_points,
    checked_positive,
)

PROTOCOL_NAME = "isofield-v1"
DEFAULT_TAU_FRACTION = 0.01
# IoU points fill the union bounding box grown on every side by this fraction of its diagonal
IOU_BOX_PADDING = 0.01
# points per set in the EMD's exact assignment: (EMD_POINTS, EMD_POINTS) float64 costs = 32 MB
EMD_POINTS = 2048


class FScore(NamedTuple):
    """F-score at a distance threshold, with its two halves (all in [0, 1])."""

    f_score: float
    precision: float
    recall: float


@dataclass(frozen=True)
class NearestNeighbours:
    """The nearest-neighbour matching between point sets a (N, D) and b (M, D), both directions.

    Attributes:
        distance_ab: (N,) float64, Euclidean distance from each ``a[i]`` to its nearest point of b.
        index_ab: (N,) int64, the index into b of that nearest point.
        distance_ba: (M,) float64, distance from each ``b[j]`` to its nearest point of a.
        index_ba: (M,) int64, the index into a of that nearest point.
    """

    distance_ab: np.ndarray
    index_ab: np.ndarray
    distance_ba: np.ndarray
    index_ba: np.ndarray

    def chamfer_l1(self) -> float:
        """0.5 * (mean d_ab + mean d_ba), in input units."""
        return 0.5 * (float(self.distance_ab.mean()) + float(self.distance_ba.mean()))

    def chamfer_l2(self) -> float:
        """0.5 * (mean d_ab**2 + mean d_ba**2), in squared input units."""
        return 0.5 * self._sum_of_mean_squares()

    def chamfer_deepsdf(self) -> float:
        """mean d_ab**2 + mean d_ba**2 (DeepSDF), in squared input units."""
        return self._sum_of_mean_squares()

    def hausdorff(self) -> float:
        """max(max d_ab, max d_ba), in input units."""
        return max(float(self.distance_ab.max()), float(self.distance_ba.max()))

    def f_score(self, tau: float) -> FScore:
        """F-score at threshold ``tau`` (input units); a point counts if closer than tau."""
        tau = checked_positive(tau, "f-score threshold tau")
        precision = float(np.mean(self.distance_ab < tau))
        recall = float(np.mean(self.distance_ba < tau))
        both = precision + recall
        return FScore(2.0 * precision * recall / both if both > 0 else 0.0, precision, recall)

    def normal_consistency(self, normals_a: np.ndarray, normals_b: np.ndarray) -> float:
        """Mean over both directions of |dot(n, n_nearest)|, in [0, 1].

        Args:
            normals_a: (N, D) normals of a; normalised here, zero-length ones are an error.
            normals_b: (M, D) normals of b.
        """
        unit_a = checked_normals(normals_a, len(self.distance_ab), "normals_a")
        unit_b = checked_normals(normals_b, len(self.distance_ba), "normals_b")
        cos_ab = np.abs(np.einsum("ij,ij->i", unit_a, unit_b[self.index_ab]))
        cos_ba = np.abs(np.einsum("ij,ij->i", unit_b, unit_a[self.index_ba]))
        return 0.5 * (float(cos_ab.mean()) + float(cos_ba.mean()))

    def _sum_of_mean_squares(self) -> float:
        return float(np.mean(self.distance_ab**2)) + float(np.mean(self.distance_ba**2))


def nearest_neighbours(a: np.ndarray, b: np.ndarray) -> NearestNeighbours:
    """Match a (N, D) and b (M, D) both ways with KD-trees (all cores); D = 2 or 3."""
    points_a, points_b = checked_pair(a, b)
    distance_ab, index_ab = cKDTree(points_b).query(points_a, k=1, workers=-1)
    distance_ba, index_ba = cKDTree(points_a).query(points_b, k=1, workers=-1)
    return NearestNeighbours(
        distance_ab, index_ab.astype(np.int64), distance_ba, index_ba.astype(np.int64)
    )


def chamfer_l1(a: np.ndarray, b: np.ndarray) -> float:
    """Chamfer-L1 (Occupancy Networks): mean of the two one-sided MEAN EUCLIDEAN distances.

    ``0.5 * (mean_i min_j |a_i - b_j| + mean_j min_i |b_j - a_i|)`` for a (N, D), b (M, D);
    in input units.
    """
    return nearest_neighbours(a, b).chamfer_l1()


def chamfer_l2(a: np.ndarray, b: np.ndarray) -> float:
    """Chamfer-L2: mean of the two one-sided means of SQUARED Euclidean distances.

    ``0.5 * (mean_i min_j |a_i - b_j|^2 + mean_j min_i |b_j - a_i|^2)``; in squared input units.
    Half of :func:`chamfer_deepsdf`.
    """
    return nearest_neighbours(a, b).chamfer_l2()


def chamfer_deepsdf(a: np.ndarray, b: np.ndarray) -> float:
    """DeepSDF's Chamfer distance: the SUM of the two one-sided means of squared distances.

    ``mean_i min_j |a_i - b_j|^2 + mean_j min_i |b_j - a_i|^2``; in squared input units.
    """
    return nearest_neighbours(a, b).chamfer_deepsdf()


def hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric Hausdorff distance: the larger of the two one-sided maxima; input units."""
    return nearest_neighbours(a, b).hausdorff()


def f_score(a: np.ndarray, b: np.ndarray, tau: float) -> FScore:
    """F-score of prediction a (N, D) against reference b (M, D) at threshold tau (input units).

    precision = fraction of a strictly closer than tau to b; recall = fraction of b strictly
    closer than tau to a; F = 2PR / (P + R), 0 when P = R = 0.
    """
    return nearest_neighbours(a, b).f_score(tau)


def normal_consistency(
    a: np.ndarray, normals_a: np.ndarray, b: np.ndarray, normals_b: np.ndarray
) -> float:
    """Normal consistency (Occupancy Networks), in [0, 1].

    ``0.5 * (mean_i |n_a[i] . n_b[nn(i)]| + mean_j |n_b[j] . n_a[nn(j)]|)`` where nn is the
    nearest point of the other set. The ABSOLUTE value of the dot product is taken, so an
    anti-parallel (flipped) normal scores 1 like a parallel one. Normals are normalised first.
    """
    return nearest_neighbours(a, b).normal_consistency(normals_a, normals_b)


def earth_movers_distance(
    a: np.ndarray, b: np.ndarray, count: int = EMD_POINTS, seed: int = 0
) -> float:
    """Earth mover's distance: mean Euclidean length of the optimal bijection between subsets.

    ``n = min(count, N, M)`` points are drawn without replacement from each of a (N, D) and
    b (M, D), D = 2 or 3; the result is ``min over bijections pi of (1/n) sum_i |a_i - b_pi(i)|``,
    in input units, solved exactly by ``scipy.optimize.linear_sum_assignment`` on the (n, n)
    Euclidean distance matrix. Each set's subset comes from its own
    ``numpy.random.default_rng(seed)``, so the value is symmetric in a and b, repeatable, and a
    set no larger than ``n`` is used whole. Two sets that are translates of each other by t, or
    have equal size <= count and differ by a permutation, score exactly |t|, or 0.

    Cost at the default n = 2048 (measured on a loaded 2-core machine): 32 MB of costs and
    0.6-1.4 s (armadillo surface samples 1.3-1.4 s); the assignment dominates and grows about
    as n^3 (0.2-0.4 s at 1024, about 8 s at 4096). Two independent 2048-point samples of the
    SAME surface already score about 0.08 on a unit sphere (1.9-2.2% of the armadillo's
    bounding-box diagonal): compare EMDs only at equal n.
    """
    points_a, points_b = checked_pair(a, b)
    n = min(checked_count(count, "EMD point count"), len(points_a), len(points_b))
    subset_a, subset_b = (random_subset(points, n, seed) for points in (points_a, points_b))
    costs = cdist(subset_a, subset_b)
    rows, columns = linear_sum_assignment(costs)
    return float(costs[rows, columns].mean())


def random_subset(points: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n of the (N, D) points, without replacement; all of them, in order, when n == N."""
    if n == len(points):
        return points
    return points[np.random.default_rng(seed).choice(len(points), n, replace=False)]


def watertight_problem(pred_mesh: trimesh.Trimesh, ref_mesh: trimesh.Trimesh) -> str | None:
    """Why volumetric IoU cannot be computed (which mesh is not watertight), or None."""
    leaky = [
        name
        for name, mesh in (("predicted", pred_mesh), ("reference", ref_mesh))
        if not mesh.is_watertight
    ]
    if not leaky:
        return None
    return f"{' and '.join(leaky)} mesh{'es are' if len(leaky) == 2 else ' is'} not watertight"


def volumetric_iou(
    pred_mesh: trimesh.Trimesh,
    ref_mesh: trimesh.Trimesh,
    n: int = 100_000,
    seed: int = 0,
    bounds: np.ndarray | None = None,
    ref_distance: MeshDistance | None = None,
) -> float:
    """Volumetric IoU of two watertight meshes by Monte Carlo: |inside both| / |inside either|.

    Args:
        pred_mesh, ref_mesh: watertight meshes (the inside test is a generalised winding number).
        n: number of points drawn uniformly in ``bounds``.
        seed: seed of those points.
        bounds: (2, 3) [min corner, max corner] of the sampling box; default: the union of the
            two bounding boxes, grown on every side by ``IOU_BOX_PADDING`` of its diagonal.
        ref_distance: ``MeshDistance(ref_mesh)`` when the caller has built it for other uses
            (it is reused; else it is built here).

    Raises:
        InputError: a mesh is empty or not watertight (the message says which), bad n or bounds,
            or no sample fell inside either mesh.
    """
    checked_mesh(pred_mesh, "predicted mesh")
    checked_mesh(ref_mesh, "reference mesh")
    problem = watertight_problem(pred_mesh, ref_mesh)
    if problem:
        raise InputError(f"volumetric IoU needs closed meshes: {problem}")
    box = _union_box(pred_mesh, ref_mesh) if bounds is None else checked_bounds(bounds)
    count = checked_count(n, "IoU sample count n")
    points = np.random.default_rng(seed).uniform(box[0], box[1], size=(count, 3)).astype(np.float32)
    inside_pred = inside_test(pred_mesh)(points)
    inside_ref = ref_distance.occupancy(points) if ref_distance else inside_test(ref_mesh)(points)
    union = int(np.count_nonzero(inside_pred | inside_ref))
    if union == 0:
        raise InputError(
            f"volumetric IoU: none of the {count} sample points fell inside either mesh"
        )
    return int(np.count_nonzero(inside_pred & inside_ref)) / union


def evaluate_points(
    pred_points: np.ndarray,
    ref_points: np.ndarray,
    pred_normals: np.ndarray | None = None,
    ref_normals: np.ndarray | None = None,
    tau: float | None = None,
    tau_fraction: float = DEFAULT_TAU_FRACTION,
    emd: bool = False,
    seed: int = 0,
) -> dict:
    """All point-set metrics of pred_points (N, D) against ref_points (M, D).

    Normal consistency needs both normal arrays ((N, D), (M, D)); without them it is None and
    ``result["skipped"]["normal_consistency"]`` says why. Volumetric IoU does not apply to points
    (None, with a reason). ``tau``: absolute F-score threshold; by default ``tau_fraction`` of the
    reference bounding-box diagonal. ``emd=True`` adds ``emd`` (:func:`earth_movers_distance` on
    ``EMD_POINTS`` points per set drawn with ``seed``). See :func:`evaluate_meshes` for the keys
    of the result.
    """
    ref = checked_points(ref_points, "reference points")
    result = _point_metrics(
        pred_points, ref, pred_normals, ref_normals, tau, tau_fraction, _bbox_diagonal(ref)
    )
    result["protocol"].update(input="points", units="reference point units")
    _skip(result, "iou", "volumetric IoU needs meshes, not point clouds")
    if emd:
        _add_emd(result, pred_points, ref, seed)
    return result


def evaluate_meshes(
    pred: trimesh.Trimesh,
    ref: trimesh.Trimesh,
    n_points: int = 100_000,
    seed: int = 0,
    tau: float | None = None,
    tau_fraction: float = DEFAULT_TAU_FRACTION,
    iou: bool = True,
    emd: bool = False,
    surface: bool = False,
    ref_distance: MeshDistance | None = None,
) -> dict:
    """All metrics of a predicted mesh against a reference mesh (protocol "isofield-v1").

    Each mesh gets ``n_points`` area-weighted surface samples with face normals; volumetric IoU
    uses ``n_points`` uniform points in the padded union bounding box. The random streams
    (pred samples, ref samples, IoU points, EMD subsets) come from ``np.random.SeedSequence(seed)``,
    so the same seed gives identical numbers. ``emd=True`` adds ``emd`` (about a second; see
    :func:`earth_movers_distance`) on ``EMD_POINTS`` of the surface samples per mesh, and
    ``protocol["emd_points"]``; by default neither key is present. ``surface=True`` adds
    ``surface_chamfer_l1`` and ``surface_chamfer_l1_percent_of_diagonal`` (see
    :func:`surface_chamfer_l1`) and ``protocol["surface_distance"]``. The F-score threshold is
    ``tau`` (absolute) if given, else ``tau_fraction`` of the reference mesh's bounding-box
    diagonal. ``ref_distance``: see :func:`volumetric_iou` (also the reference's triangle
    distances of ``surface``).

    Returns:
        A dict with ``protocol`` (name, input, n_points, seed, sampling, tau, tau_rule, units,
        n_pred_points, n_ref_points), ``chamfer_l1``, ``chamfer_l2``, ``chamfer_deepsdf``,
        ``hausdorff``, ``normal_consistency``, ``f_score``, ``precision``, ``recall``, ``iou``,
        ``reference_bbox_diagonal``, ``chamfer_l1_percent_of_diagonal`` (plain floats), and
        ``skipped``: {metric: reason} for every metric that is None (e.g. IoU of a mesh that is
        not watertight). Lengths are in reference mesh units, chamfer_l2/deepsdf in their square.
    """
    checked_mesh(pred, "predicted mesh")
    checked_mesh(ref, "reference mesh")
    count = checked_count(n_points, "n_points")
    # generate_state(k) extends generate_state(k - 1): adding the EMD stream kept the others
    pred_seed, ref_seed, iou_seed, emd_seed = (
        int(s) for s in np.random.SeedSequence(seed).generate_state(4)
    )
    pred_samples = sample_surface(pred, count, pred_seed)
    ref_samples = sample_surface(ref, count, ref_seed)
    result = _point_metrics(
        pred_samples.points,
        ref_samples.points,
        pred_samples.normals,
        ref_samples.normals,
        tau,
        tau_fraction,
        float(np.linalg.norm(ref.bounds[1] - ref.bounds[0])),
    )
    result["protocol"].update(
        input="meshes",
        n_points=count,
        seed=seed,
        sampling=f"{count} area-weighted surface samples per mesh; IoU on {count} uniform points "
        "in the padded union bounding box",
        units="reference mesh units",
    )
    problem = "not requested (iou=False)" if not iou else watertight_problem(pred, ref)
    if problem:
        _skip(result, "iou", problem)
    else:
        result["iou"] = volumetric_iou(pred, ref, n=count, seed=iou_seed, ref_distance=ref_distance)
    if emd:
        _add_emd(result, pred_samples.points, ref_samples.points, emd_seed)
    if surface:
        _add_surface_chamfer(result, pred, ref, pred_samples.points, ref_samples.points, ref_distance)
    return result


def surface_chamfer_l1(pred: trimesh.Trimesh, ref: trimesh.Trimesh, pred_points: np.ndarray,
                       ref_points: np.ndarray, ref_distance: MeshDistance | None = None) -> float:
    """Chamfer-L1 with exact point-to-surface distances: ``0.5 * (mean distance of pred_points
    (N, 3) to ref's triangles + mean distance of ref_points (M, 3) to pred's triangles)``, in
    input units; the points are each mesh's own surface samples. libigl's AABB trees
    (:class:`~isofield.geometry.groundtruth.TriangleDistance`); ``ref_distance``: the
    reference's :class:`MeshDistance` when built already."""
    to_ref = ref_distance.unsigned if ref_distance is not None else TriangleDistance(ref.vertices, ref.faces)
    to_pred = TriangleDistance(pred.vertices, pred.faces)
    return 0.5 * (float(np.mean(to_ref(pred_points), dtype=np.float64))
                  + float(np.mean(to_pred(ref_points), dtype=np.float64)))


def _add_surface_chamfer(result: dict, pred: trimesh.Trimesh, ref: trimesh.Trimesh,
                         pred_points: np.ndarray, ref_points: np.ndarray,
                         ref_distance: MeshDistance | None) -> None:
    """Put ``surface_chamfer_l1`` (and its share of the reference's diagonal) into an
    evaluation result, and what it measures into the protocol record."""
    chamfer = surface_chamfer_l1(pred, ref, pred_points, ref_points, ref_distance)
    result["surface_chamfer_l1"] = chamfer
    _put_percent_of_diagonal(result, "surface_chamfer_l1_percent_of_diagonal", chamfer)
    result["protocol"]["surface_distance"] = "each mesh's surface samples to the other mesh's triangles"


def evaluate_mesh_against_points(
    pred: trimesh.Trimesh,
    ref_points: np.ndarray,
    ref_normals: np.ndarray | None = None,
    n_points: int = 100_000,
    seed: int = 0,
    tau: float | None = None,
    tau_fraction: float = DEFAULT_TAU_FRACTION,
) -> dict:
    """Metrics of a predicted mesh against a reference point set (M, 3), e.g. a scan.

    The mesh gets ``n_points`` area-weighted surface samples with face normals (the same stream
    as :func:`evaluate_meshes` uses for it); the reference points are used as they are. Normal
    consistency needs ``ref_normals`` (M, 3). Keys as in :func:`evaluate_points`.
    """
    checked_mesh(pred, "predicted mesh")
    count = checked_count(n_points, "n_points")
    pred_seed = int(np.random.SeedSequence(seed).generate_state(1)[0])
    pred_samples = sample_surface(pred, count, pred_seed)
    result = evaluate_points(pred_samples.points, ref_points, pred_samples.normals, ref_normals,
                             tau, tau_fraction)
    result["protocol"].update(
        input="mesh against points", n_points=count, seed=seed,
        sampling=f"{count} area-weighted surface samples of the mesh; the reference points as given",
    )
    return result


def evaluate_points_against_mesh(
    pred_points: np.ndarray,
    ref: trimesh.Trimesh,
    pred_normals: np.ndarray | None = None,
    n_points: int = 100_000,
    seed: int = 0,
    tau: float | None = None,
    tau_fraction: float = DEFAULT_TAU_FRACTION,
) -> dict:
    """Metrics of a predicted point set (N, 3), e.g. a reconstruction's cloud or a scan, against
    a reference mesh.

    The mesh gets ``n_points`` area-weighted surface samples with face normals (the same stream
    as :func:`evaluate_meshes` uses for its reference); the predicted points are used as they
    are. Normal consistency needs ``pred_normals`` (N, 3). The F-score threshold follows the
    reference mesh's diagonal as in :func:`evaluate_meshes`. Keys as in :func:`evaluate_points`.
    """
    checked_mesh(ref, "reference mesh")
    count = checked_count(n_points, "n_points")
    ref_seed = int(np.random.SeedSequence(seed).generate_state(2)[1])
    ref_samples = sample_surface(ref, count, ref_seed)
    result = evaluate_points(pred_points, ref_samples.points, pred_normals, ref_samples.normals,
                             tau, tau_fraction)
    result["protocol"].update(
        input="points against mesh", n_points=count, seed=seed,
        sampling=f"the predicted points as given; {count} area-weighted surface samples of the mesh",
    )
    return result


def _add_emd(result: dict, pred_points: np.ndarray, ref_points: np.ndarray, seed: int) -> None:
    """Put ``emd`` into an evaluation result and its point count into the protocol record."""
    result["emd"] = earth_movers_distance(pred_points, ref_points, EMD_POINTS, seed)
    result["protocol"]["emd_points"] = min(EMD_POINTS, len(pred_points), len(ref_points))


# (key, unit kind) in table order; "length" is the protocol's units
_TABLE_ROWS = (
    ("chamfer_l1", "length"),
    ("chamfer_l2", "squared length"),
    ("chamfer_deepsdf", "squared length"),
    ("hausdorff", "length"),
    ("emd", "length"),
    ("normal_consistency", "[0, 1]"),
    ("f_score", "[0, 1]"),
    ("precision", "[0, 1]"),
    ("recall", "[0, 1]"),
    ("iou", "[0, 1]"),
    ("reference_bbox_diagonal", "length"),
    ("chamfer_l1_percent_of_diagonal", "%"),
    ("surface_chamfer_l1", "length"),
    ("surface_chamfer_l1_percent_of_diagonal", "%"),
)


def format_metrics(result: dict) -> str:
    """A readable, aligned table of an :func:`evaluate_meshes` / :func:`evaluate_points` result."""
    protocol = result["protocol"]
    units = protocol["units"]
    unit_names = {"length": units, "squared length": f"({units})^2"}
    skipped = result.get("skipped", {})
    rows = [
        (key, _formatted(result[key]), skipped.get(key, unit_names.get(unit, unit)))
        for key, unit in _TABLE_ROWS
        if key in result
    ]
    key_width = max(len(key) for key, _, _ in rows)
    value_width = max(len(value) for _, value, _ in rows)
    header = [
        f"protocol  {protocol['name']} ({protocol['input']}: "
        f"{protocol['n_pred_points']} predicted, {protocol['n_ref_points']} reference points)",
        f"tau       {protocol['tau']:.6g} ({protocol['tau_rule']})",
        f"units     {units}",
        "",
    ]
    table = [f"{key:<{key_width}}  {value:>{value_width}}  {note}" for key, value, note in rows]
    return "\n".join(header + table)


def _formatted(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6g}"


def _point_metrics(
    pred_points: np.ndarray,
    ref_points: np.ndarray,
    pred_normals: np.ndarray | None,
    ref_normals: np.ndarray | None,
    tau: float | None,
    tau_fraction: float,
    reference_diagonal: float,
) -> dict:
    """Every point-set metric from one nearest-neighbour matching, with its protocol record."""
    pred = checked_points(pred_points, "predicted points")
    ref = checked_points(ref_points, "reference points")
    threshold, tau_rule = _resolve_tau(tau, tau_fraction, reference_diagonal)
    matching = nearest_neighbours(pred, ref)
    score = matching.f_score(threshold)
    chamfer = matching.chamfer_l1()
    result = {
        "protocol": {
            "name": PROTOCOL_NAME,
            "n_pred_points": len(pred),
            "n_ref_points": len(ref),
            "tau": threshold,
            "tau_rule": tau_rule,
        },
        "chamfer_l1": chamfer,
        "chamfer_l2": matching.chamfer_l2(),
        "chamfer_deepsdf": matching.chamfer_deepsdf(),
        "hausdorff": matching.hausdorff(),
        "normal_consistency": None,
        "f_score": score.f_score,
        "precision": score.precision,
        "recall": score.recall,
        "iou": None,
        "reference_bbox_diagonal": reference_diagonal,
        "chamfer_l1_percent_of_diagonal": None,
        "skipped": {},
    }
    _put_percent_of_diagonal(result, "chamfer_l1_percent_of_diagonal", chamfer)
    if pred_normals is None or ref_normals is None:
        _skip(result, "normal_consistency", "needs normals for both point sets")
    else:
        result["normal_consistency"] = matching.normal_consistency(pred_normals, ref_normals)
    return result


def _put_percent_of_diagonal(result: dict, key: str, length: float) -> None:
    """``result[key]``: ``length`` in % of the result's ``reference_bbox_diagonal``; skipped
    when that diagonal is 0."""
    diagonal = result["reference_bbox_diagonal"]
    if diagonal > 0:
        result[key] = 100.0 * length / diagonal
    else:
        _skip(result, key, "reference bounding box has zero diagonal")


def _skip(result: dict, key: str, reason: str) -> None:
    result[key] = None
    result["skipped"][key] = reason


def _resolve_tau(
    tau: float | None, tau_fraction: float, reference_diagonal: float
) -> tuple[float, str]:
    """The F-score threshold and the rule that produced it, for the protocol record."""
    if tau is not None:
        return checked_positive(tau, "tau"), "absolute (given)"
    fraction = checked_positive(tau_fraction, "tau_fraction")
    if reference_diagonal <= 0:
        raise InputError(
            "tau_fraction needs a reference with a non-zero bounding box; give an absolute tau"
        )
    return fraction * reference_diagonal, f"{100 * fraction:g}% of reference bbox diagonal"


def _bbox_diagonal(points: np.ndarray) -> float:
    return float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))


def _union_box(pred_mesh: trimesh.Trimesh, ref_mesh: trimesh.Trimesh) -> np.ndarray:
    """(2, 3) union of the meshes' bounding boxes, grown by IOU_BOX_PADDING of its diagonal."""
    low = np.minimum(pred_mesh.bounds[0], ref_mesh.bounds[0])
    high = np.maximum(pred_mesh.bounds[1], ref_mesh.bounds[1])
    pad = IOU_BOX_PADDING * float(np.linalg.norm(high - low))
    return np.stack([low - pad, high + pad])
