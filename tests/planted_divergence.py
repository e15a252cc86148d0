"""Small models for the divergence probe: one plants a compiled-only error, one draws dropout.

`PlantedStack` is an embedding, five residual blocks and a head; one block's `mix` layer scales
its output by (1 + PLANTED_SCALE) only while dynamo traces it (`torch.compiler.is_compiling()`),
so eager is untouched and any backend, even aot_eager, compiles the error in. Everything after
that layer carries the error; only that layer adds it. `GradPlantedStack` plants the same scale
in the backward pass of one layer only: forward outputs agree, gradients do not.
`DropoutMLP` draws dropout masks in train mode; `LargeSums` outputs values of order 1e5, whose
rounding alone exceeds an absolute 1e-5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from probes.records.names import INFERENCE, TRAINING
from probes.targets.target import CompileSettings, Target

PLANTED_SCALE = 1e-2
DIM = 16
DEPTH = 5
PLANTED_BLOCK = 2
PLANTED_PATH = f"blocks.{PLANTED_BLOCK}.mix"


class ScaledWhenCompiled(nn.Linear):
    """A linear layer whose compiled output is off by a relative PLANTED_SCALE."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        if torch.compiler.is_compiling():
            y = y * (1 + PLANTED_SCALE)
        return y


class _ScaleGradientWhenCompiled(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():
            return grad * (1 + PLANTED_SCALE)
        return grad


class GradientScaledWhenCompiled(nn.Linear):
    """A linear layer whose compiled backward scales the gradient reaching it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ScaleGradientWhenCompiled.apply(super().forward(x))


class Block(nn.Module):
    def __init__(self, mix: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(DIM)
        self.mix = mix
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.act(self.mix(self.norm(x)))


class PlantedStack(nn.Module):
    def __init__(self, planted: type[nn.Linear] = ScaledWhenCompiled) -> None:
        super().__init__()
        self.embed = nn.Linear(4, DIM)
        self.blocks = nn.Sequential(
            *[
                Block(planted(DIM, DIM) if i == PLANTED_BLOCK else nn.Linear(DIM, DIM))
                for i in range(DEPTH)
            ]
        )
        self.head = nn.Linear(DIM, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.embed(x)))


class DropoutMLP(nn.Module):
    """Two hidden layers, each followed by dropout 0.5: train-mode outputs depend on the masks."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(8, 32),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(32, 32),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(32, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class LargeSums(nn.Module):
    """Sums of 512 large terms: eager and Inductor sum them in other orders, both correctly."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 512)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.lin(x).exp() * 100.0).sum(-1, keepdim=True)


def module_target(name: str, module: nn.Module, in_features: int, out_features: int) -> Target:
    """A CPU target: inference is one call, training an MSE loss against fixed random labels."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(8, in_features, generator=generator)
    labels = torch.randn(8, out_features, generator=generator)

    def compile_copy(copy: nn.Module, settings: CompileSettings) -> nn.Module:
        copy.compile(**settings.compile_kwargs())
        return copy

    def loss(copy: nn.Module) -> torch.Tensor:
        return F.mse_loss(copy(inputs), labels)

    return Target(
        name=name,
        kind="module",
        module=module,
        device=torch.device("cpu"),
        infer=lambda copy: copy(inputs),
        loss=loss,
        reset=lambda copy: None,
        compile_copy=compile_copy,
        entry_functions=lambda copy: {
            INFERENCE: (copy, (inputs,)),
            TRAINING: (lambda: loss(copy), ()),
        },
    )


def planted_target() -> Target:
    torch.manual_seed(0)
    return module_target("planted-stack", PlantedStack(), 4, 2)


def gradient_planted_target() -> Target:
    torch.manual_seed(0)
    return module_target("gradient-planted-stack", PlantedStack(GradientScaledWhenCompiled), 4, 2)


def large_sums_target() -> Target:
    torch.manual_seed(0)
    return module_target("large-sums", LargeSums(), 4, 1)


def dropout_target() -> Target:
    torch.manual_seed(0)
    return module_target("dropout-mlp", DropoutMLP(), 8, 1)
