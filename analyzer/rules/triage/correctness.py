"""Checks on the report's correctness figures: the max action difference, the training-loss
difference, and the consistency metrics of its training runs.

Each difference is read against the rounding measured between correct compiled and eager
programs on the report's device (`reading.ACTION_ROUNDING`, `LOSS_ROUNDING`): within
`FAR_BEYOND` times that band a failed threshold is the threshold's fault; far beyond it, either
the program or the comparison is, unless TF32 explains it: a float32 CUDA run with TF32 on and a
difference of TF32's size (`reading.TF32_SIZED`), with no random numbers drawn for the loss. One
precision finding then explains every such difference, ranked before the others.
"""

from __future__ import annotations

import math

from analyzer.findings import Finding, make_finding
from analyzer.format import sci, times
from analyzer.rules.benchmark import BENCHMARK_METHODOLOGY
from analyzer.rules.divergence import (
    NUMERICAL_DIVERGENCE,
    PRECISION_SETTING_MISMATCH,
    RNG_DIVERGENCE,
    STEP_FALLBACK_RANDOM,
    TOLERANCE_TOO_STRICT,
)
from analyzer.rules.triage.reading import (
    FAR_BEYOND,
    TF32_SIZED,
    TF32_STEP,
    Reading,
    finite,
    near_one,
)

_WITHIN = times(FAR_BEYOND, digits=0)  # "10x", as the cause sentences say it
ACTION_DIFF_KEY = "max_action_diff_abs"
LOSS_DIFF_KEY = "loss_diff_abs"


def check(reading: Reading) -> list[Finding]:
    explained = _tf32_sized(reading)
    return [
        *_tf32_precision(reading, explained),
        *_action_difference(reading, tf32_explains=ACTION_DIFF_KEY in explained),
        *_loss_difference(reading, tf32_explains=LOSS_DIFF_KEY in explained),
        *_consistency_metrics(reading),
    ]


def _failed(diff: float | None, threshold: float) -> bool:
    """A difference that fails its threshold: 0.0 is no difference, and NaN fails."""
    return diff is not None and diff != 0.0 and not (math.isfinite(diff) and diff < threshold)


# --- what TF32 explains ----------------------------------------------------------------------


def _tf32_sized(reading: Reading) -> dict[str, float]:
    """The failed differences TF32 alone explains, by evidence key: the actions' (eval mode
    draws no dropout), and the loss's when the training forward draws no random numbers."""
    report = reading.report
    figures = (
        (ACTION_DIFF_KEY, report.correctness.action_diff, report.action_threshold, True),
        (
            LOSS_DIFF_KEY,
            report.correctness.loss_diff,
            report.loss_threshold,
            not reading.training_draws_random_numbers,
        ),
    )
    return {
        key: diff
        for key, diff, threshold, without_random_numbers in figures
        if diff is not None
        and without_random_numbers
        and _failed(diff, threshold)
        and reading.why_not_tf32(diff) is None
    }


_FIGURE = {ACTION_DIFF_KEY: "the actions", LOSS_DIFF_KEY: "the training losses"}
_CUDNN_TF32 = "cuDNN TF32 (`torch.backends.cudnn.allow_tf32`)"
_MATMUL_TF32 = (
    "matmul TF32 (`torch.backends.cuda.matmul.allow_tf32` / `torch.set_float32_matmul_precision`)"
)
TF32_OFF_RUN = (
    "# the same benchmark with TF32 off on both sides (the script: --disable-cudnn-tf32\n"
    "# --matmul-precision highest): differences at fp32 rounding there confirm TF32,\n"
    "# ones that stay are numerical-divergence\n"
    "torch.backends.cudnn.allow_tf32 = False\n"
    "torch.backends.cuda.matmul.allow_tf32 = False"
)


def _tf32_precision(reading: Reading, explained: dict[str, float]) -> list[Finding]:
    if not explained:
        return []
    numerics = reading.numerics
    where = "On CUDA" if reading.device_kind == "cuda" else "On a GPU (assumed)"
    if reading.report.settings.device_name:
        where += f" ({reading.report.settings.device_name})"
    differences = " and ".join(
        f"{_FIGURE[key]} differ by {sci(diff)}" for key, diff in explained.items()
    )
    randomness = (
        f" With dropout off, {reading.policy}'s training forward draws no random numbers, so "
        "none explain the loss difference."
        if LOSS_DIFF_KEY in explained
        else ""
    )
    evidence: dict[str, object] = {
        **explained,
        "tf32_sized_up_to_abs": TF32_SIZED,
        "device": reading.report.device,
        "dtype": numerics.dtype,
        "cudnn_allow_tf32": numerics.cudnn_tf32,
        "cuda_matmul_allow_tf32": numerics.matmul_tf32,
        "dropout_disabled": numerics.dropout_disabled,
    }
    if reading.report.settings.device_name:
        evidence["device_name"] = reading.report.settings.device_name
    if numerics.assumed:
        evidence["assumed"] = list(numerics.assumed)
    return [
        make_finding(
            PRECISION_SETTING_MISMATCH,
            title="TF32 explains differences of this size",
            confidence="medium" if reading.device_kind == "cuda" else "low",
            cause=(
                f"{where} in {numerics.dtype}, {differences}: no more than {_WITHIN} one TF32 "
                f"rounding step ({sci(TF32_STEP)} relative, on outputs of order 1), the size "
                "TF32 convolutions and matmuls give when eager and compiled run different "
                "kernels, so precision, not a miscompile, most likely explains "
                f"{'them' if len(explained) > 1 else 'it'}. {_tf32_settings(reading)}{randomness}"
            ),
            evidence=evidence,
            next_steps=[
                TF32_OFF_RUN,
                reading.command() + "  # its tf32-off and tf32-on scenarios measure it",
            ],
            impact_error=max(explained.values()),
        )
    ]


