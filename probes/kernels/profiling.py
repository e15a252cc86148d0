"""Kernel-timing probe: where the time of one call goes, eager against compiled.

Each entry point is a pair of zero-argument callables (eager call, compiled call). Each side is
warmed up, then profiled in a run of its own (never a run that is timed) with `torch.profiler`,
one ProfilerStep per call, and written with `tensorboard_trace_handler` to
`<out>/tensorboard/eager/` and `<out>/tensorboard/compiled/`: two runs for TensorBoard's PyTorch
Profiler plugin, with one worker per entry point. The two sides of an entry point are also
merged into one trace for Perfetto, `<out>/traces/<entry point>.perfetto.json` (`perfetto`):
eager above compiled, both from t=0. Each trace is then read back with
`probes.kernels.trace_summary` and reduced to per-call figures; the same traces give the time
attribution of `probes.speed.attribution`. The what-ifs that time another compile (CUDA graphs
among them) are `probes.speed.what_ifs`'.
"""

from __future__ import annotations

import re
import shlex
import statistics
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch.profiler import (
    ProfilerActivity,
    profile,
    record_function,
    schedule,
    tensorboard_trace_handler,
)

from probes.kernels.kineto import load_trace
from probes.kernels.perfetto import write_merged_trace
from probes.kernels.trace_summary import summarize
from probes.records.kernels import (
    LAUNCH_BOUND_BUSY,
    PERFETTO_SUBDIR,
    PERFETTO_SUFFIX,
    TENSORBOARD_SUBDIR,
    CallProfile,
    EntryPointKernels,
    KernelFamilyPerCall,
    KernelPerCall,
    KernelTimingReport,
    OpPerCall,
    TraceSummary,
)
from probes.records.names import COMPILED, EAGER, SIDES
from probes.timing import synchronize

EntryPointCalls = tuple[Callable[[], Any], Callable[[], Any]]


def profile_kernels(
    entry_points: Mapping[str, EntryPointCalls],
    *,
    device: torch.device | str,
    out_dir: Path | str,
    warmup: int = 3,
    calls: int = 5,
    busy_threshold: float = LAUNCH_BOUND_BUSY,
) -> KernelTimingReport:
    """Profile every entry point's eager and compiled call, each in a run of its own."""
    if calls < 1:
        raise ValueError(f"calls must be at least 1, got {calls}")
    device = torch.device(device)
    logdir = Path(out_dir).resolve() / TENSORBOARD_SUBDIR
    perfetto_dir = Path(out_dir).resolve() / PERFETTO_SUBDIR
    results = []
    for name, (eager_call, compiled_call) in entry_points.items():
        profiles = {
            side: profile_call(
                call,
                entry_point=name,
                side=side,
                device=device,
                logdir=logdir,
                warmup=warmup,
                calls=calls,
            )
            for side, call in zip(SIDES, (eager_call, compiled_call), strict=True)
        }
        merged = write_merged_trace(
            {side: profiles[side].trace_path for side in SIDES},
            perfetto_dir / f"{worker_name(name)}{PERFETTO_SUFFIX}",
        )
        results.append(
            EntryPointKernels(name, profiles[EAGER], profiles[COMPILED], perfetto_trace=str(merged))
        )
    return KernelTimingReport(
        device=str(device),
        torch_version=torch.__version__,
        warmup_calls=warmup,
        profiled_calls=calls,
        busy_threshold=busy_threshold,
        tensorboard_logdir=str(logdir),
        tensorboard_command=f"tensorboard --logdir {shlex.quote(str(logdir))}",
        entry_points=results,
    )


