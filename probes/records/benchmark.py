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
from probes.records.names import COMPILED, DEFAULT_SEED, EAGER, INFERENCE, TRAINING
from probes.records.reference import (
    ACTION_DIFF,
    ACTION_DIFF_KEY,
    COMPILATION_SUCCESSFUL_KEY,
    CORRECTNESS_KEY,
    INFERENCE_CORRECT_KEY,
    LOSS_DIFF,
    LOSS_DIFF_KEY,
    REFERENCE_SPEEDUP,
    REFERENCE_TOLERANCE,
    SPEEDUP_KEY,
    TIME_COMPILED_KEY,
    TIME_ORIGINAL_KEY,
    TRAINING_CORRECT_KEY,
    reference_criteria,
    verdict_of,
)


@dataclass(frozen=True)
class BenchmarkSettings:
    iters_inference: int = 100
    iters_training: int = 50
    warmup: int = 10
    seed: int = DEFAULT_SEED
    tolerance: float = REFERENCE_TOLERANCE  # on the action and on the loss difference
    speedup_threshold: float = REFERENCE_SPEEDUP
    learning_rate: float = 1e-4  # Adam, as the reference script
    grad_clip_norm: float = 10.0  # LeRobot's training default, applied on both sides
    # The training forward under torch.autocast in this dtype ("bfloat16", "float16"), as
    # Accelerate's mixed precision in LeRobot's trainer; None: no autocast.
    autocast: str | None = None


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
        """The reference report's Raw Data keys, in its order, with its meaning and thresholds.

        The pass/fail keys (`success`, `correctness_passed`, ...) are the reference criteria
        (`reference_criteria`) over the figures measured here.
        """
        measured = {ACTION_DIFF_KEY: self.action_diff, LOSS_DIFF_KEY: self.loss_diff}
        criteria = reference_criteria(
            {
                COMPILATION_SUCCESSFUL_KEY: self.compilation_successful,
                CORRECTNESS_KEY: measured,
                **{key: self.speedup(entry_point) for entry_point, key in SPEEDUP_KEY.items()},
            },
            action_tolerance=self.settings.tolerance,
            loss_tolerance=self.settings.tolerance,
            speedup_threshold=self.settings.speedup_threshold,
        )
        passed = {criterion.name: criterion.passed for criterion in criteria}
        loss_consistency, grad_norm_consistency = self.consistency()
        return {
            # The reference script's success is a yes/no: a figure it lacks counts as a failure.
            "success": verdict_of(criteria) is True,
            "policy": self.target,
            "device": self.device,
            "pytorch_version": self.pytorch_version,
            COMPILATION_SUCCESSFUL_KEY: self.compilation_successful,
            "compilation_error": self.compilation_error,
            CORRECTNESS_KEY: {
                INFERENCE_CORRECT_KEY: passed[ACTION_DIFF],
                TRAINING_CORRECT_KEY: passed[LOSS_DIFF],
                **measured,
            },
            "correctness_passed": passed[ACTION_DIFF] is True and passed[LOSS_DIFF] is True,
            "inference_benchmarked": INFERENCE in self.timings,
            "training_benchmarked": TRAINING in self.timings,
            TIME_ORIGINAL_KEY[INFERENCE]: self.median_ms(INFERENCE, EAGER),
            TIME_COMPILED_KEY[INFERENCE]: self.median_ms(INFERENCE, COMPILED),
            SPEEDUP_KEY[INFERENCE]: self.speedup(INFERENCE),
            TIME_ORIGINAL_KEY[TRAINING]: self.median_ms(TRAINING, EAGER),
            TIME_COMPILED_KEY[TRAINING]: self.median_ms(TRAINING, COMPILED),
            SPEEDUP_KEY[TRAINING]: self.speedup(TRAINING),
            "loss_consistency": loss_consistency,
            "grad_norm_consistency": grad_norm_consistency,
        }