def _tf32_settings(reading: Reading) -> str:
    """Which TF32 settings the report states, and what is assumed of the others."""
    settings, numerics = reading.report.settings, reading.numerics
    named = (
        (_CUDNN_TF32, numerics.cudnn_tf32, settings.cudnn_allow_tf32 is not None),
        (_MATMUL_TF32, numerics.matmul_tf32, settings.matmul_precision is not None),
    )
    stated = [f"{name} {_on_off(on)}" for name, on, given in named if given]
    unstated = [(name, _on_off(on)) for name, on, given in named if not given]
    parts = [f"has {' and '.join(stated)}"] if stated else []
    if unstated:
        names = " or ".join(name for name, _ in unstated)
        values = " and ".join(value for _, value in unstated)
        defaults = "PyTorch's defaults" if len(unstated) > 1 else "PyTorch's default"
        parts.append(f"does not state {names}: assumed {values}, as {defaults}")
    return f"The report {' and '.join(parts)}."


def _on_off(on: bool) -> str:
    return "on" if on else "off"


# --- the max action difference ---------------------------------------------------------------


def _action_difference(reading: Reading, tf32_explains: bool) -> list[Finding]:
    diff = reading.report.correctness.action_diff
    # An exact 0.0 is the compiled path not exercised (compilation.py), not a correct compile.
    if diff is None or not _failed(diff, reading.report.action_threshold):
        return []
    if not math.isfinite(diff):
        return [_non_finite_output(reading, "actions", diff)]
    band = reading.action_band()
    if diff <= FAR_BEYOND * band:
        return [_action_within_rounding(reading, diff, band)]
    if tf32_explains:
        return []  # the precision finding explains it
    return _far_beyond_rounding(reading, diff, band)


def _non_finite_output(reading: Reading, what: str, diff: float) -> Finding:
    produced = "NaN" if math.isnan(diff) else "an infinite value"
    key = ACTION_DIFF_KEY if what == "actions" else LOSS_DIFF_KEY
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


