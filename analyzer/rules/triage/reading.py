"""What triage derives from a report's numbers before any check reads them.

A `Reading` is the report with the device kind, the two speedups (stated or computed from the
times), what is known of the policy, and the `compile-diagnose` command line that reruns the
report's setup. The constants below carry the differences we measured between correct compiled
and eager programs (`../shared/DESIGN.md`, "How the reference report was made"): a figure is
read against them, not against the report's own threshold alone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

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
UNKNOWN_POLICY = PolicyFacts("a neural-network policy", "")


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
        when the actions match bit for bit (CD101), nor when they differ far beyond rounding."""
        diff = self.report.correctness.action_diff
        if diff is None:
            return True
        return diff != 0.0 and math.isfinite(diff) and diff <= FAR_BEYOND * self.action_band()

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
