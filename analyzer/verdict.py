"""The reference report's verdict for this run, and why a diagnosis reads it differently.

The verdict uses the reference script's own criteria, so it can be set beside a reference report.
A criterion that fails is then paired with the findings that explain its figure: a loss
difference explained by random numbers is not a compile error; a speedup that misses 1.1x
because the GPU is idle has a measured remedy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analyzer.findings import Finding

# Which findings can explain which criterion, and whether they excuse it (the figure fails for
# a reason that is not a fault of the compiled program). Recompiles and compile time do not
# explain a timed speedup: the timed calls run warm, without recompiling.
_EXPLAINS: dict[str, tuple[str, set[str], set[str]]] = {
    # criterion: (entry point, findings that explain it, those of them that excuse it)
    "max action diff": (
        "inference",
        {"numerical-divergence", "precision-setting-mismatch", "tolerance-too-strict"},
        {"precision-setting-mismatch", "tolerance-too-strict"},
    ),
    "loss diff": (
        "training",
        {
            "rng-divergence",
            "tolerance-too-strict",
            "numerical-divergence",
            "precision-setting-mismatch",
        },
        {"rng-divergence", "tolerance-too-strict", "precision-setting-mismatch"},
    ),
    "inference speedup": (
        "inference",
        {
            "launch-bound",
            "eager-work-outside-compiled-region",
            "graph-break",
            "compiled-path-not-exercised",
            "benchmark-methodology",
        },
        set(),
    ),
    "training speedup": (
        "training",
        {
            "launch-bound",
            "eager-work-outside-compiled-region",
            "graph-break",
            "compiled-path-not-exercised",
            "benchmark-methodology",
        },
        set(),
    ),
}


@dataclass
class CriterionReading:
    criterion: str
    measured: Any
    requirement: str
    passed: bool | None
    explained_by: list[str] = field(default_factory=list)  # "CD301 rng-divergence"
    excused: bool = False  # fails only for reasons that are not a compile fault
    confirmed: bool = True  # every excusing finding has high confidence (measured, not inferred)

    @property
    def excuse(self) -> str:
        """How the excuse reads: certain, or probable when a finding only infers it."""
        if not self.excused:
            return ""
        if self.confirmed:
            return "not a fault of the compiled code"
        return "probably not a fault of the compiled code (not confirmed)"


@dataclass
class VerdictReading:
    reference_success: bool
    criteria: list[CriterionReading]

    @property
    def failed(self) -> list[CriterionReading]:
        return [c for c in self.criteria if c.passed is False]

    @property
    def differs(self) -> bool:
        """The reference criteria fail, but only on figures the findings excuse."""
        return bool(self.failed) and all(c.excused for c in self.failed)


def read_verdict(
    metrics: Mapping[str, Any], benchmark: Mapping[str, Any], findings: Sequence[Finding]
) -> VerdictReading:
    settings = benchmark.get("settings", {})
    tolerance = settings.get("tolerance", 1e-5)
    threshold = settings.get("speedup_threshold", 1.1)
    correctness = metrics.get("correctness", {})
    criteria = [
        _reading(
            "max action diff",
            correctness.get("action_diff"),
            f"< {tolerance:.0e}",
            correctness.get("inference_correct"),
            findings,
        ),
        _reading(
            "loss diff",
            correctness.get("loss_diff"),
            f"< {tolerance:.0e}",
            correctness.get("training_correct"),
            findings,
        ),
    ]
    for entry_point in ("inference", "training"):
        speedup = metrics.get(f"speedup_{entry_point}")
        passed = None if speedup is None else speedup > threshold
        criteria.append(
            _reading(f"{entry_point} speedup", speedup, f"> {threshold}x", passed, findings)
        )
    return VerdictReading(bool(metrics.get("success")), criteria)


def _reading(
    criterion: str,
    measured: Any,
    requirement: str,
    passed: bool | None,
    findings: Sequence[Finding],
) -> CriterionReading:
    reading = CriterionReading(criterion, measured, requirement, passed)
    if passed is not False:
        return reading
    entry_point, explains, excuses = _EXPLAINS[criterion]
    relevant = [
        f
        for f in findings
        if f.name in explains and f.evidence.get("entry_point", entry_point) == entry_point
    ]
    reading.explained_by = list(dict.fromkeys(f"{f.code} {f.name}" for f in relevant))
    reading.excused = bool(relevant) and all(f.name in excuses for f in relevant)
    reading.confirmed = all(f.confidence == "high" for f in relevant)
    return reading
