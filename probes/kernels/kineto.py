"""Read a Kineto trace (the Chrome-trace JSON that torch.profiler writes) into typed events.

`torch.profiler`'s `export_chrome_trace` and `tensorboard_trace_handler` write one JSON object
whose `traceEvents` list holds the events; the file may be gzipped whatever its name says. Only
complete events (phase "X") carry a duration, so only they are kept: flow arrows, instants and
metadata say nothing about where time went. Times stay in microseconds, as in the file.

A trace is read first by the typed reader (`trace_stream`: chunk by chunk, only the fields the
analysis needs, memory in proportion to the complete events); a file it does not take is read
whole into Python objects here, event by event, and every way it is not a trace is named.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from pathlib import Path
from typing import Any

from probes.kernels.trace_events import (
    COMPLETE,
    EventArgs,
    KinetoTrace,
    TraceEvent,
    TraceFormatError,
    device_names,
)
from probes.kernels.trace_stream import GZIP_MAGIC, NotStreamable, read_streamed

__all__ = [
    "KinetoTrace",
    "TraceEvent",
    "TraceFormatError",
    "is_number",
    "load_trace",
    "read_document",
]


def load_trace(path: Path | str) -> KinetoTrace:
    """Parse `path` (`.json` or gzipped JSON); raise TraceFormatError if it is not a trace."""
    path = Path(path)
    try:
        return read_streamed(path)
    except NotStreamable:
        return read_whole(path)


def read_whole(path: Path) -> KinetoTrace:
    """The general reader: the whole document as Python objects, each event checked."""
    document = read_document(path)
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
        if raw.get("ph") != COMPLETE:
            others += 1
            continue
        events.append(_complete_event(raw, index, path))
    return KinetoTrace(
        path=path,
        events=events,
        device_names=device_names(document.get("deviceProperties")),
        other_event_count=others,
    )


def read_document(path: Path) -> Any:
    """The file's JSON (gunzipped first if it is gzip) as Python objects."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise TraceFormatError(f"cannot read {path}: {error.strerror or error}") from error
    if raw.startswith(GZIP_MAGIC):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise TraceFormatError(f"{path} is not a readable gzip file: {error}") from error
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TraceFormatError(f"{path} is not JSON, so not a profiler trace ({error})") from error


def _complete_event(raw: dict[str, Any], index: int, path: Path) -> TraceEvent:
    ts, dur = raw.get("ts"), raw.get("dur", 0)
    if not is_number(ts) or not is_number(dur):
        raise TraceFormatError(f"{path}: event {index} ('X') has no numeric 'ts' and 'dur'")
    args = raw.get("args")
    return TraceEvent(
        name=str(raw.get("name", "")),
        category=str(raw.get("cat", "")),
        ts_us=float(ts),
        dur_us=float(dur),
        pid=raw.get("pid", ""),
        tid=raw.get("tid", ""),
        args=EventArgs(args.get("correlation")) if isinstance(args, dict) else None,
    )


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool): what a trace's times must be."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )
