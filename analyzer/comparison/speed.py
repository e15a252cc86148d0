"""Each speedup before and after, and whether it moved beyond the spread of the two runs.

A speedup is recorded with the range its timing spread allows (`probes.records.timing.Speedup`:
eager's first quartile over compiled's third, to eager's third over compiled's first). Two runs
of one unchanged model give two different medians; `speedup_call` says when a difference is
more than that: the two ranges apart, and the medians moved by at least a minimum change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analyzer.comparison.changes import NotCompared, SpeedupChange, SpeedupRange
from analyzer.comparison.sides import in_both, not_compared
from probes.records.names import BENCHMARK, COMPILED, EAGER
from probes.records.serialize import as_number
from probes.records.timing import MIN_CHANGE

# What a change of speedup is called.
NOISE = "noise"  # the ranges overlap, or the medians moved by less than the minimum change
FASTER = "faster"  # the ranges are apart, AFTER's above BEFORE's, by the minimum change or more
SLOWER = "slower"  # the ranges are apart, AFTER's below BEFORE's, by the minimum change or more


def ranges_apart(before: SpeedupRange, after: SpeedupRange) -> bool | None:
    """Whether the two ranges do not overlap; None where a run recorded no range."""
    if None in (before.low, before.high, after.low, after.high):
        return None
    return after.low > before.high or after.high < before.low  # type: ignore[operator]


def speedup_call(
    before: SpeedupRange, after: SpeedupRange, min_change: float = MIN_CHANGE
) -> str | None:
    """Noise, progress or regression: the one definition the comparison and the gate use.

    A difference inside both ranges is noise, not progress; so is any difference while the two
    ranges still overlap, since each run's median could have fallen anywhere in its range. Only
    ranges apart (AFTER's pessimistic end above BEFORE's optimistic end, or AFTER's optimistic
    end below BEFORE's pessimistic end) with medians at least `min_change` apart (a fraction of
    BEFORE's) make a change faster or slower. None where a run recorded no range: without a
    spread there is nothing to tell noise by.
    """
    apart = ranges_apart(before, after)
    if apart is None:
        return None
    if not apart or abs(after.ratio - before.ratio) < min_change * before.ratio:
        return NOISE
    return FASTER if after.ratio > before.ratio else SLOWER


def speedup_range(timing: Mapping[str, Any]) -> SpeedupRange | None:
    """The recorded speedup of one entry point's timing, or None where it has no ratio."""
    speedup = timing.get("speedup") or {}
    ratio = as_number(speedup.get("ratio"))
    if ratio is None:
        return None
    return SpeedupRange(ratio, as_number(speedup.get("low")), as_number(speedup.get("high")))


def timings(probes: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The benchmark's timing of each entry point, as recorded."""
    return dict((probes.get(BENCHMARK) or {}).get("timings") or {})


def speedup_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], min_change: float = MIN_CHANGE
) -> tuple[list[SpeedupChange], list[NotCompared]]:
    """Each entry point both runs timed: its speedups with their ranges, and the call."""
    one, other = timings(before), timings(after)
    changes = []
    for entry_point in in_both(one, other):
        first, second = speedup_range(one[entry_point]), speedup_range(other[entry_point])
        call = speedup_call(first, second, min_change) if first and second else None
        changes.append(
            SpeedupChange(
                entry_point=entry_point,
                before=first,
                after=second,
                call=call,
                eager_ms_before=_median(one[entry_point], EAGER),
                eager_ms_after=_median(other[entry_point], EAGER),
                compiled_ms_before=_median(one[entry_point], COMPILED),
                compiled_ms_after=_median(other[entry_point], COMPILED),
            )
        )
    return changes, not_compared("speedup", one, other)


def _median(timing: Mapping[str, Any], side: str) -> float | None:
    return as_number((timing.get(side) or {}).get("median_ms"))
