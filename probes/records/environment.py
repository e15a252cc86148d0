"""The machine, the versions and the numeric settings a measurement was made under.

Settings such as TF32 and Inductor's `fallback_random` change both speed and accuracy, so every
diagnosis records its `Environment` (under "environment" in `diagnosis.json`), and the benchmark
and the divergence scenarios record the `NumericSettings` in force beside their numbers.
`probes.environment` reads both from torch and the machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Inductor's cache folder, as torch reads it from the environment.
INDUCTOR_CACHE_DIR_VARIABLE = "TORCHINDUCTOR_CACHE_DIR"


@dataclass
class NumericSettings:
    float32_matmul_precision: str
    cuda_matmul_allow_tf32: bool
    cudnn_allow_tf32: bool
    deterministic_algorithms: bool
    inductor_fallback_random: bool
    cuda_matmul_fp32_precision: str | None = None  # torch >= 2.9 spells TF32 this way too
    cudnn_conv_fp32_precision: str | None = None


@dataclass
class Environment:
    python: str
    platform: str
    torch: str
    lerobot: str | None
    device: str
    device_name: str
    cuda_version: str | None
    cpu_threads: int
    cpu_count: int | None
    inductor_cache_dir: str | None
    numerics: NumericSettings
    extra: dict[str, Any] = field(default_factory=dict)
    # torch's environment variables (TORCHDYNAMO_*, TORCHINDUCTOR_*, TORCH_*, PYTORCH_*) but the
    # cache folder, recorded above: they set compile options before any code runs
    torch_variables: dict[str, str] = field(default_factory=dict)
    # dynamo's, Inductor's and functorch's config entries set away from their defaults in code,
    # as "dynamo.capture_scalar_outputs": value
    compile_configs: dict[str, Any] = field(default_factory=dict)
