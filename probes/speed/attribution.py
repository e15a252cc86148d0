"""The time attribution: where one call's time goes, eager against compiled, read from its traces.

The kernel probe (`probes/kernels/profiling.py`) profiles each entry point's eager and compiled
call in runs of their own, one ProfilerStep per call. `attribute_entry_point` reads the two traces
back and splits each side's time into the categories of `probes/records/speed.py`, per call (the
totals of the profiled calls divided by their number):

- On a CPU (basis `HOST_TIMELINE`) the call is the host's work, read on the thread that holds
  the ProfilerSteps. Library ops are counted by self time, so `aten::linear` and the
  `aten::addmm` inside it are not counted twice. On the compiled side, time inside compiled
  regions that is not a library op is generated code; guard evaluation (`TorchDynamo Cache
  Lookup`) is framework overhead; the rest (eager code between and around the regions, the
  optimizer step) is outside compiled code.
- On CUDA (basis `DEVICE_TIMELINE`) the call is the device's timeline: library kernels, other
  kernels and copies, and the time nothing ran (device idle).

Compiled regions nest. Dynamo's code for a frame with a graph break calls the compiled graph,
runs the breaking instruction eagerly, then calls the resume function, whose own region opens
inside the first one; so a break's eager work lies inside the enclosing region's event, after
its graph call (`## Call CompiledFxGraph ...` under Inductor, `CompiledFunction` when autograd
records). The break gap before a region therefore starts where the last graph call of the
region around it ended, or where the last region before it ended, whichever is later; without
a graph-call event (aot_eager under no_grad) the break's own ops count as compiled. A gap is
charged to the region that follows it: its compile id names the resume function, whose name
(`torch_dynamo_resume_in_forward_at_150`) holds the line of the break.

This module measures and never judges: the ceiling's reason states figures, not verdicts.
"""

from __future__ import annotations

import linecache
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probes.kernels.intervals import (
    Interval,
    covers,
    length,
    merged,
    minus,
    spans,
    union_us,
    within,
)
from probes.kernels.kineto import TraceEvent, load_trace
from probes.kernels.trace_summary import (
    COMPILED_BACKWARD,
    CPU_OP,
    Window,
    analysis_window,
    device_events_in,
    kernel_family,
    profiler_steps,
    self_times_us,
)
from probes.records.kernels import (
    COMPILED_REGION_PREFIX,
    CUBLAS,
    CUDNN,
    KERNEL,
    STEP_PREFIX,
    WINDOW_FROM_STEPS,
)
from probes.records.location import SourceLocation
from probes.records.speed import (
    CATEGORIES,
    DEVICE_IDLE,
    DEVICE_TIMELINE,
    FRAMEWORK_OVERHEAD,
    GENERATED_KERNELS,
    HOST_TIMELINE,
    LIBRARY_KERNEL_MARKERS,
    LIBRARY_KERNELS,
    LIBRARY_OP_MARKERS,
    LIBRARY_OP_NAMES,
    OUTSIDE_COMPILED,
    BreakCost,
    Ceiling,
    EntrySpeed,
    OpTime,
    TimeShare,
)

# Dynamo's guard evaluation before each compiled frame runs (a `cpu_op`, outside the region).
CACHE_LOOKUP = "TorchDynamo Cache Lookup"
# The events that wrap a compiled graph's own run inside its region: Inductor's call of its
# generated code, and AOTAutograd's forward when autograd records the call.
GRAPH_CALL_PREFIX = "## Call CompiledFxGraph"
AOT_FORWARD = "CompiledFunction"
# The code dynamo makes for what follows a graph break: the user's function and the break's line.
RESUME_FUNCTION = re.compile(r"^torch_dynamo_resume_in_(?P<function>.+)_at_(?P<line>\d+)$")
DEVICE_TYPES = ("cpu", "cuda")
# How many library op names the ceiling's reason lists, and how many characters of each.
REASON_NAMES = 3
REASON_NAME_CHARS = 48


