"""Input encodings for coordinate networks: multi-resolution feature grids and Fourier features.

Each encoding is an ``nn.Module`` mapping points ``x: (N, in_dim)`` to features
``(N, out_dim)`` and exposes ``out_dim``. Both are twice differentiable with respect to their
input and parameters, so the eikonal loss (which differentiates ``grad_x f`` with respect to the
parameters) trains them.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from isofield.errors import InputError

# Instant-NGP's spatial hash: XOR of the integer vertex coordinates times these primes.
HASH_PRIMES = (1, 2654435761, 805459861)
INTERPOLATIONS = ("linear", "smoothstep")


class MultiResolutionGrid(nn.Module):
    """Instant-NGP-style multi-resolution feature grids with (tri)linear interpolation.

    Level ``l`` (``0 <= l < levels``) divides the box ``bounds^in_dim`` into ``res_l`` cells
    per axis (``res_l + 1`` vertices per axis), ``res_l = floor(base_resolution * b**l)`` with
    the growth ``b = (max_resolution / base_resolution) ** (1 / (levels - 1))``. Each vertex
    holds ``features_per_level`` learned features. A level whose ``(res_l + 1) ** in_dim``
    vertices fit in ``2 ** log2_hashmap_size`` rows gets a dense table (one row per vertex, no
    collisions); finer levels share a table of ``2 ** log2_hashmap_size`` rows indexed by the
    spatial hash ``(i * 1) ^ (j * 2654435761) ^ (k * 805459861) mod 2**log2_hashmap_size``.
    All levels live in one parameter ``table: (features_per_level, total_rows)``, level ``l``
    in rows (columns of ``table``) ``[level_offsets[l], level_offsets[l + 1])``. Features start
    uniform in ``[-1e-4, 1e-4]``. The table is stored features-first, as the interpolation
    gathers it, so no step copies it (docs/fit-ablations.md, "The table features-first"); a
    state dict holding it rows-first, ``(total_rows, features_per_level)``, loads too.

    Points outside ``bounds`` are clamped onto the box: there the features are constant along
    the clamped axes and their gradient with respect to ``x`` is zero, so a network using this
    encoding should also see the raw coordinates (``MLPField`` does).

    Interpolation is written with plain torch ops (floor, ``index_select`` of the 2**in_dim
    cell corners, then one linear interpolation per axis), so it supports double backward.
    Every intermediate is laid out with the points and levels last, ``(..., N, L)``: the
    products over the corners then run over long contiguous rows (with the points first, the
    eikonal step's double backward was 1.4x slower, ``docs/fit-ablations.md``).
    ``interpolation="linear"`` is the usual (tri)linear interpolation: it reproduces linear
    functions exactly, but its gradient with respect to ``x`` jumps across cell faces
    (acceptable for the eikonal loss, as in Instant-NGP and Neuralangelo). ``"smoothstep"``
    replaces each axis weight ``t`` by ``3t^2 - 2t^3``: the encoding becomes C1, but it no
    longer reproduces linear functions and its gradient with respect to ``x`` vanishes at every
    vertex, so it only makes sense next to the raw coordinates. Measured on the armadillo
    (SDF regression + eikonal, 1500 steps of 8192 points, grid 8 levels 16..256, T = 2**15):
    mean normal error 12.9 vs 13.6 degrees, but mean |SDF error| near the surface 0.0034 vs
    0.0028 for linear, so it is no clear gain and not the default.

    About ``torch.nn.functional.grid_sample``: in torch 2.13 (CPU) it does support double
    backward for 5-D (3-D volume) inputs with ``mode="bilinear"`` (``gradgradcheck`` passes, and
    the eikonal term's gradient with respect to the volume passes ``gradcheck``). It is not
    used here: it cannot serve hashed levels or smoothstep weights, and on dense levels only its
    forward pass is faster. Measured on 4 dense levels (17^3..65^3 vertices, 16384 points):
    forward 3 ms vs 6 ms here (2 threads), eikonal step (forward, input gradient, backward)
    27 ms vs 25 ms (2 threads), 34 ms vs 46 ms (1 thread).

    Args:
        levels: number of resolution levels L.
        features_per_level: features per vertex F.
        base_resolution: cells per axis of the coarsest level.
        max_resolution: cells per axis of the finest level.
        log2_hashmap_size: log2 of the row budget T of one level.
        bounds: (lo, hi), the box ``[lo, hi]^in_dim`` covered by the grids (canonical units).
        in_dim: 2 or 3.
        interpolation: "linear" or "smoothstep".

    Shapes: ``forward(x: (N, in_dim)) -> (N, levels * features_per_level)``, level-major
    (the F features of level 0, then of level 1, ...).
    """

    def __init__(
        self,
        levels: int = 16,
        features_per_level: int = 2,
        base_resolution: int = 16,
        max_resolution: int = 512,
        log2_hashmap_size: int = 19,
        bounds: tuple[float, float] = (-1.0, 1.0),
        in_dim: int = 3,
        interpolation: str = "linear",
    ) -> None:
        super().__init__()
        _check_grid_arguments(levels, features_per_level, base_resolution, max_resolution,
                              log2_hashmap_size, bounds, in_dim, interpolation)
        self.in_dim = in_dim
        self.levels = levels
        self.features_per_level = features_per_level
        self.log2_hashmap_size = log2_hashmap_size
        self.bounds = (float(bounds[0]), float(bounds[1]))
        self.interpolation = interpolation
        self.out_dim = levels * features_per_level

        self.resolutions = level_resolutions(levels, base_resolution, max_resolution)
        rows = [min((res + 1) ** in_dim, 2**log2_hashmap_size) for res in self.resolutions]
        self.num_dense = sum((res + 1) ** in_dim <= 2**log2_hashmap_size
                             for res in self.resolutions)
        offsets = [0, *itertools.accumulate(rows)]
        self.table_rows = rows

        # Drawn row by row (a row's features together), then stored features-first.
        self.table = nn.Parameter(
            torch.empty(offsets[-1], features_per_level).uniform_(-1e-4, 1e-4).T.contiguous())
        self.register_buffer("level_offsets", torch.tensor(offsets[:-1]), persistent=False)
        self.register_buffer("cells_per_axis", torch.tensor(self.resolutions, dtype=torch.float32),
                             persistent=False)
        corner_bits = torch.tensor(list(itertools.product((0, 1), repeat=in_dim)))  # (C, D)
        dense_strides = torch.tensor([[(res + 1) ** axis for axis in range(in_dim)]
                                      for res in self.resolutions[: self.num_dense]],
                                     dtype=torch.long).reshape(self.num_dense, in_dim)
        self.register_buffer("dense_strides", dense_strides, persistent=False)   # (L_dense, D)
        self.register_buffer("dense_corner_offsets", corner_bits @ dense_strides.T,
                             persistent=False)                                   # (C, L_dense)
        self.register_buffer("hash_primes", torch.tensor(HASH_PRIMES[:in_dim]), persistent=False)
        # Coarse-to-fine training (Neuralangelo): levels >= active_levels output zeros. Persistent,
        # so a checkpoint evaluates with the levels it was trained with.
        self.register_buffer("active_levels", torch.tensor(levels))

    def set_active_levels(self, count: int) -> None:
        """Use only the ``count`` coarsest levels (the others output zeros and get no gradient)."""
        self.active_levels.fill_(max(1, min(int(count), self.levels)))

    def extra_repr(self) -> str:
        return (f"levels={self.levels}, features_per_level={self.features_per_level}, "
                f"resolutions={self.resolutions[0]}..{self.resolutions[-1]}, "
                f"dense_levels={self.num_dense}, rows={self.table.shape[1]}, "
                f"interpolation={self.interpolation!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features at points ``x: (N, in_dim)`` -> ``(N, levels * features_per_level)``."""
        lo, hi = self.bounds
        n = x.shape[0]
        cells = self.cells_per_axis.to(x.dtype)                         # (L,)
        position = ((x.clamp(lo, hi) - lo) / (hi - lo)).T[:, :, None] * cells  # (D, N, L)
        cell = torch.minimum(position.detach().floor(), cells - 1)
        fraction = position - cell                                      # (D, N, L) in [0, 1]
        if self.interpolation == "smoothstep":
            fraction = fraction * fraction * (3 - 2 * fraction)
        rows = self.cell_corner_rows(cell.long())                       # (C, N, L)
        values = self.table.index_select(1, rows.reshape(-1))
        values = values.view(-1, *(2,) * self.in_dim, n, self.levels)   # (F, 2, .., 2, N, L)
        # One linear interpolation per axis, first axis first: -> (F, N, L).
        for axis in range(self.in_dim):
            low, high = values.unbind(dim=1)
            values = low + fraction[axis] * (high - low)
        if int(self.active_levels) < self.levels:
            mask = (torch.arange(self.levels, device=x.device) < self.active_levels).to(values.dtype)
            values = values * mask
        return values.permute(1, 2, 0).flatten(1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """Accepts a table stored rows-first ``(total_rows, features_per_level)``."""
        stored = state_dict.get(prefix + "table")
        if stored is not None and stored.shape == self.table.shape[::-1] != self.table.shape:
            state_dict[prefix + "table"] = stored.T.contiguous()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def cell_corner_rows(self, cell: torch.Tensor) -> torch.Tensor:
        """Rows of ``table`` holding the corners of grid cells.

        Args:
            cell: (in_dim, N, L) int64, the integer coordinates of one cell per point and level
                (its lowest corner), each in ``[0, res_l - 1]``; points and levels last, so that
                the per-corner arithmetic runs over long contiguous rows.
        Returns:
            (C, N, L) int64 indices of ``table``'s rows (its second dimension), ``C =
            2**in_dim`` corners ordered like ``itertools.product((0, 1), repeat=in_dim)`` (the
            first axis varies slowest).
        """
        dims = self.in_dim
        dense_cell, hashed_cell = cell[..., : self.num_dense], cell[..., self.num_dense:]
        dense = ((dense_cell * self.dense_strides.T[:, None, :]).sum(0)
                 + self.dense_corner_offsets[:, None, :])                # (C, N, L_dense)
        # The hash XORs per-axis terms; build the 2**D corner combinations by broadcasting.
        hashed = None
        for axis in range(dims):
            low = hashed_cell[axis] * self.hash_primes[axis]              # (N, L_hashed)
            pair = torch.stack([low, low + self.hash_primes[axis]])       # (2, N, L_hashed)
            pair = pair.view(*(1,) * axis, 2, *(1,) * (dims - 1 - axis), *low.shape)
            hashed = pair if hashed is None else hashed ^ pair
        hashed = (hashed & (2**self.log2_hashmap_size - 1)).reshape(2**dims, *hashed_cell.shape[1:])
        return torch.cat([dense, hashed], dim=-1) + self.level_offsets


def level_resolutions(levels: int, base_resolution: int, max_resolution: int) -> list[int]:
    """Cells per axis of each level: ``floor(base * b**l)``, geometric growth from base to max."""
    if levels == 1:
        return [base_resolution]
    growth = math.exp((math.log(max_resolution) - math.log(base_resolution)) / (levels - 1))
    # The small epsilon keeps the last level at max_resolution despite rounding of b**l.
    return [int(math.floor(base_resolution * growth**level + 1e-9)) for level in range(levels)]


def _check_grid_arguments(levels: int, features_per_level: int, base_resolution: int,
                          max_resolution: int, log2_hashmap_size: int,
                          bounds: tuple[float, float], in_dim: int, interpolation: str) -> None:
    """Raise InputError naming the first bad MultiResolutionGrid argument."""
    for name, value in [("levels", levels), ("features_per_level", features_per_level),
                        ("base_resolution", base_resolution),
                        ("log2_hashmap_size", log2_hashmap_size)]:
        if not isinstance(value, int) or value < 1:
            raise InputError(f"grid encoding: {name} must be an integer >= 1, got {value!r}")
    if not isinstance(max_resolution, int) or max_resolution < base_resolution:
        raise InputError(f"grid encoding: max_resolution must be an integer >= base_resolution "
                         f"({base_resolution}), got {max_resolution!r}")
    if log2_hashmap_size > 30:
        raise InputError(f"grid encoding: log2_hashmap_size must be <= 30, got {log2_hashmap_size}")
    if in_dim not in (2, 3):
        raise InputError(f"grid encoding: in_dim must be 2 or 3, got {in_dim!r}")
    if len(bounds) != 2 or not float(bounds[0]) < float(bounds[1]):
        raise InputError(f"grid encoding: bounds must be (lo, hi) with lo < hi, got {bounds!r}")
    if interpolation not in INTERPOLATIONS:
        raise InputError(f"grid encoding: interpolation must be one of {INTERPOLATIONS}, "
                         f"got {interpolation!r}")


class FourierFeatures(nn.Module):
    """Sin/cos positional encoding of points (NeRF), or random Fourier features (Tancik et al.).

    ``kind="log"``: frequencies ``2**k * pi`` for ``k = 0 .. num_frequencies - 1``, applied to
    each coordinate: features ``sin(2**k pi x_d), cos(2**k pi x_d)``.
    ``kind="gaussian"``: a fixed matrix ``B: (num_frequencies, in_dim)`` with entries
    ``N(0, sigma**2)`` (drawn from ``seed``, stored in the state dict), features
    ``sin(2 pi B x), cos(2 pi B x)``.

    Output dim (``out_dim``), with ``I = in_dim if include_input else 0``:
    ``"log"``: ``I + 2 * in_dim * num_frequencies``; ``"gaussian"``: ``I + 2 * num_frequencies``.
    Layout: ``[x (if included), sin(...), cos(...)]``; for ``"log"`` the sines are ordered
    frequency-major (all coordinates at ``k = 0``, then ``k = 1``, ...), the cosines likewise.
    Use ``include_input=False`` inside ``MLPField``, which already passes the raw coordinates.

    Shapes: ``forward(x: (N, in_dim)) -> (N, out_dim)``.
    """

    def __init__(self, in_dim: int = 3, num_frequencies: int = 6, include_input: bool = True,
                 kind: str = "log", sigma: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        if not isinstance(in_dim, int) or in_dim < 1:
            raise InputError(f"fourier encoding: in_dim must be an integer >= 1, got {in_dim!r}")
        if not isinstance(num_frequencies, int) or num_frequencies < 1:
            raise InputError(f"fourier encoding: num_frequencies must be an integer >= 1, "
                             f"got {num_frequencies!r}")
        if kind == "log":
            # (in_dim * K, in_dim): row k * in_dim + d holds 2**k * pi at column d.
            matrix = torch.kron((2.0 ** torch.arange(num_frequencies) * math.pi)[:, None],
                                torch.eye(in_dim))
        elif kind == "gaussian":
            generator = torch.Generator().manual_seed(seed)
            matrix = 2 * math.pi * sigma * torch.randn(num_frequencies, in_dim, generator=generator)
        else:
            raise InputError(f"fourier encoding: kind must be 'log' or 'gaussian', got {kind!r}")
        self.register_buffer("frequency_matrix", matrix)
        self.in_dim = in_dim
        self.include_input = include_input
        self.out_dim = (in_dim if include_input else 0) + 2 * matrix.shape[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features at points ``x: (N, in_dim)`` -> ``(N, out_dim)``."""
        phase = x @ self.frequency_matrix.to(x.dtype).T                  # (N, rows of matrix)
        parts = [x] if self.include_input else []
        return torch.cat([*parts, torch.sin(phase), torch.cos(phase)], dim=-1)


def set_active_levels(module: nn.Module, count: int) -> None:
    """Coarse-to-fine: let every :class:`MultiResolutionGrid` inside ``module`` use only its
    ``count`` coarsest levels (no-op for modules without one)."""
    for sub in module.modules():
        if isinstance(sub, MultiResolutionGrid):
            sub.set_active_levels(count)
