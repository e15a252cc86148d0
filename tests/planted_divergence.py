"""Small models for the divergence probe: one plants a compiled-only error, one draws dropout.

`PlantedStack` is an embedding, five residual blocks and a head; one block's `mix` layer scales
its output by (1 + PLANTED_SCALE) only while dynamo traces it (`torch.compiler.is_compiling()`),
so eager is untouched and any backend, even aot_eager, compiles the error in. Everything after
that layer carries the error; only that layer adds it. `GradPlantedStack` plants the same scale
in the backward pass of one layer only: forward outputs agree, gradients do not.
`DropoutMLP` draws dropout masks in train mode; `LargeSums` outputs values of order 1e5, whose
rounding alone exceeds an absolute 1e-5. `CustomOpStack` calls a custom operator whose Inductor
lowering, while `wrong_lowering()` is entered, computes 2.001x + y instead of 2x + y;
`TanhBetweenLayers` calls tanh, whose built-in lowering `wrong_tanh_lowering()` replaces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

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


# --- a custom operator whose Inductor lowering is wrong ---------------------------------------

WRONG_LOWERING_SCALE = 2.001  # the lowering's factor; the operator's own is 2


@torch.library.custom_op("compile_diagnose_tests::double_add", mutates_args=())
def double_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """2x + y, eagerly; Inductor lowers it with `wrong_lowering` while that is registered."""
    return x * 2 + y


@double_add.register_fake
def _double_add_fake(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


def _double_add_backward(ctx: object, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return grad * 2, grad


double_add.register_autograd(_double_add_backward)


@contextmanager
def replaced_lowering(op: torch._ops.OpOverload, lower: Callable[..., Any]) -> Iterator[None]:
    """Inductor lowers `op` with `lower` while inside; its lowering table is restored."""
    from torch._inductor import lowering

    saved = lowering.lowerings.get(op)
    lowering.lowerings[op] = lower
    try:
        yield
    finally:
        if saved is None:
            lowering.lowerings.pop(op, None)
        else:
            lowering.lowerings[op] = saved


def _scaled_pointwise(body: Callable[..., Any], scale: float) -> Callable[..., Any]:
    """A pointwise lowering computing `body(...) * scale`."""
    from torch._inductor import lowering

    def lower(*args: Any) -> Any:
        def scaled(*values: Any) -> Any:
            return lowering.ops.mul(body(*values), lowering.ops.constant(scale, torch.float32))

        return lowering.make_pointwise(scaled)(*args)

    return lower


def wrong_lowering() -> Any:
    """Inductor lowers `double_add` as 2.001x + y while inside (its own: 2x + y)."""
    from torch._inductor import lowering

    def body(a: Any, b: Any) -> Any:
        scale = lowering.ops.constant(WRONG_LOWERING_SCALE, torch.float32)
        return lowering.ops.add(lowering.ops.mul(a, scale), b)

    return replaced_lowering(
        torch.ops.compile_diagnose_tests.double_add.default, _scaled_pointwise(body, 1.0)
    )


WRONG_TANH_SCALE = 1.01


def wrong_tanh_lowering() -> Any:
    """Inductor's own lowering of aten.tanh replaced by tanh(x) * 1.01: a built-in op's bug."""
    from torch._inductor import lowering

    return replaced_lowering(
        torch.ops.aten.tanh.default, _scaled_pointwise(lowering.ops.tanh, WRONG_TANH_SCALE)
    )


class TanhBetweenLayers(nn.Module):
    """tanh called in forward, between modules: no submodule adds the error, the model does."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(4, DIM)
        self.second = nn.Linear(DIM, DIM)
        self.head = nn.Linear(DIM, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.first(x)) * 2
        h = torch.tanh(self.second(h)) + h
        return self.head(h).sigmoid()


def tanh_target() -> Target:
    torch.manual_seed(0)
    return module_target("tanh-between-layers", TanhBetweenLayers(), 4, 2)


class CustomOpBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(DIM, DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.compile_diagnose_tests.double_add(self.lin(x), x).relu()


class CustomOpStack(nn.Module):
    """An embedding, a plain block, the custom-operator block, a head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, DIM)
        self.plain = Block(nn.Linear(DIM, DIM))
        self.custom = CustomOpBlock()
        self.head = nn.Linear(DIM, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.custom(self.plain(self.embed(x))))


def custom_op_target() -> Target:
    torch.manual_seed(0)
    return module_target("custom-op-stack", CustomOpStack(), 4, 2)


WRONG_RELU_SCALE = 1.01


def wrong_relu_lowering() -> Any:
    """Inductor's lowering of aten.relu replaced by relu(x) * 1.01, inside built-in nn.ReLU."""
    from torch._inductor import lowering

    return replaced_lowering(
        torch.ops.aten.relu.default, _scaled_pointwise(lowering.ops.relu, WRONG_RELU_SCALE)
    )


class BuiltinReluStack(nn.Module):
    """Linear, nn.ReLU, Linear: the module that adds the error is one of torch.nn's own."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(4, DIM)
        self.act = nn.ReLU()
        self.head = nn.Linear(DIM, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.first(x)))


def builtin_relu_target() -> Target:
    torch.manual_seed(0)
    return module_target("builtin-relu-stack", BuiltinReluStack(), 4, 2)
