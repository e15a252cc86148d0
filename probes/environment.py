"""Reads the environment a measurement is made under from torch and the machine.

`current_environment` fills the `Environment` a diagnosis records; `numeric_settings` the numeric
settings (TF32, Inductor's `fallback_random`, ...) in force now, which the benchmark and each
divergence scenario record beside their numbers. The records are `probes.records.environment`'s.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

import torch

from probes.records.environment import Environment, NumericSettings


def numeric_settings() -> NumericSettings:
    import torch._inductor.config as inductor_config

    matmul = torch.backends.cuda.matmul
    conv = getattr(torch.backends.cudnn, "conv", None)
    return NumericSettings(
        float32_matmul_precision=torch.get_float32_matmul_precision(),
        cuda_matmul_allow_tf32=bool(matmul.allow_tf32),
        cudnn_allow_tf32=bool(torch.backends.cudnn.allow_tf32),
        deterministic_algorithms=torch.are_deterministic_algorithms_enabled(),
        inductor_fallback_random=bool(inductor_config.fallback_random),
        cuda_matmul_fp32_precision=getattr(matmul, "fp32_precision", None),
        cudnn_conv_fp32_precision=getattr(conv, "fp32_precision", None) if conv else None,
    )


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def inductor_cache_dir() -> str | None:
    try:
        from torch._inductor.runtime.cache_dir_utils import cache_dir

        return cache_dir()
    except Exception:  # the location is informative only; never fail a diagnosis on it
        return os.environ.get("TORCHINDUCTOR_CACHE_DIR")


def current_environment(device: torch.device) -> Environment:
    return Environment(
        python=sys.version.split()[0],
        platform=platform.platform(),
        torch=torch.__version__,
        lerobot=_package_version("lerobot"),
        device=str(device),
        device_name=_device_name(device),
        cuda_version=torch.version.cuda if device.type == "cuda" else None,
        cpu_threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(),
        inductor_cache_dir=inductor_cache_dir(),
        numerics=numeric_settings(),
    )
