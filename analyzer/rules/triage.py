"""Triage of a benchmark report: what its numbers likely mean, from the numbers alone.

Each conclusion is a finding with a confidence and the `compile-diagnose` command that would
confirm it. The reasoning combines the report's figures with what is known of how LeRobot's
reference script measured (`../shared/DESIGN.md`, "How the reference report was made") and with
the differences we measured between correct compiled and eager programs; the constants below
carry those measurements. A verdict recomputed from the reference criteria stands beside the
report's own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from analyzer.findings import Finding, make_finding, rank
from analyzer.reference_report import BenchmarkReport
from analyzer.rules.benchmark import (
    BENCHMARK_METHODOLOGY,
    INSUFFICIENT_SPEEDUP,
)
from analyzer.rules.compile import (
    COMPILATION_FAILED,
    COMPILED_PATH_NOT_EXERCISED,
    RECOMPILATION,
)
from analyzer.rules.divergence import (
    NUMERICAL_DIVERGENCE,
    PRECISION_SETTING_MISMATCH,
    RNG_DIVERGENCE,
    TOLERANCE_TOO_STRICT,
)
from analyzer.rules.kernels import EAGER_WORK_OUTSIDE_COMPILED_REGION, LAUNCH_BOUND

SPEEDUP_THRESHOLD = 1.1  # reference criteria: both speedups > 1.1
# A ratio within this of 1.0x is what timing eager against itself gives (the reference report's
# inference row, eager against eager, read 1.04x).
NEAR_ONE_X = 0.1
# Timed one side after the other with a mean and no spread, a ratio moves by a few percent from
# run to run; a speedup this close to the threshold could fall on either side of it.
SEQUENTIAL_TIMING_NOISE = 0.05
# Largest max-action difference measured between correct compiled and eager ACT, by device:
# CPU 1.7e-6 (`policy.model.compile()`), H100 8.6e-5 (TF32 defaults).
ACTION_ROUNDING = {"cpu": 1.7e-6, "cuda": 8.6e-5}
# Training-loss difference with random numbers taken out (fallback_random), relative to the loss:
# CPU 1.2e-7 on 0.90, H100 0.035 on 95. The reports hold no loss value; ACT's L1 loss is of
# order 1 (0.90 at random weights), so these serve as absolute bands.
LOSS_ROUNDING = {"cpu": 1.3e-7, "cuda": 3.7e-4}
FAR_BEYOND = 10.0  # this many times the rounding band is not rounding
# One warm-cache Inductor compile of ACT took ~8 s on CPU, a cold one 28-153 s: a slowdown that
# adds up to this much over a timed loop can be a compile inside it.
RECOMPILE_SCALE_S = 1.0


@dataclass(frozen=True)
class PolicyFacts:
    network: str  # what a compiler has to reproduce
    training_randomness: str  # random numbers drawn in a training forward; "" if none known


KNOWN_POLICIES: dict[str, PolicyFacts] = {
    "act": PolicyFacts(
        "a ResNet backbone and a transformer", "dropout 0.1 in its transformer layers"
    ),
    "diffusion": PolicyFacts(
        "a ResNet backbone and a convolutional U-Net", "noise and timesteps for every sample"
    ),
    "vqbet": PolicyFacts("a ResNet backbone and a GPT", "dropout 0.1 in its GPT"),
    "tdmpc": PolicyFacts(
        "convolutional and MLP encoders with Q-ensembles", "random shifts and ensemble draws"
    ),
}
_UNKNOWN_POLICY = PolicyFacts("a neural-network policy", "")


@dataclass
class Criterion:
    """One reference criterion, recomputed from the numbers beside what the report says."""

    name: str
    measured: float | bool | None
    unit: str  # "x", "abs" (an absolute difference), or "" for a yes/no
    requirement: str  # e.g. "< 1e-05 (absolute)", "> 1.1x"
    passed: bool | None  # recomputed; None when the report lacks the number
    reported: bool | None  # as the report states it, where it states it
    note: str = ""  # codes of the findings that explain this figure, e.g. "CD101"


@dataclass
class Verdict:
    criteria: list[Criterion]
    success: bool | None  # recomputed: every criterion passed
    reported_success: bool | None
    disagreements: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return _verdict_label(self.success)

    @property
    def reported_label(self) -> str:
        return _verdict_label(self.reported_success)


@dataclass
class TriageResult:
    report: BenchmarkReport
    verdict: Verdict
    findings: list[Finding]

    @property
    def has_error(self) -> bool:
        return any(finding.severity == "error" for finding in self.findings)


def _verdict_label(success: bool | None) -> str:
    if success is None:
        return "UNDECIDED"
    return "SUCCESS" if success else "NEEDS WORK"


def triage(report: BenchmarkReport) -> TriageResult:
    findings = triage_findings(report)
    verdict = recompute_verdict(report)
    _annotate(verdict, findings)
    return TriageResult(report=report, verdict=verdict, findings=findings)


# --- reading the report ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Reading:
    """The report with what triage derives from it: speedups, device kind, the policy's facts."""

    report: BenchmarkReport
    facts: PolicyFacts
    device_kind: str  # "cuda", "cpu" or "unknown"
    speedup_inference: float | None
    speedup_training: float | None

    @property
    def policy(self) -> str:
        policy = self.report.policy or ""
        return policy if re.fullmatch(r"[a-z0-9_]+", policy) else "act"

    def command(self, *options: str) -> str:
        """The compile-diagnose command that reruns this report's setup, with `options` first."""
        parts = ["compile-diagnose", self.policy, *options]
        if self.device_kind != "unknown":
            parts += ["--device", self.device_kind]
        if self.report.batch_size:
            parts += ["--batch-size", str(self.report.batch_size)]
        return " ".join(parts)

    def action_band(self) -> float:
        return ACTION_ROUNDING.get(self.device_kind, ACTION_ROUNDING["cuda"])

    def loss_band(self) -> float:
        return LOSS_ROUNDING.get(self.device_kind, LOSS_ROUNDING["cuda"])