def attribute_entry_point(
    entry_point: str,
    eager_trace: Path | str,
    compiled_trace: Path | str,
    *,
    device_type: str,
    compiled_frames: Sequence[Mapping[str, Any]] = (),
    top: int = 5,
) -> EntrySpeed:
    """Split one entry point's eager and compiled call into time categories, per call.

    `compiled_frames` are the frames the benchmark recorded for the compiled call
    (`{"compile_id", "function", "filename", "first_line"}`): they name the code at each break.
    """
    if device_type not in DEVICE_TYPES:
        raise ValueError(f"device_type must be one of {DEVICE_TYPES}, got {device_type!r}")
    eager_calls, compiled_calls = read_calls(eager_trace), read_calls(compiled_trace)
    gaps = break_gaps(compiled_calls)
    if device_type == "cuda":
        basis = DEVICE_TIMELINE
        eager, compiled = device_time(eager_calls), device_time(compiled_calls)
    else:
        basis = HOST_TIMELINE
        eager, compiled = eager_host_time(eager_calls), compiled_host_time(compiled_calls, gaps)
    library_ops = _library_ops(eager, compiled, top)
    return EntrySpeed(
        entry_point=entry_point,
        basis=basis,
        eager_ms=eager.span_ms,
        compiled_ms=compiled.span_ms,
        attribution=[
            TimeShare(category, eager.categories[category], compiled.categories[category])
            for category in CATEGORIES
        ],
        library_ops=library_ops,
        break_costs=break_costs(gaps, compiled_calls, compiled_frames),
        outside_compiled_rest_ms=compiled.outside_rest_ms,
        ceiling=ceiling(eager, compiled, [op.name for op in library_ops]),
        traces=[str(eager_trace), str(compiled_trace)],
    )


# --- what counts as a library op or kernel ------------------------------------------------------


def is_library_op(name: str) -> bool:
    """A host op that calls a vendor library: `aten::addmm`, `mkldnn::_linear_pointwise`, ...

    Only a namespaced op counts (`ns::op`), not an autograd node or its engine wrapper. Exact
    names are matched without the namespace; markers anywhere in the name, namespace included.
    """
    namespace, separator, op = name.rpartition("::")
    if not separator or not namespace or not op.isidentifier():
        return False
    lowered = name.lower()
    return op in LIBRARY_OP_NAMES or any(marker in lowered for marker in LIBRARY_OP_MARKERS)


def is_library_kernel(event: TraceEvent) -> bool:
    """A device kernel from cuBLAS, cuDNN, or flash / memory-efficient attention."""
    if event.category != KERNEL:
        return False
    lowered = event.name.lower()
    return kernel_family(event.name) in (CUBLAS, CUDNN) or any(
        marker in lowered for marker in LIBRARY_KERNEL_MARKERS
    )


# --- one side's trace -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Calls:
    """One side's trace: its profiled calls and what the calling thread and the device did."""

    count: int  # profiled calls: ProfilerSteps, or 1 for a trace without steps
    steps: list[Interval]  # the calls on the host, merged
    intervals: list[Interval]  # each call stretched to its last device event, merged
    host: list[TraceEvent]  # the calling thread's cpu_ops that start in a call, in time order
    device: list[TraceEvent]  # device events launched in a call

    @property
    def span_us(self) -> float:
        return length(self.intervals)

    def per_call_ms(self, us: float) -> float:
        return us / 1e3 / self.count


def read_calls(path: Path | str) -> Calls:
    """The profiled calls of a trace: its ProfilerSteps, else its whole analysed window."""
    events = load_trace(path).events
    steps = profiler_steps(events)
    windows = _step_windows(steps, events) or [analysis_window(events)]
    stretched: list[Interval] = []
    device: list[TraceEvent] = []
    for call in windows:
        launched = device_events_in(events, call)
        device.extend(launched)
        stretched.append((call.start_us, max([call.end_us, *(e.end_us for e in launched)])))
    host_steps = merged((w.start_us, w.end_us) for w in windows)
    thread = _calling_thread(steps, events)
    host = [
        e
        for e in events
        if e.category == CPU_OP and (e.pid, e.tid) == thread and covers(host_steps, e.ts_us)
    ]
    host.sort(key=lambda e: (e.ts_us, -e.dur_us))
    return Calls(len(windows), host_steps, merged(stretched), host, device)


