"""Small models for the regional-compilation tests: repeated blocks, or structures that look like
them and are not."""

from __future__ import annotations

import itertools

import torch
from torch import nn


class Block(nn.Module):
    """A transformer-ish block: Linear, LayerNorm, ReLU and a residual."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.norm(self.linear(x)))


class Stack(nn.Module):
    """An input projection, `depth` identical blocks in a ModuleList, and a head."""

    def __init__(self, width: int = 32, depth: int = 4) -> None:
        super().__init__()
        self.embed = nn.Linear(width, width)
        self.layers = nn.ModuleList(Block(width) for _ in range(depth))
        self.head = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


class Funnel(nn.Module):
    """Blocks of one class whose widths differ: no two alike in structure."""

    def __init__(self) -> None:
        super().__init__()
        widths = (64, 48, 32, 16)
        self.layers = nn.ModuleList(Block(width) for width in widths)
        self.downs = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.downs):
                x = self.downs[index](x)
        return x


class Pair(nn.Module):
    """A block of two identical sub-blocks: nested repeats."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.first = Block(width)
        self.second = Block(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))


class NestedStack(nn.Module):
    """Three `Pair`s: six `Block`s, each inside a `Pair`."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.pairs = nn.Sequential(*(Pair(width) for _ in range(3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pairs(x)


def bare_linears(width: int = 32, depth: int = 4) -> nn.Sequential:
    """Identical Linear layers and nothing else: leaves, not blocks."""
    return nn.Sequential(*(nn.Linear(width, width) for _ in range(depth)))


class MlpBlock(nn.Module):
    """A few Linear, LayerNorm and GELU ops with a residual: the block compiled once."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.up = nn.Linear(width, 2 * width)
        self.act = nn.GELU()
        self.down = nn.Linear(2 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.down(self.act(self.up(self.norm(x))))


class MlpStack(nn.Module):
    """`depth` identical `MlpBlock`s between an input projection and a head."""

    def __init__(self, width: int = 32, depth: int = 6) -> None:
        super().__init__()
        self.embed = nn.Linear(width, width)
        self.blocks = nn.ModuleList(MlpBlock(width) for _ in range(depth))
        self.head = nn.Linear(width, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


class NoRepeats(nn.Module):
    """A small CNN with no two submodules alike."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * 4 * 4, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
