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
What it fills, a `BenchmarkResult` with the reference report's Raw Data, is defined in
`probes.records.benchmark`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from probes.compile.breakdown import entry_compile_time, watch_compiles
from probes.compile.capture import count_compiled_regions, record_compiles
from probes.compile.cpu_isa import cpu_isa_check_pending, run_cpu_isa_check
from probes.environment import numeric_settings
from probes.errors import compile_error_line
from probes.records.benchmark import BenchmarkResult, BenchmarkSettings, EntryTiming, TrainingTrace
from probes.records.compile import Capture
from probes.records.compile_time import EntryCompileTime
from probes.records.names import FLOAT16, INFERENCE, TRAINING
from probes.records.timing import Measurement, Speedup
from probes.targets.target import CompileSettings, Target
from probes.timing import measure_interleaved, synchronize, time_first_call


class TrainingLoop:
    """One side's training: its own copy, optimiser and per-step seeds.

    `optimizer_options` are Adam's extra arguments (`{"fused": True}` for a what-if);
    `autocast` ("bfloat16" / "float16"; by default the settings') runs the forward and loss
    under `torch.autocast`, as Accelerate's mixed precision (`accelerator.autocast()`) does in
    LeRobot's trainer. In float16 the loss is scaled (`torch.amp.GradScaler`), unscaled before
    clipping, and a step with inf or NaN gradients skipped, as torch's AMP recipe and Accelerate
    on a GPU do: float16 gradients underflow without it.
    """

    def __init__(
        self,
        policy: nn.Module,
        loss: Callable[[nn.Module], torch.Tensor],
        settings: BenchmarkSettings,
        optimizer_options: Mapping[str, Any] | None = None,
        autocast: str | None = None,
    ) -> None:
        self.policy = policy
        self.autocast = autocast if autocast is not None else settings.autocast
        self.loss = loss
        self.settings = settings
        self.parameters = [p for p in policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(
            self.parameters, lr=settings.learning_rate, **(optimizer_options or {})
        )
        self.step_index = 0
        self.losses: list[torch.Tensor] = []
        self.grad_norms: list[torch.Tensor] = []
        self.scaler = (
            torch.amp.GradScaler(self._device_type()) if self.autocast == FLOAT16 else None
        )

    def step(self) -> None:
        # Same seed for step i on both sides: dropout draws the same numbers where it can.
        torch.manual_seed(self.settings.seed + self.step_index)
        self.step_index += 1
        self.policy.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = self.loss(self.policy)
        if self.scaler is None:
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(self.parameters, self.settings.grad_clip_norm)
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.parameters, self.settings.grad_clip_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.losses.append(loss.detach())
        self.grad_norms.append(norm.detach())

    def _device_type(self) -> str:
        return self.parameters[0].device.type if self.parameters else "cpu"

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self._device_type(), dtype=getattr(torch, self.autocast))


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
        # What each entry point's first compiled call spent compiling, by frame and stage.
        self.compile_time: dict[str, EntryCompileTime] = {}
        self.eager: nn.Module | None = None
        self.compiled: nn.Module | None = None

    def run(self) -> BenchmarkResult:
        """Fills `self.result` as it goes, so a caller keeps what was measured if a phase fails."""
        target, result = self.target, self.result
        # Kept for later probes, which reuse the compile instead of paying for another.
        self.eager = eager = target.fresh_copy()
        self.on_phase("compiling")
        self.compiled = compiled = target.compiled_copy(self.compile_settings)
        if not self.compile_by_first_calls(eager, compiled):
            return result
        self.on_phase("checking correctness")
        self._correctness(eager, compiled)
        self.on_phase("timing inference")
        self._time_inference(eager, compiled)
        if target.loss is not None:
            self.on_phase("timing training")
            self._time_training(eager, compiled)
        return result

    def compile_by_first_calls(self, eager: nn.Module, compiled: nn.Module) -> bool:
        """Compile each entry point by its first call; record what it captured and how long.

        False when a compile failed (`result.compilation_error` says how). The warm-cache lever
        calls this in a fresh process, so that its compiles are the benchmark's, call for call.
        """
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
        """The first compiled call: what it compiled, and its seconds, compile included.

        Inductor's once-per-process check of the CPU (`probes/compile_time/cpu_isa.py`) is run
        and timed just before, when this call would have run it, and counted in its seconds.
        """
        seconds: list[float] = []
        isa_s = 0.0
        if cpu_isa_check_pending(self.target.device, self.compile_settings):
            isa_s = run_cpu_isa_check()

        def timed() -> None:
            seconds.append(time_first_call(call, self.target.device)[0])

        with watch_compiles() as watched:
            capture, _ = record_compiles(entry_point, timed)
        first_s = isa_s + seconds[0]
        compile_time = entry_compile_time(entry_point, first_s, watched)
        compile_time.cpu_isa_check_s = isa_s
        self.compile_time[entry_point] = compile_time
        return capture, first_s

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
