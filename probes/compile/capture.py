"""Proof that compiled code ran: what dynamo captured, and whether a compiled region executed.

Two independent witnesses, because each alone can mislead:
- at compile time, the frames dynamo compiled during a call (torch's compilation metrics and the
  `unique_graphs` counter): zero frames means nothing was compiled for that entry point;
- at run time, the "Torch-Compiled Region" events that compiled frames emit under the profiler:
  zero events in a warm call means the call ran eager code only, however much was compiled before
  (e.g. `torch.compile(policy)` compiles `forward`, but `select_action` never reaches it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch._dynamo.utils as dynamo_utils

COMPILED_REGION_EVENT = "Torch-Compiled Region"


@dataclass
class CompiledFrame:
    compile_id: str | None
    function: str | None
    filename: str | None
    first_line: int | None
    graph_ops: int | None
    compile_time_s: float | None
    fail_type: str | None = None
    fail_reason: str | None = None
    recompile_reason: str | None = None


@dataclass
class Capture:
    """What one call of an entry point compiled, and whether its compiled code ran."""

    entry_point: str
    frames: list[CompiledFrame] = field(default_factory=list)
    graphs_captured: int = 0
    compiled_region_events: int | None = None  # in one warm call under the profiler

    @property
    def frames_compiled(self) -> int:
        return sum(1 for f in self.frames if f.fail_type is None and (f.graph_ops or 0) > 0)

    @property
    def ran_compiled_code(self) -> bool:
        if self.compiled_region_events is not None:
            return self.compiled_region_events > 0
        return self.frames_compiled > 0

    def summary(self) -> dict[str, Any]:
        return {
            "entry_point": self.entry_point,
            "frames_compiled": self.frames_compiled,
            "graphs_captured": self.graphs_captured,
            "compiled_region_events": self.compiled_region_events,
            "ran_compiled_code": self.ran_compiled_code,
            "frames": self.frames,
        }


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


def record_compiles(entry_point: str, call: Callable[[], Any]) -> tuple[Capture, Any]:
    """Run `call` once and record every frame dynamo compiled while it ran."""
    seen = {id(m) for m in dynamo_utils.get_compilation_metrics()}
    graphs_before = dynamo_utils.counters["stats"]["unique_graphs"]
    value = call()
    new = [m for m in dynamo_utils.get_compilation_metrics() if id(m) not in seen]
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
    return sum(1 for e in prof.events() if e.name.startswith(COMPILED_REGION_EVENT))
