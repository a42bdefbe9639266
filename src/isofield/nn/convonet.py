"""Convolutional Occupancy Networks (Peng et al. 2020): features on planes and / or a grid, decoded
locally.

    encoder  per point: fc_pos, then residual blocks whose input is the point's features next to
             their LOCAL max-pool (the max over the points in the same cell, per plane / grid,
             summed over them); the last features are averaged into the cells (scatter mean) of
             each plane (B, F, R, R) and / or of the grid (B, F, R, R, R), each refined by a U-Net
             (one 2-D U-Net shared by the planes, a 3-D one for the grid).
    decoder  f(x) = the feature maps sampled at x (bilinear / trilinear), summed over the maps;
             h_0 = fc_p(x), h_k = ResnetBlockFC(h_{k-1} + fc_c[k](f(x))), logit = fc_out(relu(h_K)).

Coordinates: canonical points, the cube [-0.5, 0.5]^3 grown by ``padding`` on every side, map to
u = x / (1 + padding) + 0.5, clamped to [0, 1]. Cell i of R covers [i/R, (i + 1)/R); sampling
uses ``align_corners=False``, which puts the value of cell i at its centre (i + 0.5)/R, so the
scatter and the sampling agree (ConvONet itself samples with ``align_corners=True``, half a cell
off), and keeps the border cells' values beyond the outer centres. A plane "ab" has axis a along
its width and b along its height: the map is indexed [..., u_b cell, u_a cell]; the grid is
indexed [..., z, y, x], as ``F.grid_sample`` reads them.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from isofield.nn.occupancy import ResnetBlockFC

AXES = {"xy": (0, 1), "xz": (0, 2), "yz": (1, 2), "grid": (0, 1, 2)}
"""The point coordinates behind each feature map, in the order grid_sample reads them."""


class LocalPoolPointNet(nn.Module):
    """ConvONet's encoder: points (B, N, 3) -> feature maps {"xy" | "xz" | "yz": (B, F, R, R),
    "grid": (B, F, R, R, R)}.

    Args:
        feature_dim: F, the channels of every map.
        hidden: the per-point width.
        blocks: the number of residual blocks (local pooling before all but the first).
        planes: the planes to build, a subset of ("xy", "xz", "yz").
        grid: whether to build the 3-D grid too.
        plane_resolution, grid_resolution: R, cells per axis (divisible by 2^(depth - 1) of the U-Net).
        padding: the margin around [-0.5, 0.5]^3 covered by the maps.
        unet: keyword arguments of `UNet2d` / `UNet3d` (depth, base), one U-Net per kind of map;
            None for none (the scattered means are returned as they are).
    """

    def __init__(self, feature_dim: int = 32, hidden: int = 32, blocks: int = 5,
                 planes: Sequence[str] = ("xy", "xz", "yz"), grid: bool = False, plane_resolution: int = 64,
                 grid_resolution: int = 32, padding: float = 0.1, unet: Mapping[str, int] | None = None) -> None:
        super().__init__()
        planes = tuple(planes)
        if len(set(planes)) != len(planes) or not set(planes) <= {"xy", "xz", "yz"} or not (planes or grid):
            raise ValueError(f"LocalPoolPointNet expects distinct planes among 'xy', 'xz', 'yz' and / or grid=True, "
                             f"got planes={planes}, grid={grid}")
        self.feature_dim, self.planes, self.padding = feature_dim, planes, padding
        self.resolutions = {name: plane_resolution for name in planes}
        if grid:
            self.resolutions["grid"] = grid_resolution
        self.fc_pos = nn.Linear(3, 2 * hidden)
        self.blocks = nn.ModuleList(ResnetBlockFC(2 * hidden, hidden) for _ in range(blocks))
        self.fc_c = nn.Linear(hidden, feature_dim)
        self.unet2d = UNet2d(feature_dim, feature_dim, **unet) if unet is not None and planes else None
        self.unet3d = UNet3d(feature_dim, feature_dim, **unet) if unet is not None and grid else None

    def forward(self, points: torch.Tensor) -> dict[str, torch.Tensor]:
        """points (B, N, 3) -> {name: (B, F, R, R) for planes, (B, F, R, R, R) for "grid"}."""
        if points.ndim != 3 or points.shape[-1] != 3:
            raise ValueError(f"LocalPoolPointNet expects points (B, N, 3), got {tuple(points.shape)}")
        cells = {name: _Cells.of(points, AXES[name], resolution, self.padding)
                 for name, resolution in self.resolutions.items()}
        net = self.blocks[0](self.fc_pos(points))                                        # (B, N, H)
        for block in self.blocks[1:]:
            pooled = sum(occupied.local_max(net) for occupied in cells.values())
            net = block(torch.cat([net, pooled], dim=2))
        features = self.fc_c(net)                                                        # (B, N, F)
        maps = {name: occupied.mean_map(features) for name, occupied in cells.items()}
        if self.unet2d is not None:
            refined = self.unet2d(torch.cat([maps[name] for name in self.planes])).chunk(len(self.planes))
            maps.update(zip(self.planes, refined))
        if self.unet3d is not None:
            maps["grid"] = self.unet3d(maps["grid"])
        return maps


class LocalDecoder(nn.Module):
    """ConvONet's decoder: occupancy logits of query points from the features around them.

    Args:
        feature_dim: F, the channels of the feature maps.
        hidden: the width of every block.
        blocks: the number of residual blocks (each adds the local features first).
        dim: D, the point dimension (3; 2 with an "xy" plane only).
        padding: the encoder's padding.
    """

    def __init__(self, feature_dim: int = 32, hidden: int = 32, blocks: int = 5, dim: int = 3,
                 padding: float = 0.1) -> None:
        super().__init__()
        self.feature_dim, self.dim, self.padding = feature_dim, dim, padding
        self.fc_p = nn.Linear(dim, hidden)
        self.fc_c = nn.ModuleList(nn.Linear(feature_dim, hidden) for _ in range(blocks))
        self.blocks = nn.ModuleList(ResnetBlockFC(hidden) for _ in range(blocks))
        self.fc_out = nn.Linear(hidden, 1)

    def forward(self, points: torch.Tensor, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """points (B, T, D), features {name: (B, F, R, ...)} -> logits (B, T)."""
        if points.ndim != 3 or points.shape[-1] != self.dim:
            raise ValueError(f"LocalDecoder expects points (B, T, {self.dim}), got {tuple(points.shape)}")
        channels = {name: maps.shape[1] for name, maps in features.items()}
        if any(count != self.feature_dim for count in channels.values()):
            raise ValueError(f"LocalDecoder expects feature maps of {self.feature_dim} channels, got {channels}")
        local = sample_features(points, features, self.padding)                         # (B, T, F)
        net = self.fc_p(points)
        for fc_c, block in zip(self.fc_c, self.blocks):
            net = block(net + fc_c(local))
        return self.fc_out(torch.relu(net)).squeeze(-1)


def sample_features(points: torch.Tensor, features: Mapping[str, torch.Tensor], padding: float) -> torch.Tensor:
    """The feature maps at points, bilinear on planes and trilinear on the grid, summed over the maps.

    points (B, T, D), features {name: (B, F, R, R) or, for "grid", (B, F, R, R, R)} -> (B, T, F).
    """
    if points.ndim != 3:
        raise ValueError(f"sample_features expects points (B, T, D), got {tuple(points.shape)}")
    if not features or not set(features) <= set(AXES):
        raise ValueError(f"sample_features expects feature maps named among {sorted(AXES)}, got {sorted(features)}")
    batch, count = points.shape[:2]
    total = None
    for name, maps in features.items():
        axes = AXES[name]
        if maps.ndim != 2 + len(axes) or maps.shape[0] != batch:
            raise ValueError(f"sample_features expects features[{name!r}] ({batch}, F{', R' * len(axes)}), "
                             f"got {tuple(maps.shape)}")
        grid = 2.0 * normalize_coordinates(points, axes, padding) - 1.0                  # (B, T, k)
        grid = grid.reshape(batch, count, *(1,) * (len(axes) - 1), len(axes))
        sampled = F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=False)
        sampled = sampled.reshape(batch, maps.shape[1], count)
        total = sampled if total is None else total + sampled
    return total.transpose(1, 2)


def normalize_coordinates(points: torch.Tensor, axes: Sequence[int], padding: float) -> torch.Tensor:
    """Canonical points (..., D) -> their coordinates along ``axes`` in the unit cube, (..., len(axes)) in [0, 1]."""
    return (points[..., list(axes)] / (1.0 + padding) + 0.5).clamp(0.0, 1.0)


class _UNet(nn.Module):
    """U-Net over 2-D or 3-D maps: (B, C_in, R, ...) -> (B, C_out, R, ...), R divisible by 2^(depth - 1).

    Level k has base * 2^k channels: conv3 - GroupNorm(8) - ReLU on the way down (max-pool 2
    between levels), a transposed convolution (2, stride 2) up, concatenation with the level's
    skip, conv3 - GroupNorm - ReLU, and a 1x1 convolution out. Group normalisation keeps every
    shape's maps independent of the other shapes of its batch.
    """

    def __init__(self, dim: int, in_channels: int, out_channels: int, depth: int, base: int) -> None:
        super().__init__()
        if depth < 1 or base % 8:
            raise ValueError(f"U-Net expects depth >= 1 and base a multiple of 8, got depth={depth}, base={base}")
        conv, transposed = {2: (nn.Conv2d, nn.ConvTranspose2d), 3: (nn.Conv3d, nn.ConvTranspose3d)}[dim]
        self.dim, self.depth = dim, depth
        widths = [base * 2 ** level for level in range(depth)]
        self.down = nn.ModuleList(_conv_block(conv, fan_in, width)
                                  for fan_in, width in zip([in_channels, *widths[:-1]], widths))
        self.up = nn.ModuleList(transposed(widths[level + 1], widths[level], 2, stride=2) for level in range(depth - 1))
        self.merge = nn.ModuleList(_conv_block(conv, 2 * widths[level], widths[level]) for level in range(depth - 1))
        self.out = conv(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, R, ...) -> (B, C_out, R, ...)."""
        factor = 2 ** (self.depth - 1)
        if x.ndim != 2 + self.dim or any(size % factor for size in x.shape[2:]):
            raise ValueError(f"U-Net of depth {self.depth} expects ({'B, C' + ', R' * self.dim}) with R divisible "
                             f"by {factor}, got {tuple(x.shape)}")
        max_pool = F.max_pool2d if self.dim == 2 else F.max_pool3d
        skips = []
        for level, block in enumerate(self.down):
            x = block(max_pool(x, 2) if level else x)
            skips.append(x)
        for level in reversed(range(self.depth - 1)):
            x = self.merge[level](torch.cat([self.up[level](x), skips[level]], dim=1))
        return self.out(x)


