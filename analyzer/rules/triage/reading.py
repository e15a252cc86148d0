"""What triage derives from a report's numbers before any check reads them.

A `Reading` is the report with the device kind, the two speedups (stated or computed from the
times), what is known of the policy, the numeric settings that decide whether TF32 can explain a
difference (stated by the report, else assumed and said so), and the `compile-diagnose` command
line that reruns the report's setup. The constants below carry the differences we measured
between correct compiled and eager programs (`../shared/DESIGN.md`, "How the reference report
was made") and the size of TF32's rounding: a figure is read against them, not against the
report's own threshold alone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from analyzer.format import sci
from analyzer.reference_report import BenchmarkReport
from probes.records.names import INFERENCE

# A ratio within this of 1.0x is what timing eager against itself gives (the reference report's
# inference row, eager against eager, read 1.04x).
NEAR_ONE_X = 0.1
# Largest max-action difference measured between correct compiled and eager ACT, by device:
# CPU 1.7e-6 (`policy.model.compile()`), H100 8.6e-5 (TF32 defaults).
ACTION_ROUNDING = {"cpu": 1.7e-6, "cuda": 8.6e-5}
# Training-loss difference with random numbers taken out (fallback_random), relative to the loss:
# CPU 1.2e-7 on 0.90, H100 0.035 on 95. The reports hold no loss value; ACT's L1 loss is of
# order 1 (0.90 at random weights), so these serve as absolute bands.
LOSS_ROUNDING = {"cpu": 1.3e-7, "cuda": 3.7e-4}
FAR_BEYOND = 10.0  # this many times the rounding band is not rounding
# TF32 rounds the inputs of float32 matmuls and convolutions to 10 mantissa bits: one step is
# 2**-10 = 9.8e-4 relative, the "about 1e-3 relative" of precision-setting-mismatch. On outputs of
# order 1 (ACT's normalised actions; its L1 loss, 0.90 at random weights) a difference within
# FAR_BEYOND steps is TF32-sized: LeRobot's December 2025 script on an RTX 4090 with cuDNN TF32
# allowed reported 1.95e-3 on the actions and 1.11e-4 on the loss, 2e-6 and 0 with it disabled.
# The different-states difference of an earlier reference report, 5.6e-2, is beyond it.
TF32_STEP = 2.0**-10
TF32_SIZED = FAR_BEYOND * TF32_STEP
# PyTorch's defaults, assumed where a report states no setting (the script casts nothing).
DEFAULT_DTYPE = "float32"
DEFAULT_CUDNN_TF32 = True  # torch.backends.cudnn.allow_tf32
DEFAULT_MATMUL_PRECISION = "highest"  # torch.get_float32_matmul_precision(): matmul TF32 off
TF32_MATMUL_PRECISIONS = ("high", "medium")  # the precisions that let matmuls use TF32


@dataclass(frozen=True)
class PolicyFacts:
    network: str  # what a compiler has to reproduce
    training_randomness: str  # random numbers drawn in a training forward; "" if none known
    dropout_only: bool = False  # those random numbers are dropout's alone (--disable-dropout)


KNOWN_POLICIES: dict[str, PolicyFacts] = {
    # The script builds ACT with use_vae=False: no latent is sampled.
    "act": PolicyFacts(
        "a ResNet backbone and a transformer",
        "dropout 0.1 in its transformer layers",
        dropout_only=True,
    ),
    "diffusion": PolicyFacts(
        "a ResNet backbone and a convolutional U-Net", "noise and timesteps for every sample"
    ),
    "vqbet": PolicyFacts(
        "a ResNet backbone and a GPT", "dropout 0.1 in its GPT", dropout_only=True
    ),
    "tdmpc": PolicyFacts(
        "convolutional and MLP encoders with Q-ensembles", "random shifts and ensemble draws"
    ),
}
UNKNOWN_POLICY = PolicyFacts("a neural-network policy", "")


@dataclass(frozen=True)
class Numerics:
    """The settings that decide whether TF32 can explain a difference: the report's where it
    states them, else assumed, each assumption in `assumed` in words."""

    dtype: str
    dropout_disabled: bool
    cudnn_tf32: bool
    matmul_tf32: bool
    assumed: tuple[str, ...]

    @property
    def tf32_on(self) -> bool:
        return self.cudnn_tf32 or self.matmul_tf32


def finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def near_one(speedup: float | None) -> bool:
    """A ratio that timing the same code twice gives."""
    return finite(speedup) and abs(speedup - 1.0) <= NEAR_ONE_X


@dataclass(frozen=True)
class Reading:
    """The report with what triage derives from it: speedups, device kind, the policy's facts."""

    report: BenchmarkReport
    facts: PolicyFacts
    device_kind: str  # "cuda", "cpu" or "unknown"
    speedup_inference: float | None
    speedup_training: float | None
    numerics: Numerics

    @property
    def policy(self) -> str:
        """The policy's name as a command argument; a name that is not one reads as ACT's."""
        policy = self.report.policy or ""
        return policy if re.fullmatch(r"[a-z0-9_]+", policy) else "act"

    @property
    def compilation_failed(self) -> bool:
        """A failed compile, stated, or implied by an error where the report states nothing."""
        if self.report.compilation_successful is not None:
            return not self.report.compilation_successful
        return self.report.compilation_error is not None

    def command(self, *options: str) -> str:
        """The compile-diagnose command that reruns this report's setup, with `options` first."""
        parts = ["compile-diagnose", self.policy, *options]
        if self.device_kind != "unknown":
            parts += ["--device", self.device_kind]
        if self.report.batch_size:
            parts += ["--batch-size", str(self.report.batch_size)]
        return " ".join(parts)

    def action_band(self) -> float:
        """The rounding measured on actions on this device (a GPU's when it is unknown)."""
        return ACTION_ROUNDING.get(self.device_kind, ACTION_ROUNDING["cuda"])

    def loss_band(self) -> float:
        """The rounding measured on the training loss on this device (a GPU's when unknown)."""
        return LOSS_ROUNDING.get(self.device_kind, LOSS_ROUNDING["cuda"])

    def inference_not_exercised(self) -> bool:
        """Compiled actions equal to eager's bit for bit, from a compile that succeeded."""
        return self.report.correctness.action_diff == 0.0 and not self.compilation_failed

    def inference_comparable(self) -> bool:
        """Whether the inference row can compare compiled code with eager in the same state: not
        when the actions match bit for bit (CD101), nor when they differ far beyond rounding and
        beyond what TF32 explains."""
        diff = self.report.correctness.action_diff
        if diff is None:
            return True
        within = finite(diff) and diff <= FAR_BEYOND * self.action_band()
        return diff != 0.0 and (within or self.why_not_tf32(diff) is None)

    @property
    def training_draws_random_numbers(self) -> bool:
        """Whether a training forward may draw random numbers: not with dropout off on a policy
        whose only random numbers are dropout's."""
        return not (self.numerics.dropout_disabled and self.facts.dropout_only)

    def why_not_tf32(self, diff: float | None) -> str | None:
        """Why TF32 cannot explain a difference of `diff`, in words; None when it can."""
        numerics = self.numerics
        if self.device_kind == "cpu":
            return "TF32 applies to CUDA matmuls and convolutions only, and the report ran on a CPU"
        if numerics.dtype != DEFAULT_DTYPE:
            return f"TF32 applies to float32 only, and the report ran in {numerics.dtype}"
        if not numerics.tf32_on:
            return "TF32 was off for cuDNN and matmuls alike"
        if not finite(diff) or diff <= 0 or diff > TF32_SIZED:
            return f"{sci(diff)} is beyond TF32's rounding ({sci(TF32_SIZED)} at most)"
        return None

    def times_ms(self, entry: str) -> tuple[float | None, float | None]:
        """Eager's and compiled's time per call of `entry`, in milliseconds, as reported."""
        report = self.report
        if entry == INFERENCE:
            return report.time_original_inference, report.time_compiled_inference
        return report.time_original_training, report.time_compiled_training

    def extra_ms(self, entry: str) -> float | None:
        """How much longer a compiled call of `entry` took than an eager one."""
        original, compiled = self.times_ms(entry)
        if finite(original) and finite(compiled):
            return compiled - original
        return None

    def timing_evidence(self, entry: str) -> dict[str, object]:
        """The reported times of `entry`, as evidence keys with their unit."""
        original, compiled = self.times_ms(entry)
        evidence: dict[str, object] = {}
        if original is not None:
            evidence[f"eager_{entry}_ms"] = original
        if compiled is not None:
            evidence[f"compiled_{entry}_ms"] = compiled
        return evidence


