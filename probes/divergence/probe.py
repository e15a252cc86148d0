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

From the training scenarios it attributes the as-is difference to random numbers ("rng"),
arithmetic, or both. When an output without random numbers fails the criterion (or when asked),
it localizes: the first submodule that adds error, confirmed by compiling it alone
(`probes.divergence.localize`).

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
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from probes.divergence.dropout import DropoutSites, dropout_sites
from probes.divergence.fp64_criterion import Criterion, with_multiplier
from probes.divergence.localize import Localization, localize
from probes.divergence.rng_attribution import RngAttribution, attribute, overall_verdict
from probes.divergence.scenarios import (
    AS_IS,
    DROPOUT_OFF,
    EVAL,
    FALLBACK_RANDOM,
    TF32_OFF,
    TF32_ON,
    ScenarioResult,
    ScenarioRunner,
    numerics_now,
)
from probes.environment import NumericSettings
from probes.errors import compile_error_line
from probes.records.names import INFERENCE, TRAINING
from probes.targets.target import CompileSettings, Target

DEFAULT_SEED = 42  # the reference script's seed


@dataclass
class PrecisionCheck:
    ran: bool
    note: str
    tf32_explains: bool | None = None  # fails with TF32 on, passes with it off


@dataclass
class DivergenceReport:
    target: str
    device: str
    torch_version: str
    compile: dict[str, Any]
    criterion: Criterion
    criterion_rule: str
    seed: int
    numerics: NumericSettings | None
    scenarios: list[ScenarioResult] = field(default_factory=list)
    attribution: RngAttribution | None = None
    verdict: str = "unknown"  # "none" | "rng" | "arithmetic" | "both" | "unknown"
    summary: str = ""
    dropout: DropoutSites | None = None  # the dropout the module draws for in train mode
    localization: Localization | None = None
    localization_note: str = ""
    precision: PrecisionCheck | None = None
    dynamo_resets: int = 0
    notes: list[str] = field(default_factory=list)
    phase_seconds: dict[str, float] = field(default_factory=dict)

    def scenario(self, name: str) -> ScenarioResult | None:
        return next((s for s in self.scenarios if s.name == name), None)


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


def arithmetic_failures(report: DivergenceReport) -> list[ScenarioResult]:
    """Scenarios without random-number differences whose outputs fail the criterion."""
    failing = []
    eval_result = report.scenario(EVAL)
    if eval_result is not None and eval_result.passes is False:
        failing.append(eval_result)
    rng_free = [report.scenario(n) for n in (FALLBACK_RANDOM, DROPOUT_OFF)]
    ran = [s for s in rng_free if s is not None and s.passes is not None]
    if ran and not any(s.passes for s in ran):
        failing.extend(ran)
    return failing


# --- the probe -----------------------------------------------------------------------------


