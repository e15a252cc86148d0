"""TF32 on or off for matmuls and cuDNN convolutions, on both sides, then back as it was.

torch has two spellings for the same switch: the legacy `torch.backends.cuda.matmul.allow_tf32`
and `torch.backends.cudnn.allow_tf32`, and (torch >= 2.9) `fp32_precision` ("tf32" / "ieee") on
`torch.backends.cuda.matmul` and `torch.backends.cudnn.conv`. Once a process has set one
spelling, reading the other raises ("mix of the legacy and new APIs"), so the switch uses the
spelling the process can still read, which is the legacy one unless the user set the new one.

Inductor bakes the setting into the matmul kernels it generates when it compiles, while eager
reads it at each call: a TF32 comparison needs a fresh compile under each setting.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def _uses_legacy_api() -> bool:
    try:
        _ = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    except RuntimeError:  # the process set fp32_precision; the legacy getters refuse
        return False
    return True


@contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if _uses_legacy_api():
        saved = (matmul.allow_tf32, cudnn.allow_tf32)
        matmul.allow_tf32, cudnn.allow_tf32 = enabled, enabled
        try:
            yield
        finally:
            matmul.allow_tf32, cudnn.allow_tf32 = saved
        return
    precision = "tf32" if enabled else "ieee"
    saved_precision = (matmul.fp32_precision, cudnn.conv.fp32_precision)
    matmul.fp32_precision, cudnn.conv.fp32_precision = precision, precision
    try:
        yield
    finally:
        matmul.fp32_precision, cudnn.conv.fp32_precision = saved_precision