def _read(report: BenchmarkReport) -> _Reading:
    device = (report.device or "").lower()
    kind = "cuda" if device.startswith("cuda") else "cpu" if device == "cpu" else "unknown"
    return _Reading(
        report=report,
        facts=KNOWN_POLICIES.get((report.policy or "").lower(), _UNKNOWN_POLICY),
        device_kind=kind,
        speedup_inference=_speedup(
            report.speedup_inference, report.time_original_inference, report.time_compiled_inference
        ),
        speedup_training=_speedup(
            report.speedup_training, report.time_original_training, report.time_compiled_training
        ),
    )


def _speedup(
    reported: float | None, original: float | None, compiled: float | None
) -> float | None:
    if reported is not None:
        return reported
    if original is not None and compiled and math.isfinite(original) and math.isfinite(compiled):
        return original / compiled
    return None


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _sci(value: float) -> str:
    if value == 0:
        return "exactly 0.0"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.2g}" if abs(value) >= 1e-3 else f"{value:.1e}"


def _compiled_failed(report: BenchmarkReport) -> bool:
    if report.compilation_successful is not None:
        return not report.compilation_successful
    return report.compilation_error is not None


def _inference_not_exercised(reading: _Reading) -> bool:
    diff = reading.report.correctness.action_diff
    return diff == 0.0 and not _compiled_failed(reading.report)


# --- conclusions ----------------------------------------------------------------------------


def triage_findings(report: BenchmarkReport) -> list[Finding]:
    """Everything the numbers support, most important first."""
    reading = _read(report)
    if _compiled_failed(report):
        return [_compilation_failed(reading)]
    checks: tuple[Callable[[_Reading], list[Finding]], ...] = (
        _not_exercised,
        _action_difference,
        _loss_difference,
        _consistency_metrics,
        _timing_near_threshold,
        _unusable_timings,
        _insufficient_speedups,
    )
    findings: list[Finding] = []
    for check in checks:
        findings.extend(check(reading))
    return rank(findings)


