"""The scenarios of the divergence probe: one comparison each, under one setting.

A scenario runs one entry point on four sides: the compiled copy, an eager copy twice (eager's own
noise) and the fp64 reference, all from the same seed and under the same what-if settings
(`probes.divergence.runs.what_if`), and applies the fp64 criterion to every output. The scenarios
run as is share one compiled copy (the diagnosis's own, when it passes one); every what-if
compiles a fresh copy after a dynamo reset, so that its setting reaches the compiled code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from probes.compile.capture import record_compiles
from probes.divergence.fp64_criterion import Criterion, OutputComparison, compare_outputs
from probes.divergence.fp64_reference import float64_copy
from probes.divergence.runs import (
    GRAD_PREFIX,
    compile_fresh,
    primary_output,
    run_entry,
    run_entry_float64,
    what_if,
)
from probes.environment import NumericSettings, numeric_settings
from probes.errors import compile_error_line
from probes.targets.target import CompileSettings, Target

EVAL, AS_IS, FALLBACK_RANDOM, DROPOUT_OFF = "eval", "as-is", "fallback-random", "dropout-off"
TF32_OFF, TF32_ON = "tf32-off", "tf32-on"


@dataclass
class ScenarioResult:
    """One comparison of eager, eager again, compiled and fp64 under one setting."""

    name: str
    entry_point: str
    description: str
    settings: dict[str, Any]
    compiled_fresh: bool  # compiled after a dynamo reset, under this scenario's settings
    frames_compiled: int  # frames dynamo compiled during this scenario's first compiled call
    outputs: list[OutputComparison] = field(default_factory=list)
    passes: bool | None = None  # None: it could not run
    failing: list[str] = field(default_factory=list)
    primary: str = ""  # "loss" or "action"
    primary_max_abs_diff: float | None = None  # |compiled - eager| of the loss / action
    max_rel_diff: float | None = None  # the largest max_rel_diff over every output
    gradients_compared: int = 0
    gradients_failing: int = 0
    max_gradient_abs_diff: float | None = None
    numerics: NumericSettings | None = None  # as in force during the scenario
    seconds: float = 0.0
    error: str | None = None

    def output(self, name: str) -> OutputComparison | None:
        return next((o for o in self.outputs if o.name == name), None)


SCENARIO_TEXT = {
    EVAL: "inference in eval mode, compiled copy as is",
    AS_IS: "training forward + backward, same seed both sides, compiled copy as is",
    FALLBACK_RANDOM: "as-is with torch._inductor.config.fallback_random = True",
    DROPOUT_OFF: "as-is with every dropout off (modules, attention, functional)",
    TF32_OFF: "random numbers out, TF32 off for matmul and cuDNN on both sides",
    TF32_ON: "random numbers out, TF32 on for matmul and cuDNN on both sides",
}


class ScenarioRunner:
    """Runs the scenarios of one target; the scenarios run as is share one compiled copy."""

    def __init__(
        self,
        target: Target,
        settings: CompileSettings,
        criterion: Criterion,
        seed: int,
        compiled: nn.Module | None,
    ) -> None:
        self.target, self.settings, self.criterion, self.seed = target, settings, criterion, seed
        self.given = compiled
        self.own: nn.Module | None = None
        self.resets = 0

    def as_is_copy(self) -> tuple[nn.Module, bool]:
        if self.given is not None:
            return self.given, False
        if self.own is None:
            self.own = self.fresh_copy()
        return self.own, True

    def fresh_copy(self) -> nn.Module:
        self.resets += 1
        return compile_fresh(self.target, self.settings)

    def run(self, name: str, entry_point: str, *, shared: bool, **switches: Any) -> ScenarioResult:
        started = time.perf_counter()
        result = ScenarioResult(
            name=name,
            entry_point=entry_point,
            description=SCENARIO_TEXT[name],
            settings={"fallback_random": False, "dropout_off": False, **switches},
            compiled_fresh=False,
            frames_compiled=0,
            primary=primary_output(entry_point),
        )
        try:
            self._measure(result, entry_point, shared, switches)
        except Exception as error:  # a compile or run error is a result, not a crash
            result.error = compile_error_line(error)
        result.seconds = time.perf_counter() - started
        return result

    def _measure(
        self, result: ScenarioResult, entry_point: str, shared: bool, switches: dict[str, Any]
    ) -> None:
        target, seed, run = self.target, self.seed, run_entry(self.target, entry_point)
        if shared:
            compiled, result.compiled_fresh = self.as_is_copy()
        else:
            compiled, result.compiled_fresh = self.fresh_copy(), True
        eager, fp64 = target.fresh_copy(), float64_copy(target)
        with what_if(eager, compiled, fp64, **_what_if_arguments(switches)):
            result.numerics = numerics_now()
            capture, compiled_out = record_compiles(entry_point, lambda: run(compiled, seed))
            eager_out = run(eager, seed)
            eager_again = run(eager, seed)
            fp64_out = run_entry_float64(target, entry_point, fp64, seed)
        result.frames_compiled = capture.frames_compiled
        result.outputs = compare_outputs(
            eager_out, compiled_out, fp64_out, self.criterion, eager_again
        )
        _summarise(result)


def _what_if_arguments(switches: dict[str, Any]) -> dict[str, Any]:
    return {
        "fallback_random": bool(switches.get("fallback_random")),
        "dropout_off": bool(switches.get("dropout_off")),
        "tf32_enabled": switches.get("tf32"),
    }


def _summarise(result: ScenarioResult) -> None:
    result.passes = all(o.passes for o in result.outputs)
    result.failing = [o.name for o in result.outputs if not o.passes]
    primary = result.output(result.primary)
    result.primary_max_abs_diff = primary.max_abs_diff if primary else None
    result.max_rel_diff = max((o.max_rel_diff for o in result.outputs), default=None)
    gradients = [o for o in result.outputs if o.name.startswith(GRAD_PREFIX)]
    result.gradients_compared = len(gradients)
    result.gradients_failing = sum(not o.passes for o in gradients)
    if gradients:
        result.max_gradient_abs_diff = max(o.max_abs_diff for o in gradients)


def numerics_now() -> NumericSettings | None:
    try:
        return numeric_settings()
    except RuntimeError:  # torch refuses to read TF32 in the spelling the user did not set
        return None
