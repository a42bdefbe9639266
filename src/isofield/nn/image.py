"""Image encoder of single-view reconstruction (ONet's image condition): a ResNet-18-style CNN
trained from scratch, images (B, 3, H, W) in [0, 1] -> a condition (B, C).

    stem   conv3 (stride 2) - BN - ReLU                                  base channels, H/2
    stages 4 x 2 basic residual blocks, base * (1, 2, 4, 8) channels, strides (1, 2, 2, 2)
    head   global average pool, linear

A basic block is relu(x' + BN(conv3(relu(BN(conv3(x)))))), x' the input or, where the size or
the channels change, its 1x1 strided projection; the last BN of every block starts at zero
(the block starts as its shortcut). 64 x 64 images end at 4 x 4 before the pool, 128 x 128 at 8 x 8.
"""

from __future__ import annotations

import torch
from torch import nn


class ImageEncoder(nn.Module):
    """images (B, in_channels, H, W) float in [0, 1] -> condition (B, C).

    Args:
        condition_dim: C.
        base: the channels of the first stage (doubled by each further stage).
        in_channels: 3 for RGB, 1 for depth or grey images.
    """

    def __init__(self, condition_dim: int, base: int = 32, in_channels: int = 3) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, base, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(base), nn.ReLU())
        blocks: list[nn.Module] = []
        width = base
        for stage in range(4):
            out = base * 2 ** stage
            blocks += [_BasicBlock(width, out, stride=1 if stage == 0 else 2), _BasicBlock(out, out, stride=1)]
            width = out
        self.stages = nn.Sequential(*blocks)
        self.fc = nn.Linear(width, condition_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, in_channels, H, W) -> (B, C)."""
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise ValueError(f"ImageEncoder expects images (B, {self.in_channels}, H, W), got {tuple(images.shape)}")
        # contiguous NCHW: a channels-last batch (e.g. a permuted (B, H, W, 3) array) crashes
        # oneDNN's convolution backward on two CPU threads (torch 2.13)
        features = self.stages(self.stem(images.contiguous()))             # (B, 8 base, H/16, W/16)
        return self.fc(features.mean(dim=(2, 3)))


class _BasicBlock(nn.Module):
    """ResNet's basic block: (B, C_in, H, W) -> (B, C_out, H / stride, W / stride)."""

    def __init__(self, fan_in: int, fan_out: int, stride: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(fan_in, fan_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(fan_out), nn.ReLU(),
            nn.Conv2d(fan_out, fan_out, 3, padding=1, bias=False), nn.BatchNorm2d(fan_out))
        nn.init.zeros_(self.residual[-1].weight)
        self.shortcut = nn.Identity()
        if stride != 1 or fan_in != fan_out:
            self.shortcut = nn.Sequential(nn.Conv2d(fan_in, fan_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(fan_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, H, W) -> (B, C_out, H / stride, W / stride)."""
        return torch.relu(self.shortcut(x) + self.residual(x))
