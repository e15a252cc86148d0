"""Where the time of a profiled call went, read from a Kineto trace.

In the manner of Holistic Trace Analysis (`hta/analyzers/`): one parsed trace, and one function
per question (which window to look at, device time, GPU busy time, launch cost, compiled regions,
top kernels, top host ops), gathered by `summarize` into one `TraceSummary`.

Rules this module keeps, because getting them wrong double-counts time:
- Device time is the events of category `kernel`, `gpu_memcpy` and `gpu_memset` only. Annotations
  (`user_annotation`, `gpu_user_annotation`) span many kernels, so they are never added.
- A device event belongs to the window when the host call that launched it does (matched by
  CUPTI's `correlation` id), so a kernel that runs after its step's host code is still counted.
- A trace without device events is a CPU-only trace: its device fields are None, not zero.

A trace of a few training steps holds millions of events, so each question is one pass over
the events it needs, reading fields directly (`operator.attrgetter` and plain comparisons), and
the questions about the analysed window's host events read it from `HostEvents`, its events
put into the few kinds they ask about in a single pass.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import add, attrgetter, neg

from probes.kernels.intervals import union_us
from probes.kernels.kineto import KinetoTrace, TraceEvent, TraceFormatError
from probes.records.kernels import (
    COMPILED_REGION_PREFIX,
    CUBLAS,
    CUDNN,
    DEVICE_CATEGORIES,
    KERNEL,
    KERNEL_FAMILIES,
    MEMCPY,
    MEMSET,
    OTHER,
    STEP_PREFIX,
    TRITON,
    WINDOW_FROM_EVENTS,
    WINDOW_FROM_STEPS,
    KernelFamilyShare,
    KernelStat,
    OpStat,
    TraceSummary,
)

# ProfilerStep and record_function ranges, and their copies on the GPU timeline.
GPU_ANNOTATION = "gpu_user_annotation"
ANNOTATION_CATEGORIES = frozenset({"user_annotation", GPU_ANNOTATION})
PROFILER_SPAN_CATEGORY = "Trace"  # Kineto's own "PyTorch Profiler (0)" span: not activity
_NOT_ACTIVITY = ANNOTATION_CATEGORIES | {PROFILER_SPAN_CATEGORY}
CPU_OP = "cpu_op"
# Host calls into CUDA; device-side sync events (`cuda_sync`) carry correlation ids too.
HOST_API_CATEGORIES = frozenset({"cuda_runtime", "cuda_driver"})
# The backward of a compiled graph runs under autograd, outside any Torch-Compiled Region event.
COMPILED_BACKWARD = "CompiledFunctionBackward"

# Host calls that put work on the device. Eager ATen kernels go through the runtime API, Triton
# kernels through the driver API, CUDA-graph replays through the graph launch.
GRAPH_LAUNCH_APIS = frozenset({"cudaGraphLaunch", "cuGraphLaunch", "hipGraphLaunch"})
KERNEL_LAUNCH_APIS = frozenset(
    {
        "cudaLaunchKernel",
        "cudaLaunchKernelExC",
        "cudaLaunchCooperativeKernel",
        "cudaLaunchCooperativeKernelMultiDevice",
        "cuLaunchKernel",
        "cuLaunchKernelEx",
        "cuLaunchCooperativeKernel",
        "hipLaunchKernel",
        "hipExtLaunchKernel",
        "hipModuleLaunchKernel",
    }
)
LAUNCH_APIS = KERNEL_LAUNCH_APIS | GRAPH_LAUNCH_APIS

# Checked in order: cuDNN's implicit-GEMM convolutions contain "gemm" too.
_FAMILY_MARKERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (TRITON, ("triton",)),
    (CUDNN, ("cudnn", "xmma_fprop", "xmma_dgrad", "xmma_wgrad", "convolve", "conv2d")),
    (CUBLAS, ("cublas", "gemm", "gemv", "nvjet", "cutlass", "splitkreduce")),
)


@dataclass(frozen=True)
class Window:
    start_us: float
    end_us: float
    source: str
    step_ms: tuple[float, ...]

    @property
    def span_us(self) -> float:
        return self.end_us - self.start_us

    def holds(self, ts_us: float) -> bool:
        return self.start_us <= ts_us <= self.end_us

    def events_in(self, events: Iterable[TraceEvent]) -> list[TraceEvent]:
        """The events that start in the window, in their order."""
        start, end = self.start_us, self.end_us
        return [e for e in events if start <= e.ts_us <= end]


_ts = attrgetter("ts_us")
_dur = attrgetter("dur_us")
_name = attrgetter("name")
_thread = attrgetter("pid", "tid")


def _ends(events: Sequence[TraceEvent]) -> Iterable[float]:
    return map(add, map(_ts, events), map(_dur, events))


def summarize(trace: KinetoTrace, *, top: int = 10) -> TraceSummary:
    window = analysis_window(trace.events)
    device = device_events_in(trace.events, window)
    has_device = bool(device) or any(e.category in DEVICE_CATEGORIES for e in trace.events)
    if device:  # a kernel running past its step's host code stretches the call
        window = Window(
            window.start_us,
            max(window.end_us, max(_ends(device))),
            window.source,
            window.step_ms,
        )
    host = HostEvents.of(window.events_in(trace.events))
    regions = compiled_region_time(host, window)
    ops = host_op_breakdown(host.cpu_ops, top=top)
    span_ms = window.span_us / 1e3
    summary = TraceSummary(
        source=str(trace.path),
        device_names=trace.device_names,
        has_device_activity=has_device,
        window_source=window.source,
        span_ms=span_ms,
        step_count=len(window.step_ms),
        step_ms=list(window.step_ms),
        kernel_count=None,
        memcpy_count=None,
        memset_count=None,
        kernel_time_ms=None,
        device_time_ms=None,
        gpu_busy_ms=None,
        gpu_busy_fraction=None,
        gpu_idle_ms=None,
        launch_api_ms=None,
        launch_counts=None,
        kernel_launch_count=None,
        cudagraph_replay_count=None,
        top_kernels=None,
        kernel_families=None,
        compiled_region_names=regions.names,
        compiled_region_count=regions.forward_count,
        compiled_backward_count=regions.backward_count,
        compiled_region_ms=regions.ms,
        outside_compiled_region_ms=None if regions.ms is None else span_ms - regions.ms,
        cpu_op_count=ops.count,
        cpu_op_self_ms=ops.self_ms,
        top_ops=ops.top,
    )
    if has_device:
        _fill_device_fields(summary, device, host, window, top)
    return summary


@dataclass
class HostEvents:
    """The analysed window's events of the kinds the host questions ask about, in trace order."""

    cpu_ops: list[TraceEvent] = field(default_factory=list)
    launches: list[TraceEvent] = field(default_factory=list)  # calls to LAUNCH_APIS
    compiled_forward: list[TraceEvent] = field(default_factory=list)  # compiled regions
    compiled_backward: list[TraceEvent] = field(default_factory=list)

    @classmethod
    def of(cls, events: Iterable[TraceEvent]) -> HostEvents:
        """One pass: each event to its kind, the kind of each name worked out once."""
        host = cls()
        kind_of_name: dict[str, list[TraceEvent] | None] = {}
        for e in events:
            if e.category == CPU_OP:
                host.cpu_ops.append(e)
            name = e.name
            try:
                kind = kind_of_name[name]
            except KeyError:
                kind = kind_of_name[name] = host._kind_of(name)
            if kind is not None:
                kind.append(e)
        return host

    def _kind_of(self, name: str) -> list[TraceEvent] | None:
        if name in LAUNCH_APIS:
            return self.launches
        if name.startswith(COMPILED_REGION_PREFIX):
            return self.compiled_forward
        if name == COMPILED_BACKWARD:
            return self.compiled_backward
        return None


