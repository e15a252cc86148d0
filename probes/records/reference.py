"""The reference report's format: its Raw Data keys and the criteria its verdict is made of.

LeRobot's compile benchmark (`benchmarks/policies_compilation/`) ends a report with a Raw Data
JSON block under these keys and a verdict, SUCCESS or NEEDS WORK, from its own criteria: an
absolute tolerance on the action and loss differences, and a speedup bar on both entry points.
The benchmark probe writes the same keys; triage reads them from a report; the analyzer's verdict
recomputes the criteria from them. Each criterion has one name, used everywhere it is shown.
"""

from __future__ import annotations

# The reference script's own thresholds.
REFERENCE_TOLERANCE = 1e-5  # absolute, on the max action difference and on the loss difference
REFERENCE_SPEEDUP = 1.1  # both speedups must be above it

# The keys of the reference report's Raw Data JSON, in its order.
REPORT_KEYS: tuple[str, ...] = (
    "success",
    "policy",
    "device",
    "pytorch_version",
    "compilation_successful",
    "compilation_error",
    "correctness",
    "correctness_passed",
    "inference_benchmarked",
    "training_benchmarked",
    "time_original_inference",
    "time_compiled_inference",
    "speedup_inference",
    "time_original_training",
    "time_compiled_training",
    "speedup_training",
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
