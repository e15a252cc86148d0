"""The scenarios of the divergence probe: one comparison each, under one setting.

A scenario runs one entry point on four sides: the compiled copy, an eager copy twice (eager's own
noise) and the fp64 reference, all from the same seed and under the same what-if settings
(`probes.divergence.runs.what_if`), and applies the fp64 criterion to every output. The scenarios
run as is share one compiled copy (the diagnosis's own, when it passes one); every what-if
compiles a fresh copy after a dynamo reset, so that its setting reaches the compiled code.
"""

from __future__ import annotations

import time
from typing import Any

from torch import nn

from probes.compile.capture import record_compiles
from probes.divergence.fp64_criterion import compare_outputs
from probes.divergence.fp64_reference import float64_copy
from probes.divergence.runs import (
    SWITCHES_OFF,
    compile_fresh,
    run_entry,
    run_entry_float64,
    what_if,
)
from probes.environment import numeric_settings
from probes.errors import compile_error_line
from probes.records.divergence import (
    GRAD_PREFIX,
    PRIMARY_OUTPUT,
    SCENARIO_DESCRIPTIONS,
    DivergenceScenario,
    Fp64Criterion,
)
from probes.records.environment import NumericSettings
from probes.targets.target import CompileSettings, Target


class ScenarioRunner:
    """Runs the scenarios of one target; the scenarios run as is share one compiled copy."""

    def __init__(
        self,
        target: Target,
        settings: CompileSettings,
        criterion: Fp64Criterion,
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

    def run(
        self, name: str, entry_point: str, *, shared: bool, **switches: Any
    ) -> DivergenceScenario:
        started = time.perf_counter()
        result = DivergenceScenario(
            name=name,
            entry_point=entry_point,
            description=SCENARIO_DESCRIPTIONS[name],
            settings={**SWITCHES_OFF, **switches},
            compiled_fresh=False,
            frames_compiled=0,
            primary=PRIMARY_OUTPUT[entry_point],
        )
        try:
            self._measure(result, entry_point, shared, switches)
        except Exception as error:  # a compile or run error is a result, not a crash
            result.error = compile_error_line(error)
        result.seconds = time.perf_counter() - started
        return result

    def _measure(
        self, result: DivergenceScenario, entry_point: str, shared: bool, switches: dict[str, Any]
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
    """`what_if`'s keyword arguments for a scenario's switches; a switch not named is off."""
    arguments: dict[str, Any] = {name: bool(switches.get(name)) for name in SWITCHES_OFF}
    arguments["tf32_enabled"] = switches.get("tf32")
    return arguments


def _summarise(result: DivergenceScenario) -> None:
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
