"""Wall-clock timing as data, in the manner of torch.utils.benchmark.

`measure_interleaved` runs several callables round-robin (eager, compiled, ...), so that a drift
of the machine (clocks, other load) falls on all of them alike; it synchronises the device around
every call, warms up first, and keeps every sample. A `Measurement` derives its statistics from the
samples; a `Speedup` is a ratio of two measurements that remembers both spreads.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Measurement:
    label: str
    samples_ms: list[float] = field(default_factory=list)
    warmup_calls: int = 0
    device: str = "cpu"

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.samples_ms)

    @property
    def min_ms(self) -> float:
        return min(self.samples_ms)

    @property
    def max_ms(self) -> float:
        return max(self.samples_ms)

    @property
    def quartiles_ms(self) -> tuple[float, float]:
        """First and third quartile; with fewer than 4 samples, the min and the max."""
        if len(self.samples_ms) < 4:
            return self.min_ms, self.max_ms
        q1, _, q3 = statistics.quantiles(self.samples_ms, n=4)
        return q1, q3

    @property
    def iqr_ms(self) -> float:
        q1, q3 = self.quartiles_ms
        return q3 - q1

    def summary(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "device": self.device,
            "calls": len(self.samples_ms),
            "warmup_calls": self.warmup_calls,
            "median_ms": self.median_ms,
            "mean_ms": self.mean_ms,
            "iqr_ms": self.iqr_ms,
            "min_ms": self.min_ms,
            "max_ms": self.max_ms,
            "samples_ms": self.samples_ms,
        }


@dataclass
class Speedup:
    """baseline / candidate on medians, with the range the spreads allow."""

    baseline: Measurement
    candidate: Measurement

    @property
    def ratio(self) -> float:
        return self.baseline.median_ms / self.candidate.median_ms

    @property
    def low(self) -> float:
        """Pessimistic ratio: the baseline's first quartile over the candidate's third."""
        return self.baseline.quartiles_ms[0] / self.candidate.quartiles_ms[1]

    @property
    def high(self) -> float:
        """Optimistic ratio: the baseline's third quartile over the candidate's first."""
        return self.baseline.quartiles_ms[1] / self.candidate.quartiles_ms[0]

    def summary(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline.label,
            "candidate": self.candidate.label,
            "ratio": self.ratio,
            "low": self.low,
            "high": self.high,
        }


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
