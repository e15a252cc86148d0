"""Kernel-timing probe: where the time of one call goes, eager against compiled.

Each entry point is a pair of zero-argument callables (eager call, compiled call). Each side is
warmed up, then profiled in a run of its own (never a run that is timed) with `torch.profiler`,
one ProfilerStep per call, and written with `tensorboard_trace_handler` to
`<out>/tensorboard/eager/` and `<out>/tensorboard/compiled/`: two runs for TensorBoard's PyTorch
Profiler plugin, with one worker per entry point; the same files open in Perfetto. Each trace is
then read back with `probes.kernels.trace_summary` and reduced to per-call figures.

What-if: on CUDA, when the default compiled call keeps the GPU busy less than
`LAUNCH_BOUND_BUSY` of its span, a `mode="reduce-overhead"` twin (CUDA graphs) supplied by the
caller is timed against eager and default with `measure_interleaved` (not under the profiler), with
any cudagraph skip and its reason. Whether it ran or not, its `reason` records the figures that
decided the plan; judging the call is left to the rules.
"""

from __future__ import annotations

import logging
import re
import shlex
import statistics
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
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

from probes.compile.capture import compiles_during
from probes.errors import error_line
from probes.kernels.kineto import load_trace
from probes.kernels.trace_summary import summarize
from probes.logs import messages_logged
from probes.records.kernels import (
    FAILED,
    LAUNCH_BOUND_BUSY,
    MEASURED,
    NOT_RUN,
    TENSORBOARD_SUBDIR,
    CallProfile,
    EntryPointKernels,
    KernelFamilyPerCall,
    KernelPerCall,
    KernelTimingReport,
    OpPerCall,
    ReduceOverheadWhatIf,
    TraceSummary,
)
from probes.records.names import COMPILED, EAGER, SIDES
from probes.records.timing import Speedup
from probes.timing import measure_interleaved, synchronize, time_first_call

EntryPointCalls = tuple[Callable[[], Any], Callable[[], Any]]
ReduceOverheadFactory = Callable[[str], Callable[[], Any]]


def profile_kernels(
    entry_points: Mapping[str, EntryPointCalls],
    *,
    device: torch.device | str,
    out_dir: Path | str,
    warmup: int = 3,
    calls: int = 5,
    reduce_overhead: ReduceOverheadFactory | None = None,
    what_if_iters: int = 20,
    what_if_warmup: int = 3,
    busy_threshold: float = LAUNCH_BOUND_BUSY,
) -> KernelTimingReport:
    """Profile every entry point's eager and compiled call; measure the what-if where it applies.

    `reduce_overhead(name)` returns a zero-argument call of a `mode="reduce-overhead"` twin of
    the entry point `name`; it is asked for only when the what-if runs.
    """
    if calls < 1:
        raise ValueError(f"calls must be at least 1, got {calls}")
    device = torch.device(device)
    logdir = Path(out_dir).resolve() / TENSORBOARD_SUBDIR
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
        what_if = reduce_overhead_what_if(
            name,
            eager_call,
            compiled_call,
            profiles[COMPILED],
            device=device,
            factory=reduce_overhead,
            iters=what_if_iters,
            warmup=what_if_warmup,
            busy_threshold=busy_threshold,
        )
        results.append(EntryPointKernels(name, profiles[EAGER], profiles[COMPILED], what_if))
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
    """A file-safe TensorBoard worker name for an entry point."""
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


