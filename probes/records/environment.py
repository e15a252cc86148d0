"""The numeric settings a measurement was made under, as every probe records them.

Settings such as TF32 and Inductor's `fallback_random` change both speed and accuracy, so the
benchmark and the divergence scenarios record them beside their numbers; `probes.environment`
reads them from torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class NumericSettings:
    float32_matmul_precision: str
    cuda_matmul_allow_tf32: bool
    cudnn_allow_tf32: bool
    deterministic_algorithms: bool
    inductor_fallback_random: bool
    cuda_matmul_fp32_precision: str | None = None  # torch >= 2.9 spells TF32 this way too
    cudnn_conv_fp32_precision: str | None = None