def _compilation_failed(reading: _Reading) -> Finding:
    error = (reading.report.compilation_error or "").strip()
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    first_line = lines[0] if lines else "no error message in the report"
    if first_line.endswith(":") and len(lines) > 1:
        # "BackendCompilerFailed: backend='inductor' raised:" says what follows matters.
        first_line = f"{first_line} {lines[1]}"
    stage = _failing_stage(error)
    where = f" The error points at {stage}." if stage else ""
    return make_finding(
        COMPILATION_FAILED,
        confidence="high",
        cause=f"torch.compile raised, so no figure of this report measures compiled code.{where}",
        evidence={"compilation_error": first_line},
        next_steps=[
            "# the same compile through dynamo alone, then with AOTAutograd\n"
            + reading.command("--backend", "eager")
            + "\n"
            + reading.command("--backend", "aot_eager"),
        ],
    )


def _failing_stage(error: str) -> str:
    lowered = error.lower()
    if "outofmemory" in lowered or "out of memory" in lowered:
        return "memory: the compile or its autotuning ran out of memory"
    if "backendcompilerfailed" in lowered or "inductor" in lowered or "triton" in lowered:
        return "the backend (Inductor's code generation)"
    if "aot" in lowered and "autograd" in lowered:
        return "AOTAutograd (the backward graph)"
    if "_dynamo" in lowered or "unsupported" in lowered:
        return "dynamo (tracing the Python code)"
    return ""


def _not_exercised(reading: _Reading) -> list[Finding]:
    if not _inference_not_exercised(reading):
        return []
    speedup = reading.speedup_inference
    near_one = _finite(speedup) and abs(speedup - 1.0) <= NEAR_ONE_X
    if speedup is None:
        timing = "The report holds no inference speedup to check this against."
    elif near_one:
        timing = f"The inference speedup, {speedup:.2f}x, is what timing eager twice gives."
    else:
        timing = (
            f"The inference speedup, {speedup:.2f}x, is not near 1.0x, so timing disagrees; "
            "a rerun tells which figure to trust."
        )
    loss = reading.report.correctness.loss_diff
    training = ""
    if _finite(loss) and loss > 0:
        training = (
            f" The training loss did differ ({_sci(loss)}): `forward`, which "
            "`torch.compile(policy)` does compile, ran compiled code."
        )
    elif loss == 0.0:
        training = (
            " The training loss matches bit for bit too: no compiled code ran anywhere, or the "
            "backend kept eager numerics."
        )
    cause = (
        f"The compiled actions match eager bit for bit (max difference exactly 0.0), which a "
        f"real backend almost never achieves on {reading.facts.network}: the inference path most "
        f"likely ran no compiled code (`torch.compile(policy)` compiles `forward` only and "
        f"`select_action` stays eager), or ran a backend that keeps eager numerics such as "
        f"`eager` or `aot_eager`. {timing}{training}"
    )
    evidence: dict[str, object] = {"max_action_diff_abs": 0.0}
    if speedup is not None:
        evidence["speedup_inference_x"] = speedup
    _add_times(evidence, reading.report, "inference")
    return [
        make_finding(
            COMPILED_PATH_NOT_EXERCISED,
            confidence="high" if near_one else "medium",
            cause=cause,
            evidence=evidence,
            next_steps=[
                "# reproduce the report: no frame captured in select_action\n"
                + reading.command("--compile-how", "wrapper"),
                "# compiled code that runs, and its real inference speedup\n"
                + reading.command("--compile-how", "methods"),
                "policy_c = copy.deepcopy(policy)\n"
                "policy_c.select_action = torch.compile(policy_c.select_action)",
            ],
        )
    ]


def _add_times(evidence: dict[str, object], report: BenchmarkReport, entry: str) -> None:
    original = getattr(report, f"time_original_{entry}")
    compiled = getattr(report, f"time_compiled_{entry}")
    if original is not None:
        evidence[f"eager_{entry}_ms"] = original
    if compiled is not None:
        evidence[f"compiled_{entry}_ms"] = compiled


def _action_difference(reading: _Reading) -> list[Finding]:
    diff = reading.report.correctness.action_diff
    threshold = reading.report.action_threshold
    if diff is None or diff == 0.0 or (math.isfinite(diff) and diff < threshold):
        return []
    if not math.isfinite(diff):
        return [_non_finite_output(reading, "actions", diff)]
    band = reading.action_band()
    if diff > FAR_BEYOND * band:
        return _far_beyond_rounding(reading, diff, band)
    return _action_within_rounding(reading, diff, band)


