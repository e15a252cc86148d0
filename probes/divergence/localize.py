"""Where eager and compiled part ways: a recorded run of every submodule, then a confirmation.

Runs with random numbers taken out (dropout off, `fallback_random`), so that what differs is
arithmetic. Three copies run the entry point with a `LayerRecorder` on every submodule: eager,
compiled (hooks registered before its compile, so traced into its graph) and the fp64 reference.
The walk names the first module, in finishing order, whose output fails the fp64 criterion while
its inputs pass: the one that adds error. For training, every parameter's gradient is walked
in backward order too, which finds a divergence that shows only in the backward pass.

The named module is then compiled alone, the rest of the model eager and no hooks anywhere: if
the outputs diverge again, the module is confirmed.

Cost: one compile of the hooked program (its graph returns every intermediate output) and one of
the module alone, each after a dynamo reset. Memory: every submodule's inputs and outputs of the
three runs are held until compared (the fp64 ones at twice the size): for a full-size policy
with large images, gigabytes.
"""

from __future__ import annotations

import time

import torch

from probes.compile.capture import record_compiles
from probes.divergence.fp64_criterion import compare, compare_outputs
from probes.divergence.fp64_reference import float64_copy
from probes.divergence.layer_outputs import LayerRecorder, first_adding_error, walk_modules
from probes.divergence.runs import (
    RANDOM_NUMBERS_OUT,
    Outputs,
    compile_alone,
    compile_fresh,
    run_entry,
    run_entry_float64,
    what_if,
)
from probes.errors import compile_error_line
from probes.records.divergence import (
    GRAD_PREFIX,
    WHOLE_MODEL,
    Fp64Criterion,
    GradientDivergence,
    IsolatedCompile,
    Localization,
    ModuleDivergence,
    OutputComparison,
)
from probes.targets.target import CompileSettings, Target

CAPTURE_NOTE = (
    "the recorded compiled run had forward hooks on every submodule, traced into its graph: it "
    "returns every intermediate output, so it is a slightly different program (other fusions, "
    "more kernels) than the compiled model users run; never timed"
)


def owning_module(parameter: str, module_paths: set[str]) -> str:
    """The deepest recorded module whose path prefixes the parameter's name."""
    parts = parameter.split(".")[:-1]
    while parts and ".".join(parts) not in module_paths:
        parts.pop()
    return ".".join(parts)


def walk_gradients(
    eager: Outputs,
    compiled: Outputs,
    fp64: Outputs | None,
    modules: list[ModuleDivergence],
    criterion: Fp64Criterion,
) -> list[GradientDivergence]:
    """Every parameter's gradient, in the order backward computes them."""
    finished_at: dict[str, int] = {}
    for module in modules:
        finished_at[module.path] = module.order
    paths = set(finished_at)
    names = [n for n in eager if n.startswith(GRAD_PREFIX) and n in compiled]
    rows = []
    for name in names:
        parameter = name.removeprefix(GRAD_PREFIX)
        owner = owning_module(parameter, paths)
        found = compare(name, eager[name], compiled[name], (fp64 or {}).get(name), criterion)
        rows.append((finished_at.get(owner, -1), parameter, owner, found))
    rows.sort(key=lambda row: -row[0])  # stable: declaration order within a module
    return [
        GradientDivergence(
            order=i,
            parameter=parameter,
            module_path=owner,
            shape=found.shape,
            max_abs_error=found.max_abs_diff,
            max_rel_error=found.max_rel_diff,
            rmse=found.rmse_diff,
            eager_rmse_vs_fp64=found.eager_rmse_vs_fp64,
            compiled_rmse_vs_fp64=found.compiled_rmse_vs_fp64,
            error_ratio=found.error_ratio,
            passes=found.passes,
        )
        for i, (_, parameter, owner, found) in enumerate(rows)
    ]


def _recorded_runs(
    target: Target, settings: CompileSettings, entry_point: str, seed: int
) -> tuple[dict[str, LayerRecorder], dict[str, Outputs]]:
    """Eager, compiled and fp64 runs with every submodule recorded, random numbers taken out."""
    run = run_entry(target, entry_point)
    eager, fp64 = target.fresh_copy(), float64_copy(target)
    compiled = compile_fresh(target, settings)  # lazy: hooks below are traced into its graph
    recorders = {
        "eager": LayerRecorder().attach(eager),
        "compiled": LayerRecorder().attach(compiled),
        "fp64": LayerRecorder().attach(fp64),
    }
    with what_if(eager, compiled, fp64, **RANDOM_NUMBERS_OUT):
        outputs = {
            "compiled": run(compiled, seed),
            "eager": run(eager, seed),
            "fp64": run_entry_float64(target, entry_point, fp64, seed),
        }
    for recorder in recorders.values():
        recorder.detach()
    return recorders, outputs


