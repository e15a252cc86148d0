"""An fp64 eager reference: the target's module and inputs cast to float64.

The inputs live inside the target's entry points (a policy's batch, a loss's labels), out of
reach, so they are cast where they are used: while the reference runs, a `TorchFunctionMode`
turns every floating-point tensor argument of every torch function into float64, and the
default dtype is float64, so tensors the model creates are float64 too. Parameters and buffers
are cast once with `.to(torch.float64)`, so gradients come out in float64 as well.

An in-place op keeps its target as it is (a cast copy would take the write instead), and so does
an `out=` argument. The copy is never compiled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_map

from probes.targets.target import Target


def float64_copy(target: Target) -> nn.Module:
    return target.fresh_copy().to(torch.float64)


def _to_float64(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(torch.float64)  # the same tensor when already float64
    return value


def _writes_first_argument(func: Any) -> bool:
    name = getattr(func, "__name__", "")
    in_place = name.endswith("_") and not name.endswith("__")
    return in_place or name in ("__setitem__",) or name.startswith("__i")


class Float64Arguments(TorchFunctionMode):
    """Every floating-point tensor a torch function reads arrives as float64."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        out = kwargs.pop("out", None)
        if args and _writes_first_argument(func):
            args = (args[0], *tree_map(_to_float64, tuple(args[1:])))
        else:
            args = tree_map(_to_float64, tuple(args))
        kwargs = tree_map(_to_float64, kwargs)
        if out is not None:
            kwargs["out"] = out
        return func(*args, **kwargs)


@contextmanager
def float64_inputs() -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with Float64Arguments():
            yield
    finally:
        torch.set_default_dtype(previous)


def run_float64[T](call: Callable[[], T]) -> T:
    """Run `call` (on a `float64_copy`) with every floating-point input cast to float64."""
    with float64_inputs():
        return call()