def _non_finite_output(reading: _Reading, what: str, diff: float) -> Finding:
    produced = "NaN" if math.isnan(diff) else "an infinite value"
    key = "max_action_diff_abs" if what == "actions" else "loss_diff_abs"
    return make_finding(
        NUMERICAL_DIVERGENCE,
        confidence="medium",
        cause=(
            f"The difference between eager and compiled {what} is {diff}: at least one side "
            f"produced {produced}. Whether compiled alone does, and from which module, needs "
            "both sides against an fp64 reference."
        ),
        evidence={key: diff},
        next_steps=[
            "# compare both sides to fp64, name the first module that adds error\n"
            + reading.command("--localize")
        ],
    )


def _far_beyond_rounding(reading: _Reading, diff: float, band: float) -> list[Finding]:
    ratio = diff / band
    device = reading.device_kind if reading.device_kind != "unknown" else "a GPU"
    speedup = reading.speedup_inference
    same_code = _finite(speedup) and abs(speedup - 1.0) <= NEAR_ONE_X
    tell_apart = (
        "# independent copies, both reset: rounding-level actions there mean the\n"
        "# report compared different states; the same difference is a miscompile\n"
        + reading.command("--compile-how", "methods")
    )
    evidence: dict[str, object] = {
        "max_action_diff_abs": diff,
        "rounding_measured_abs": band,
        "threshold_abs": reading.report.action_threshold,
    }
    if speedup is not None:
        evidence["speedup_inference_x"] = speedup
    speed = (
        f" The inference speedup, {speedup:.2f}x, is what two runs of the same eager code give,"
        " as when `torch.compile(policy)` leaves `select_action` eager and only the states differ."
        if same_code
        else " Until this is settled the inference speedup cannot be read either."
    )
    miscompile = make_finding(
        NUMERICAL_DIVERGENCE,
        confidence="low",
        cause=(
            f"The actions differ by {_sci(diff)}, {ratio:,.0f}x the largest difference measured "
            f"between correct compiled and eager ACT on {device} ({_sci(band)}): far beyond "
            "rounding, so either the compiled program computes something else (a miscompile) "
            "or the two sides were not compared in the same state (see benchmark-methodology)."
        ),
        evidence=evidence,
        next_steps=[tell_apart, reading.command("--localize") + "  # first module adding error"],
        impact_error=diff,
    )
    states = make_finding(
        BENCHMARK_METHODOLOGY,
        title="The actions may come from different states, not different programs",
        confidence="medium" if same_code else "low",
        cause=(
            f"A difference of {_sci(diff)} is what comparing different steps of an action chunk "
            "gives: with `torch.compile(policy)` eager and compiled share one action queue, and "
            "an earlier reference report measured 5.6e-2 ('SEVERE') because the compiled side "
            "popped the next action of the chunk eager had just predicted. A stale queue that "
            f"was not reset does the same.{speed}"
        ),
        evidence=evidence,
        next_steps=[tell_apart],
        impact_error=diff,
    )
    return [miscompile, states]


def _action_within_rounding(reading: _Reading, diff: float, band: float) -> list[Finding]:
    threshold = reading.report.action_threshold
    confidence = "medium" if diff <= band else "low"
    findings = [
        make_finding(
            TOLERANCE_TOO_STRICT,
            confidence=confidence,
            cause=(
                f"The actions differ by {_sci(diff)}, above the absolute {_sci(threshold)} but "
                f"within {FAR_BEYOND:.0f}x of the largest difference measured between correct "
                f"compiled and eager ACT ({_sci(band)}): rounding, most likely, not a miscompile."
            ),
            evidence={
                "max_action_diff_abs": diff,
                "threshold_abs": threshold,
                "rounding_measured_abs": band,
            },
            next_steps=["# eager and compiled against fp64\n" + reading.command()],
            impact_error=diff,
        )
    ]
    if reading.device_kind == "cuda":
        findings.append(
            make_finding(
                PRECISION_SETTING_MISMATCH,
                confidence="low",
                cause=(
                    f"On CUDA, TF32 matmuls and convolutions alone move outputs by about 1e-3 "
                    f"relative; a difference of {_sci(diff)} fits a TF32 setting that differs "
                    "between the eager and the compiled run."
                ),
                evidence={"max_action_diff_abs": diff, "device": reading.report.device},
                next_steps=['torch.set_float32_matmul_precision("highest")  # both sides'],
            )
        )
    return findings