def _fill_device_fields(
    summary: TraceSummary,
    device: list[TraceEvent],
    host: HostEvents,
    window: Window,
    top: int,
) -> None:
    counts = Counter(e.category for e in device)
    summary.kernel_count = counts[KERNEL]
    summary.memcpy_count = counts[MEMCPY]
    summary.memset_count = counts[MEMSET]
    summary.kernel_time_ms = sum(e.dur_us for e in device if e.category == KERNEL) / 1e3
    summary.device_time_ms = sum(map(_dur, device)) / 1e3
    busy_ms = busy_time_us(device, window) / 1e3
    summary.gpu_busy_ms = busy_ms
    summary.gpu_busy_fraction = busy_ms / summary.span_ms if summary.span_ms > 0 else 0.0
    summary.gpu_idle_ms = summary.span_ms - busy_ms
    launches = launch_statistics(host.launches)
    summary.launch_api_ms = launches.api_ms
    summary.launch_counts = launches.counts
    summary.kernel_launch_count = launches.kernel_launches
    summary.cudagraph_replay_count = launches.graph_launches
    summary.top_kernels, summary.kernel_families = kernel_breakdown(device, top=top)


def analysis_window(events: Sequence[TraceEvent]) -> Window:
    """The recorded ProfilerSteps, else first to last event.

    A step that outlives the trace's last recorded event (the recording stopped while it was
    open) ends with that event instead.
    """
    activity = [e for e in events if e.category not in _NOT_ACTIVITY] or [
        e for e in events if e.category != PROFILER_SPAN_CATEGORY
    ]
    if not activity:
        raise TraceFormatError("the trace holds no timed events to analyse")
    first = min(map(_ts, activity))
    last = max(_ends(activity))
    steps = profiler_steps(events)
    if steps:
        start = min(map(_ts, steps))
        end = min(last, max(_ends(steps)))
        if end > start:
            return Window(start, end, WINDOW_FROM_STEPS, tuple(e.dur_us / 1e3 for e in steps))
    return Window(first, last, WINDOW_FROM_EVENTS, ())


