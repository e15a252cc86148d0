"""The events of a Kineto trace as the analysis reads them, and the typed shapes they decode from.

A trace event is decoded straight into `TraceEvent` by msgspec (`trace_stream`), field by field,
keeping only the fields the analysis reads: every other key of an event, and every key of its
`args` but CUPTI's `correlation`, is skipped without building an object. An event's phase (`ph`)
picks its type: a complete event ("X") is a `TraceEvent`, any other phase (flows, instants,
counters, metadata, ...) an empty struct that is only counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import msgspec

COMPLETE = "X"  # the one phase with a duration
# Every other phase of the trace-event format: counted, never read.
OTHER_PHASES = tuple("BEIiCbneSTpFstfPNODMVvRc()")


class TraceFormatError(ValueError):
    """The file is not a Kineto / Chrome trace that this tool can read."""


class EventArgs(msgspec.Struct, frozen=True, gc=False):
    """The one argument the analysis reads: the id that ties a host launch to its device work."""

    correlation: int | str | None = None


class TraceEvent(msgspec.Struct, frozen=True, gc=False, kw_only=True, tag_field="ph", tag="X"):
    """One complete ("X") event: a host op, a runtime call, a kernel, a copy, an annotation."""

    name: str = ""
    category: str = msgspec.field(default="", name="cat")
    ts_us: float = msgspec.field(name="ts")
    dur_us: float = msgspec.field(default=0.0, name="dur")
    pid: int | str = ""
    tid: int | str = ""
    args: EventArgs | None = None

    @property
    def end_us(self) -> float:
        return self.ts_us + self.dur_us

    @property
    def correlation(self) -> int | str | None:
        return None if self.args is None else self.args.correlation


# gc=False: a struct of strings and numbers holds no cycle, so the collector never walks them.
_OTHER_EVENTS = tuple(
    msgspec.defstruct(f"OtherEvent{index}", [], tag_field="ph", tag=phase, gc=False)
    for index, phase in enumerate(OTHER_PHASES)
)
AnyEvent = Union[TraceEvent, *_OTHER_EVENTS]  # a union built from a tuple


class TraceHead(msgspec.Struct):
    """The top-level keys of a trace other than its events: only the devices are read."""

    deviceProperties: Any = msgspec.UNSET  # the file's key


@dataclass
class KinetoTrace:
    path: Path
    events: list[TraceEvent]
    device_names: list[str]  # from `deviceProperties`; empty for a CPU-only trace
    other_event_count: int  # flows, instants and metadata, kept only as a count


def device_names(properties: Any) -> list[str]:
    if not isinstance(properties, list):
        return []
    return [str(p["name"]) for p in properties if isinstance(p, dict) and "name" in p]