def _loss_difference(reading: _Reading) -> list[Finding]:
    diff = reading.report.correctness.loss_diff
    threshold = reading.report.loss_threshold
    if diff is None or (math.isfinite(diff) and diff < threshold):
        return []
    if not math.isfinite(diff):
        return [_non_finite_output(reading, "training losses", diff)]
    band = reading.loss_band()
    which = (
        "Which of rng-divergence and tolerance-too-strict it is needs the divergence probe, "
        "which compares the loss as is, with fallback_random and with dropout off, each "
        "against fp64."
    )
    probe = "# divergence probe: as is, fallback_random, dropout off, vs fp64\n" + reading.command()
    evidence = {"loss_diff_abs": diff, "threshold_abs": threshold}
    findings = [_rng(reading, diff, evidence, which, probe)]
    if diff <= FAR_BEYOND * band:
        findings.append(_loss_tolerance(reading, diff, band, evidence, which, probe))
    else:
        findings.append(
            make_finding(
                NUMERICAL_DIVERGENCE,
                confidence="low",
                cause=(
                    f"A loss difference of {_sci(diff)} is over {FAR_BEYOND:.0f}x the rounding "
                    f"measured between correct programs ({_sci(band)} on a loss of order 1): "
                    "if it stays with random numbers taken out, the arithmetic differs."
                ),
                evidence={**evidence, "rounding_measured_abs": band},
                next_steps=[probe, reading.command("--localize") + "  # where, if it stays"],
                impact_error=diff,
            )
        )
    return findings


def _rng(
    reading: _Reading, diff: float, evidence: dict[str, object], which: str, probe: str
) -> Finding:
    randomness = reading.facts.training_randomness
    if randomness:
        drawn = f"{reading.policy} draws random numbers in its training forward ({randomness})"
    else:
        drawn = "a training forward with dropout or sampling draws random numbers"
    return make_finding(
        RNG_DIVERGENCE,
        confidence="medium" if randomness else "low",
        cause=(
            f"The training losses differ by {_sci(diff)}, yet that is no evidence of a "
            f"miscompile: {drawn}, and default Inductor generates its own, so the same seed "
            "gives eager and compiled different masks (ACT's loss differed by 1.75e-3 as is, "
            f"1.2e-7 with fallback_random). {which}"
        ),
        evidence=evidence,
        next_steps=[
            probe,
            "import torch._inductor.config as inductor_config\n"
            "inductor_config.fallback_random = True  # before compiling; to compare only",
        ],
        impact_error=diff,
    )


def _loss_tolerance(
    reading: _Reading,
    diff: float,
    band: float,
    evidence: dict[str, object],
    which: str,
    probe: str,
) -> Finding:
    threshold = reading.report.loss_threshold
    device = {"cuda": "a GPU", "cpu": "a CPU"}.get(
        reading.device_kind, "a GPU (the report names no device)"
    )
    confidence = "medium" if diff <= band else "low"
    if reading.device_kind == "unknown":
        confidence = "low"
    return make_finding(
        TOLERANCE_TOO_STRICT,
        confidence=confidence,
        cause=(
            f"An absolute {_sci(threshold)} on a training loss of order 1 is about a hundred "
            f"fp32 units in the last place, below the rounding between two correct programs on "
            f"{device} (ACT's loss moved by {_sci(band)} relative with random numbers taken "
            f"out); {_sci(diff)} is within {FAR_BEYOND:.0f}x of that. {which}"
        ),
        evidence={**evidence, "rounding_measured_rel": band},
        next_steps=[
            probe,
            "# a criterion with a reason: both sides against an fp64 reference\n"
            "assert err_compiled <= 3 * err_eager + 1e-7",
        ],
        impact_error=diff,
    )


