"""Small models whose speed story is known in advance, for the speed attribution and what-ifs.

- `ConvNet`: convolutions and batch norm, so library kernels (oneDNN) take most of a call and
  freezing (weights folded and pre-packed) is the lever;
- `LoopedScalarRead`: a `.item()` read inside a loop, one graph break per iteration, whose eager
  gaps cost time between compiled regions (marker `# PLANTED: loop-item`);
- `ManySmallLayers`: a training step whose optimizer, over many small parameter tensors, costs more
  than the forward and backward: the fused optimizer is the lever;
- `PointwiseChain`: pointwise work that Inductor fuses into one loop: compiled is much faster and
  there is nothing to explain.
"""

from __future__ import annotations

from pathlib import Path

import torch
from planted import marker_line
from torch import nn

FILE = Path(__file__).resolve()


def planted_line(name: str) -> int:
    return marker_line(FILE, name)


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for width in (32, 64, 64, 128):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class ScaledBlock(nn.Module):
    """A linear layer whose output is normalised by a Python float: a graph break per call."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.linear(x))
        scale = x.abs().mean().item()  # PLANTED: loop-item
        return x / (1.0 + scale)


class LoopedScalarRead(nn.Module):
    """The blocks called in a loop. A break in the loop's own frame would make dynamo skip that
    frame whole; in a called block, each call compiles up to the break and resumes after it."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(ScaledBlock() for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class ManySmallLayers(nn.Module):
    def __init__(self, depth: int = 48) -> None:
        super().__init__()
        self.layers = nn.Sequential(*(nn.Linear(8, 8) for _ in range(depth)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class PointwiseChain(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(12):
            x = torch.sin(x) * 1.01 + torch.cos(x) * 0.5
        return x


def mean_square(output: torch.Tensor) -> torch.Tensor:
    return output.pow(2).mean()
