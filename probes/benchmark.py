"""The reference report's metrics, measured right.

LeRobot's compile benchmark reports compile success, an action and a loss difference against an
absolute threshold, inference and training speedups, and loss / grad-norm "consistency". This probe
produces every one of those figures under the same names and thresholds, so its verdict can be set
beside a reference report, but measures them so that they mean what their names say:
- eager and compiled are independent copies from the same initial weights, reset to the same state
  before each comparison; the probe records proof that compiled code ran (probes.compile.capture);
- timing warms up, synchronises the device, interleaves eager and compiled calls and keeps every
  sample; the first call of each compiled entry point (its compile) is timed on its own;
- training steps are identical on both sides (seed per step, optimiser, clipping), and consistency
  compares step i of eager with step i of compiled.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from probes.compile.capture import Capture, count_compiled_regions, record_compiles
from probes.environment import NumericSettings, numeric_settings
from probes.errors import compile_error_line
from probes.records.names import INFERENCE, TRAINING
from probes.targets.target import CompileSettings, Target
from probes.timing import Measurement, Speedup, measure_interleaved, synchronize, time_first_call

# The reference script's own criteria: an absolute tolerance and a speedup bar.
REFERENCE_TOLERANCE = 1e-5
REFERENCE_SPEEDUP = 1.1


@dataclass(frozen=True)
class BenchmarkSettings:
    iters_inference: int = 100
    iters_training: int = 50
    warmup: int = 10
    seed: int = 42
    tolerance: float = REFERENCE_TOLERANCE
    speedup_threshold: float = REFERENCE_SPEEDUP
    learning_rate: float = 1e-4  # Adam, as the reference script
    grad_clip_norm: float = 10.0  # LeRobot's training default, applied on both sides


@dataclass
class EntryTiming:
    entry_point: str
    eager: dict[str, Any]  # Measurement.summary()
    compiled: dict[str, Any]
    speedup: dict[str, Any]  # Speedup.summary()
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

    @property
    def inference_correct(self) -> bool | None:
        return None if self.action_diff is None else self.action_diff < self.settings.tolerance

    @property
    def training_correct(self) -> bool | None:
        return None if self.loss_diff is None else self.loss_diff < self.settings.tolerance

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
        """The reference report's Raw Data keys, with the same meaning and thresholds."""
        inference_correct, training_correct = self.inference_correct, self.training_correct
        correctness_passed = bool(inference_correct) and bool(training_correct)
        speedup_inference, speedup_training = self.speedup(INFERENCE), self.speedup(TRAINING)
        fast = all(
            s is not None and s > self.settings.speedup_threshold
            for s in (speedup_inference, speedup_training)
        )
        loss_consistency, grad_norm_consistency = self.consistency()
        return {
            "success": self.compilation_successful and correctness_passed and fast,
            "policy": self.target,
            "device": self.device,
            "pytorch_version": self.pytorch_version,
            "compilation_successful": self.compilation_successful,
            "compilation_error": self.compilation_error,
            "correctness": {
                "inference_correct": inference_correct,
                "training_correct": training_correct,
                "action_diff": self.action_diff,
                "loss_diff": self.loss_diff,
            },
            "correctness_passed": correctness_passed,
            "inference_benchmarked": INFERENCE in self.timings,
            "training_benchmarked": TRAINING in self.timings,
            "time_original_inference": self.median_ms(INFERENCE, "eager"),
            "time_compiled_inference": self.median_ms(INFERENCE, "compiled"),
            "speedup_inference": speedup_inference,
            "time_original_training": self.median_ms(TRAINING, "eager"),
            "time_compiled_training": self.median_ms(TRAINING, "compiled"),
            "speedup_training": speedup_training,
            "loss_consistency": loss_consistency,
            "grad_norm_consistency": grad_norm_consistency,
        }