def _consistency_metrics(reading: _Reading) -> list[Finding]:
    report = reading.report
    loss, grad = report.loss_consistency, report.grad_norm_consistency
    if loss is None and grad is None:
        return []
    evidence: dict[str, object] = {}
    if loss is not None:
        evidence["loss_consistency_abs"] = loss
    if grad is not None:
        evidence["grad_norm_consistency_abs"] = grad
    drift = ""
    first = report.correctness.loss_diff
    if _finite(loss) and _finite(first) and first > 0 and loss > 2 * first:
        evidence["loss_consistency_vs_first_step_x"] = loss / first
        drift = (
            f" The mean loss difference, {_sci(loss)}, is {loss / first:.0f}x the first step's "
            f"({_sci(first)}): the two runs drift apart as their states do."
        )
    runs = f"{report.training_runs} training steps" if report.training_runs else "training"
    return [
        make_finding(
            BENCHMARK_METHODOLOGY,
            title="The consistency metrics compare two different training runs",
            confidence="high",
            cause=(
                f"The loss and grad-norm consistency are mean differences between eager's {runs} "
                "and a compiled run that, sharing the same policy object, went on training the "
                "weights eager had already trained, with other random numbers: they measure "
                f"two training states, not compile error.{drift}"
            ),
            evidence=evidence,
            next_steps=[
                "# step i of eager against step i of compiled, from the same weights\n"
                + reading.command()
            ],
        )
    ]


def _inference_comparable(reading: _Reading) -> bool:
    """Whether the inference row can compare compiled code with eager in the same state: not
    when the actions match bit for bit (CD101), nor when they differ far beyond rounding."""
    diff = reading.report.correctness.action_diff
    if diff is None:
        return True
    return diff != 0.0 and math.isfinite(diff) and diff <= FAR_BEYOND * reading.action_band()


def _rows_compiled(reading: _Reading) -> list[tuple[str, float | None]]:
    """The speedup rows that can be read as compiled against eager."""
    rows: list[tuple[str, float | None]] = [("training", reading.speedup_training)]
    if _inference_comparable(reading):
        rows.insert(0, ("inference", reading.speedup_inference))
    return rows


def _timing_near_threshold(reading: _Reading) -> list[Finding]:
    findings = []
    margin = SEQUENTIAL_TIMING_NOISE * SPEEDUP_THRESHOLD
    for entry, speedup in _rows_compiled(reading):
        if not _finite(speedup) or abs(speedup - SPEEDUP_THRESHOLD) > margin:
            continue
        side = "passes" if speedup > SPEEDUP_THRESHOLD else "fails"
        evidence: dict[str, object] = {f"speedup_{entry}_x": speedup}
        _add_times(evidence, reading.report, entry)
        findings.append(
            make_finding(
                BENCHMARK_METHODOLOGY,
                title=f"The {entry} speedup is within timing noise of the 1.1x bar",
                confidence="medium",
                cause=(
                    f"The {entry} speedup, {speedup:.2f}x, {side} the 1.1x bar by less than "
                    f"{SEQUENTIAL_TIMING_NOISE:.0%}; the reference script timed eager in full, "
                    "then compiled, and quoted a mean without a spread, so a rerun can land on "
                    "the other side."
                ),
                evidence=evidence,
                next_steps=["# interleaved timing, median and IQR\n" + reading.command()],
            )
        )
    return findings


def _unusable_timings(reading: _Reading) -> list[Finding]:
    report = reading.report
    bad = {}
    for key in (
        "time_original_inference",
        "time_compiled_inference",
        "time_original_training",
        "time_compiled_training",
    ):
        value = getattr(report, key)
        if value is not None and (not math.isfinite(value) or value <= 0):
            bad[f"{key}_ms"] = value
    for key, value in (
        ("speedup_inference_x", reading.speedup_inference),
        ("speedup_training_x", reading.speedup_training),
    ):
        if value is not None and (not math.isfinite(value) or value <= 0):
            bad[key] = value
    if not bad:
        return []
    return [
        make_finding(
            BENCHMARK_METHODOLOGY,
            title="A timing cannot be a measured call",
            confidence="high",
            cause=(
                "A time per call or a speedup that is NaN, infinite, zero or negative is not a "
                "measurement: a run that failed or was never timed was reported as a number."
            ),
            evidence=bad,
            next_steps=["# timing with warm-up, synchronisation and spread\n" + reading.command()],
        )
    ]


