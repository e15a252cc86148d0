"""What-ifs for speed: each lever tried as one more compile of the user's model, and measured.

A what-if is a twin of the benchmark's compiled copy with one thing changed (`WHAT_IFS`):
- freezing (inference): `torch._inductor.config.freezing = True`, weights folded in as constants
  (on a CPU, oneDNN then runs convolutions and linears on pre-packed weights);
- no-layout-optimization: `torch._inductor.config.layout_optimization = False`, convolutions in
  the layout eager gives them instead of channels-last (and no conversions around them);
- no-graph-breaks: `torch._dynamo.config.capture_scalar_outputs = True`, so that a scalar read
  (`.item()`) stays in the graph instead of breaking it;
- compiled-optimizer (training): the optimizer step fused (`Adam(..., fused=True)`), the same
  compile of the model;
- reduce-overhead (CUDA): CUDA graphs, one replay per graph instead of a launch per kernel;
- max-autotune-no-cudagraphs: Inductor tries GEMM and convolution templates (a long compile).

Each is timed with the benchmark's harness (`measure_interleaved`: eager, the default compile and
the what-if round-robin, median and spread), and its outputs are checked against an fp64 eager
reference with the criterion of PyTorch's own harness (`probes.divergence.fp64_criterion`), so
that a setting that is faster but wrong is never the one recommended. Which what-ifs run is
`probes.speed.plan`'s; judging the results is left to the rules.

A twin compiles with a `FreshBackend`, so its compile is its own and the benchmark's copies keep
theirs (see `probes.speed.backends`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from probes.benchmark import TrainingLoop
from probes.divergence.fp64_criterion import compare, compare_outputs
from probes.divergence.fp64_reference import float64_copy, run_float64
from probes.divergence.runs import (
    Outputs,
    inference_outputs,
    parameter_name,
    run_entry_float64,
    training_outputs,
    what_if,
)
from probes.errors import error_line
from probes.records.benchmark import BenchmarkSettings
from probes.records.divergence import (
    GRAD_PREFIX,
    Fp64Criterion,
    OutputComparison,
    criterion_for,
)
from probes.records.names import INFERENCE, TRAINING
from probes.records.speed import (
    COMPILED_OPTIMIZER,
    FREEZING,
    MAX_AUTOTUNE,
    NO_GRAPH_BREAKS,
    NO_LAYOUT_OPTIMIZATION,
    REDUCE_OVERHEAD,
    WHAT_IF_FAILED,
    WHAT_IF_MEASURED,
    WHAT_IF_NOT_RUN,
    WhatIfResult,
    clearly_faster_than_default,
)
from probes.records.timing import Speedup
from probes.speed.backends import FreshBackend, mode_config
from probes.speed.cudagraph_skips import watch_cudagraph_skips
from probes.speed.plan import PlannedWhatIf
from probes.targets.target import CompileSettings, Target
from probes.timing import measure_interleaved, time_first_call

Call = Callable[[], Any]
OPTIMIZER_PARAMETERS = "parameters after one optimizer step"


# --- one what-if -----------------------------------------------------------------------------


@dataclass
class WhatIfChange:
    """What a what-if changes and how a user makes the same change."""

    settings: CompileSettings  # the twin's compile
    applied: dict[str, Any]  # as recorded: the config names and values
    paste: str
    # In force while the twin runs (its first call compiles): dynamo reads some settings while
    # it traces, not in the backend (with `freezing`, it keeps parameters as graph attributes).
    dynamo_config: dict[str, Any] = field(default_factory=dict)
    inductor_config: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] = field(default_factory=dict)  # Adam's extra arguments
    changes_graph: bool = True  # False: the model's compile is the default's


def what_if_change(name: str, base: CompileSettings, learning_rate: float) -> WhatIfChange:
    backend = base.backend_name
    base_config = mode_config(base.mode) if backend == "inductor" else {}

    def fresh(patches: dict[str, Any]) -> CompileSettings:
        return dataclasses.replace(base, mode=None, backend=FreshBackend(backend, patches))

    if name == FREEZING:
        return WhatIfChange(
            fresh({**base_config, "freezing": True}),
            {"torch._inductor.config.freezing": True},
            "torch._inductor.config.freezing = True  # before the first compiled call; "
            "run inference under torch.no_grad()",
            inductor_config={"freezing": True},
        )
    if name == NO_LAYOUT_OPTIMIZATION:
        return WhatIfChange(
            fresh({**base_config, "layout_optimization": False}),
            {"torch._inductor.config.layout_optimization": False},
            "torch._inductor.config.layout_optimization = False  # before the first compiled "
            "call: convolutions keep eager's memory layout",
            inductor_config={"layout_optimization": False},
        )
    if name == NO_GRAPH_BREAKS:
        return WhatIfChange(
            fresh(base_config),
            {"torch._dynamo.config.capture_scalar_outputs": True},
            "torch._dynamo.config.capture_scalar_outputs = True  # .item() stays in the graph",
            dynamo_config={"capture_scalar_outputs": True},
        )
    if name == COMPILED_OPTIMIZER:
        return WhatIfChange(
            base,
            {"optimizer": "torch.optim.Adam", "fused": True},
            f"optimizer = torch.optim.Adam(params, lr={learning_rate:g}, fused=True)",
            optimizer={"fused": True},
            changes_graph=False,
        )
    if name == REDUCE_OVERHEAD:
        return WhatIfChange(
            dataclasses.replace(base, mode="reduce-overhead"),
            {"mode": "reduce-overhead"},
            'torch.compile(model, mode="reduce-overhead")  # CUDA graphs; call '
            "torch.compiler.cudagraph_mark_step_begin() before each step",
        )
    if name == MAX_AUTOTUNE:
        return WhatIfChange(
            fresh(mode_config(MAX_AUTOTUNE)),
            {"mode": MAX_AUTOTUNE},
            f'torch.compile(model, mode="{MAX_AUTOTUNE}")  # a long compile',
            inductor_config=mode_config(MAX_AUTOTUNE),
        )
    raise ValueError(f"unknown what-if {name!r}")


@contextmanager
def settings_in_force(change: WhatIfChange) -> Iterator[None]:
    """The what-if's dynamo and Inductor settings, restored on exit."""
    import torch._dynamo.config as dynamo
    import torch._inductor.config as inductor

    with ExitStack() as stack:
        if change.dynamo_config:
            stack.enter_context(dynamo.patch(change.dynamo_config))
        if change.inductor_config:
            stack.enter_context(inductor.patch(change.inductor_config))
        yield


