"""Time intervals of a trace, in microseconds: merged, subtracted, intersected, measured.

The trace reader (`trace_summary`: device busy time, compiled-region time) and the time
attribution (`probes.speed.attribution`: regions less guards less graph-break gaps) both reason
about overlapping events as sets of time; these are the operations they share.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from probes.kernels.kineto import TraceEvent

Interval = tuple[float, float]


def merged(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping intervals covering the same time; empty ones dropped."""
    out: list[Interval] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def minus(covered: list[Interval], removed: list[Interval]) -> list[Interval]:
    """The parts of `covered` that `removed` does not cover (both merged)."""
    out: list[Interval] = []
    first = 0
    for start, end in covered:
        while first < len(removed) and removed[first][1] <= start:
            first += 1
        cursor = start
        for cut_start, cut_end in removed[first:]:
            if cut_start >= end:
                break
            if cut_start > cursor:
                out.append((cursor, cut_start))
            cursor = max(cursor, cut_end)
        if cursor < end:
            out.append((cursor, end))
    return out


def within(covered: list[Interval], bounds: list[Interval]) -> list[Interval]:
    """The parts of `covered` inside `bounds` (both merged)."""
    return minus(covered, minus(covered, bounds))


def length(intervals: list[Interval]) -> float:
    return sum(end - start for start, end in intervals)


def covers(intervals: list[Interval], ts_us: float) -> bool:
    index = bisect.bisect_right(intervals, (ts_us, float("inf"))) - 1
    return index >= 0 and intervals[index][0] <= ts_us < intervals[index][1]


def spans(events: Iterable[TraceEvent]) -> list[Interval]:
    """The time the events cover, as merged intervals."""
    return merged((e.ts_us, e.end_us) for e in events)


def union_us(intervals: Iterable[Interval]) -> float:
    """Total length covered by the intervals, overlaps counted once."""
    return length(merged(intervals))