def _insufficient_speedups(reading: _Reading) -> list[Finding]:
    findings: list[Finding] = []
    for entry, speedup in _rows_compiled(reading):
        if not _finite(speedup) or speedup <= 0 or speedup > SPEEDUP_THRESHOLD:
            continue
        findings.append(_insufficient(reading, entry, speedup))
        findings.extend(_slow_hypotheses(reading, entry, speedup))
    return findings


def _insufficient(reading: _Reading, entry: str, speedup: float) -> Finding:
    report = reading.report
    diff = report.correctness.action_diff if entry == "inference" else report.correctness.loss_diff
    if _finite(diff) and diff > 0 and (entry == "training" or _inference_comparable(reading)):
        ran, confidence = f"its output differs from eager's by {_sci(diff)}, so it ran", "high"
    else:
        ran, confidence = "the report cannot show it ran", "medium"
    slower = "slower than" if speedup < 1.0 else "not 1.1x faster than"
    evidence: dict[str, object] = {f"speedup_{entry}_x": speedup}
    _add_times(evidence, report, entry)
    extra = _extra_ms(report, entry)
    return make_finding(
        INSUFFICIENT_SPEEDUP,
        title=f"Compiled {entry} is {slower} eager",
        confidence=confidence,
        cause=(
            f"Compiled {entry} code ({ran}) gave {speedup:.2f}x, not above 1.1x. The figures "
            "alone do not say why: graph breaks, recompiles, a launch-bound GPU or eager work "
            "outside the compiled region each can; the probes tell them apart."
        ),
        evidence=evidence,
        next_steps=["# breaks, recompiles, kernel timing, what-if runs\n" + reading.command()],
        impact_ms=extra if extra and extra > 0 else None,
    )


def _extra_ms(report: BenchmarkReport, entry: str) -> float | None:
    original = getattr(report, f"time_original_{entry}")
    compiled = getattr(report, f"time_compiled_{entry}")
    if _finite(original) and _finite(compiled):
        return compiled - original
    return None


def _slow_hypotheses(reading: _Reading, entry: str, speedup: float) -> list[Finding]:
    findings = []
    recompile = _recompile_in_timing(reading, entry, speedup)
    if recompile is not None:
        findings.append(recompile)
    if entry == "inference" and reading.device_kind == "cuda":
        findings.append(
            make_finding(
                LAUNCH_BOUND,
                confidence="medium" if reading.policy == "act" else "low",
                cause=(
                    f"On an H100, ACT inference launched ~400 kernels a call with the GPU busy "
                    f"about a quarter of it: default-mode compile gave 1.06x, reduce-overhead "
                    f"(CUDA graphs) 2.79x. A {speedup:.2f}x on CUDA fits that pattern."
                ),
                evidence={"speedup_inference_x": speedup, "device": reading.report.device},
                next_steps=[
                    "# GPU busy fraction, kernel count, reduce-overhead what-if\n"
                    + reading.command()
                ],
            )
        )
    if entry == "training":
        findings.append(
            make_finding(
                EAGER_WORK_OUTSIDE_COMPILED_REGION,
                confidence="medium",
                cause=(
                    "The reference script compiles the policy's forward; its optimizer step runs "
                    "eager, a few small kernels per parameter tensor, and caps the speedup of "
                    f"the whole step ({speedup:.2f}x here; ACT on an H100 gained 1.10-1.18x)."
                ),
                evidence={"speedup_training_x": speedup},
                next_steps=[
                    "# time inside and outside compiled regions\n" + reading.command(),
                    "optimizer.step = torch.compile(optimizer.step)",
                ],
            )
        )
    return findings


