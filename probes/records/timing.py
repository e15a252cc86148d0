"""Wall-clock timings as data: every sample of a timed call, and the ratio of two of them.

A `Measurement` keeps every sample and derives its statistics from them; a `Speedup` is a ratio of
two measurements that remembers both spreads. Their `summary()` dicts are what the benchmark and
the kernel probes record; `probes.timing` takes the samples.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

# The smallest move of a median, as a fraction, that is called a change between two runs or two
# setups rather than noise (`compare --min-change`, the inside-DDP trial's warning). One run's
# quartiles do not hold what moves between runs: another process's load on the machine, another
# memory layout. Two runs of one unchanged model in this project's CI (2 shared cores) had
# training ranges apart on quartiles alone. asv's `compare --factor` defaults to the same 10 %.
MIN_CHANGE = 0.10


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