class TrainingLoop:
    """One side's training: its own copy, optimiser and per-step seeds."""

    def __init__(self, policy: nn.Module, loss: Callable[[nn.Module], torch.Tensor], settings):
        self.policy = policy
        self.loss = loss
        self.settings = settings
        self.parameters = [p for p in policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(self.parameters, lr=settings.learning_rate)
        self.step_index = 0
        self.losses: list[torch.Tensor] = []
        self.grad_norms: list[torch.Tensor] = []

    def step(self) -> None:
        # Same seed for step i on both sides: dropout draws the same numbers where it can.
        torch.manual_seed(self.settings.seed + self.step_index)
        self.step_index += 1
        self.policy.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(self.policy)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.parameters, self.settings.grad_clip_norm)
        self.optimizer.step()
        self.losses.append(loss.detach())
        self.grad_norms.append(norm.detach())


def _peak_memory_mb(call: Callable[[], Any], device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    call()
    synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20


def _floats(values: list[torch.Tensor]) -> list[float]:
    return [float(v) for v in values]


class BenchmarkProbe:
    """Runs the benchmark on a target; `on_phase(name)` is told as each phase starts."""

    def __init__(
        self,
        target: Target,
        compile_settings: CompileSettings,
        settings: BenchmarkSettings,
        on_phase: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.target = target
        self.compile_settings = compile_settings
        self.settings = settings
        self.on_phase = on_phase
        self.result = BenchmarkResult(
            target=target.name,
            device=str(target.device),
            pytorch_version=torch.__version__,
            compile=compile_settings.describe(),
            settings=settings,
            numerics=numeric_settings(),
        )
        self.first_call_s: dict[str, tuple[float, float]] = {}
        self.eager: nn.Module | None = None
        self.compiled: nn.Module | None = None

    def run(self) -> BenchmarkResult:
        """Fills `self.result` as it goes, so a caller keeps what was measured if a phase fails."""
        target, result = self.target, self.result
        # Kept for later probes, which reuse the compile instead of paying for another.
        self.eager = eager = target.fresh_copy()
        self.on_phase("compiling")
        self.compiled = compiled = target.compiled_copy(self.compile_settings)
        if not self._first_calls(eager, compiled):
            return result
        self.on_phase("checking correctness")
        self._correctness(eager, compiled)
        self.on_phase("timing inference")
        self._time_inference(eager, compiled)
        if target.loss is not None:
            self.on_phase("timing training")
            self._time_training(eager, compiled)
        return result

    def _first_calls(self, eager: nn.Module, compiled: nn.Module) -> bool:
        """Compile each entry point by its first call; record what it captured and how long."""
        target, result = self.target, self.result
        calls: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {
            INFERENCE: (lambda: target.infer(eager), lambda: target.infer(compiled)),
        }
        if target.loss is not None:
            calls[TRAINING] = (
                lambda: self._forward_backward(eager),
                lambda: self._forward_backward(compiled),
            )
        for entry_point, (eager_call, compiled_call) in calls.items():
            eager_s, _ = time_first_call(eager_call, target.device)
            try:
                capture, compiled_s = self._capture_first_call(entry_point, compiled_call)
                capture.compiled_region_events = count_compiled_regions(compiled_call)
            except Exception as error:  # a compiler error is a result, not a crash
                result.compilation_error = compile_error_line(error)
                result.compile_error_entry_point = entry_point
                return False
            # The same second call on the eager side: a call may change state (batch-norm
            # running statistics, a VQ codebook), and both copies must stay alike.
            eager_call()
            result.capture[entry_point] = capture.summary()
            self.first_call_s[entry_point] = (eager_s, compiled_s)
        result.compilation_successful = True
        return True

    def _capture_first_call(
        self, entry_point: str, call: Callable[[], Any]
    ) -> tuple[Capture, float]:
        seconds: list[float] = []

        def timed() -> None:
            seconds.append(time_first_call(call, self.target.device)[0])

        capture, _ = record_compiles(entry_point, timed)
        return capture, seconds[0]

    def _forward_backward(self, policy: nn.Module) -> None:
        policy.train()
        torch.manual_seed(self.settings.seed)
        loss = self.target.loss(policy)
        loss.backward()
        policy.zero_grad(set_to_none=True)

    def _correctness(self, eager: nn.Module, compiled: nn.Module) -> None:
        target, result = self.target, self.result
        with torch.no_grad():
            eager_action = target.infer(eager)
            compiled_action = target.infer(compiled)
        result.action_diff = float((eager_action - compiled_action).abs().max())
        if target.loss is None:
            return
        losses = []
        for copy in (eager, compiled):
            copy.train()
            torch.manual_seed(self.settings.seed)
            # With grad enabled, as in training: under no_grad the compiled forward would
            # fail its grad-mode guard and compile a second time.
            losses.append(float(target.loss(copy).detach()))
            copy.zero_grad(set_to_none=True)
        result.eager_loss, result.compiled_loss = losses
        result.loss_diff = abs(losses[0] - losses[1])
        result.method_notes.append(
            "action_diff: max |eager - compiled| of one select_action after reset() on two "
            "independent copies; loss_diff: one training forward each after "
            f"torch.manual_seed({self.settings.seed})"
        )

    def _entry_timing(
        self,
        entry_point: str,
        measured: dict[str, Measurement],
        calls: dict[str, Callable[[], Any]],
    ) -> EntryTiming:
        device = self.target.device
        eager_s, compiled_s = self.first_call_s.get(entry_point, (None, None))
        return EntryTiming(
            entry_point=entry_point,
            eager=measured["eager"].summary(),
            compiled=measured["compiled"].summary(),
            speedup=Speedup(measured["eager"], measured["compiled"]).summary(),
            eager_first_call_s=eager_s,
            compiled_first_call_s=compiled_s,
            eager_peak_memory_mb=_peak_memory_mb(calls["eager"], device),
            compiled_peak_memory_mb=_peak_memory_mb(calls["compiled"], device),
        )

    def _time_inference(self, eager: nn.Module, compiled: nn.Module) -> None:
        target, settings = self.target, self.settings
        calls = {"eager": lambda: target.infer(eager), "compiled": lambda: target.infer(compiled)}
        with torch.no_grad():
            measured = measure_interleaved(
                calls, iters=settings.iters_inference, warmup=settings.warmup, device=target.device
            )
            self.result.timings[INFERENCE] = self._entry_timing(INFERENCE, measured, calls)

    def _time_training(self, eager: nn.Module, compiled: nn.Module) -> None:
        """Both copies start from the same weights (no optimiser step has run yet)."""
        target, settings = self.target, self.settings
        loops = {
            "eager": TrainingLoop(eager, target.loss, settings),
            "compiled": TrainingLoop(compiled, target.loss, settings),
        }
        calls = {side: loop.step for side, loop in loops.items()}
        measured = measure_interleaved(
            calls, iters=settings.iters_training, warmup=settings.warmup, device=target.device
        )
        self.result.timings[TRAINING] = self._entry_timing(TRAINING, measured, calls)
        self.result.training_trace = TrainingTrace(
            eager_losses=_floats(loops["eager"].losses),
            compiled_losses=_floats(loops["compiled"].losses),
            eager_grad_norms=_floats(loops["eager"].grad_norms),
            compiled_grad_norms=_floats(loops["compiled"].grad_norms),
        )
        self.result.method_notes.append(
            "loss_consistency / grad_norm_consistency: mean |eager - compiled| over the same "
            f"training step of two independent copies from the same weights ({settings.warmup} "
            f"warm-up + {settings.iters_training} timed steps each, seed {settings.seed}+step, "
            f"Adam lr {settings.learning_rate}, grad clip {settings.grad_clip_norm}); the "
            "reference script compared two runs in different training states instead"
        )