def _recompile_in_timing(reading: _Reading, entry: str, speedup: float) -> Finding | None:
    extra = _extra_ms(reading.report, entry)
    runs = getattr(reading.report, f"{entry}_runs")
    if speedup >= 1.0 or extra is None or extra <= 0:
        return None
    evidence: dict[str, object] = {f"speedup_{entry}_x": speedup, "extra_per_call_ms": extra}
    if runs:
        total_s = extra * runs / 1000
        if total_s < RECOMPILE_SCALE_S:
            return None
        evidence[f"{entry}_runs"] = runs
        evidence["extra_in_all_s"] = total_s
        amount = f"{total_s:.1f} s over {runs} timed calls"
    elif speedup >= 0.5:
        return None
    else:
        amount = f"{extra:.1f} ms a call"
    return make_finding(
        RECOMPILATION,
        confidence="medium" if speedup < 0.5 else "low",
        cause=(
            f"Compiled {entry} took {amount} more than eager: as much as a compile costs "
            "(seconds with a warm cache), more than slower kernels would. A recompile inside "
            "the timed loop, on a guard such as a changing shape or a filled action queue, "
            "would do it."
        ),
        evidence=evidence,
        next_steps=[
            "# calls the entry point as users do, lists each recompile\n" + reading.command()
        ],
        impact_ms=extra,
    )


# --- the verdict ----------------------------------------------------------------------------


def recompute_verdict(report: BenchmarkReport) -> Verdict:
    """The reference criteria from the numbers: compiled, both diffs under threshold, both
    speedups above 1.1x."""
    reading = _read(report)
    correctness = report.correctness
    compiled: bool | None = not _compiled_failed(report)
    if report.compilation_successful is None and report.compilation_error is None:
        compiled = None
    criteria = [
        Criterion("compilation", compiled, "", "succeeds", compiled, report.compilation_successful),
        _below(
            "max action diff",
            correctness.action_diff,
            report.action_threshold,
            correctness.inference_correct,
        ),
        _below(
            "training loss diff",
            correctness.loss_diff,
            report.loss_threshold,
            correctness.training_correct,
        ),
        _above("inference speedup", reading.speedup_inference),
        _above("training speedup", reading.speedup_training),
    ]
    verdict = Verdict(
        criteria=criteria,
        success=_all_passed([criterion.passed for criterion in criteria]),
        reported_success=report.success,
    )
    verdict.disagreements = _disagreements(verdict)
    return verdict


def _below(name: str, value: float | None, threshold: float, reported: bool | None) -> Criterion:
    passed = None if value is None else bool(value < threshold)  # NaN fails
    return Criterion(name, value, "abs", f"< {threshold:.0e} abs", passed, reported)


def _above(name: str, value: float | None) -> Criterion:
    passed = None if value is None else bool(value > SPEEDUP_THRESHOLD)
    return Criterion(name, value, "x", f"> {SPEEDUP_THRESHOLD}x", passed, None)


def _all_passed(results: list[bool | None]) -> bool | None:
    if any(result is False for result in results):
        return False
    if any(result is None for result in results):
        return None
    return True


def _disagreements(verdict: Verdict) -> list[str]:
    lines = [
        f"{criterion.name}: the report says {'passed' if criterion.reported else 'failed'}, "
        f"its numbers say {'passed' if criterion.passed else 'failed'}"
        for criterion in verdict.criteria
        if criterion.reported is not None
        and criterion.passed is not None
        and criterion.reported != criterion.passed
    ]
    if (
        verdict.reported_success is not None
        and verdict.success is not None
        and verdict.reported_success != verdict.success
    ):
        lines.append(
            f"overall: the report says {verdict.reported_label}, its numbers say {verdict.label}"
        )
    return lines


# Evidence keys that tie a finding to the criterion whose figure it explains.
_CRITERION_OF_EVIDENCE = {
    "max_action_diff_abs": "max action diff",
    "loss_diff_abs": "training loss diff",
    "speedup_inference_x": "inference speedup",
    "speedup_training_x": "training speedup",
}


def _annotate(verdict: Verdict, findings: list[Finding]) -> None:
    """Name, beside each criterion, the findings that explain its figure."""
    for criterion in verdict.criteria:
        codes = [
            finding.code
            for finding in findings
            if criterion.name in {_CRITERION_OF_EVIDENCE.get(key) for key in finding.evidence}
        ]
        criterion.note = ", ".join(dict.fromkeys(codes))
