"""What the benchmark probe records: its settings, each entry point's timing, the training trace,
and the reference report's Raw Data derived from them.

`probes.benchmark` measures and fills a `BenchmarkResult`; `diagnosis.json` stores it under
`probes["benchmark"]` and its `reference_metrics()` under "reference_metrics". The reference
criteria that decide Raw Data `success` are `probes.records.reference`'s, so the probe, the
diagnosis and triage decide it the same way.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from probes.records.environment import NumericSettings
from probes.records.names import INFERENCE, TRAINING
from probes.records.reference import (
    ACTION_DIFF,
    LOSS_DIFF,
    REFERENCE_SPEEDUP,
    REFERENCE_TOLERANCE,
    SPEEDUP_KEY,
    TIME_COMPILED_KEY,
    TIME_ORIGINAL_KEY,
    reference_criteria,
    verdict_of,
)


@dataclass(frozen=True)
class BenchmarkSettings:
    iters_inference: int = 100
    iters_training: int = 50
    warmup: int = 10
    seed: int = 42
    tolerance: float = REFERENCE_TOLERANCE  # on the action and on the loss difference
    speedup_threshold: float = REFERENCE_SPEEDUP
    learning_rate: float = 1e-4  # Adam, as the reference script
    grad_clip_norm: float = 10.0  # LeRobot's training default, applied on both sides


@dataclass
class EntryTiming:
    entry_point: str
    eager: dict[str, Any]  # probes.records.timing.Measurement.summary()
    compiled: dict[str, Any]
    speedup: dict[str, Any]  # probes.records.timing.Speedup.summary()
    eager_first_call_s: float | None = None
    compiled_first_call_s: float | None = None  # includes the compile
    eager_peak_memory_mb: float | None = None  # CUDA only
    compiled_peak_memory_mb: float | None = None


@dataclass
class TrainingTrace:
    """Per-step loss and gradient norm of each side, same seeds, same starting weights."""

    eager_losses: list[float] = field(default_factory=list)
    compiled_losses: list[float] = field(default_factory=list)
    eager_grad_norms: list[float] = field(default_factory=list)
    compiled_grad_norms: list[float] = field(default_factory=list)


@dataclass
class BenchmarkResult:
    target: str
    device: str
    pytorch_version: str
    compile: dict[str, Any]
    settings: BenchmarkSettings
    numerics: NumericSettings
    compilation_successful: bool = False
    compilation_error: str | None = None
    compile_error_entry_point: str | None = None
    capture: dict[str, dict[str, Any]] = field(default_factory=dict)  # entry point -> Capture
    action_diff: float | None = None
    loss_diff: float | None = None
    eager_loss: float | None = None
    compiled_loss: float | None = None
    timings: dict[str, EntryTiming] = field(default_factory=dict)
    training_trace: TrainingTrace | None = None
    method_notes: list[str] = field(default_factory=list)

    def speedup(self, entry_point: str) -> float | None:
        timing = self.timings.get(entry_point)
        return timing.speedup["ratio"] if timing else None

    def median_ms(self, entry_point: str, side: str) -> float | None:
        timing = self.timings.get(entry_point)
        return getattr(timing, side)["median_ms"] if timing else None

    def consistency(self) -> tuple[float | None, float | None]:
        trace = self.training_trace
        if trace is None or not trace.compiled_losses:
            return None, None
        losses = [
            abs(a - b) for a, b in zip(trace.eager_losses, trace.compiled_losses, strict=True)
        ]
        norms = [
            abs(a - b)
            for a, b in zip(trace.eager_grad_norms, trace.compiled_grad_norms, strict=True)
        ]
        return statistics.fmean(losses), statistics.fmean(norms)

    def reference_metrics(self) -> dict[str, Any]:
        """The reference report's Raw Data keys, with the same meaning and thresholds.

        The figures come first; the pass/fail keys (`success`, `correctness_passed`, ...) are
        then filled from the reference criteria over those figures, in the keys' own order.
        """
        loss_consistency, grad_norm_consistency = self.consistency()
        metrics: dict[str, Any] = {
            "success": None,
            "policy": self.target,
            "device": self.device,
            "pytorch_version": self.pytorch_version,
            "compilation_successful": self.compilation_successful,
            "compilation_error": self.compilation_error,
            "correctness": {
                "inference_correct": None,
                "training_correct": None,
                "action_diff": self.action_diff,
                "loss_diff": self.loss_diff,
            },
            "correctness_passed": None,
            "inference_benchmarked": INFERENCE in self.timings,
            "training_benchmarked": TRAINING in self.timings,
            TIME_ORIGINAL_KEY[INFERENCE]: self.median_ms(INFERENCE, "eager"),
            TIME_COMPILED_KEY[INFERENCE]: self.median_ms(INFERENCE, "compiled"),
            SPEEDUP_KEY[INFERENCE]: self.speedup(INFERENCE),
            TIME_ORIGINAL_KEY[TRAINING]: self.median_ms(TRAINING, "eager"),
            TIME_COMPILED_KEY[TRAINING]: self.median_ms(TRAINING, "compiled"),
            SPEEDUP_KEY[TRAINING]: self.speedup(TRAINING),
            "loss_consistency": loss_consistency,
            "grad_norm_consistency": grad_norm_consistency,
        }
        criteria = reference_criteria(
            metrics,
            action_tolerance=self.settings.tolerance,
            loss_tolerance=self.settings.tolerance,
            speedup_threshold=self.settings.speedup_threshold,
        )
        passed = {criterion.name: criterion.passed for criterion in criteria}
        correctness = metrics["correctness"]
        correctness["inference_correct"] = passed[ACTION_DIFF]
        correctness["training_correct"] = passed[LOSS_DIFF]
        metrics["correctness_passed"] = passed[ACTION_DIFF] is True and passed[LOSS_DIFF] is True
        # The reference script's success is a yes/no: a figure it lacks counts as a failure.
        metrics["success"] = verdict_of(criteria) is True
        return metrics