def profiler_steps(events: Iterable[TraceEvent]) -> list[TraceEvent]:
    """Host-side ProfilerStep ranges (not their GPU-side copies), in time order."""
    steps = [e for e in events if e.name.startswith(STEP_PREFIX) and e.category != GPU_ANNOTATION]
    return sorted(steps, key=_ts)


def device_events_in(events: Sequence[TraceEvent], window: Window) -> list[TraceEvent]:
    """Kernels, copies and memsets whose launching host call lies in the window."""
    launched_at = {
        e.args.correlation: e.ts_us
        for e in events
        if e.category in HOST_API_CATEGORIES
        and e.args is not None
        and e.args.correlation is not None
    }
    start, end = window.start_us, window.end_us
    return [
        e
        for e in events
        if e.category in DEVICE_CATEGORIES
        and start <= launched_at.get(e.correlation, e.ts_us) <= end
    ]


def _clipped(events: Iterable[TraceEvent], window: Window) -> list[tuple[float, float]]:
    lo, hi = window.start_us, window.end_us
    spans = ((max(e.ts_us, lo), min(e.ts_us + e.dur_us, hi)) for e in events)
    return [(start, end) for start, end in spans if end > start]


def busy_time_us(device: Sequence[TraceEvent], window: Window) -> float:
    """Time at least one stream of the device was running something."""
    return union_us(_clipped(device, window))


@dataclass(frozen=True)
class LaunchStatistics:
    api_ms: float
    counts: dict[str, int]
    kernel_launches: int
    graph_launches: int


def launch_statistics(host: Iterable[TraceEvent]) -> LaunchStatistics:
    launches = [e for e in host if e.name in LAUNCH_APIS]
    counts = Counter(map(_name, launches))
    return LaunchStatistics(
        api_ms=sum(map(_dur, launches)) / 1e3,
        counts=dict(sorted(counts.items())),
        kernel_launches=sum(n for name, n in counts.items() if name in KERNEL_LAUNCH_APIS),
        graph_launches=sum(n for name, n in counts.items() if name in GRAPH_LAUNCH_APIS),
    )


def kernel_family(name: str) -> str:
    lowered = name.lower()
    for family, markers in _FAMILY_MARKERS:
        if any(marker in lowered for marker in markers):
            return family
    return OTHER