def worker_name(entry_point: str) -> str:
    """A file-safe name for an entry point: its TensorBoard worker and its Perfetto trace."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", entry_point).strip("_") or "call"


def profile_call(
    call: Callable[[], Any],
    *,
    entry_point: str,
    side: str,
    device: torch.device,
    logdir: Path,
    warmup: int,
    calls: int,
) -> CallProfile:
    """Warm up, profile `calls` calls (one ProfilerStep each), read the trace back per call."""
    for _ in range(warmup):
        call()
    synchronize(device)
    trace_path = record_trace(
        call,
        label=f"{entry_point} ({side})",
        run_dir=logdir / side,
        worker=worker_name(entry_point),
        device=device,
        calls=calls,
    )
    return call_profile(side, trace_path, summarize(load_trace(trace_path), top=10))


def record_trace(
    call: Callable[[], Any],
    *,
    label: str,
    run_dir: Path,
    worker: str,
    device: torch.device,
    calls: int,
) -> Path:
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    before = set(run_dir.glob(f"{worker}.*.pt.trace.json"))
    # One untraced profiler step first: the profiler's own start-up stays out of the trace.
    steps = schedule(wait=0, warmup=1, active=calls, repeat=1)
    with warnings.catch_warnings():
        # One cycle only, so "events are cleared at the end of each cycle" does not apply.
        warnings.filterwarnings("ignore", message=".*Profiler clears events")
        with profile(
            activities=activities,
            schedule=steps,
            on_trace_ready=tensorboard_trace_handler(str(run_dir), worker_name=worker),
        ) as profiler:
            for _ in range(1 + calls):
                with record_function(label):
                    call()
                    synchronize(device)  # the call's kernels end inside its step
                profiler.step()
    written = sorted(set(run_dir.glob(f"{worker}.*.pt.trace.json")) - before)
    if len(written) != 1:
        raise RuntimeError(f"expected one new trace for {label} in {run_dir}, found {written}")
    return written[0]


def call_profile(side: str, trace_path: Path, summary: TraceSummary) -> CallProfile:
    """Totals of the trace window divided by the number of profiled calls."""
    n = max(summary.step_count, 1)

    def per_call(value: float | None) -> float | None:
        return None if value is None else value / n

    return CallProfile(
        side=side,
        trace_path=str(trace_path),
        calls=summary.step_count,
        wall_ms=statistics.median(summary.step_ms) if summary.step_ms else summary.span_ms,
        wall_ms_samples=summary.step_ms,
        span_ms_per_call=summary.span_ms / n,
        has_device_activity=summary.has_device_activity,
        kernels_per_call=per_call(summary.kernel_count),
        memcpy_per_call=per_call(summary.memcpy_count),
        memset_per_call=per_call(summary.memset_count),
        kernel_ms_per_call=per_call(summary.kernel_time_ms),
        device_ms_per_call=per_call(summary.device_time_ms),
        gpu_busy_fraction=summary.gpu_busy_fraction,
        gpu_idle_ms_per_call=per_call(summary.gpu_idle_ms),
        launch_api_ms_per_call=per_call(summary.launch_api_ms),
        kernel_launches_per_call=per_call(summary.kernel_launch_count),
        cudagraph_replays_per_call=per_call(summary.cudagraph_replay_count),
        top_kernels=None
        if summary.top_kernels is None
        else [
            KernelPerCall(k.name, k.family, k.count / n, k.total_ms / n, k.share)
            for k in summary.top_kernels
        ],
        kernel_families=None
        if summary.kernel_families is None
        else [
            KernelFamilyPerCall(f.family, f.count / n, f.total_ms / n, f.share)
            for f in summary.kernel_families
        ],
        compiled_region_names=summary.compiled_region_names,
        compiled_regions_per_call=summary.compiled_region_count / n,
        compiled_region_ms_per_call=per_call(summary.compiled_region_ms),
        outside_compiled_region_ms_per_call=per_call(summary.outside_compiled_region_ms),
        host_op_self_ms_per_call=summary.cpu_op_self_ms / n,
        top_ops=[OpPerCall(o.name, o.count / n, o.self_ms / n, o.share) for o in summary.top_ops],
    )