def run_alone(
    target: Target,
    settings: CompileSettings,
    entry_point: str,
    module_path: str,
    reference: dict[str, Outputs],
    criterion: Fp64Criterion,
    seed: int,
) -> tuple[int, list[OutputComparison]]:
    """A fresh compile of `module_path` alone, the rest eager and no hooks (WHOLE_MODEL: the
    target compiled as `settings` say), run with random numbers out and compared with the
    reference: the frames it compiled and the comparisons. Raises what the compile raises."""
    torch._dynamo.reset()  # a fresh compile, not code cached from an earlier run
    if module_path == WHOLE_MODEL:
        copy = target.compiled_copy(settings)
    else:
        copy = target.fresh_copy()
        compile_alone(copy.get_submodule(module_path), settings)
    with what_if(copy, **RANDOM_NUMBERS_OUT):
        capture, outputs = record_compiles(
            entry_point, lambda: run_entry(target, entry_point)(copy, seed)
        )
    compared = compare_outputs(reference["eager"], outputs, reference["fp64"], criterion)
    return capture.frames_compiled, compared


def confirm_isolated(
    target: Target,
    settings: CompileSettings,
    entry_point: str,
    module_path: str,
    reference: dict[str, Outputs],
    criterion: Fp64Criterion,
    seed: int,
) -> IsolatedCompile:
    """Compile `module_path` alone (the rest eager, no hooks) and compare the final outputs."""
    started = time.perf_counter()
    try:
        frames, compared = run_alone(
            target, settings, entry_point, module_path, reference, criterion, seed
        )
    except Exception as error:  # a compiler error is a result, not a crash
        return IsolatedCompile(
            module_path=module_path,
            frames_compiled=0,
            reproduced=None,
            seconds=time.perf_counter() - started,
            error=compile_error_line(error),
        )
    return IsolatedCompile(
        module_path=module_path,
        frames_compiled=frames,
        reproduced=frames > 0 and not all(c.passes for c in compared),
        outputs=compared,
        seconds=time.perf_counter() - started,
    )


def localize(
    target: Target,
    settings: CompileSettings,
    entry_point: str,
    criterion: Fp64Criterion,
    seed: int,
    reason: str,
) -> Localization:
    """Record, walk, name the first module that adds error, and confirm it alone."""
    started = time.perf_counter()
    recorders, outputs = _recorded_runs(target, settings, entry_point, seed)
    modules = walk_modules(
        recorders["eager"].calls(),
        recorders["compiled"].calls(),
        recorders["fp64"].calls(),
        criterion,
    )
    for recorder in recorders.values():
        recorder.clear()  # intermediate outputs can be large: keep only the numbers
    finals = compare_outputs(outputs["eager"], outputs["compiled"], outputs["fp64"], criterion)
    gradients = walk_gradients(
        outputs["eager"], outputs["compiled"], outputs["fp64"], modules, criterion
    )
    culprit = first_adding_error(modules)
    failing_gradient = next((g for g in gradients if not g.passes), None)
    backward_only = culprit is None and failing_gradient is not None
    suspect = culprit.path if culprit else (failing_gradient.module_path if backward_only else "")
    confirmation = None
    if culprit is not None or backward_only:
        confirmation = confirm_isolated(
            target, settings, entry_point, suspect, outputs, criterion, seed
        )
    return Localization(
        entry_point=entry_point,
        reason=reason,
        settings=dict(RANDOM_NUMBERS_OUT),
        capture_note=CAPTURE_NOTE,
        capture_reproduces=not all(c.passes for c in finals),
        capture_outputs=finals,
        modules=modules,
        gradients=gradients,
        first_divergent_module=culprit.path if culprit else None,
        first_divergent_class=culprit.module_class if culprit else None,
        first_divergent_gradient=failing_gradient.parameter if failing_gradient else None,
        backward_only=backward_only,
        confirmation=confirmation,
        seconds=time.perf_counter() - started,
    )
