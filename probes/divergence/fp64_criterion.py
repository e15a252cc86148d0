"""When is a compiled output close enough? PyTorch's own answer: ask an fp64 reference.

An absolute threshold says nothing about rounding: eager fp32 is itself off from the exact result,
and a compiled program that reorders sums is off by the same order. So both sides are compared
with an fp64 eager reference, as PyTorch's dynamo benchmark harness does
(`benchmarks/dynamo/common.py`, `check_accuracy`, which calls
`torch._dynamo.utils.same(eager, compiled, fp64_ref, tol)`):

1. `torch.allclose(eager, compiled, atol=tol, rtol=tol)` passes outright;
2. otherwise compiled passes when
   `RMSE(compiled, fp64) <= multiplier * RMSE(eager, fp64) + tol / 10`,
   with multiplier 2.0 for an fp32 tensor of 1000 elements or more, and 3.0 for smaller tensors
   (where noise dominates RMSE) and for fp16 / bf16.

The harness uses tol = 1e-4 for fp32 (torchbench inference; training on CUDA 1e-3, HuggingFace
training 1e-2) and runs its accuracy checks with `fallback_random = True` and TF32 off. A pass
means: compiled is about as close to the exact result as eager fp32 is.

The criterion and each comparison are recorded as `probes.records.divergence.Fp64Criterion` and
`OutputComparison`; this module measures them on tensors.
"""

from __future__ import annotations

import math

import torch

from probes.records.divergence import Fp64Criterion, OutputComparison

# Dtypes whose rounding noise dominates RMSE: the criterion allows them its larger multiplier.
REDUCED_PRECISION = (torch.float16, torch.bfloat16)


def error_ratio(eager_error: float | None, compiled_error: float | None) -> float | None:
    if eager_error is None or compiled_error is None:
        return None
    if eager_error == 0.0:
        return 1.0 if compiled_error == 0.0 else math.inf
    return compiled_error / eager_error


def rmse(a: torch.Tensor, b: torch.Tensor) -> float:
    diff = a.detach().to(torch.float64) - b.detach().to(torch.float64)
    return float(diff.square().mean().sqrt()) if diff.numel() else 0.0


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    diff = a.detach().to(torch.float64) - b.detach().to(torch.float64)
    return float(diff.abs().max()) if diff.numel() else 0.0


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> float:
    """Of the two flattened in float32, as `same(..., cos_similarity=True)` computes it."""
    if a.numel() == 0:
        return 1.0
    flat_a, flat_b = (t.detach().flatten().to(torch.float32) for t in (a, b))
    return float(torch.nn.functional.cosine_similarity(flat_a, flat_b, dim=0, eps=1e-6))


def max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| over max |b|: relative to the tensor's scale, not to each element."""
    scale = float(b.detach().to(torch.float64).abs().max()) if b.numel() else 0.0
    diff = max_abs(a, b)
    if scale == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / scale


def compare(
    name: str,
    eager: torch.Tensor,
    compiled: torch.Tensor,
    fp64: torch.Tensor | None,
    criterion: Fp64Criterion,
    eager_rerun: torch.Tensor | None = None,
) -> OutputComparison:
    """Apply the criterion to one output; without an fp64 reference only allclose can pass."""
    eager, compiled = eager.detach(), compiled.detach()
    reduced = criterion.low_precision or eager.dtype in REDUCED_PRECISION
    multiplier = criterion.multiplier(eager.numel(), reduced)
    within = bool(
        torch.allclose(
            eager.to(torch.float64),
            compiled.to(torch.float64),
            atol=criterion.tolerance,
            rtol=criterion.tolerance,
            equal_nan=False,
        )
    )
    eager_error = compiled_error = bound = None
    cosine = cosine_similarity(eager, compiled)
    passes = within
    if fp64 is not None:
        eager_error, compiled_error = rmse(eager, fp64), rmse(compiled, fp64)
        bound = multiplier * eager_error + criterion.floor
        passes = within or compiled_error <= bound
    if criterion.cosine:  # the harness's --cosine replaces the fp64 check
        passes = within or cosine >= criterion.cosine_threshold
    return OutputComparison(
        name=name,
        shape=list(eager.shape),
        max_abs_diff=max_abs(compiled, eager),
        max_rel_diff=max_rel(compiled, eager),
        rmse_diff=rmse(compiled, eager),
        eager_rerun_max_abs_diff=None if eager_rerun is None else max_abs(eager_rerun, eager),
        eager_rmse_vs_fp64=eager_error,
        compiled_rmse_vs_fp64=compiled_error,
        multiplier=multiplier,
        error_ratio=error_ratio(eager_error, compiled_error),
        bound=bound,
        within_allclose=within,
        passes=passes,
        eager_value=float(eager) if eager.numel() == 1 else None,
        cosine_similarity=cosine,
    )


def compare_outputs(
    eager: dict[str, torch.Tensor],
    compiled: dict[str, torch.Tensor],
    fp64: dict[str, torch.Tensor] | None,
    criterion: Fp64Criterion,
    eager_rerun: dict[str, torch.Tensor] | None = None,
) -> list[OutputComparison]:
    """Every named output both sides produced with the same shape, in eager's order."""
    return [
        compare(
            name,
            eager[name],
            compiled[name],
            (fp64 or {}).get(name),
            criterion,
            None if eager_rerun is None else eager_rerun.get(name),
        )
        for name in eager
        if name in compiled and eager[name].shape == compiled[name].shape
    ]
