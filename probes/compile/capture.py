"""Proof that compiled code ran: what dynamo captured, and whether a compiled region executed.

Two independent witnesses, because each alone can mislead:
- at compile time, the frames dynamo compiled during a call (torch's compilation metrics and the
  `unique_graphs` counter): zero frames means nothing was compiled for that entry point;
- at run time, the "Torch-Compiled Region" events that compiled frames emit under the profiler:
  zero events in a warm call means the call ran eager code only, however much was compiled before
  (e.g. `torch.compile(policy)` compiles `forward`, but `select_action` never reaches it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch._dynamo.utils as dynamo_utils

from probes.records.compile import Capture, CompiledFrame
from probes.records.kernels import COMPILED_REGION_PREFIX


def _frame_from_metrics(metrics: Any) -> CompiledFrame:
    return CompiledFrame(
        compile_id=metrics.compile_id,
        function=metrics.co_name,
        filename=metrics.co_filename,
        first_line=metrics.co_firstlineno,
        graph_ops=metrics.graph_op_count,
        compile_time_s=metrics.entire_frame_compile_time_s,
        fail_type=metrics.fail_type,
        fail_reason=metrics.fail_reason,
        recompile_reason=metrics.recompile_reason,
    )


def compile_seconds(metrics: Any) -> float:
    """One compile's seconds as torch timed it (a lazy backward compile has no frame time)."""
    duration_us = getattr(metrics, "duration_us", None)
    if duration_us is not None:
        return duration_us / 1e6
    return float(getattr(metrics, "entire_frame_compile_time_s", None) or 0.0)


@contextmanager
def compiles_during() -> Iterator[list[Any]]:
    """The compilation metrics dynamo records while the block runs (the list fills at its end).

    Dynamo keeps its last 64 metrics in a bounded deque: in a long process an old one is dropped
    for each new one, and a dropped object's id() can be reused by the next. So the metrics from
    before are held, not only their ids, until the new ones are told apart from them.
    """
    before = dynamo_utils.get_compilation_metrics()
    seen = {id(m) for m in before}
    new: list[Any] = []
    try:
        yield new
    finally:
        new.extend(m for m in dynamo_utils.get_compilation_metrics() if id(m) not in seen)
        del before


def record_compiles(entry_point: str, call: Callable[[], Any]) -> tuple[Capture, Any]:
    """Run `call` once and record every frame dynamo compiled while it ran."""
    graphs_before = dynamo_utils.counters["stats"]["unique_graphs"]
    with compiles_during() as new:
        value = call()
    capture = Capture(
        entry_point=entry_point,
        frames=[_frame_from_metrics(m) for m in new],
        graphs_captured=dynamo_utils.counters["stats"]["unique_graphs"] - graphs_before,
    )
    return capture, value


def count_compiled_regions(call: Callable[[], Any]) -> int:
    """Number of compiled-region events one call emits (run it warm: after its compile)."""
    cpu = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=cpu, acc_events=True) as prof:
        call()
    return sum(1 for e in prof.events() if e.name.startswith(COMPILED_REGION_PREFIX))
