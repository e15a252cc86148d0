"""Why eager and compiled outputs differ: random numbers, arithmetic, or a precision setting.

`probe_divergence` answers with measurements, in scenarios that each compare eager, eager again
(its own noise), compiled, and an fp64 eager reference, by the criterion of PyTorch's dynamo
benchmark harness (`probes.divergence.fp64_criterion`):

- "eval": the inference call in eval mode (no random numbers), on the compiled copy as is;
- "as-is": a training forward and backward (loss and every parameter's gradient), same seed on
  both sides, on the compiled copy as is;
- "fallback-random": the same with `torch._inductor.config.fallback_random = True`, so Inductor
  draws random numbers with eager's generator instead of its own;
- "dropout-off": the same with every dropout off (`probes.divergence.dropout`);
- "tf32-off", "tf32-on" (CUDA only): training (inference without a loss) with random numbers
  taken out, TF32 off on both sides, then on on both sides.

It records the figures and judges nothing: whether the as-is difference comes from random
numbers, arithmetic or both is the analyzer's reading of them
(`analyzer.rules.divergence_reading`). It decides only what else to measure: when an output
without random numbers fails the criterion (or when asked), it localizes: the first submodule
that adds error, confirmed by compiling it alone (`probes.divergence.localize`); and when that
module reproduces the divergence alone (or when asked), it bisects the compiler stage that causes
it with torch's CompilerBisector (`probes.divergence.bisect`).

Cost and side effects: every what-if scenario, the localization and the confirmation compile a
fresh copy after `torch._dynamo.reset()`, because dynamo would otherwise reuse code compiled
under other settings; the reset throws away every compiled function in the process (copies
compiled before recompile on their next call). Run this probe after anything that is timed.
Settings it changes (inductor config, TF32, dropout probabilities, torch.nn.functional's dropout
functions, the default dtype) are restored, the global random state too, and a `compiled` copy
passed in gets its weights, buffers and train/eval modes back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from probes.divergence.bisect import bisect_compiler_stage, reference_outputs
from probes.divergence.dropout import dropout_sites
from probes.divergence.localize import localize
from probes.divergence.runs import RANDOM_NUMBERS_OUT, WHAT_IF_SWITCHES
from probes.divergence.scenarios import ScenarioRunner, numerics_now
from probes.errors import compile_error_line
from probes.records.divergence import (
    AS_IS,
    EVAL,
    RNG_FREE,
    TF32_OFF,
    TF32_ON,
    WHOLE_MODEL,
    DivergenceReport,
    DivergenceScenario,
    Fp64Criterion,
    Localization,
    PrecisionCheck,
    RngAttribution,
    criterion_for,
    failing_without_random_numbers,
    with_multiplier,
)
from probes.records.names import DEFAULT_SEED, INFERENCE, TRAINING
from probes.targets.target import CompileSettings, Target

# --- state the probe must give back --------------------------------------------------------


@contextmanager
def _preserved(module: nn.Module | None, target: Target) -> Iterator[None]:
    """A compiled copy passed in: the target's weights while probed, its own afterwards.

    Its weights, buffers and train/eval modes come back as they were; state outside those (a
    policy's action queue) is left reset, as the target's `reset` leaves it.
    """
    if module is None:
        yield
        return
    inner = getattr(module, "_orig_mod", module)  # torch.compile(module) wraps the original
    saved = {key: value.detach().clone() for key, value in inner.state_dict().items()}
    modes = [(sub, sub.training) for sub in module.modules()]
    # The diagnosis may have trained it (the benchmark's timing loop): compare from the weights
    # the eager copies start from. load_state_dict copies in place, so no recompile.
    inner.load_state_dict(target.module.state_dict())
    try:
        yield
    finally:
        inner.load_state_dict(saved)
        for sub, training in modes:
            sub.training = training
        target.reset(module)


def arithmetic_failures(report: DivergenceReport) -> list[DivergenceScenario]:
    """Scenarios without random-number differences whose outputs fail the criterion."""
    names = failing_without_random_numbers({s.name: s.passes for s in report.scenarios})
    return [s for s in report.scenarios if s.name in names]


# --- the probe -----------------------------------------------------------------------------


def probe_divergence(
    target: Target,
    settings: CompileSettings,
    *,
    localize: bool | None = None,
    bisect: bool | None = None,
    compiled: nn.Module | None = None,
    rmse_multiplier: float | None = None,
    tolerance: float | None = None,
    cosine: bool = False,
    seed: int = DEFAULT_SEED,
    check_precision: bool = True,
    what_ifs: Sequence[str] = RNG_FREE,
    on_phase: Callable[[str], None] = lambda _: None,
) -> DivergenceReport:
    """Measure the difference between `target`'s eager and compiled outputs, and localize it.

    The scenarios' figures are what the analyzer attributes the difference by.

    `localize`: None localizes only when an output without random-number differences fails the
    criterion; True always; False never. `bisect`: None bisects the compiler stage when the
    localized module reproduces the divergence compiled alone; True also bisects the whole entry
    point when no module was confirmed; False never. `compiled`: the copy the diagnosis already
    compiled with `settings` (its "eval" and "as-is" scenarios then cost no compile).
    `rmse_multiplier` replaces same()'s 2x / 3x, `tolerance` its 1e-4 (1e-3 for a target in
    float16 or bfloat16), `cosine` its fp64 check by a cosine similarity of 0.99 (the harness's
    --cosine). `check_precision`: the
    TF32 scenarios (CUDA only). `what_ifs`: which random-number what-ifs to compile for the
    training attribution (each is a full compile of the training step: on a CPU one may be all
    a budget allows).
    Resets dynamo: see the module docstring.
    """
    criterion = with_multiplier(criterion_for(target.dtype, tolerance, cosine), rmse_multiplier)
    report = DivergenceReport(
        target=target.name,
        device=str(target.device),
        torch_version=torch.__version__,
        compile=settings.describe(),
        criterion=criterion,
        criterion_rule=criterion.rule(),
        seed=seed,
        numerics=numerics_now(),
        dtype=target.dtype,
        dropout=dropout_sites(target.module),
    )
    scenarios = ScenarioRunner(target, settings, criterion, seed, compiled)
    devices = [target.device.index or 0] if target.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), _preserved(compiled, target):
        _run_scenarios(report, scenarios, target, what_ifs, on_phase)
        if check_precision:
            _run_precision(report, scenarios, target, on_phase)
        else:
            report.precision = PrecisionCheck(ran=False, note="not requested")
        _run_localization(report, target, settings, criterion, seed, localize, on_phase)
        _run_bisection(report, target, settings, criterion, seed, bisect, on_phase)
    report.dynamo_resets = (
        scenarios.resets
        + _localization_resets(report.localization)
        + (report.bisection.compiles + 1 if report.bisection else 0)
    )
    report.notes.extend(_notes(report, target))
    return report


@contextmanager
def _phase(report: DivergenceReport, name: str, on_phase: Callable[[str], None]) -> Iterator[None]:
    on_phase(f"divergence: {name}")
    started = time.perf_counter()
    try:
        yield
    finally:
        report.phase_seconds[name] = round(time.perf_counter() - started, 3)


def _run_scenarios(
    report: DivergenceReport,
    scenarios: ScenarioRunner,
    target: Target,
    what_ifs: Sequence[str],
    on_phase: Callable[[str], None],
) -> None:
    plan: list[tuple[str, str, bool, dict[str, Any]]] = [(EVAL, INFERENCE, True, {})]
    if target.loss is not None:
        plan.append((AS_IS, TRAINING, True, {}))
        plan += [(name, TRAINING, False, WHAT_IF_SWITCHES[name]) for name in what_ifs]
    for name, entry_point, shared, switches in plan:
        with _phase(report, name, on_phase):
            report.scenarios.append(scenarios.run(name, entry_point, shared=shared, **switches))
    if target.loss is not None:
        training = [s for s in report.scenarios if s.name in (AS_IS, *what_ifs)]
        report.attribution = RngAttribution(
            loss_diff={s.name: s.primary_max_abs_diff for s in training},
            max_gradient_diff={s.name: s.max_gradient_abs_diff for s in training},
            passes={s.name: s.passes for s in training},
        )


def _run_precision(
    report: DivergenceReport,
    scenarios: ScenarioRunner,
    target: Target,
    on_phase: Callable[[str], None],
) -> None:
    if target.device.type != "cuda":
        report.precision = PrecisionCheck(
            ran=False,
            note="TF32 applies to CUDA matmuls and convolutions only: the TF32 comparison "
            f"needs a CUDA device (this run: {target.device})",
        )
        return
    entry_point = TRAINING if target.loss is not None else INFERENCE
    for name, enabled in ((TF32_OFF, False), (TF32_ON, True)):
        with _phase(report, name, on_phase):
            result = scenarios.run(
                name, entry_point, shared=False, tf32=enabled, **RANDOM_NUMBERS_OUT
            )
            report.scenarios.append(result)
    report.precision = PrecisionCheck(
        ran=True,
        note="each side compiled and run with TF32 off, then on, for matmul and cuDNN alike",
    )


def _run_localization(
    report: DivergenceReport,
    target: Target,
    settings: CompileSettings,
    criterion: Fp64Criterion,
    seed: int,
    requested: bool | None,
    on_phase: Callable[[str], None],
) -> None:
    failing = arithmetic_failures(report)
    if requested is False or (requested is None and not failing):
        report.localization_note = (
            "not run: not requested"
            if requested is False
            else "not run: every output without random-number differences passes the criterion"
        )
        return
    entry_point = _localization_entry(target, failing)
    reason = (
        "requested"
        if not failing
        else "fails the fp64 criterion without random numbers: "
        + ", ".join(f"{s.name} ({', '.join(s.failing[:3])})" for s in failing)
    )
    with _phase(report, "localization", on_phase):
        try:
            report.localization = localize(target, settings, entry_point, criterion, seed, reason)
            report.localization_note = f"run on {entry_point}: {reason}"
        except Exception as error:  # the scenarios stand without it
            report.localization_note = f"failed: {compile_error_line(error)}"


def _run_bisection(
    report: DivergenceReport,
    target: Target,
    settings: CompileSettings,
    criterion: Fp64Criterion,
    seed: int,
    requested: bool | None,
    on_phase: Callable[[str], None],
) -> None:
    """Bisect on the module confirmed alone; when asked and none was, on the whole entry point."""
    found = report.localization
    confirmed = found.confirmation if found is not None else None
    if requested is False:
        report.bisection_note = "not run: not requested"
        return
    if found is not None and confirmed is not None and confirmed.reproduced:
        entry_point, module_path = found.entry_point, confirmed.module_path
        reason = f"{module_path or 'the whole model'} reproduces the divergence compiled alone"
    elif requested:
        entry_point = (
            found.entry_point
            if found is not None
            else _localization_entry(target, arithmetic_failures(report))
        )
        module_path, reason = WHOLE_MODEL, "requested; no module was confirmed alone"
    else:
        report.bisection_note = "not run: no module reproduced the divergence compiled alone"
        return
    with _phase(report, "bisection", on_phase):
        try:
            reference = reference_outputs(target, entry_point, seed)
            report.bisection = bisect_compiler_stage(
                target, settings, entry_point, module_path, reference, criterion, seed, reason
            )
            where = module_path or "the whole model"
            report.bisection_note = f"run on {where} ({entry_point}): {reason}"
        except Exception as error:  # the scenarios and the localization stand without it
            report.bisection_note = f"failed: {compile_error_line(error)}"


def _localization_entry(target: Target, failing: list[DivergenceScenario]) -> str:
    if target.loss is None:
        return INFERENCE
    training_fails = any(s.entry_point == TRAINING for s in failing)
    return INFERENCE if failing and not training_fails else TRAINING


def _localization_resets(localization: Localization | None) -> int:
    if localization is None:
        return 0
    return 1 + (localization.confirmation is not None)


def _notes(report: DivergenceReport, target: Target) -> list[str]:
    """Facts about the run a reader needs to weigh its scenarios: what compiled, what differs."""
    notes = []
    for s in report.scenarios:
        if not s.compiled_fresh or s.error is not None or s.frames_compiled > 0:
            continue
        if s.name in (EVAL, AS_IS):
            notes.append(
                f"{s.name}: the compiled copy compiled no frame for {s.entry_point}: it ran "
                "eager code (as `torch.compile(policy)` leaves `select_action` eager), so this "
                "scenario compared eager with eager"
            )
        else:
            notes.append(
                f"{s.name}: the compiled copy, fresh after a dynamo reset, compiled no frame for "
                f"{s.entry_point} under this scenario's setting"
            )
    if target.device.type == "cuda" and report.scenario(AS_IS) is not None:
        notes.append(
            "as-is: the fp64 reference draws dropout masks from the same seed, but on CUDA "
            "float64 masks need not match float32 ones"
        )
    return notes