def read(report: BenchmarkReport) -> Reading:
    device = (report.device or "").lower()
    kind = "cuda" if device.startswith("cuda") else "cpu" if device == "cpu" else "unknown"
    return Reading(
        report=report,
        facts=KNOWN_POLICIES.get((report.policy or "").lower(), UNKNOWN_POLICY),
        device_kind=kind,
        speedup_inference=_speedup(
            report.speedup_inference, report.time_original_inference, report.time_compiled_inference
        ),
        speedup_training=_speedup(
            report.speedup_training, report.time_original_training, report.time_compiled_training
        ),
        numerics=_numerics(report, kind),
    )


def _speedup(
    reported: float | None, original: float | None, compiled: float | None
) -> float | None:
    """The stated speedup, else eager's time over compiled's where both are usable."""
    if reported is not None:
        return reported
    if original is not None and compiled and math.isfinite(original) and math.isfinite(compiled):
        return original / compiled
    return None


def _numerics(report: BenchmarkReport, device_kind: str) -> Numerics:
    """The report's numeric settings, PyTorch's defaults where it states none."""
    settings = report.settings
    assumed: list[str] = []
    if device_kind == "unknown":
        assumed.append("a CUDA device (the report names none)")
    dtype = _stated_or(
        _dtype_name(settings.dtype),
        DEFAULT_DTYPE,
        f"{DEFAULT_DTYPE} (the report names no dtype)",
        assumed,
    )
    dropout = _stated_or(
        settings.dropout_disabled,
        False,
        "dropout as the policy configures it (the report has no --disable-dropout)",
        assumed,
    )
    cudnn = _stated_or(
        settings.cudnn_allow_tf32,
        DEFAULT_CUDNN_TF32,
        "cuDNN TF32 on (torch.backends.cudnn.allow_tf32, PyTorch's default)",
        assumed,
    )
    precision = _stated_or(
        settings.matmul_precision,
        DEFAULT_MATMUL_PRECISION,
        f"matmul TF32 off (float32 matmul precision {DEFAULT_MATMUL_PRECISION!r}, "
        "PyTorch's default)",
        assumed,
    )
    return Numerics(
        dtype=dtype,
        dropout_disabled=dropout,
        cudnn_tf32=cudnn,
        matmul_tf32=precision in TF32_MATMUL_PRECISIONS,
        assumed=tuple(assumed),
    )


def _stated_or[T](value: T | None, default: T, assumption: str, assumed: list[str]) -> T:
    """`value` as the report states it, else `default`, noting `assumption` in `assumed`."""
    if value is not None:
        return value
    assumed.append(assumption)
    return default


# Other spellings of a dtype, by the name torch gives it.
_DTYPE_ALIASES = {
    "float": "float32",
    "fp32": "float32",
    "double": "float64",
    "fp64": "float64",
    "half": "float16",
    "fp16": "float16",
    "bf16": "bfloat16",
}


def _dtype_name(dtype: str | None) -> str | None:
    """A dtype as torch names it: "torch.float32", "fp32" and "float32" alike read "float32"."""
    if dtype is None:
        return None
    name = dtype.strip().lower().removeprefix("torch.")
    return _DTYPE_ALIASES.get(name, name)