def _far_beyond_rounding(reading: Reading, diff: float, band: float) -> list[Finding]:
    """A miscompile, or two sides compared in different states: both offered, with the
    command that tells them apart."""
    device = reading.device_kind if reading.device_kind != "unknown" else "a GPU"
    speedup = reading.speedup_inference
    same_code = near_one(speedup)
    tell_apart = (
        "# independent copies, both reset: rounding-level actions there mean the\n"
        "# report compared different states; the same difference is a miscompile\n"
        + reading.command("--compile-how", "methods")
    )
    evidence: dict[str, object] = {
        ACTION_DIFF_KEY: diff,
        "rounding_measured_abs": band,
        "threshold_abs": reading.report.action_threshold,
    }
    if speedup is not None:
        evidence["speedup_inference_x"] = speedup
    not_tf32 = _not_tf32(reading, diff, evidence)
    speed = (
        f" The inference speedup, {times(speedup)}, is what two runs of the same eager code "
        "give, as when `torch.compile(policy)` leaves `select_action` eager and only the states "
        "differ."
        if same_code
        else " Until this is settled the inference speedup cannot be read either."
    )
    miscompile = make_finding(
        NUMERICAL_DIVERGENCE,
        confidence="low",
        cause=(
            f"The actions differ by {sci(diff)}, {times(diff / band, digits=0)} the largest "
            f"difference measured between correct compiled and eager ACT on {device} "
            f"({sci(band)}): far beyond rounding, so either the compiled program computes "
            "something else (a miscompile) or the two sides were not compared in the same state "
            f"(see benchmark-methodology).{not_tf32}"
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
            f"A difference of {sci(diff)} is what comparing different steps of an action chunk "
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


def _not_tf32(reading: Reading, diff: float, evidence: dict[str, object]) -> str:
    """Why TF32 cannot explain `diff`, as a sentence, noted in `evidence`; "" off CUDA, where
    nobody would suspect it."""
    reason = reading.why_not_tf32(diff)
    if reason is None or reading.device_kind == "cpu":
        return ""
    evidence["tf32_cannot_explain"] = reason
    if reading.numerics.assumed:
        evidence["assumed"] = list(reading.numerics.assumed)
    return f" TF32 cannot explain it: {reason}."


def _action_within_rounding(reading: Reading, diff: float, band: float) -> Finding:
    threshold = reading.report.action_threshold
    return make_finding(
        TOLERANCE_TOO_STRICT,
        confidence="medium" if diff <= band else "low",
        cause=(
            f"The actions differ by {sci(diff)}, above the absolute {sci(threshold)} but "
            f"within {_WITHIN} of the largest difference measured between correct compiled "
            f"and eager ACT ({sci(band)}): rounding, most likely, not a miscompile."
        ),
        evidence={
            ACTION_DIFF_KEY: diff,
            "threshold_abs": threshold,
            "rounding_measured_abs": band,
        },
        next_steps=["# eager and compiled against fp64\n" + reading.command()],
        impact_error=diff,
    )


# --- the training-loss difference ------------------------------------------------------------

# Which of random numbers and the tolerance explains a loss difference only the divergence
# probe can tell; both findings say so and name it.
_WHICH = (
    "Which of rng-divergence and tolerance-too-strict it is needs the divergence probe, "
    "which compares the loss as is, with fallback_random and with dropout off, each "
    "against fp64."
)


def _which(reading: Reading) -> str:
    if reading.training_draws_random_numbers:
        return _WHICH
    return (
        "With dropout off no random numbers explain it; the divergence probe compares it "
        "against fp64."
    )


def _loss_difference(reading: Reading, tf32_explains: bool) -> list[Finding]:
    diff = reading.report.correctness.loss_diff
    threshold = reading.report.loss_threshold
    if diff is None or not _failed(diff, threshold) or tf32_explains:
        return []
    if not math.isfinite(diff):
        return [_non_finite_output(reading, "training losses", diff)]
    band = reading.loss_band()
    probe = "# divergence probe: as is, fallback_random, dropout off, vs fp64\n" + reading.command()
    evidence: dict[str, object] = {LOSS_DIFF_KEY: diff, "threshold_abs": threshold}
    random = reading.training_draws_random_numbers
    findings = [_rng(reading, diff, evidence, probe)] if random else []
    if diff <= FAR_BEYOND * band:
        findings.append(_loss_tolerance(reading, diff, band, evidence, probe))
    else:
        findings.append(_loss_divergence(reading, diff, band, evidence, probe))
    return findings


def _loss_divergence(
    reading: Reading, diff: float, band: float, evidence: dict[str, object], probe: str
) -> Finding:
    evidence = {**evidence, "rounding_measured_abs": band}
    if reading.training_draws_random_numbers:
        stays = "if it stays with random numbers taken out, the arithmetic differs."
    else:
        stays = "with dropout off no random numbers explain it, so the arithmetic differs."
    return make_finding(
        NUMERICAL_DIVERGENCE,
        confidence="low" if reading.training_draws_random_numbers else "medium",
        cause=(
            f"A loss difference of {sci(diff)} is over {_WITHIN} the rounding measured "
            f"between correct programs ({sci(band)} on a loss of order 1): {stays}"
            f"{_not_tf32(reading, diff, evidence)}"
        ),
        evidence=evidence,
        next_steps=[probe, reading.command("--localize") + "  # where, if it stays"],
        impact_error=diff,
    )


def _rng(reading: Reading, diff: float, evidence: dict[str, object], probe: str) -> Finding:
    randomness = reading.facts.training_randomness
    if randomness:
        drawn = f"{reading.policy} draws random numbers in its training forward ({randomness})"
    else:
        drawn = "a training forward with dropout or sampling draws random numbers"
    return make_finding(
        RNG_DIVERGENCE,
        confidence="medium" if randomness else "low",
        cause=(
            f"The training losses differ by {sci(diff)}, yet that is no evidence of a "
            f"miscompile: {drawn}, and default Inductor generates its own, so the same seed "
            "gives eager and compiled different masks (ACT's loss differed by 1.75e-3 as is, "
            f"1.2e-7 with fallback_random). {_WHICH}"
        ),
        evidence=evidence,
        next_steps=[probe, STEP_FALLBACK_RANDOM],
        impact_error=diff,
    )


def _loss_tolerance(
    reading: Reading, diff: float, band: float, evidence: dict[str, object], probe: str
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
            f"An absolute {sci(threshold)} on a training loss of order 1 is about a hundred "
            f"fp32 units in the last place, below the rounding between two correct programs on "
            f"{device} (ACT's loss moved by {sci(band)} relative with random numbers taken "
            f"out); {sci(diff)} is within {_WITHIN} of that. {_which(reading)}"
        ),
        evidence={**evidence, "rounding_measured_rel": band},
        next_steps=[
            probe,
            "# a criterion with a reason: both sides against an fp64 reference\n"
            "assert err_compiled <= 3 * err_eager + 1e-7",
        ],
        impact_error=diff,
    )


# --- the consistency metrics -----------------------------------------------------------------


def _consistency_metrics(reading: Reading) -> list[Finding]:
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
    # A mean difference well above the first step's is two runs drifting apart, step by step.
    if finite(loss) and finite(first) and first > 0 and loss > 2 * first:
        evidence["loss_consistency_vs_first_step_x"] = loss / first
        drift = (
            f" The mean loss difference, {sci(loss)}, is {times(loss / first, digits=0)} the "
            f"first step's ({sci(first)}): the two runs drift apart as their states do."
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
