"""The reference report's format: its Raw Data keys and the criteria its verdict is made of.

LeRobot's compile benchmark (`benchmarks/policies_compilation/`) ends a report with a Raw Data
JSON block under these keys and a verdict, SUCCESS or NEEDS WORK, from its own criteria: an
absolute tolerance on the action and loss differences, and a speedup bar on both entry points.
The benchmark probe writes the same keys; triage reads them from a report. The criteria are
decided here, once, from those keys (`reference_criteria`), for the probe's Raw Data `success`,
triage and the diagnosis alike; this module is torch-free so that every side can import it. Each
criterion has one name, used everywhere it is shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from probes.records.names import INFERENCE, TRAINING
from probes.records.serialize import as_number

# The reference script's own thresholds.
REFERENCE_TOLERANCE = 1e-5  # absolute, on the max action difference and on the loss difference
REFERENCE_SPEEDUP = 1.1  # both speedups must be above it

# The Raw Data keys of the per-entry-point figures: median time per call of each side, and the
# speedup (eager median over compiled median).
TIME_ORIGINAL_KEY = {INFERENCE: "time_original_inference", TRAINING: "time_original_training"}
TIME_COMPILED_KEY = {INFERENCE: "time_compiled_inference", TRAINING: "time_compiled_training"}
SPEEDUP_KEY = {INFERENCE: "speedup_inference", TRAINING: "speedup_training"}

# The Raw Data keys the criteria read besides the speedups: whether every entry point compiled,
# and "correctness", which holds (in this order) whether the action and the loss passed the
# tolerance and the two eager/compiled differences that decide it.
COMPILATION_SUCCESSFUL_KEY = "compilation_successful"
CORRECTNESS_KEY = "correctness"
INFERENCE_CORRECT_KEY = "inference_correct"
TRAINING_CORRECT_KEY = "training_correct"
ACTION_DIFF_KEY = "action_diff"
LOSS_DIFF_KEY = "loss_diff"

# The keys of the reference report's Raw Data JSON, in its order.
REPORT_KEYS: tuple[str, ...] = (
    "success",
    "policy",
    "device",
    "pytorch_version",
    COMPILATION_SUCCESSFUL_KEY,
    "compilation_error",
    CORRECTNESS_KEY,
    "correctness_passed",
    "inference_benchmarked",
    "training_benchmarked",
    TIME_ORIGINAL_KEY[INFERENCE],
    TIME_COMPILED_KEY[INFERENCE],
    SPEEDUP_KEY[INFERENCE],
    TIME_ORIGINAL_KEY[TRAINING],
    TIME_COMPILED_KEY[TRAINING],
    SPEEDUP_KEY[TRAINING],
    "loss_consistency",
    "grad_norm_consistency",
)

# The criteria of the reference verdict, by the one name each is shown under.
COMPILATION = "compilation"
ACTION_DIFF = "max action diff"
LOSS_DIFF = "loss diff"
INFERENCE_SPEEDUP = "inference speedup"
TRAINING_SPEEDUP = "training speedup"
CRITERIA = (COMPILATION, ACTION_DIFF, LOSS_DIFF, INFERENCE_SPEEDUP, TRAINING_SPEEDUP)
SPEEDUP_CRITERION = {INFERENCE: INFERENCE_SPEEDUP, TRAINING: TRAINING_SPEEDUP}

# The reference verdict's labels: every criterion passed, one failed, or a figure is missing.
SUCCESS = "SUCCESS"
NEEDS_WORK = "NEEDS WORK"
UNDECIDED = "UNDECIDED"


@dataclass(frozen=True)
class ReferenceCriterion:
    """One reference criterion as the reference script decides it, from the Raw Data figures."""

    name: str  # one of CRITERIA
    measured: float | bool | None  # the figure; None where it was not measured
    requirement: str  # what the figure must be, e.g. "< 1e-05", "> 1.1x"
    passed: bool | None  # None where the figure is missing


def reference_criteria(
    metrics: Mapping[str, Any],
    *,
    action_tolerance: float = REFERENCE_TOLERANCE,
    loss_tolerance: float = REFERENCE_TOLERANCE,
    speedup_threshold: float = REFERENCE_SPEEDUP,
) -> list[ReferenceCriterion]:
    """The reference criteria, in the order of CRITERIA, from a Raw Data mapping.

    `metrics` holds the Raw Data keys, live or as recorded (a non-finite figure may be the marker
    "NaN"). This is the one place the reference verdict is decided: the benchmark probe fills Raw
    Data `success` from it, the diagnosis reads it, triage recomputes a report's verdict with it.
    A missing figure leaves its criterion undecided; a NaN difference or speedup fails, as the
    reference script's comparisons fail it.
    """
    correctness = metrics.get(CORRECTNESS_KEY) or {}
    compiled = metrics.get(COMPILATION_SUCCESSFUL_KEY)
    compiled = compiled if isinstance(compiled, bool) else None
    return [
        ReferenceCriterion(COMPILATION, compiled, "succeeds", compiled),
        _below(ACTION_DIFF, correctness.get(ACTION_DIFF_KEY), action_tolerance),
        _below(LOSS_DIFF, correctness.get(LOSS_DIFF_KEY), loss_tolerance),
        *(
            _above(SPEEDUP_CRITERION[entry_point], metrics.get(key), speedup_threshold)
            for entry_point, key in SPEEDUP_KEY.items()
        ),
    ]


def _below(name: str, value: Any, tolerance: float) -> ReferenceCriterion:
    figure = as_number(value)
    passed = None if figure is None else figure < tolerance  # NaN < x is False: NaN fails
    return ReferenceCriterion(name, figure, f"< {tolerance:.0e}", passed)


def _above(name: str, value: Any, threshold: float) -> ReferenceCriterion:
    figure = as_number(value)
    passed = None if figure is None else figure > threshold
    return ReferenceCriterion(name, figure, f"> {threshold}x", passed)


def verdict_of(criteria: Sequence[ReferenceCriterion]) -> bool | None:
    """SUCCESS (True) when every criterion passed, NEEDS WORK (False) when one failed, else None."""
    if any(criterion.passed is False for criterion in criteria):
        return False
    if any(criterion.passed is None for criterion in criteria):
        return None
    return True


def verdict_label(success: bool | None) -> str:
    if success is None:
        return UNDECIDED
    return SUCCESS if success else NEEDS_WORK
