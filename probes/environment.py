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
from typing import Any

import torch

from probes.records.environment import INDUCTOR_CACHE_DIR_VARIABLE, Environment, NumericSettings


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


TORCH_VARIABLE_PREFIXES = ("TORCH", "PYTORCH_")


def torch_variables() -> dict[str, str]:
    """torch's environment variables now set, but the cache folder's."""
    return {
        name: value
        for name, value in sorted(os.environ.items())
        if name.startswith(TORCH_VARIABLE_PREFIXES) and name != INDUCTOR_CACHE_DIR_VARIABLE
    }


def changed_compile_configs() -> dict[str, Any]:
    """dynamo's, Inductor's and functorch's config entries set away from their defaults."""
    import torch._dynamo.config as dynamo_config
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    changed: dict[str, Any] = {}
    for prefix, config in (
        ("dynamo", dynamo_config),
        ("inductor", inductor_config),
        ("functorch", functorch_config),
    ):
        for name, entry in getattr(config, "_config", {}).items():
            # by value: a `config.patch` undone leaves an override equal to the default behind
            value = getattr(config, name)
            if entry.alias is not None or value == entry.default:
                continue
            plain = value is None or isinstance(value, bool | int | float | str)
            changed[f"{prefix}.{name}"] = value if plain else repr(value)
    return changed


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
        return os.environ.get(INDUCTOR_CACHE_DIR_VARIABLE)


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
        torch_variables=torch_variables(),
        compile_configs=changed_compile_configs(),
    )
