"""The floating-point dtype a target runs in: its parameters, buffers and inputs cast to it.

`--dtype bfloat16` diagnoses the model as users run it in low precision: the module is cast
with `Module.to(dtype)` (floating-point parameters and buffers only) and every floating-point
tensor of its inputs with it. Integer and boolean tensors (token ids, masks, padding flags) keep
their dtype. The fp64 reference is still made from the cast module (its rounded weights, cast
up), so it measures what rounding in the chosen dtype adds.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Any

import torch
from torch.utils._pytree import tree_map

from probes.errors import TargetError, error_line
from probes.records.names import DEFAULT_DTYPE, DTYPES
from probes.stack import frames_of_summaries, user_code_stack
from probes.targets.target import Target


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype named `name` ("float32", "bfloat16", "float16"); a bad name is one line."""
    if name not in DTYPES:
        raise TargetError(f"unknown dtype {name!r}; choose from {', '.join(DTYPES)}")
    return getattr(torch, name)


def cast_inputs(value: Any, name: str) -> Any:
    """`value` (tensors, or containers of them) with every floating-point tensor in `name`."""
    if name == DEFAULT_DTYPE:
        return value
    dtype = torch_dtype(name)

    def cast(item: Any) -> Any:
        if isinstance(item, torch.Tensor) and item.is_floating_point():
            return item.to(dtype)
        return item

    return tree_map(cast, value)


def check_runs_in_dtype(target: Target, what: str) -> None:
    """One eager inference call on a copy in the target's dtype: a model that creates float32
    tensors of its own (a position table, a noise sample) fails here, in one line that names
    the user's line, instead of in every probe."""
    if target.dtype == DEFAULT_DTYPE:
        return
    try:
        target.infer(target.fresh_copy())
    except Exception as error:
        frames = user_code_stack(frames_of_summaries(traceback.extract_tb(error.__traceback__)))
        where = ""
        if frames:
            deepest = frames[-1]
            where = f" (at {Path(deepest.filename).name}:{deepest.lineno}: {deepest.code})"
        raise TargetError(
            f"{what} does not run in {target.dtype} with its weights and floating-point inputs "
            f"cast: {error_line(error)}{where}"
        ) from None
