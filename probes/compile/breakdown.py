"""What compiling cost one call: its compiles by frame and stage, and their cache lookups.

`watch_compiles()` listens, while a block runs, to the two records torch keeps of each compile:
the start and end events of its compile timers (for the stages, `stages.py`) and its
compilation metrics (function, source line, cache hits and misses, torch's own total). Then
`entry_compile_time` joins them per compile id into the record.

The timer events reach Python through torch's structured trace (the `torch.__trace` logger,
which `probes/compile/trace.py` writes to a file for tlparse): a handler on it here keeps only
those events, in memory. The logger's handlers, level and propagation are as before afterwards.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch._logging._internal as torch_logging

from probes.compile.capture import compile_seconds, compiles_during
from probes.compile.stages import timed_compiles
from probes.records.compile_time import (
    BACKWARD,
    FORWARD,
    CacheLookups,
    EntryCompileTime,
    FrameCompileTime,
)

_EVENT_KEY = "chromium_event"


class _TimerEvents(logging.Handler):
    """Keeps the compile timers' start and end events of the structured trace."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.events: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        metadata = getattr(record, "metadata", None)
        if not isinstance(metadata, dict) or _EVENT_KEY not in metadata:
            return
        payload = getattr(record, "payload", None)
        try:
            event = json.loads(payload) if isinstance(payload, str) else payload
        except ValueError:
            return
        if isinstance(event, dict) and event.get("ph") in ("B", "E"):
            self.events.append(event)


@dataclass
class WatchedCompiles:
    """What `watch_compiles` saw; filled when its block ends."""

    events: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[Any] = field(default_factory=list)


@contextmanager
def watch_compiles() -> Iterator[WatchedCompiles]:
    watched = WatchedCompiles()
    logger = torch_logging.trace_log
    saved = (logger.level, logger.propagate)
    handler = _TimerEvents()
    try:
        logger.propagate = False  # the root logger would print every record
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        with compiles_during() as metrics:
            yield watched
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        watched.events = handler.events
        watched.metrics = list(metrics)


def cache_lookups(metrics: Any) -> CacheLookups:
    """The cache hits and misses torch counted for one compile."""

    def number(name: str) -> int:
        return int(getattr(metrics, name, None) or 0)

    return CacheLookups(
        fx_graph_hits=number("inductor_fx_local_cache_hit_count"),
        fx_graph_misses=number("inductor_fx_local_cache_miss_count"),
        aot_autograd_hits=number("aotautograd_local_cache_hit_count"),
        aot_autograd_misses=number("aotautograd_local_cache_miss_count"),
        remote_hits=number("inductor_fx_remote_cache_hit_count")
        + number("aotautograd_remote_cache_hit_count"),
        remote_misses=number("inductor_fx_remote_cache_miss_count")
        + number("aotautograd_remote_cache_miss_count"),
    )


def _part(metrics: Any) -> str:
    return BACKWARD if getattr(metrics, "is_forward", True) is False else FORWARD


def entry_compile_time(
    entry_point: str, first_call_s: float, watched: WatchedCompiles
) -> EntryCompileTime:
    """The record of one entry point's first call from what was watched while it ran."""
    metrics_of = {(str(m.compile_id), _part(m)): m for m in watched.metrics}
    frames: list[FrameCompileTime] = []
    for timed in timed_compiles(watched.events):
        metrics = metrics_of.get((timed.compile_id, timed.part))
        forward = metrics_of.get((timed.compile_id, FORWARD))
        frames.append(
            FrameCompileTime(
                compile_id=timed.compile_id,
                part=timed.part,
                seconds=round(timed.seconds, 6),
                stages={k: round(v, 6) for k, v in timed.stages.items()},
                function=getattr(forward, "co_name", None),
                filename=getattr(forward, "co_filename", None),
                first_line=getattr(forward, "co_firstlineno", None),
                torch_seconds=None if metrics is None else compile_seconds(metrics),
                cache=CacheLookups() if metrics is None else cache_lookups(metrics),
                recompile_reason=getattr(forward, "recompile_reason", None),
            )
        )
    return EntryCompileTime(entry_point=entry_point, first_call_s=first_call_s, frames=frames)