class InferenceReference:
    """Eager fp32's and fp64's inference outputs: the same for every what-if of inference, so
    computed once, when the first check asks for them."""

    def __init__(self, target: Target, seed: int) -> None:
        self.target, self.seed = target, seed
        self._outputs: tuple[Outputs, Outputs] | None = None

    def outputs(self) -> tuple[Outputs, Outputs]:
        """(eager fp32, fp64) outputs of a fresh copy each."""
        if self._outputs is None:
            target, seed = self.target, self.seed
            eager = inference_outputs(target, target.fresh_copy(), seed)
            fp64 = run_entry_float64(target, INFERENCE, float64_copy(target), seed)
            self._outputs = eager, fp64
        return self._outputs


class WhatIfRun:
    """Compile, time and check one what-if of one entry point."""

    def __init__(
        self,
        target: Target,
        change: WhatIfChange,
        entry_point: str,
        settings: BenchmarkSettings,
        criterion: Fp64Criterion,
        reference: InferenceReference | None = None,
    ) -> None:
        self.target = target
        self.change = change
        self.entry_point = entry_point
        self.settings = settings
        self.criterion = criterion
        self.reference = reference or InferenceReference(target, settings.seed)
        self.twin: nn.Module | None = None

    def call_of(self, copy: nn.Module) -> Call:
        """The entry point's call on `copy`, with the what-if's settings in force."""
        change, target = self.change, self.target
        if self.entry_point == TRAINING:
            step = TrainingLoop(copy, target.loss, self.settings, change.optimizer).step
        else:

            def step() -> Any:
                with torch.no_grad():
                    return target.infer(copy)

        if change.settings.mode == "reduce-overhead":
            inner = step

            def step() -> Any:
                # Each call is a whole iteration: outputs of the last one may be freed.
                torch.compiler.cudagraph_mark_step_begin()
                return inner()

        def call() -> Any:
            with settings_in_force(change):
                return step()

        return call

    def measure(self, eager_call: Call, default_call: Call, result: WhatIfResult) -> None:
        target, device = self.target, self.target.device
        twin = target.compiled_copy(self.change.settings)
        call = self.call_of(twin)
        result.compile_s, _ = time_first_call(call, device)
        iters = self.settings.iters_training if self.entry_point == TRAINING else None
        measured = measure_interleaved(
            {"eager": eager_call, "default": default_call, result.name: call},
            iters=iters or self.settings.iters_inference,
            warmup=self.settings.warmup,
            device=device,
        )
        eager, default, candidate = measured["eager"], measured["default"], measured[result.name]
        over_eager, over_default = Speedup(eager, candidate), Speedup(default, candidate)
        result.status = WHAT_IF_MEASURED
        result.median_ms = candidate.median_ms
        result.eager_median_ms = eager.median_ms
        result.default_median_ms = default.median_ms
        result.speedup_vs_eager = over_eager.ratio
        result.speedup_low, result.speedup_high = over_eager.low, over_eager.high
        result.speedup_vs_default = over_default.ratio
        result.speedup_vs_default_low = over_default.low
        result.speedup_vs_default_high = over_default.high
        result.timings = {label: m.summary() for label, m in measured.items()}
        self.twin = twin

    @property
    def check_compiles(self) -> bool:
        """Whether its fp64 check needs a compile of its own (a training graph it changes)."""
        return self.entry_point == TRAINING and self.change.changes_graph

    def record_check(self, result: WhatIfResult) -> None:
        """Apply the fp64 criterion to the timed twin's outputs and record the verdict's figures."""
        assert self.twin is not None, "measure() first"
        comparisons = self.check(self.twin)
        failing = [c for c in comparisons if not c.passes]
        result.fp64_criterion_passed = bool(comparisons) and not failing
        result.fp64_detail = fp64_detail(comparisons, failing)

    def check(self, twin: nn.Module) -> list[OutputComparison]:
        """The what-if's outputs against an fp64 eager reference, beside eager fp32's."""
        target, seed = self.target, self.settings.seed
        if self.entry_point == INFERENCE:
            eager, fp64 = self.reference.outputs()
            with settings_in_force(self.change):
                candidate = inference_outputs(target, twin, seed)
            return compare_outputs(eager, candidate, fp64, self.criterion)
        if not self.change.changes_graph:
            return [self.optimizer_check()]
        return self.training_check()

    def training_check(self) -> list[OutputComparison]:
        """Loss and gradients of one step with dropout off, on a twin compiled under it.

        Dropout off, because compiled code draws other random numbers than eager (a difference
        that is no fault of the setting); a twin of its own, because the settings in force when
        it compiles are the ones it keeps.
        """
        target, seed = self.target, self.settings.seed
        eager, fp64_copy = target.fresh_copy(), float64_copy(target)
        twin = target.compiled_copy(self.change.settings)
        with what_if(eager, twin, fp64_copy, dropout_off=True):
            eager_out = training_outputs(target, eager, seed)
            fp64_out = run_float64(lambda: training_outputs(target, fp64_copy, seed))
            with settings_in_force(self.change):
                twin_out = training_outputs(target, twin, seed)
        return compare_outputs(eager_out, twin_out, fp64_out, self.criterion)

    def optimizer_check(self) -> OutputComparison:
        """One optimizer step from the same gradients: the what-if's optimizer, eager's, fp64's."""
        target, settings = self.target, self.settings
        grads = training_outputs(target, target.fresh_copy(), settings.seed)
        stepped = {}
        for label, copy, options in (
            ("eager", target.fresh_copy(), {}),
            ("candidate", target.fresh_copy(), self.change.optimizer),
            ("fp64", float64_copy(target), {}),
        ):
            stepped[label] = _one_step(copy, grads, settings.learning_rate, options)
        return compare(
            OPTIMIZER_PARAMETERS,
            stepped["eager"],
            stepped["candidate"],
            stepped["fp64"],
            self.criterion,
        )