def _step_windows(steps: Sequence[TraceEvent], events: Sequence[TraceEvent]) -> list[Window]:
    """Each ProfilerStep, cut where the recording ended if it was still open then.

    The recording's end is the last event other than a step: the profiler's own span when the
    trace has one. A step closed before it keeps its tail (the profiler step's own work after
    the call's last op), so every call is measured the same way.
    """
    recorded_end = max((e.end_us for e in events if not e.name.startswith(STEP_PREFIX)), default=0)
    windows = []
    for step in steps:
        end = min(step.end_us, recorded_end)
        if end > step.ts_us:
            windows.append(Window(step.ts_us, end, WINDOW_FROM_STEPS, (step.dur_us / 1e3,)))
    return windows


def _calling_thread(steps: Sequence[TraceEvent], events: Sequence[TraceEvent]) -> object:
    """The thread that holds the ProfilerSteps, else the one with the most host ops."""
    if steps:
        return (steps[0].pid, steps[0].tid)
    counts = Counter((e.pid, e.tid) for e in events if e.category == CPU_OP)
    return counts.most_common(1)[0][0] if counts else None


def _guards(calls: Calls) -> list[Interval]:
    return within(spans(e for e in calls.host if e.name == CACHE_LOOKUP), calls.steps)


def _is_forward_region(event: TraceEvent) -> bool:
    return event.name.startswith(COMPILED_REGION_PREFIX)


def compile_id_of(region_name: str) -> str:
    """ "Torch-Compiled Region: 1/0" -> "1/0"."""
    return region_name[len(COMPILED_REGION_PREFIX) :].lstrip(":").strip()


# --- one side's time per call ---------------------------------------------------------------------


@dataclass(frozen=True)
class SideTime:
    """One side's call, per call: its span, its categories, and its library ops or kernels."""

    span_ms: float
    categories: dict[str, float | None]  # every category; None where the side cannot have it
    library_ops: dict[str, float]
    outside_rest_ms: float | None = None  # outside compiled code, break gaps apart


def _side_time(
    calls: Calls,
    library_us: float,
    generated_us: float,
    *,
    outside_us: float | None,
    overhead_us: float | None,
    idle_us: float | None,
    library_ops_us: Mapping[str, float],
    outside_rest_us: float | None = None,
) -> SideTime:
    def per_call(us: float | None) -> float | None:
        return None if us is None else calls.per_call_ms(max(us, 0.0))

    return SideTime(
        span_ms=calls.per_call_ms(calls.span_us),
        categories={
            LIBRARY_KERNELS: per_call(library_us),
            GENERATED_KERNELS: per_call(generated_us),
            OUTSIDE_COMPILED: per_call(outside_us),
            FRAMEWORK_OVERHEAD: per_call(overhead_us),
            DEVICE_IDLE: per_call(idle_us),
        },
        library_ops={name: calls.per_call_ms(us) for name, us in library_ops_us.items()},
        outside_rest_ms=per_call(outside_rest_us),
    )


def _library_self_times(calls: Calls) -> list[tuple[TraceEvent, float, bool]]:
    """Each host op of the calls with its self time and whether it is a library op."""
    own = self_times_us(calls.host)
    return [(e, us, is_library_op(e.name)) for e, us in zip(calls.host, own, strict=True)]


def eager_host_time(calls: Calls) -> SideTime:
    """Library ops' self time, every other op's self time, and the Python between ops."""
    library: defaultdict[str, float] = defaultdict(float)
    other_us = 0.0
    for event, own_us, is_library in _library_self_times(calls):
        if is_library:
            library[event.name] += own_us
        else:
            other_us += own_us
    library_us = sum(library.values())
    return _side_time(
        calls,
        library_us,
        other_us,
        outside_us=None,
        overhead_us=calls.span_us - library_us - other_us,
        idle_us=None,
        library_ops_us=library,
    )


