"""Communication against compute in a rank's profile: the collectives' time, and how much of it
ran while nothing else did.

Read from the Chrome trace `torch.profiler` wrote over the profiled steps (its ProfilerStep
window, `probes.kernels.trace_summary.analysis_window`). The collectives are gloo's and NCCL's
own events (gloo's "gloo:all_reduce" on its worker threads, NCCL's kernels on the GPU) and the
`c10d::` calls that issue them; compute is every other host op on a CPU, every other kernel on
a GPU.
"""

from __future__ import annotations

from pathlib import Path

from probes.kernels import intervals
from probes.kernels.kineto import TraceEvent, load_trace
from probes.kernels.trace_summary import CPU_OP, analysis_window
from probes.records.distributed import CommTime
from probes.records.kernels import KERNEL, STEP_PREFIX

COLLECTIVE_MARKERS = ("gloo:", "nccl", "c10d::", "record_param_comms")
# The host-side call that issues a collective: counted as communication, never as compute.
ISSUE_PREFIX = "c10d::"


def comm_time(trace: Path, device_type: str) -> CommTime:
    events = load_trace(trace).events
    window = analysis_window(events)
    bounds = [(window.start_us, window.end_us)]
    inside = [e for e in events if e.end_us > window.start_us and e.ts_us < window.end_us]
    collectives = [e for e in inside if is_collective(e)]
    compute_category = KERNEL if device_type == "cuda" else CPU_OP
    compute = [
        e
        for e in inside
        if e.category == compute_category and not is_collective(e) and not _is_step(e)
    ]
    comm_spans = intervals.within(intervals.merged(intervals.spans(collectives)), bounds)
    compute_spans = intervals.within(intervals.merged(intervals.spans(compute)), bounds)
    exposed = intervals.minus(comm_spans, compute_spans)
    comm_us, exposed_us = intervals.length(comm_spans), intervals.length(exposed)
    return CommTime(
        window_ms=(window.end_us - window.start_us) / 1e3,
        steps=len(window.step_ms) or 1,
        comm_ms=comm_us / 1e3,
        compute_ms=intervals.length(compute_spans) / 1e3,
        overlapped_ms=(comm_us - exposed_us) / 1e3,
        exposed_comm_ms=exposed_us / 1e3,
        collectives=sum(1 for e in collectives if not e.name.startswith(ISSUE_PREFIX)),
        device_type=device_type,
    )


def is_collective(event: TraceEvent) -> bool:
    name = event.name.lower()
    return any(marker in name for marker in COLLECTIVE_MARKERS)


def _is_step(event: TraceEvent) -> bool:
    return event.name.startswith(STEP_PREFIX)