def reduce_overhead_what_if(
    name: str,
    eager_call: Callable[[], Any],
    compiled_call: Callable[[], Any],
    compiled: CallProfile,
    *,
    device: torch.device,
    factory: ReduceOverheadFactory | None,
    iters: int,
    warmup: int,
    busy_threshold: float,
) -> ReduceOverheadWhatIf:
    """Time a reduce-overhead twin against eager and default compiled, or record why not.

    The what-if runs only where CUDA graphs could matter (a CUDA device, the GPU busy less than
    `busy_threshold` of the compiled call); its reason records the figures behind that plan.
    """
    if device.type != "cuda":
        return ReduceOverheadWhatIf(
            NOT_RUN,
            f"the reduce-overhead what-if needs a GPU: CUDA graphs replay recorded GPU work, "
            f"and this run is on {device.type}",
        )
    busy = compiled.gpu_busy_fraction
    if busy is None:
        return ReduceOverheadWhatIf(NOT_RUN, "the compiled call recorded no device activity")
    busy_share = (
        f"GPU busy {100 * busy:.1f} % of the default compiled call's span, "
        f"{'at or above' if busy >= busy_threshold else 'below'} the "
        f"{100 * busy_threshold:.1f} % below which the what-if runs"
    )
    if busy >= busy_threshold:
        return ReduceOverheadWhatIf(NOT_RUN, busy_share)
    if factory is None:
        return ReduceOverheadWhatIf(NOT_RUN, f"{busy_share}; no reduce-overhead twin was supplied")
    failure: Exception | None = None
    with watch_cudagraph_skips() as skips:
        try:
            twin = factory(name)

            def replay() -> Any:
                # Each call is a whole iteration: outputs of the last one may be freed.
                torch.compiler.cudagraph_mark_step_begin()
                return twin()

            first_call_s, _ = time_first_call(replay, device)
            measured = measure_interleaved(
                {"eager": eager_call, "default": compiled_call, "reduce-overhead": replay},
                iters=iters,
                warmup=warmup,
                device=device,
            )
        except Exception as error:  # a failed what-if must not sink the diagnosis
            failure = error
    if failure is not None:
        return ReduceOverheadWhatIf(
            FAILED,
            error_line(failure),
            cudagraph_skips=skips.count,
            cudagraph_skip_reasons=skips.reasons,
        )
    return ReduceOverheadWhatIf(
        MEASURED,
        busy_share,
        first_call_s=first_call_s,
        eager=measured["eager"].summary(),
        default=measured["default"].summary(),
        reduce_overhead=measured["reduce-overhead"].summary(),
        speedup_over_eager=Speedup(measured["eager"], measured["reduce-overhead"]).summary(),
        speedup_over_default=Speedup(measured["default"], measured["reduce-overhead"]).summary(),
        cudagraph_skips=skips.count,
        cudagraph_skip_reasons=skips.reasons,
    )


@dataclass
class CudagraphSkips:
    count: int = 0
    reasons: list[str] = field(default_factory=list)


@contextmanager
def watch_cudagraph_skips() -> Iterator[CudagraphSkips]:
    """Count cudagraph skips and keep their reasons while the block runs.

    Inductor reports a skip through `log_cudagraph_skip_and_bump_counter`
    (`torch/_inductor/cudagraph_utils.py`): a warning "skipping cudagraphs due to ..." on the
    `cudagraphs` artifact logger, `counters["inductor"]["cudagraph_skips"] += 1`, and the reason
    in the compile's metrics (`cudagraph_skip_reason`). Skips on a CPU-only graph bump the
    counter without a message.
    """
    from torch._dynamo.utils import counters
    from torch._inductor import cudagraph_utils

    skips = CudagraphSkips()
    start = counters["inductor"]["cudagraph_skips"]
    try:
        with (
            compiles_during() as new_compiles,
            messages_logged(cudagraph_utils.cudagraphs_log, logging.WARNING) as messages,
        ):
            yield skips
    finally:
        # Read after the block has exited: only then does `new_compiles` hold its compiles.
        skips.count = counters["inductor"]["cudagraph_skips"] - start
        reasons = [m for m in messages if "skipping cudagraph" in m]
        reasons += [
            m.cudagraph_skip_reason
            for m in new_compiles
            if getattr(m, "cudagraph_skip_reason", None)
        ]
        skips.reasons = list(dict.fromkeys(reasons))