def compiled_host_time(calls: Calls, gaps: Sequence[BreakGap]) -> SideTime:
    """Library ops anywhere, the rest of the compiled regions, guards, and what lies outside."""
    guards = _guards(calls)
    gap_time = minus(merged((g.start_us, g.end_us) for g in gaps), guards)
    regions = within(
        spans(e for e in calls.host if _is_forward_region(e) or e.name == COMPILED_BACKWARD),
        calls.steps,
    )
    regions = minus(minus(regions, guards), gap_time)
    library: defaultdict[str, float] = defaultdict(float)
    inside_us = in_gaps_us = 0.0
    for event, own_us, is_library in _library_self_times(calls):
        if not is_library:
            continue
        library[event.name] += own_us
        if covers(regions, event.ts_us):
            inside_us += own_us
        elif covers(gap_time, event.ts_us):
            in_gaps_us += own_us
    library_us = sum(library.values())
    outside_us = max(
        calls.span_us - length(regions) - length(guards) - (library_us - inside_us), 0.0
    )
    return _side_time(
        calls,
        library_us,
        length(regions) - inside_us,
        outside_us=outside_us,
        overhead_us=length(guards),
        idle_us=None,
        library_ops_us=library,
        # The gaps' library ops are library time already, not outside compiled code.
        outside_rest_us=outside_us - (length(gap_time) - in_gaps_us),
    )


def device_time(calls: Calls) -> SideTime:
    """Library kernels, the rest of the busy time, and the time the device ran nothing."""
    busy_us = union_us(within(spans(calls.device), calls.intervals))
    library_kernels = [e for e in calls.device if is_library_kernel(e)]
    library_us = union_us(within(spans(library_kernels), calls.intervals))
    per_kernel: defaultdict[str, float] = defaultdict(float)
    for kernel in library_kernels:
        per_kernel[kernel.name] += kernel.dur_us
    return _side_time(
        calls,
        library_us,
        busy_us - library_us,
        outside_us=None,
        overhead_us=None,
        idle_us=calls.span_us - busy_us,
        library_ops_us=per_kernel,
    )


def _library_ops(eager: SideTime, compiled: SideTime, top: int) -> list[OpTime]:
    names = set(eager.library_ops) | set(compiled.library_ops)
    ops = [
        OpTime(name, eager.library_ops.get(name, 0.0), compiled.library_ops.get(name, 0.0))
        for name in names
    ]
    ops.sort(key=lambda op: (-max(op.eager_ms, op.compiled_ms), op.name))
    return ops[:top]


# --- graph breaks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BreakGap:
    """Eager time on the host between one compiled graph's run and the next region's start."""

    compile_id: str  # of the region that follows the gap
    start_us: float
    end_us: float


def break_gaps(calls: Calls) -> list[BreakGap]:
    """The gap before every forward region that is not the first of its call."""
    regions = [e for e in calls.host if _is_forward_region(e)]
    graph_calls = [e for e in calls.host if _is_graph_call(e)]
    others = [e for e in calls.host if e.name != CACHE_LOOKUP and not _is_forward_region(e)]
    gaps = []
    for step_start, step_end in calls.steps:
        in_step = [r for r in regions if step_start <= r.ts_us < step_end]
        for index, region in enumerate(in_step[1:], start=1):
            start = _gap_start(in_step[:index], region, graph_calls, others)
            gaps.append(
                BreakGap(compile_id_of(region.name), min(start, region.ts_us), region.ts_us)
            )
    return gaps


def _is_graph_call(event: TraceEvent) -> bool:
    return event.name.startswith(GRAPH_CALL_PREFIX) or event.name == AOT_FORWARD


def _gap_start(
    earlier: Sequence[TraceEvent],
    region: TraceEvent,
    graph_calls: Sequence[TraceEvent],
    others: Sequence[TraceEvent],
) -> float:
    """Where compiled work last ended before `region`: an earlier region, or a graph's run."""
    ends = [r.end_us for r in earlier if r.end_us <= region.ts_us]
    enclosing = [r for r in earlier if r.ts_us <= region.ts_us < r.end_us]
    if enclosing:  # in time order, so the last is the innermost
        ends.append(_graph_end(enclosing[-1], region.ts_us, graph_calls, others))
    return max(ends, default=region.ts_us)


def _graph_end(
    parent: TraceEvent,
    before_us: float,
    graph_calls: Sequence[TraceEvent],
    others: Sequence[TraceEvent],
) -> float:
    """The end of the last graph call inside `parent` before `before_us`, else its last op's."""

    def inside(e: TraceEvent) -> bool:
        return parent.ts_us <= e.ts_us and e.end_us <= before_us

    ends = [e.end_us for e in graph_calls if inside(e)] or [e.end_us for e in others if inside(e)]
    return max(ends, default=parent.ts_us)