def _one_step(
    copy: nn.Module,
    grads: Mapping[str, torch.Tensor],
    learning_rate: float,
    options: Mapping[str, Any],
) -> torch.Tensor:
    """The parameters after one Adam step from `grads`, flattened into one vector."""
    parameters = []
    for name, parameter in copy.named_parameters():
        grad = grads.get(GRAD_PREFIX + parameter_name(name))
        if grad is None or not parameter.requires_grad:
            continue
        parameter.grad = grad.to(parameter.dtype).clone()
        parameters.append(parameter)
    optimizer = torch.optim.Adam(parameters, lr=learning_rate, **options)
    optimizer.step()
    return torch.cat([p.detach().reshape(-1) for p in parameters])


def fp64_detail(
    comparisons: Sequence[OutputComparison], failing: Sequence[OutputComparison]
) -> str:
    if not comparisons:
        return "no output of both sides could be compared"
    if not failing:
        return f"{len(comparisons)} output(s) as close to fp64 as eager's, or closer"
    worst = max(failing, key=lambda c: c.error_ratio or 0.0)
    ratio = "?" if worst.error_ratio is None else f"{worst.error_ratio:.3g}"
    return (
        f"{len(failing)} of {len(comparisons)} output(s) fail; worst {worst.name}: "
        f"{ratio}x eager's error against fp64"
    )


# --- all of them -------------------------------------------------------------------------------