def probe_divergence(
    target: Target,
    settings: CompileSettings,
    *,
    localize: bool | None = None,
    compiled: nn.Module | None = None,
    rmse_multiplier: float | None = None,
    tolerance: float | None = None,
    seed: int = DEFAULT_SEED,
    check_precision: bool = True,
    what_ifs: Sequence[str] = (FALLBACK_RANDOM, DROPOUT_OFF),
    on_phase: Callable[[str], None] = lambda _: None,
) -> DivergenceReport:
    """Attribute and localize the difference between `target`'s eager and compiled outputs.

    `localize`: None localizes only when an output without random-number differences fails the
    criterion; True always; False never. `compiled`: the copy the diagnosis already compiled with
    `settings` (its "eval" and "as-is" scenarios then cost no compile). `rmse_multiplier`
    replaces same()'s 2x / 3x, `tolerance` its 1e-4. `check_precision`: the TF32 scenarios (CUDA
    only). `what_ifs`: which random-number what-ifs to compile for the training attribution
    (each is a full compile of the training step: on a CPU one may be all a budget allows).
    Resets dynamo: see the module docstring.
    """
    criterion = Criterion() if tolerance is None else Criterion(tolerance=tolerance)
    criterion = with_multiplier(criterion, rmse_multiplier)
    report = DivergenceReport(
        target=target.name,
        device=str(target.device),
        torch_version=torch.__version__,
        compile=settings.describe(),
        criterion=criterion,
        criterion_rule=criterion.rule(),
        seed=seed,
        numerics=numerics_now(),
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
    report.dynamo_resets = scenarios.resets + _localization_resets(report.localization)
    report.notes.extend(_notes(report, target))
    report.summary = _summary(report)
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
    switches_of = {FALLBACK_RANDOM: {"fallback_random": True}, DROPOUT_OFF: {"dropout_off": True}}
    plan: list[tuple[str, str, bool, dict[str, Any]]] = [(EVAL, INFERENCE, True, {})]
    if target.loss is not None:
        plan.append((AS_IS, TRAINING, True, {}))
        plan += [(name, TRAINING, False, switches_of[name]) for name in what_ifs]
    for name, entry_point, shared, switches in plan:
        with _phase(report, name, on_phase):
            report.scenarios.append(scenarios.run(name, entry_point, shared=shared, **switches))
    if target.loss is not None:
        ran = [report.scenario(name) for name in what_ifs]
        report.attribution = attribute(report.scenario(AS_IS), *[s for s in ran if s])
    report.verdict = overall_verdict(report.attribution, report.scenario(EVAL))


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
    rng_free = {"fallback_random": True, "dropout_off": True}
    for name, enabled in ((TF32_OFF, False), (TF32_ON, True)):
        with _phase(report, name, on_phase):
            result = scenarios.run(name, entry_point, shared=False, tf32=enabled, **rng_free)
            report.scenarios.append(result)
    off, on = report.scenario(TF32_OFF), report.scenario(TF32_ON)
    explains = None
    if off.passes is not None and on.passes is not None:
        explains = bool(off.passes and not on.passes)
    report.precision = PrecisionCheck(
        ran=True,
        note="each side compiled and run with TF32 off, then on, for matmul and cuDNN alike",
        tf32_explains=explains,
    )


def _run_localization(
    report: DivergenceReport,
    target: Target,
    settings: CompileSettings,
    criterion: Criterion,
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


def _localization_entry(target: Target, failing: list[ScenarioResult]) -> str:
    if target.loss is None:
        return INFERENCE
    training_fails = any(s.entry_point == TRAINING for s in failing)
    return INFERENCE if failing and not training_fails else TRAINING


def _localization_resets(localization: Localization | None) -> int:
    if localization is None:
        return 0
    return 1 + (localization.confirmation is not None)


def _notes(report: DivergenceReport, target: Target) -> list[str]:
    notes = []
    for s in report.scenarios:
        if not s.compiled_fresh or s.error is not None or s.frames_compiled > 0:
            continue
        if s.name in (EVAL, AS_IS):
            notes.append(
                f"{s.name}: the compiled copy compiled no frame for {s.entry_point}: it ran "
                "eager code (as `torch.compile(policy)` leaves `select_action` eager), so this "
                "compares eager with eager"
            )
        else:
            notes.append(
                f"{s.name}: compiled no new frame, so its setting may not have reached the "
                "compiled code"
            )
    if target.device.type == "cuda" and report.scenario(AS_IS) is not None:
        notes.append(
            "as-is: the fp64 reference draws dropout masks from the same seed, but on CUDA "
            "float64 masks need not match float32 ones; judge as-is by the what-ifs"
        )
    return notes


def _summary(report: DivergenceReport) -> str:
    texts = {
        "none": "compiled is as close to fp64 as eager in every scenario",
        "rng": "the difference is random numbers: it vanishes when both sides draw the same",
        "arithmetic": "compiled arithmetic differs beyond the fp64 criterion",
        "both": "random numbers explain most of the difference; the arithmetic differs too",
        "untested": "training differs, and no what-if without random numbers ran to say why",
        "unknown": "some scenarios did not complete",
    }
    text = texts.get(report.verdict, report.verdict)
    found = report.localization
    if found is None:
        return text
    if found.first_divergent_module:
        text += f"; first module to add error: {found.first_divergent_module}"
    elif found.backward_only:
        gradient = found.first_divergent_gradient
        text += f"; only in the backward pass, first at the gradient of {gradient}"
    confirmed = found.confirmation
    if confirmed is not None and confirmed.reproduced is not None:
        text += (
            f" (compiled alone, {confirmed.module_path} reproduces it)"
            if confirmed.reproduced
            else f" (compiled alone, {confirmed.module_path} does not reproduce it)"
        )
    return text
