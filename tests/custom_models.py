"""Small models a user might write, for the Python API and `compile-diagnose module`.

The planted graph break carries a marker comment (`# PLANTED: <name>`), found by
`planted.marker_line`: tests search this file for the marker, so editing the file
never breaks them. The factories are what `compile-diagnose module FILE:FACTORY` calls.
"""

from __future__ import annotations

from pathlib import Path

import torch
from planted import marker_line
from torch import nn

FILE = Path(__file__).resolve()


def planted_line(name: str) -> int:
    """The line number of the marker `# PLANTED: <name>` in this file."""
    return marker_line(FILE, name)


class ScaledRegressor(nn.Module):
    """An MLP that normalises its output by a Python float read from a tensor: one break."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        scale = h.abs().mean().item()  # PLANTED: scale-item
        return h / (1.0 + scale)


class Shifted(nn.Module):
    """Keyword arguments only, no break."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor, *, shift: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"y": self.linear(x) + shift}


def make_regressor():
    torch.manual_seed(0)
    return ScaledRegressor(), (torch.randn(6, 8),)


def make_regressor_with_loss():
    torch.manual_seed(0)
    return ScaledRegressor(), (torch.randn(6, 8),), mean_square, (torch.randn(6, 8),)


def mean_square(output: torch.Tensor) -> torch.Tensor:
    return output.pow(2).mean()


def make_shifted():
    torch.manual_seed(0)
    return Shifted(), {"x": torch.randn(6, 8), "shift": torch.randn(4)}


def returns_three():
    model, inputs = make_regressor()
    return model, inputs, mean_square


def returns_model_only():
    return ScaledRegressor()


def raises():
    raise RuntimeError("no weights here")