def run_what_ifs(
    target: Target,
    compile_settings: CompileSettings,
    settings: BenchmarkSettings,
    plan: Sequence[PlannedWhatIf],
    calls: Mapping[str, tuple[Call, Call]],
    *,
    criterion: Fp64Criterion | None = None,
    check_costly: bool = True,
    on_phase: Callable[[str], None] = lambda _: None,
) -> list[WhatIfResult]:
    """Measure each planned what-if; `calls[entry point]` = (eager call, default compiled call).

    Every what-if is compiled and timed first; then the fp64 checks. A check that needs no
    compile of its own runs for every what-if. One that does (a training graph the what-if
    changes: it is checked on a twin compiled with dropout off) runs only with `check_costly`
    (what-ifs asked for by name, or all), and then only down the list of what could be
    recommended, fastest first, until one passes: a what-if no faster than the default compile,
    or slower than one that passed, is never the recommendation, and its check would cost a full
    compile (on ACT's CPU preset, 31 s of a 3-minute diagnosis). Without it, such a what-if is
    recorded as not checked, with the command that checks it. A what-if that fails is recorded
    with its error and the others run.
    """
    criterion = criterion or criterion_for(target.dtype)
    reference = InferenceReference(target, settings.seed)
    results: list[WhatIfResult] = []
    timed: list[tuple[WhatIfRun, WhatIfResult]] = []
    for planned in plan:
        change = what_if_change(planned.name, compile_settings, settings.learning_rate)
        result = WhatIfResult(
            name=planned.name,
            entry_point=planned.entry_point,
            status=WHAT_IF_NOT_RUN,
            reason=planned.reason,
            settings=change.applied,
            paste=change.paste,
        )
        results.append(result)
        if not planned.run or planned.entry_point not in calls:
            continue
        on_phase(f"what-if: {planned.name} ({planned.entry_point})")
        run = WhatIfRun(target, change, planned.entry_point, settings, criterion, reference)
        eager_call, default_call = calls[planned.entry_point]
        if _attempt(result, planned.reason, run.measure, eager_call, default_call, result):
            timed.append((run, result))
    for run, result in timed:
        if not run.check_compiles:
            on_phase(f"what-if: {result.name} ({result.entry_point}) against fp64")
            _attempt(result, result.reason, run.record_check, result)
    costly = [(run, result) for run, result in timed if run.check_compiles]
    if not check_costly:
        for _, result in costly:
            result.fp64_detail = (
                "not checked: its check is a compile of its own (a training graph with dropout "
                f"off), run only when asked: --what-if {result.name}"
            )
        return results
    for entry_point in dict.fromkeys(result.entry_point for _, result in costly):
        check_candidates(
            [(r, w) for r, w in costly if w.entry_point == entry_point],
            [w for _, w in timed if w.entry_point == entry_point],
            on_phase,
        )
    return results


def _attempt(result: WhatIfResult, reason: str, step: Callable[..., None], *args: Any) -> bool:
    """Run one step of a what-if; a failure is its record, not the diagnosis's end."""
    started = time.perf_counter()
    with watch_cudagraph_skips() as skips:
        try:
            step(*args)
        except Exception as error:  # a failed what-if must not sink the diagnosis
            result.status = WHAT_IF_FAILED
            result.reason = f"{reason}; failed: {error_line(error)}"
            return False
        finally:
            result.seconds += time.perf_counter() - started
            if result.name == REDUCE_OVERHEAD:
                result.cudagraph_skips = (result.cudagraph_skips or 0) + skips.count
                result.cudagraph_skip_reasons += skips.reasons
    return True


def check_candidates(
    costly: Sequence[tuple[WhatIfRun, WhatIfResult]],
    entry_results: Sequence[WhatIfResult],
    on_phase: Callable[[str], None],
) -> None:
    """Checks that compile: fastest first, only what could be recommended, until one passes."""
    passed = [
        w for w in entry_results if w.fp64_criterion_passed is True and w.status == WHAT_IF_MEASURED
    ]
    best = max(passed, key=lambda w: w.speedup_vs_eager or 0.0, default=None)
    order = sorted(costly, key=lambda pair: -(pair[1].speedup_vs_eager or 0.0))
    for run, result in order:
        if result.status != WHAT_IF_MEASURED:
            continue
        if not clearly_faster_than_default(result.speedup_vs_default_low):
            result.fp64_detail = (
                "not checked (a compile of its own): not clearly faster than the default compile"
            )
            continue
        if best is not None and (result.speedup_vs_eager or 0.0) <= (best.speedup_vs_eager or 0):
            result.fp64_detail = (
                f"not checked (a compile of its own): {best.name} measured faster and passed"
            )
            continue
        on_phase(f"what-if: {result.name} ({result.entry_point}) against fp64")
        checked = _attempt(result, result.reason, run.record_check, result)
        if checked and result.fp64_criterion_passed:
            best = result
