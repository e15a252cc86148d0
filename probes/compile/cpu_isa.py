"""Inductor's check of the CPU's vector instructions, timed on its own.

The first compile of a process that generates C++ asks which instruction sets the CPU runs: for
each candidate (AVX-512, AVX2, ...) Inductor builds a test library and imports it in a new Python
process (`torch._inductor.cpu_vec_isa`). The answer is kept for the rest of the process, so it is
paid once per process, inside whichever compile comes first: measured on 2 cores it took longer
than the whole rest of a small model's warm compile. `TORCHINDUCTOR_VEC_ISA_OK=1` skips it.
"""

from __future__ import annotations

import time

import torch
from torch._inductor import config as inductor_config
from torch._inductor import cpu_vec_isa

from probes.targets.target import CompileSettings


def cpu_isa_check_pending(device: torch.device, settings: CompileSettings) -> bool:
    """Whether the next Inductor compile on this device would run the check first."""
    return (
        device.type == "cpu"
        and settings.backend_name == "inductor"
        and inductor_config.cpp.vec_isa_ok is None
        and cpu_vec_isa.valid_vec_isa_list.cache_info().currsize == 0
    )


def run_cpu_isa_check() -> float:
    """Run the check now (what the next compile would have done first); its seconds."""
    started = time.perf_counter()
    cpu_vec_isa.pick_vec_isa()
    return time.perf_counter() - started