class UNet2d(_UNet):
    """2-D U-Net (see `_UNet`): (B, C_in, R, R) -> (B, C_out, R, R)."""

    def __init__(self, in_channels: int, out_channels: int, depth: int = 4, base: int = 16) -> None:
        super().__init__(2, in_channels, out_channels, depth, base)


class UNet3d(_UNet):
    """3-D U-Net (see `_UNet`): (B, C_in, R, R, R) -> (B, C_out, R, R, R)."""

    def __init__(self, in_channels: int, out_channels: int, depth: int = 4, base: int = 16) -> None:
        super().__init__(3, in_channels, out_channels, depth, base)


def _conv_block(conv: type[nn.Module], fan_in: int, fan_out: int) -> nn.Sequential:
    """conv3 - GroupNorm(8) - ReLU: (B, fan_in, R, ...) -> (B, fan_out, R, ...)."""
    return nn.Sequential(conv(fan_in, fan_out, 3, padding=1, bias=False), nn.GroupNorm(8, fan_out), nn.ReLU())


class _Cells(NamedTuple):
    """The cells of one map that hold points, and which of them holds each point.

    Only occupied cells are reduced over (B N rows at most, not B R^k), which keeps the local
    pooling of a fine 3-D grid cheap.
    """

    occupied: torch.Tensor      # (U,) flat indices b R^k + cell, sorted
    rows: torch.Tensor          # (B, N): each point's row in ``occupied``
    resolution: int
    dims: int                   # k: 2 for a plane, 3 for the grid

    @classmethod
    def of(cls, points: torch.Tensor, axes: Sequence[int], resolution: int, padding: float) -> _Cells:
        """points (B, N, 3) -> their cells in the map over ``axes`` with R = ``resolution``."""
        unit = normalize_coordinates(points, axes, padding)                              # (B, N, k)
        cells = (unit * resolution).long().clamp(max=resolution - 1)
        index = cells[..., -1]
        for axis in range(len(axes) - 2, -1, -1):                                        # i_0 + R i_1 (+ R² i_2)
            index = index * resolution + cells[..., axis]
        offsets = torch.arange(points.shape[0], device=points.device)[:, None] * resolution ** len(axes)
        occupied, rows = torch.unique(index + offsets, return_inverse=True)
        return cls(occupied, rows, resolution, len(axes))

    def local_max(self, values: torch.Tensor) -> torch.Tensor:
        """values (B, N, F) -> (B, N, F): the max over the points of each point's cell."""
        flat, rows = values.reshape(-1, values.shape[-1]), self.rows.reshape(-1)
        maxima = flat.new_zeros(len(self.occupied), flat.shape[1])
        maxima = maxima.scatter_reduce(0, rows[:, None].expand_as(flat), flat, "amax", include_self=False)
        return maxima[rows].reshape(values.shape)

    def mean_map(self, values: torch.Tensor) -> torch.Tensor:
        """values (B, N, F) -> the map (B, F, R, ...) of their means per cell; 0 where no point falls."""
        batch, _, channels = values.shape
        rows = self.rows.reshape(-1)
        sums = values.new_zeros(len(self.occupied), channels).index_add(0, rows, values.reshape(-1, channels))
        means = sums / torch.bincount(rows, minlength=len(self.occupied))[:, None]
        dense = values.new_zeros(batch * self.resolution ** self.dims, channels).index_copy(0, self.occupied, means)
        dense = dense.reshape(batch, -1, channels).transpose(1, 2)                       # (B, F, R^k)
        return dense.reshape(batch, channels, *(self.resolution,) * self.dims)
