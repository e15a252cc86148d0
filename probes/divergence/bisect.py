"""Which stage of the compiler makes the outputs fail: torch's own CompilerBisector, by fp64.

`torch._inductor.compiler_bisector.CompilerBisector.do_bisect(test)` calls `test()` again and
again while it changes what `torch.compile` does: first the backend (every `torch.compile` call
made during a test gets the bisector's backend, whatever it was asked for: eager, aot_eager,
aot_eager_decomp_partition, ..., inductor), then, in the first backend that fails, one subsystem
switched off at a time (Inductor's pre-grad, joint and post-grad passes, `fallback_random`,
`emulate_precision_casts`, layout optimisation, padding, CUDA graphs, lowerings), and for a
subsystem applied many times, a binary search over its applications. A test here compiles a
fresh copy of the module (alone, the rest eager, or the whole entry point), runs it with random
numbers taken out, and applies the fp64 criterion: exact equality would fail every fusion.

Cost: one compile per test the bisector asks for. Its walk over a backend's subsystems asks the
same test again after each one that did not help (quadratic in the number of subsystems): a test
it asked before is answered from the first answer, not compiled again (counted as reused).
Inductor's FX graph cache is off while the bisector runs (torch bypasses it).

Side effects: each test starts with `torch._dynamo.reset()`. The bisector keeps its state in a
temporary folder of its own (this probe points it there, never at the user's Inductor cache
folder, whose `bisect/` state a by-hand bisection keeps) and prints its progress, which is kept
off the terminal. Both its class settings are restored afterwards.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from probes.divergence.fp64_reference import float64_copy
from probes.divergence.localize import run_alone
from probes.divergence.runs import (
    RANDOM_NUMBERS_OUT,
    Outputs,
    run_entry,
    run_entry_float64,
    what_if,
)
from probes.errors import compile_error_line
from probes.records.divergence import (
    BACKEND_STATE,
    TEST_DISABLE,
    BisectionStep,
    CompilerBisection,
    Fp64Criterion,
    StageConfigChange,
    bisection_environment,
)
from probes.targets.target import CompileSettings, Target


def reference_outputs(target: Target, entry_point: str, seed: int) -> dict[str, Outputs]:
    """Eager and fp64 outputs of the entry point, random numbers out: what the tests compare to."""
    run = run_entry(target, entry_point)
    eager, fp64 = target.fresh_copy(), float64_copy(target)
    with what_if(eager, fp64, **RANDOM_NUMBERS_OUT):
        return {
            "eager": run(eager, seed),
            "fp64": run_entry_float64(target, entry_point, fp64, seed),
        }


@dataclass
class _StageTest:
    """The bisector's test: a fresh compile under whatever stage setting the bisector set."""

    target: Target
    settings: CompileSettings
    entry_point: str
    module_path: str
    reference: dict[str, Outputs]
    criterion: Fp64Criterion
    seed: int
    steps: list[BisectionStep] = field(default_factory=list)
    answers: dict[tuple[str | None, str | None, str], bool] = field(default_factory=dict)
    reused: int = 0

    def __call__(self) -> bool:
        from torch._inductor.compiler_bisector import CompilerBisector

        backend, subsystem = CompilerBisector.get_backend(), CompilerBisector.get_subsystem()
        state = BACKEND_STATE
        if backend and subsystem:
            state = CompilerBisector.get_run_state(backend, subsystem) or BACKEND_STATE
        key = (backend, subsystem, state)
        counting = state not in (BACKEND_STATE, TEST_DISABLE)  # the bisector counts calls
        if not counting and key in self.answers:
            self.reused += 1
            return self.answers[key]
        step = self._run(BisectionStep(backend, subsystem, state, passes=False))
        self.steps.append(step)
        self.answers[key] = step.passes
        return step.passes

    def _run(self, step: BisectionStep) -> BisectionStep:
        started = time.perf_counter()
        try:  # a fresh compile under this setting
            step.frames_compiled, compared = run_alone(
                self.target,
                self.settings,
                self.entry_point,
                self.module_path,
                self.reference,
                self.criterion,
                self.seed,
            )
            step.passes = bool(compared) and all(c.passes for c in compared)
        except Exception as error:  # a stage that cannot compile fails the test, as in torch's CLI
            step.error = compile_error_line(error)
        step.seconds = round(time.perf_counter() - started, 3)
        return step


@contextlib.contextmanager
def _bisector_sandbox() -> Iterator[None]:
    """The bisector's state in a folder of its own, its printing off the terminal, its class
    settings given back."""
    from torch._inductor.compiler_bisector import CompilerBisector

    saved = (CompilerBisector.in_process_cache, CompilerBisector.bisection_enabled)
    folder = tempfile.mkdtemp(prefix="compile-diagnose-bisect-")
    CompilerBisector.in_process_cache = folder
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        CompilerBisector.in_process_cache, CompilerBisector.bisection_enabled = saved
        shutil.rmtree(folder, ignore_errors=True)
        torch._dynamo.reset()  # nothing compiled under a bisection setting stays cached


def _config_change(backend: str | None, subsystem: str | None) -> StageConfigChange | None:
    from torch._inductor.compiler_bisector import BACKENDS, ConfigChange

    found = next((s for s in BACKENDS.get(backend or "", []) if s.name == subsystem), None)
    if not isinstance(found, ConfigChange):
        return None
    return StageConfigChange(found.config_name, found.config_field, found.config_value)


def bisect_compiler_stage(
    target: Target,
    settings: CompileSettings,
    entry_point: str,
    module_path: str,
    reference: dict[str, Outputs],
    criterion: Fp64Criterion,
    seed: int,
    reason: str,
) -> CompilerBisection:
    """Run torch's CompilerBisector on `module_path` (WHOLE_MODEL: the entry point) by fp64.

    `reference`: eager's and fp64's outputs of the entry point with random numbers taken out
    (`reference_outputs`, or the localization's recorded runs).
    """
    from torch._inductor.compiler_bisector import BACKENDS, CompilerBisector

    started = time.perf_counter()
    test = _StageTest(target, settings, entry_point, module_path, reference, criterion, seed)
    backends = list(BACKENDS)
    result, error = None, None
    with _bisector_sandbox():
        try:
            result = CompilerBisector.do_bisect(test)
        except Exception as raised:  # the bisector's own failure: keep the steps it took
            error = compile_error_line(raised)
    backend = result.backend if result else None
    subsystem = result.subsystem if result else None
    change = _config_change(backend, subsystem)
    number = result.bisect_number if result and change is None else None
    return CompilerBisection(
        entry_point=entry_point,
        module_path=module_path,
        reason=reason,
        backends=backends,
        backend=backend,
        subsystem=subsystem,
        bisect_number=number,
        debug_info=result.debug_info if result and change is None else None,
        config_change=change,
        reproduce_env=bisection_environment(backend, subsystem, number, change is not None),
        steps=test.steps,
        compiles=len(test.steps),
        reused_answers=test.reused,
        seconds=round(time.perf_counter() - started, 3),
        error=error,
    )
