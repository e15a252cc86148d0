"""A lever's twin timed as the benchmark's copies were: its first call, then its warm calls.

`watched_first_call` times the first call, watched as the benchmark's was (its compile by frame
and stage); `record_twin_timing` times warm calls beside eager's and the default compile's and
records both on the lever.

Each lever compiles a twin of the model; its first call is compared with the benchmark's first
call of the same entry point. So that the two compare like with like:
- Inductor's once-per-process CPU check, if still to come, is run first and left out (the
  benchmark's figures are compared less it, `CompileLever`);
- when the benchmark compiled cold (no cache hit), the twin compiles cold too, with Inductor's
  caches off for its first call; otherwise with the caches as they are.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import torch
from torch._inductor import config as inductor_config

from probes.compile.breakdown import entry_compile_time, watch_compiles
from probes.compile.cpu_isa import cpu_isa_check_pending, run_cpu_isa_check
from probes.records.benchmark import BenchmarkSettings
from probes.records.compile_time import LEVER_MEASURED, CompileLever, EntryCompileTime
from probes.records.names import TRAINING
from probes.targets.target import CompileSettings
from probes.timing import measure_interleaved, time_first_call


def watched_first_call(
    entry_point: str,
    call: Callable[[], Any],
    settings: CompileSettings,
    device: torch.device,
    *,
    cold: bool,
) -> EntryCompileTime:
    """Run `call` once, compiling; what it compiled, by frame and stage, and its seconds."""
    if cpu_isa_check_pending(device, settings):
        run_cpu_isa_check()  # left out: see the module's docstring
    with ExitStack() as stack:
        if cold:
            stack.enter_context(inductor_config.patch(force_disable_caches=True))
            # torch warns that the caches' switch turns its shape profiles off too: expected.
            stack.enter_context(warnings.catch_warnings())
            warnings.filterwarnings("ignore", message="dynamo_pgo force disabled")
        watched = stack.enter_context(watch_compiles())
        first_call_s, _ = time_first_call(call, device)
    return entry_compile_time(entry_point, first_call_s, watched)


def record_twin_timing(
    lever: CompileLever,
    compile_time: EntryCompileTime,
    calls: tuple[Callable[[], Any], Callable[[], Any], Callable[[], Any]],
    bench: BenchmarkSettings,
    device: torch.device,
) -> None:
    """Time `calls` (eager, the default compile, the twin) round-robin; record them and the
    twin's first call on `lever`, now measured."""
    eager_call, default_call, twin_call = calls
    iters = bench.iters_training if lever.entry_point == TRAINING else bench.iters_inference
    measured = measure_interleaved(
        {"eager": eager_call, "default": default_call, lever.name: twin_call},
        iters=iters,
        warmup=bench.warmup,
        device=device,
    )
    lever.status = LEVER_MEASURED
    lever.compile_s = compile_time.compile_s
    lever.first_call_s = compile_time.first_call_s
    lever.cache = compile_time.cache
    lever.stages = compile_time.stages
    lever.median_ms = measured[lever.name].median_ms
    lever.baseline_median_ms = measured["default"].median_ms
    lever.eager_ms = measured["eager"].median_ms