def break_costs(
    gaps: Sequence[BreakGap], calls: Calls, frames: Sequence[Mapping[str, Any]]
) -> list[BreakCost]:
    """One BreakCost per resuming compile id: its gaps' time less guard evaluation, per call."""
    guards = _guards(calls)
    gap_us: defaultdict[str, list[float]] = defaultdict(list)
    for gap in gaps:
        gap_us[gap.compile_id].append(length(minus([(gap.start_us, gap.end_us)], guards)))
    costs = []
    for compile_id, lengths in gap_us.items():
        frame = frame_of(compile_id, frames)
        function = str(frame.get("function") or "") if frame else ""
        costs.append(
            BreakCost(
                compile_id=compile_id,
                function=function,
                location=resume_location(function, frame.get("filename") if frame else None),
                ms_per_call=calls.per_call_ms(sum(lengths)),
                gaps_per_call=len(lengths) / calls.count,
            )
        )
    costs.sort(key=lambda cost: (-cost.ms_per_call, cost.compile_id))
    return costs


def frame_of(compile_id: str, frames: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The recorded frame of `compile_id`, else one of the same frame ("1/1" runs 1/0's code)."""
    for frame in frames:
        if frame.get("compile_id") == compile_id:
            return frame
    frame_id = compile_id.split("/")[0]
    for frame in frames:
        if str(frame.get("compile_id") or "").split("/")[0] == frame_id:
            return frame
    return None


def resume_location(function: str, filename: Any) -> SourceLocation | None:
    """The break's line, read from a resume function's name; None for any other code."""
    match = RESUME_FUNCTION.match(function)
    if match is None or not filename:
        return None
    line = int(match["line"])
    code = linecache.getline(str(filename), line).strip()
    return SourceLocation(str(filename), line, match["function"], code)


# --- the ceiling ----------------------------------------------------------------------------------


def ceiling(eager: SideTime, compiled: SideTime, names: Sequence[str]) -> Ceiling:
    """Amdahl over the library kernels: the call cannot take less than their time."""
    eager_library = eager.categories[LIBRARY_KERNELS] or 0.0
    compiled_library = compiled.categories[LIBRARY_KERNELS] or 0.0
    positive = [ms for ms in (eager_library, compiled_library) if ms > 0]
    library_ms = min(positive) if positive else None
    speedup = None if library_ms is None else eager.span_ms / library_ms
    return Ceiling(
        speedup=speedup,
        eager_ms=eager.span_ms,
        library_ms=library_ms,
        library_share=compiled_library / compiled.span_ms if compiled.span_ms > 0 else None,
        reason=_ceiling_reason(eager, compiled, library_ms, speedup, names),
    )


def _ceiling_reason(
    eager: SideTime,
    compiled: SideTime,
    library_ms: float | None,
    speedup: float | None,
    names: Sequence[str],
) -> str:
    if library_ms is None or speedup is None:
        return (
            f"no library kernel ran: neither the eager call ({_ms(eager.span_ms)} ms) nor the "
            f"compiled call ({_ms(compiled.span_ms)} ms) spent time in a GEMM, convolution, "
            f"attention or other vendor-library op"
        )
    listed = ", ".join(_shortened(name) for name in names[:REASON_NAMES])
    compiled_part = _library_part(compiled, "the compiled call's")
    eager_part = _library_part(eager, "eager's")
    return (
        f"library kernels ({listed}) take {compiled_part} and {eager_part}: with everything "
        f"else at zero the call would still take {_ms(library_ms)} ms, a speedup of "
        f"{speedup:.2f}x over eager at most"
    )


def _library_part(side: SideTime, whose: str) -> str:
    library = side.categories[LIBRARY_KERNELS] or 0.0
    taken = f"{_ms(library)} ms" if library > 0 else "none"
    return f"{taken} of {whose} {_ms(side.span_ms)} ms"


def _shortened(name: str) -> str:
    """A kernel's name cut to `REASON_NAME_CHARS` (CUDA template names run to hundreds)."""
    if len(name) <= REASON_NAME_CHARS:
        return name
    return name[: REASON_NAME_CHARS - 3] + "..."


def _ms(value: float) -> str:
    """Three significant figures or more, without an exponent: 152, 24.4, 1.59, 0.312."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"
