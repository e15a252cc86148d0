"""Read a Kineto trace (the Chrome-trace JSON that torch.profiler writes) into typed events.

`torch.profiler`'s `export_chrome_trace` and `tensorboard_trace_handler` write one JSON object
whose `traceEvents` list holds the events; the file may be gzipped whatever its name says. Only
complete events (phase "X") carry a duration, so only they are kept: flow arrows, instants and
metadata say nothing about where time went. Times stay in microseconds, as in the file.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_GZIP_MAGIC = b"\x1f\x8b"


class TraceFormatError(ValueError):
    """The file is not a Kineto / Chrome trace that this tool can read."""


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One complete ("X") event: a host op, a runtime call, a kernel, a copy, an annotation."""

    name: str
    category: str
    ts_us: float
    dur_us: float
    pid: int | str
    tid: int | str
    args: Mapping[str, Any] = field(default_factory=dict)

    @property
    def end_us(self) -> float:
        return self.ts_us + self.dur_us


@dataclass
class KinetoTrace:
    path: Path
    events: list[TraceEvent]
    device_names: list[str]  # from `deviceProperties`; empty for a CPU-only trace
    other_event_count: int  # flows, instants and metadata, kept only as a count


def load_trace(path: Path | str) -> KinetoTrace:
    """Parse `path` (`.json` or gzipped JSON); raise TraceFormatError if it is not a trace."""
    path = Path(path)
    document = _parse_json(path)
    if not isinstance(document, dict) or "traceEvents" not in document:
        raise TraceFormatError(f"{path} is JSON but not a profiler trace (no 'traceEvents' key)")
    raw_events = document["traceEvents"]
    if not isinstance(raw_events, list):
        raise TraceFormatError(f"{path}: 'traceEvents' is not a list of events")
    events: list[TraceEvent] = []
    others = 0
    for index, raw in enumerate(raw_events):
        if not isinstance(raw, dict):
            raise TraceFormatError(f"{path}: event {index} is not an object")
        if raw.get("ph") != "X":
            others += 1
            continue
        events.append(_complete_event(raw, index, path))
    return KinetoTrace(
        path=path,
        events=events,
        device_names=_device_names(document.get("deviceProperties")),
        other_event_count=others,
    )


def _parse_json(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise TraceFormatError(f"cannot read {path}: {error.strerror or error}") from error
    if raw.startswith(_GZIP_MAGIC):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise TraceFormatError(f"{path} is not a readable gzip file: {error}") from error
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TraceFormatError(f"{path} is not JSON, so not a profiler trace ({error})") from error


def _complete_event(raw: dict[str, Any], index: int, path: Path) -> TraceEvent:
    ts, dur = raw.get("ts"), raw.get("dur", 0)
    if not _is_number(ts) or not _is_number(dur):
        raise TraceFormatError(f"{path}: event {index} ('X') has no numeric 'ts' and 'dur'")
    args = raw.get("args")
    return TraceEvent(
        name=str(raw.get("name", "")),
        category=str(raw.get("cat", "")),
        ts_us=float(ts),
        dur_us=float(dur),
        pid=raw.get("pid", ""),
        tid=raw.get("tid", ""),
        args=args if isinstance(args, dict) else {},
    )


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _device_names(properties: Any) -> list[str]:
    if not isinstance(properties, list):
        return []
    return [str(p["name"]) for p in properties if isinstance(p, dict) and "name" in p]
