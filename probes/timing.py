"""Wall-clock timing, in the manner of torch.utils.benchmark.

`measure_interleaved` runs several callables round-robin (eager, compiled, ...), so that a drift
of the machine (clocks, other load) falls on all of them alike; it synchronises the device around
every call, warms up first, and keeps every sample, as a `probes.records.timing.Measurement`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import torch

from probes.records.timing import Measurement


def synchronize(device: torch.device | str) -> None:
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_interleaved(
    calls: Mapping[str, Callable[[], Any]],
    *,
    iters: int,
    warmup: int,
    device: torch.device | str,
) -> dict[str, Measurement]:
    """Time each callable `iters` times, round-robin, after `warmup` untimed rounds."""
    if iters < 1:
        raise ValueError(f"iters must be at least 1, got {iters}")
    device = torch.device(device)
    results = {label: Measurement(label, [], warmup, str(device)) for label in calls}
    for _ in range(warmup):
        for call in calls.values():
            call()
    synchronize(device)
    for _ in range(iters):
        for label, call in calls.items():
            start = time.perf_counter()
            call()
            synchronize(device)
            results[label].samples_ms.append((time.perf_counter() - start) * 1e3)
    return results


def time_first_call(call: Callable[[], Any], device: torch.device | str) -> tuple[float, Any]:
    """Seconds one call takes (a compiled callable's first call: the compile) and its value."""
    synchronize(device)
    start = time.perf_counter()
    value = call()
    synchronize(device)
    return time.perf_counter() - start, value
