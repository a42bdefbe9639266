"""Point-cloud metrics of auto-encoding and generation, with PointFlow's conventions.

PointFlow (Yang et al. 2019, ``metrics/evaluation_metrics.py``) and ShapeGF (Cai et al. 2020,
which reuses that code) compare point clouds a (N, 3) and b (M, 3) with

- ``CD(a, b) = mean_i min_j |a_i - b_j|^2 + mean_j min_i |b_j - a_i|^2``: the SUM of the two
  one-sided means of SQUARED Euclidean distances, in squared input units; the same number as
  :func:`isofield.metrics.surface.chamfer_deepsdf`. Auto-encoding tables print it x10^4.
- ``EMD(a, b) = min over bijections pi of mean_i |a_i - b_pi(i)|``: the mean matched EUCLIDEAN
  distance of the optimal bijection between equal-size sets, in input units; printed x10^2.
  Exact by ``scipy.optimize.linear_sum_assignment``
  (:func:`isofield.metrics.surface.earth_movers_distance`) or approximated by log-domain
  Sinkhorn in torch (:func:`sinkhorn_emd`; the one part of the metrics that imports torch, when
  it runs).

A generated set S_g (G clouds) is compared with a reference set S_r (R clouds) through the
(G, R), (G, G) and (R, R) matrices of one of these distances D:

- ``MMD = mean over r in S_r of min over g in S_g of D(g, r)`` (:func:`mmd`; "minimum matching
  distance", lower is better);
- ``COV = |{argmin_r D(g, r) : g in S_g}| / R`` (:func:`coverage`; the fraction of references
  that are the nearest reference of some generated cloud, higher is better);
- ``1-NNA``: the leave-one-out accuracy of the 1-nearest-neighbour classifier on S_g and S_r
  together (:func:`one_nna`; 0.5 is ideal for G = R, 1.0 when the sets are far apart, and
  below 0.5 when generated clouds copy references). When G != R the chance level is no longer
  0.5, so :func:`balanced_one_nna` also reports the mean and standard deviation over seeded random
  subsets of the larger set of the smaller set's size.

PointFlow's generation table prints MMD-CD x10^3 while its auto-encoding table (and ShapeGF's)
prints CD x10^4: read a paper's caption before comparing with it. :func:`format_generation_metrics`
labels its scaling (CD x10^4, EMD x10^2, COV and 1-NNA in %); the result dicts hold raw values.
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Sequence

import numpy as np
from scipy.spatial import cKDTree

from isofield.errors import InputError
from isofield.metrics.checks import checked_count, checked_pair, checked_points, checked_positive
from isofield.metrics.surface import (
    EMD_POINTS,
    chamfer_deepsdf,
    earth_movers_distance,
    random_subset,
)

if TYPE_CHECKING:
    import torch

CD_SCALE = 1e4
EMD_SCALE = 1e2
EMD_METHODS = ("exact", "sinkhorn")
DISTANCES = ("cd", "emd")
# Sinkhorn defaults, for clouds of about unit size (see :func:`sinkhorn_emd` for their error)
SINKHORN_EPSILON = 0.005
SINKHORN_ITERATIONS = 200
# EMD points per cloud in :func:`generation_metrics`: 100 vs 20 clouds in about 1-1.5 minutes
GENERATION_EMD_POINTS = 256
ONE_NNA_REPEATS = 10
# exp() of float32 arguments below this underflows to subnormals, which CPUs handle slowly
_LOG_UNDERFLOW = -80.0

Clouds = np.ndarray | Sequence[np.ndarray]


# ---------------------------------------------------------------- one pair


def chamfer_distance(a: np.ndarray, b: np.ndarray) -> float:
    """PointFlow's CD between a (N, D) and b (M, D): the sum of the two one-sided mean squares.

    ``mean_i min_j |a_i - b_j|^2 + mean_j min_i |b_j - a_i|^2`` in squared input units (papers
    print it x10^4); the same number as :func:`isofield.metrics.surface.chamfer_deepsdf`.
    """
    return chamfer_deepsdf(a, b)


def emd(
    a: np.ndarray,
    b: np.ndarray,
    points: int = EMD_POINTS,
    method: str = "exact",
    seed: int = 0,
    epsilon: float = SINKHORN_EPSILON,
    iterations: int = SINKHORN_ITERATIONS,
) -> float:
    """PointFlow's EMD between a (N, D) and b (M, D): mean matched distance, input units.

    Both clouds are cut to ``n = min(points, N, M)`` points as in
    :func:`isofield.metrics.surface.earth_movers_distance` (seeded subsets, a cloud of n points
    is used whole), then matched exactly (``method="exact"``) or by :func:`sinkhorn_emd`
    (``method="sinkhorn"``, with ``epsilon`` and ``iterations``). Papers print it x10^2.
    """
    points_a, points_b = checked_pair(a, b)
    matrix = pairwise_emd([points_a], [points_b], points, method, seed, epsilon, iterations)
    return float(matrix[0, 0])


def sinkhorn_emd(
    a: torch.Tensor,
    b: torch.Tensor,
    epsilon: float = SINKHORN_EPSILON,
    iterations: int = SINKHORN_ITERATIONS,
) -> torch.Tensor:
    """Approximate EMDs of P pairs at once by log-domain Sinkhorn: a, b (P, n, D) -> (P,).

    Each pair's points carry mass 1/n; the ground cost is the Euclidean distance (input units).
    ``iterations`` Sinkhorn updates of the dual potentials are made, epsilon falling
    geometrically from the largest cost to ``epsilon`` (input units) over the first half and
    staying there for the second (epsilon scaling). The potentials are then made feasible for
    the unregularised problem by two c-transforms, and their dual value is returned: a LOWER
    BOUND on the exact EMD (never above it, up to float32 rounding), tight as epsilon -> 0 and
    iterations -> infinity. Runs on the inputs' device and dtype.

    Measured against the exact EMD (``benchmarks/cloud_metrics.py``: surface samples of random
    star-shaped surfaces of about unit radius, 6 pairs per n, half of them two samplings of one
    surface, exact EMD 0.07-0.13, half two different surfaces, 0.2-0.3), at the defaults
    epsilon = 0.005 and 200 iterations, relative error mean [min, max]:

    ====  =======================  ===============  ===============
    n     error                    ms/pair (1 CPU)  exact ms/pair
    ====  =======================  ===============  ===============
    512   -0.6% [-1.2%, -0.1%]     230              40
    1024  -1.4% [-4.0%, -0.2%]     950              185
    2048  -2.1% [-5.1%, -0.2%]     6,400            1,500
    ====  =======================  ===============  ===============

    The error is largest for the closest pairs (two samplings of one surface) and shrinks with
    more iterations (n = 1024, 400 iterations: -0.5% [-1.0%, -0.2%]). On a CPU it is 4-6x
    slower than the exact solver, and batching pairs did not pay there (one pair per call was
    faster per pair); it is meant for a GPU, where none was measured.
    """
    costs = _checked_cost_matrices(a, b)
    n = costs.shape[1]
    log_mass = -math.log(n)
    f = costs.new_zeros(costs.shape[0], n, 1)
    g = costs.new_zeros(costs.shape[0], 1, n)
    for eps in _epsilon_schedule(float(costs.max()), epsilon, iterations):
        f = -eps * (_logsumexp((g - costs).div_(eps), dim=2) + log_mass)
        g = -eps * (_logsumexp((f - costs).div_(eps), dim=1) + log_mass)
    g = (costs - f).amin(dim=1, keepdim=True)
    f = (costs - g).amin(dim=2, keepdim=True)
    return (f.mean(dim=(1, 2)) + g.mean(dim=(1, 2))).clamp_(min=0.0)


def _checked_cost_matrices(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(P, n, n) Euclidean distances between matching clouds of a and b, both (P, n, D)."""
    import torch  # only the Sinkhorn solver needs torch: the other metrics import without it

    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        raise InputError("sinkhorn_emd: a and b must be torch tensors of shape (P, n, D)")
    if a.ndim != 3 or a.shape != b.shape or 0 in a.shape[:2] or a.shape[2] not in (2, 3):
        raise InputError(
            f"sinkhorn_emd: expected a and b of one shape (P, n, 3) or (P, n, 2), got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise InputError("sinkhorn_emd: contains NaN or Inf coordinates")
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _epsilon_schedule(largest_cost: float, epsilon: float, iterations: int) -> list[float]:
    """Geometric decay from ``largest_cost`` to ``epsilon`` over the first half, then constant."""
    epsilon = checked_positive(epsilon, "Sinkhorn epsilon")
    iterations = checked_count(iterations, "Sinkhorn iterations")
    start = max(largest_cost, epsilon)
    decay_steps = max(1, iterations // 2)
    return [
        max(epsilon, start * (epsilon / start) ** ((step + 1) / decay_steps))
        for step in range(iterations)
    ]


def _logsumexp(x: torch.Tensor, dim: int) -> torch.Tensor:
    """log(sum(exp(x))) along ``dim``, kept as a size-1 axis; overwrites x.

    Like ``torch.logsumexp``, but the shifted arguments are clamped at ``_LOG_UNDERFLOW`` so
    that exp never returns subnormals (terms below e^-80 of the largest do not count anyway).
    """
    peak = x.amax(dim=dim, keepdim=True)
    return x.sub_(peak).clamp_(min=_LOG_UNDERFLOW).exp_().sum(dim=dim, keepdim=True).log_() + peak


# ---------------------------------------------------------------- two sets of clouds


def pairwise_chamfer(clouds_a: Clouds, clouds_b: Clouds | None = None) -> np.ndarray:
    """CD (see :func:`chamfer_distance`) between every cloud of a set and every cloud of another.

    Args:
        clouds_a: A clouds, an (A, N, D) array or a sequence of (N_i, D) arrays (sizes may
            differ), D = 2 or 3.
        clouds_b: B clouds likewise; None means clouds_a again (the matrix is then symmetric
            with a zero diagonal, at half the cost).

    Returns:
        (A, B) float64, squared input units. Each cloud's cKDTree is built once and queried,
        on all cores, with every point of the other set at once.
    """
    a = _checked_clouds(clouds_a, "clouds_a")
    if clouds_b is None:
        to_a = _one_sided_mean_squares(a, a)
        return to_a + to_a.T
    b = _checked_clouds(clouds_b, "clouds_b", dimension=a[0].shape[1])
    return _one_sided_mean_squares(a, b) + _one_sided_mean_squares(b, a).T


def _one_sided_mean_squares(
    tree_clouds: list[np.ndarray], query_clouds: list[np.ndarray]
) -> np.ndarray:
    """(T, Q): [t, q] = mean over the points of query cloud q of the squared distance to tree
    cloud t's nearest point."""
    queries = np.concatenate(query_clouds)
    sizes = np.array([len(cloud) for cloud in query_clouds])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rows = []
    for cloud in tree_clouds:
        distances, _ = cKDTree(cloud).query(queries, k=1, workers=-1)
        rows.append(np.add.reduceat(distances**2, starts) / sizes)
    return np.stack(rows)


def pairwise_emd(
    clouds_a: Clouds,
    clouds_b: Clouds | None = None,
    points: int = EMD_POINTS,
    method: str = "exact",
    seed: int = 0,
    epsilon: float = SINKHORN_EPSILON,
    iterations: int = SINKHORN_ITERATIONS,
) -> np.ndarray:
    """EMD (see :func:`emd`) between every cloud of a set and every cloud of another.

    Args:
        clouds_a: A clouds, an (A, N, D) array or a sequence of (N_i, D) arrays, D = 2 or 3.
        clouds_b: B clouds likewise; None means clouds_a again (only the pairs i < j are solved,
            the matrix is symmetric with a zero diagonal).
        points: every cloud is cut once to the same ``n = min(points, smallest cloud)`` points
            (:func:`isofield.metrics.surface.random_subset`, drawn with ``seed``), so all
            entries compare at one n; each entry equals ``earth_movers_distance(a_i, b_j, count=n, seed=seed)``.
        method: "exact" (one assignment per pair; 4-6 ms at n = 256, 20-40 ms at 512,
            0.17-0.19 s at 1024, 1.4-1.5 s at 2048 on this project's loaded 2-core machine) or
            "sinkhorn"
            (:func:`sinkhorn_emd` with ``epsilon`` and ``iterations``, one pair at a time on the
            CPU; 5x slower than "exact" at n = 512-2048).

    Returns:
        (A, B) float64, input units.
    """
    _checked_method(method)
    a = _checked_clouds(clouds_a, "clouds_a")
    b = a if clouds_b is None else _checked_clouds(clouds_b, "clouds_b", a[0].shape[1])
    n = min(checked_count(points, "EMD points"), *(len(cloud) for cloud in a + b))
    subsets_a = [random_subset(cloud, n, seed) for cloud in a]
    subsets_b = subsets_a if clouds_b is None else [random_subset(cloud, n, seed) for cloud in b]
    pairs = _pairs(len(a), len(b), symmetric=clouds_b is None)
    if method == "exact":
        values = [earth_movers_distance(subsets_a[i], subsets_b[j], n, seed) for i, j in pairs]
    else:
        values = _sinkhorn_per_pair(subsets_a, subsets_b, pairs, epsilon, iterations)
    matrix = np.zeros((len(a), len(b)))
    rows, columns = np.array(pairs, dtype=np.int64).reshape(-1, 2).T
    matrix[rows, columns] = values
    if clouds_b is None:
        matrix[columns, rows] = values
    return matrix


def _checked_method(method: str) -> None:
    if method not in EMD_METHODS:
        raise InputError(f"EMD method: expected one of {', '.join(EMD_METHODS)}, got {method!r}")


def _pairs(count_a: int, count_b: int, symmetric: bool) -> list[tuple[int, int]]:
    """Index pairs to solve: all (i, j), or only i < j within one set."""
    return [(i, j) for i in range(count_a) for j in range(i + 1 if symmetric else 0, count_b)]


def _sinkhorn_per_pair(
    subsets_a: list[np.ndarray],
    subsets_b: list[np.ndarray],
    pairs: list[tuple[int, int]],
    epsilon: float,
    iterations: int,
) -> list[float]:
    """:func:`sinkhorn_emd` of the listed pairs of (n, D) subsets, one pair per call.

    On a CPU one pair per call was 15-40% faster per pair than batches of 4-64 pairs at
    n = 256-1024 (the batch's cost matrices fall out of cache).
    """
    import torch

    tensors_a = [torch.from_numpy(subset.astype(np.float32))[None] for subset in subsets_a]
    tensors_b = [torch.from_numpy(subset.astype(np.float32))[None] for subset in subsets_b]
    return [
        float(sinkhorn_emd(tensors_a[i], tensors_b[j], epsilon, iterations)) for i, j in pairs
    ]


def _checked_clouds(clouds: Clouds, name: str, dimension: int | None = None) -> list[np.ndarray]:
    """A non-empty list of finite (N_i, D) float64 clouds of one D (``dimension`` if given)."""
    is_array = isinstance(clouds, np.ndarray) or _is_tensor(clouds)
    if (is_array and clouds.ndim != 3) or not (is_array or isinstance(clouds, Sequence)):
        raise InputError(
            f"{name}: expected a set of clouds, an array (K, N, 3) or a list of (N, 3) arrays, "
            f"got {f'shape {tuple(clouds.shape)}' if is_array else type(clouds).__name__}"
        )
    checked = [checked_points(cloud, f"{name}[{k}]") for k, cloud in enumerate(clouds)]
    if not checked:
        raise InputError(f"{name}: the set of clouds is empty")
    dimensions = sorted({cloud.shape[1] for cloud in checked})
    if len(dimensions) > 1:
        raise InputError(
            f"{name}: the clouds differ in dimension ({dimensions[0]}-D and {dimensions[1]}-D)"
        )
    if dimension is not None and dimensions[0] != dimension:
        raise InputError(f"{name}: {dimensions[0]}-D clouds, but the other set is {dimension}-D")
    return checked


def _is_tensor(value: object) -> bool:
    """True for a torch tensor; torch is not imported for the check (without torch loaded,
    nothing is a tensor)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


# ---------------------------------------------------------------- generation metrics


def mmd(d_gr: np.ndarray) -> float:
    """Minimum matching distance: mean over references of the distance to the nearest generated.

    Args:
        d_gr: (G, R) distances, generated clouds by reference clouds.
    """
    return float(_checked_distances(d_gr, "d_gr").min(axis=0).mean())


def coverage(d_gr: np.ndarray) -> float:
    """Coverage in [0, 1]: the fraction of references nearest to at least one generated cloud.

    Args:
        d_gr: (G, R) distances; each generated cloud g claims ``argmin_r d_gr[g, r]`` (the first
            on ties).
    """
    distances = _checked_distances(d_gr, "d_gr")
    return len(np.unique(distances.argmin(axis=1))) / distances.shape[1]


def one_nna(d_gg: np.ndarray, d_rr: np.ndarray, d_gr: np.ndarray) -> float:
    """Leave-one-out 1-nearest-neighbour accuracy in [0, 1] on the generated and reference clouds.

    Each of the G + R clouds takes the label (generated / reference) of its nearest OTHER cloud;
    the result is the fraction labelled correctly. Ties go to the cloud that comes first in the
    order generated 0..G-1, reference 0..R-1. Identical twins across the sets score 0 (every
    cloud's nearest is its twin of the other label); sets far apart score 1.

    Args:
        d_gg: (G, G) distances among generated clouds (the diagonal is ignored).
        d_rr: (R, R) distances among reference clouds (the diagonal is ignored).
        d_gr: (G, R) distances, generated by reference; G >= 1 and R >= 1.
    """
    return _one_nna(*_checked_matrices(d_gg, d_rr, d_gr))


def _one_nna(d_gg: np.ndarray, d_rr: np.ndarray, d_gr: np.ndarray) -> float:
    joint = np.block([[d_gg, d_gr], [d_gr.T, d_rr]])
    np.fill_diagonal(joint, np.inf)
    labels = np.arange(len(joint)) < len(d_gg)
    return float(np.mean(labels[joint.argmin(axis=1)] == labels))


def balanced_one_nna(
    d_gg: np.ndarray,
    d_rr: np.ndarray,
    d_gr: np.ndarray,
    repeats: int = ONE_NNA_REPEATS,
    seed: int = 0,
) -> tuple[float, float]:
    """1-NNA on sets of equal size: (mean, standard deviation) over ``repeats`` random subsets.

    When G != R, each repeat draws k = min(G, R) clouds without replacement from the larger set
    (``numpy.random.default_rng(seed).choice``, one stream for all repeats, indices sorted) and
    keeps the smaller set whole; the standard deviation is over the repeats (ddof = 0). When
    G == R this is ``(one_nna(d_gg, d_rr, d_gr), 0.0)``. Matrix shapes as in :func:`one_nna`.
    """
    d_gg, d_rr, d_gr = _checked_matrices(d_gg, d_rr, d_gr)
    repeats = checked_count(repeats, "1-NNA repeats")
    count_g, count_r = d_gr.shape
    if count_g == count_r:
        return _one_nna(d_gg, d_rr, d_gr), 0.0
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(repeats):
        keep = np.sort(rng.choice(max(count_g, count_r), min(count_g, count_r), replace=False))
        if count_g > count_r:
            scores.append(_one_nna(d_gg[np.ix_(keep, keep)], d_rr, d_gr[keep]))
        else:
            scores.append(_one_nna(d_gg, d_rr[np.ix_(keep, keep)], d_gr[:, keep]))
    return float(np.mean(scores)), float(np.std(scores))


def _checked_matrices(
    d_gg: np.ndarray, d_rr: np.ndarray, d_gr: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three distance matrices of :func:`one_nna`, checked and of matching shapes."""
    d_gr = _checked_distances(d_gr, "d_gr")
    count_g, count_r = d_gr.shape
    d_gg = _checked_distances(d_gg, "d_gg", (count_g, count_g))
    d_rr = _checked_distances(d_rr, "d_rr", (count_r, count_r))
    return d_gg, d_rr, d_gr


def _checked_distances(
    distances: np.ndarray, name: str, shape: tuple[int, int] | None = None
) -> np.ndarray:
    """A non-empty 2-D float64 matrix of finite, non-negative distances (of ``shape`` if given)."""
    matrix = np.asarray(distances, dtype=np.float64)
    if matrix.ndim != 2 or 0 in matrix.shape:
        raise InputError(
            f"{name}: expected a non-empty distance matrix, with at least one generated and one "
            f"reference cloud, got shape {matrix.shape}"
        )
    if shape is not None and matrix.shape != shape:
        raise InputError(f"{name}: expected shape {shape}, got {matrix.shape}")
    if not np.all(np.isfinite(matrix)) or np.any(matrix < 0):
        raise InputError(f"{name}: distances must be finite and non-negative")
    return matrix


def generation_metrics(
    generated: Clouds,
    reference: Clouds,
    distances: Sequence[str] = DISTANCES,
    emd_points: int = GENERATION_EMD_POINTS,
    emd_method: str = "exact",
    repeats: int = ONE_NNA_REPEATS,
    seed: int = 0,
) -> dict:
    """MMD, COV and 1-NNA of generated clouds against reference clouds, per distance (PointFlow).

    Args:
        generated: G clouds, (G, N, 3) or a list of (N_i, 3) arrays.
        reference: R clouds likewise.
        distances: any of "cd" (:func:`pairwise_chamfer`) and "emd" (:func:`pairwise_emd`).
        emd_points: points per cloud for EMD (see :func:`pairwise_emd`). At the default, 256,
            100 generated vs 20 reference clouds of 2048 points took 54-80 s in all on this
            project's loaded 2-core machine (``benchmarks/cloud_metrics.py``): CD 22-35 s
            (7,140 pairs, 30 million nearest-neighbour queries), EMD 32-45 s (7,140 exact
            assignments of 4.5-6 ms). 2048 points would take about 3 hours. EMD grows as n
            shrinks (sampling noise): compare EMD-based numbers only at equal ``emd_points``.
        emd_method: "exact" or "sinkhorn" (at its defaults; about 10x slower than "exact" at
            n = 256 on a CPU, see :func:`sinkhorn_emd`).
        repeats, seed: the balanced 1-NNA's subsets (:func:`balanced_one_nna`); ``seed`` also
            draws the EMD subsets.

    Returns:
        A flat dict: for each distance d, ``mmd_<d>`` (CD in squared input units, EMD in input
        units), ``cov_<d>`` and ``1nna_<d>`` (fractions in [0, 1]), ``1nna_balanced_<d>`` and
        ``1nna_balanced_std_<d>``; and the settings ``generated_clouds``, ``reference_clouds``,
        ``distances``, ``emd_points`` (the n used), ``emd_method``, ``one_nna_repeats``, ``seed``.
        Each distance's three matrices (G x R, G x G, R x R) are computed once.
    """
    unknown = sorted(set(distances) - set(DISTANCES))
    if unknown or not distances:
        raise InputError(f"distances: expected some of {', '.join(DISTANCES)}, got {distances!r}")
    _checked_method(emd_method)
    checked_count(repeats, "1-NNA repeats")
    gen = _checked_clouds(generated, "generated")
    ref = _checked_clouds(reference, "reference", gen[0].shape[1])
    n = min(checked_count(emd_points, "emd_points"), *(len(cloud) for cloud in gen + ref))
    result = {
        "generated_clouds": len(gen),
        "reference_clouds": len(ref),
        "distances": list(distances),
        "emd_points": n if "emd" in distances else None,
        "emd_method": emd_method if "emd" in distances else None,
        "one_nna_repeats": repeats,
        "seed": seed,
    }
    for name in distances:
        matrices = _generation_matrices(name, gen, ref, n, emd_method, seed)
        result.update(_set_metrics(name, *matrices, repeats, seed))
    return result


def _generation_matrices(
    name: str, gen: list[np.ndarray], ref: list[np.ndarray], n: int, method: str, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(d_gg, d_rr, d_gr) of the named distance."""
    if name == "cd":
        return pairwise_chamfer(gen), pairwise_chamfer(ref), pairwise_chamfer(gen, ref)
    return tuple(
        pairwise_emd(a, b, points=n, method=method, seed=seed)
        for a, b in ((gen, None), (ref, None), (gen, ref))
    )


def _set_metrics(
    name: str, d_gg: np.ndarray, d_rr: np.ndarray, d_gr: np.ndarray, repeats: int, seed: int
) -> dict:
    balanced, spread = balanced_one_nna(d_gg, d_rr, d_gr, repeats, seed)
    return {
        f"mmd_{name}": mmd(d_gr),
        f"cov_{name}": coverage(d_gr),
        f"1nna_{name}": one_nna(d_gg, d_rr, d_gr),
        f"1nna_balanced_{name}": balanced,
        f"1nna_balanced_std_{name}": spread,
    }


_SCALES = {"cd": (CD_SCALE, "x10^4"), "emd": (EMD_SCALE, "x10^2")}


def format_generation_metrics(result: dict) -> str:
    """A plain-text table of a :func:`generation_metrics` result, with its scaling labelled."""
    header = (
        f"{result['generated_clouds']} generated vs {result['reference_clouds']} reference clouds"
    )
    if result["emd_points"] is not None:
        header += f"; EMD on {result['emd_points']} points per cloud ({result['emd_method']})"
    balance = (
        "1-NNA balanced = 1-NNA (sets of equal size)"
        if result["generated_clouds"] == result["reference_clouds"]
        else f"1-NNA balanced: mean +- std over {result['one_nna_repeats']} random subsets of "
        f"the larger set of the smaller set's size (seed {result['seed']})"
    )
    columns = ("distance", "MMD", "COV %", "1-NNA %", "1-NNA balanced %")
    rows = [_table_row(result, name) for name in result["distances"]]
    widths = [max(len(row[k]) for row in [columns, *rows]) for k in range(len(columns))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows]
    title = "  ".join(cell.rjust(width) for cell, width in zip(columns, widths))
    return "\n".join([header, balance, "", title, *lines])


def _table_row(result: dict, name: str) -> tuple[str, ...]:
    scale, label = _SCALES[name]
    return (
        f"{name.upper()} ({label})",
        f"{scale * result[f'mmd_{name}']:.4g}",
        f"{100 * result[f'cov_{name}']:.2f}",
        f"{100 * result[f'1nna_{name}']:.2f}",
        f"{100 * result[f'1nna_balanced_{name}']:.2f} +- "
        f"{100 * result[f'1nna_balanced_std_{name}']:.2f}",
    )
