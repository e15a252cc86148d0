"""One trace per entry point for Perfetto: the eager and the compiled calls, one above the other.

The kernel probe profiles each side of an entry point in a run of its own, so their Chrome
traces have their own clocks, process ids and flow ids. `write_merged_trace` puts them in one
trace-event file that Perfetto (and `chrome://tracing`) opens as two processes, named after the
sides and sorted in the order given ("eager" above "compiled"):

- time: each side is shifted so that its analysed window (its first profiled step, as
  `trace_summary.analysis_window` finds it) starts at t=0. Perfetto drops negative timestamps,
  so what ended before that is left out (the profiler's start-up) and a complete event still
  running then (the profiler's own span) is cut to start at 0;
- processes and threads: every (pid, tid) of a side becomes a thread of the side's process,
  named after its original process and thread ("CPU: thread 123 (python)", "GPU 0: stream 7") and
  sorted as the original trace sorted them;
- flows (launch to kernel, "ac2g"): each side's ids are renumbered into one range for the whole
  file, so a flow still joins the two events it joined; a flow one of whose ends was left out is
  left out whole.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from probes.kernels.kineto import is_number, load_trace, read_document
from probes.kernels.trace_events import COMPLETE
from probes.kernels.trace_summary import analysis_window

METADATA = "M"
PROCESS_NAME = "process_name"
PROCESS_LABELS = "process_labels"  # Kineto's "CPU", "GPU 0": what a process of the trace is
PROCESS_SORT = "process_sort_index"
THREAD_NAME = "thread_name"
THREAD_SORT = "thread_sort_index"
FLOW_PHASES = frozenset("stf")
GLOBAL_TRACK = "global"  # Kineto's events with an empty pid and tid: instants over the trace

Thread = tuple[Any, Any]  # an event's original (pid, tid)


def write_merged_trace(sides: Mapping[str, Path | str], dest: Path) -> Path:
    """`sides` (name -> Chrome trace) as one trace, one process per side, in the order given."""
    events: list[dict[str, Any]] = []
    flow_ids = itertools.count(1)
    devices: Any = None
    for pid, (side, path) in enumerate(sides.items(), start=1):
        document = read_document(Path(path))
        start_us = analysis_window(load_trace(path).events).start_us
        events += SideTrace(side, pid, start_us, flow_ids).events(document["traceEvents"])
        devices = devices or document.get("deviceProperties")
    merged: dict[str, Any] = {"traceEvents": events}
    if devices:
        merged["deviceProperties"] = devices
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(msgspec.json.encode(merged))
    return dest


@dataclass
class SideTrace:
    """One side's events, moved into the merged trace: its process, its t=0, its flow ids."""

    side: str
    pid: int
    start_us: float
    flow_ids: Iterator[int]
    _new_ids: dict[Any, int] = field(default_factory=dict)  # old flow id -> id in the file

    def events(self, raw_events: list[Any]) -> list[dict[str, Any]]:
        raw = [e for e in raw_events if isinstance(e, dict)]
        timed = [e for e in raw if e.get("ph") != METADATA and is_number(e.get("ts"))]
        shifted = [(e, self._shifted(e)) for e in timed]
        left_out = {_flow_id(e) for e, moved in shifted if moved is None and _is_flow(e)}
        kept = [
            moved
            for _, moved in shifted
            if moved is not None and not (_is_flow(moved) and _flow_id(moved) in left_out)
        ]
        threads = _thread_order(raw, kept)
        return self._metadata(raw, threads) + [self._moved(e, threads) for e in kept]

    def _shifted(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """The event on the side's clock (t=0 at its window), or None if it ended before 0.

        Two times this close subtract exactly in floating point, so nesting is kept.
        """
        ts = event["ts"] - self.start_us
        if event.get("ph") == COMPLETE and is_number(event.get("dur")):
            end = ts + event["dur"]
            if end <= 0:
                return None
            start = max(ts, 0.0)
            return event | {"ts": start, "dur": end - start}
        return None if ts < 0 else event | {"ts": ts}

    def _moved(self, event: dict[str, Any], threads: dict[Thread, int]) -> dict[str, Any]:
        moved = event | {"pid": self.pid, "tid": threads[_thread(event)]}
        if "id" in event:
            moved["id"] = self._new_flow_id(_flow_id(event))
        return moved

    def _new_flow_id(self, old: Any) -> int:
        if old not in self._new_ids:
            self._new_ids[old] = next(self.flow_ids)
        return self._new_ids[old]

    def _metadata(
        self, raw: list[dict[str, Any]], threads: dict[Thread, int]
    ) -> list[dict[str, Any]]:
        names = _metadata_values(raw, PROCESS_NAME, "name", by_thread=False)
        names |= _metadata_values(raw, PROCESS_LABELS, "labels", by_thread=False)
        thread_names = _metadata_values(raw, THREAD_NAME, "name", by_thread=True)
        out = [
            _meta(PROCESS_NAME, self.pid, 0, {"name": self.side}),
            _meta(PROCESS_SORT, self.pid, 0, {"sort_index": self.pid}),
        ]
        for thread, tid in threads.items():
            pid, old_tid = thread
            parts = (names.get(pid, pid), thread_names.get(thread, old_tid))
            label = ": ".join(str(p).strip() for p in parts if str(p).strip()) or GLOBAL_TRACK
            out.append(_meta(THREAD_NAME, self.pid, tid, {"name": label}))
            out.append(_meta(THREAD_SORT, self.pid, tid, {"sort_index": tid}))
        return out


def _thread_order(raw: list[dict[str, Any]], kept: list[dict[str, Any]]) -> dict[Thread, int]:
    """Each thread of the kept events, numbered in the original trace's sort order."""
    process_sort = _metadata_values(raw, PROCESS_SORT, "sort_index", by_thread=False)
    thread_sort = _metadata_values(raw, THREAD_SORT, "sort_index", by_thread=True)
    first_seen = {thread: index for index, thread in enumerate(dict.fromkeys(map(_thread, kept)))}

    def order(thread: Thread) -> tuple[float, float, int]:
        return (
            _number_or(process_sort.get(thread[0]), float("inf")),
            _number_or(thread_sort.get(thread), float("inf")),
            first_seen[thread],
        )

    return {thread: tid for tid, thread in enumerate(sorted(first_seen, key=order), start=1)}


def _metadata_values(
    raw: list[dict[str, Any]], name: str, key: str, *, by_thread: bool
) -> dict[Any, Any]:
    """The `args[key]` of the metadata events called `name`, by pid or by (pid, tid)."""
    return {
        (_thread(e) if by_thread else e.get("pid")): e["args"][key]
        for e in raw
        if e.get("ph") == METADATA
        and e.get("name") == name
        and isinstance(e.get("args"), dict)
        and key in e["args"]
    }


def _meta(name: str, pid: int, tid: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"ph": METADATA, "name": name, "pid": pid, "tid": tid, "ts": 0, "args": args}


def _is_flow(event: dict[str, Any]) -> bool:
    return event.get("ph") in FLOW_PHASES


def _flow_id(event: dict[str, Any]) -> Any:
    return _hashable(event.get("id"))


def _thread(event: dict[str, Any]) -> Thread:
    return (_hashable(event.get("pid")), _hashable(event.get("tid")))


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, type(None))) else str(value)


def _number_or(value: Any, default: float) -> float:
    return float(value) if is_number(value) else default