def kernel_breakdown(
    device: Iterable[TraceEvent], *, top: int
) -> tuple[list[KernelStat], list[KernelFamilyShare]]:
    """Kernels grouped by name (top `top` by time) and by library family."""
    count: Counter[str] = Counter()
    time_us: defaultdict[str, float] = defaultdict(float)
    for e in device:
        if e.category == KERNEL:
            count[e.name] += 1
            time_us[e.name] += e.dur_us
    total_us = sum(time_us.values())
    kernels = [
        KernelStat(name, kernel_family(name), count[name], us / 1e3, _share(us, total_us))
        for name, us in time_us.items()
    ]
    kernels.sort(key=lambda k: (-k.total_ms, k.name))
    families = []
    for family in KERNEL_FAMILIES:
        members = [k for k in kernels if k.family == family]
        family_ms = sum((k.total_ms for k in members), 0.0)
        families.append(
            KernelFamilyShare(
                family,
                sum(k.count for k in members),
                family_ms,
                _share(family_ms * 1e3, total_us),
            )
        )
    return kernels[:top], families


@dataclass(frozen=True)
class CompiledRegionTime:
    names: list[str]
    forward_count: int
    backward_count: int
    ms: float | None


def compiled_region_time(host: HostEvents, window: Window) -> CompiledRegionTime:
    """Union of compiled forward regions and compiled backward nodes inside the window."""
    forward, backward = host.compiled_forward, host.compiled_backward
    if not forward and not backward:
        return CompiledRegionTime([], 0, 0, None)
    covered_us = union_us(_clipped(forward + backward, window))
    return CompiledRegionTime(
        names=sorted({e.name for e in forward}),
        forward_count=len(forward),
        backward_count=len(backward),
        ms=covered_us / 1e3,
    )


@dataclass(frozen=True)
class HostOpBreakdown:
    count: int
    self_ms: float
    top: list[OpStat]


def host_op_breakdown(ops: Sequence[TraceEvent], *, top: int) -> HostOpBreakdown:
    """Host ops (`cpu_op`) by self time, so nested ops (linear > addmm) are not counted twice."""
    self_us = self_times_us(ops)
    count = Counter(map(_name, ops))
    time_us: defaultdict[str, float] = defaultdict(float)
    for name, own in zip(map(_name, ops), self_us, strict=True):
        time_us[name] += own
    total_us = sum(time_us.values())
    stats = [
        OpStat(name, count[name], us / 1e3, _share(us, total_us)) for name, us in time_us.items()
    ]
    stats.sort(key=lambda s: (-s.self_ms, s.name))
    return HostOpBreakdown(len(ops), total_us / 1e3, stats[:top])


def self_times_us(ops: Sequence[TraceEvent]) -> list[float]:
    """Each op's duration less the time of the ops nested in it on the same thread."""
    durations = list(map(_dur, ops))
    starts = list(map(_ts, ops))
    ends = list(map(add, starts, durations))
    # Earliest first, and of two ops that start together the longer (outer) one first.
    order = list(zip(starts, map(neg, durations), strict=True))
    self_us = durations.copy()
    by_thread: defaultdict[tuple[object, object], list[int]] = defaultdict(list)
    for index, thread in enumerate(map(_thread, ops)):
        by_thread[thread].append(index)
    for indices in by_thread.values():
        indices.sort(key=order.__getitem__)
        # A stack of the open ops (their ends and indices): each lies inside the one below it.
        open_ends: list[float] = []
        open_ops: list[int] = []
        for i in indices:
            start, end = starts[i], ends[i]
            while open_ends and open_ends[-1] <= start:
                open_ends.pop()
                open_ops.pop()
            if open_ops:
                parent_end = open_ends[-1]
                self_us[open_ops[-1]] -= (end if end < parent_end else parent_end) - start
            open_ends.append(end)
            open_ops.append(i)
    return [us if us > 0.0 else 0.0 for us in self_us]  # conditionals: no call per op


def _share(part: float, whole: float) -> float:
    return part / whole if whole > 0 else 0.0
