"""The reference report's verdict for this run, and why a diagnosis reads it differently.

The criteria are the reference script's own, decided once by
`probes.records.reference.reference_criteria` (the format's definition: the benchmark probe fills
Raw Data `success` from it and triage recomputes a report's verdict with it). The verdict is the
reference script's yes/no too, SUCCESS or NEEDS WORK as Raw Data `success` says: a figure the run
could not measure (a module without a loss has no training figures) has not passed. A criterion
that fails is then paired with the findings that explain its figure: a loss difference explained
by random numbers is not a compile error; a speedup that misses 1.1x because the GPU is idle has
a measured remedy. `read_verdict` makes that reading once, at the end of a run, and
`VerdictReading.to_record()` is what `diagnosis.json` stores under "verdict", for every renderer
to show without deciding anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analyzer.findings import Finding, Rule
from analyzer.rules.benchmark import BENCHMARK_METHODOLOGY
from analyzer.rules.compile import COMPILATION_FAILED, COMPILED_PATH_NOT_EXERCISED, GRAPH_BREAK
from analyzer.rules.divergence import (
    NUMERICAL_DIVERGENCE,
    PRECISION_SETTING_MISMATCH,
    RNG_DIVERGENCE,
    TOLERANCE_TOO_STRICT,
)
from analyzer.rules.kernels import EAGER_WORK_OUTSIDE_COMPILED_REGION, LAUNCH_BOUND
from analyzer.rules.speed import FASTER_COMPILE_SETTING, SPEEDUP_CEILING
from probes.records.names import INFERENCE, TRAINING
from probes.records.reference import (
    ACTION_DIFF,
    COMPILATION,
    INFERENCE_SPEEDUP,
    LOSS_DIFF,
    REFERENCE_SPEEDUP,
    REFERENCE_TOLERANCE,
    TRAINING_SPEEDUP,
    ReferenceCriterion,
    reference_criteria,
    verdict_label,
    verdict_of,
)
from probes.records.serialize import as_number, to_jsonable


@dataclass(frozen=True)
class _Explanation:
    """Which findings can explain a criterion's figure, and which of them excuse it (the figure
    fails for a reason that is not a fault of the compiled program)."""

    entry_point: str | None  # the findings' entry point; None: any
    explains: frozenset[str]  # rule names
    excuses: frozenset[str] = frozenset()


def _names(*rules: Rule) -> frozenset[str]:
    return frozenset(rule.name for rule in rules)


# What makes a speedup miss its bar, and a measured setting that would clear it. Recompiles and
# compile time do not explain a timed speedup: the timed calls run warm, without recompiling.
_SLOWNESS = _names(
    SPEEDUP_CEILING,
    FASTER_COMPILE_SETTING,
    LAUNCH_BOUND,
    EAGER_WORK_OUTSIDE_COMPILED_REGION,
    GRAPH_BREAK,
    COMPILED_PATH_NOT_EXERCISED,
    BENCHMARK_METHODOLOGY,
)

_EXPLAINS: dict[str, _Explanation] = {
    COMPILATION: _Explanation(None, _names(COMPILATION_FAILED)),
    ACTION_DIFF: _Explanation(
        INFERENCE,
        _names(NUMERICAL_DIVERGENCE, PRECISION_SETTING_MISMATCH, TOLERANCE_TOO_STRICT),
        excuses=_names(PRECISION_SETTING_MISMATCH, TOLERANCE_TOO_STRICT),
    ),
    LOSS_DIFF: _Explanation(
        TRAINING,
        _names(
            RNG_DIVERGENCE, TOLERANCE_TOO_STRICT, NUMERICAL_DIVERGENCE, PRECISION_SETTING_MISMATCH
        ),
        excuses=_names(RNG_DIVERGENCE, TOLERANCE_TOO_STRICT, PRECISION_SETTING_MISMATCH),
    ),
    INFERENCE_SPEEDUP: _Explanation(INFERENCE, _SLOWNESS),
    TRAINING_SPEEDUP: _Explanation(TRAINING, _SLOWNESS),
}


_SPEED_CRITERIA = frozenset({INFERENCE_SPEEDUP, TRAINING_SPEEDUP})


def _costly_breaks_only(findings: list[Finding]) -> list[Finding]:
    """Where the time was attributed (a speedup-ceiling finding), a graph break explains a
    speedup only with a measured cost: a break in code the compiled call does not compile
    (found by explain on the whole entry point) costs the compiled call nothing."""
    if not any(f.name == SPEEDUP_CEILING.name for f in findings):
        return findings
    return [
        f
        for f in findings
        if f.name != GRAPH_BREAK.name or (as_number(f.evidence.get("cost_ms_per_call")) or 0) > 0
    ]


@dataclass
class CriterionReading:
    name: str  # one of probes.records.reference.CRITERIA
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

    def to_record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "measured": self.measured,
            "requirement": self.requirement,
            "passed": self.passed,
            "explained_by": list(self.explained_by),
            "excused": self.excused,
            "confirmed": self.confirmed,
            "excuse": self.excuse,
        }


@dataclass
class VerdictReading:
    success: bool  # the reference verdict, as Raw Data `success`: every criterion passed
    criteria: list[CriterionReading]

    @property
    def label(self) -> str:
        return verdict_label(self.success)

    @property
    def failed(self) -> list[CriterionReading]:
        return [c for c in self.criteria if c.passed is False]

    @property
    def differs(self) -> bool:
        """The reference criteria fail, but only on figures the findings excuse."""
        return bool(self.failed) and all(c.excused for c in self.failed)

    @property
    def reading(self) -> str | None:
        """compile-diagnose's own reading, where it differs from the reference verdict."""
        if not self.differs:
            return None
        probably = "" if all(c.confirmed for c in self.failed) else "probably "
        return (
            f"compile-diagnose reads this run as {probably}correct: every failed criterion is "
            "explained by findings that are not compile faults."
        )

    def to_record(self) -> dict[str, Any]:
        """The form `diagnosis.json` stores under "verdict"."""
        return {
            "reference": self.label,
            "criteria": [criterion.to_record() for criterion in self.criteria],
            "differs": self.differs,
            "reading": self.reading,
        }


def read_verdict(
    metrics: Mapping[str, Any], benchmark: Mapping[str, Any], findings: Sequence[Finding]
) -> VerdictReading:
    """The reference criteria of a run's Raw Data (`metrics`), under the thresholds its
    benchmark ran with, each failed one paired with the findings that explain it."""
    settings = benchmark.get("settings") or {}
    tolerance = as_number(settings.get("tolerance"))
    threshold = as_number(settings.get("speedup_threshold"))
    criteria = reference_criteria(
        metrics,
        action_tolerance=REFERENCE_TOLERANCE if tolerance is None else tolerance,
        loss_tolerance=REFERENCE_TOLERANCE if tolerance is None else tolerance,
        speedup_threshold=REFERENCE_SPEEDUP if threshold is None else threshold,
    )
    # As the reference script's yes/no: a criterion without its figure has not passed.
    success = verdict_of(criteria) is True
    return VerdictReading(success, [_reading(c, findings) for c in criteria])


def verdict_record(
    metrics: Mapping[str, Any] | None,
    benchmark: Mapping[str, Any] | None,
    findings: Sequence[Finding],
) -> dict[str, Any] | None:
    """What `diagnosis.json` stores under "verdict"; None where no benchmark ran."""
    if not metrics or not benchmark:
        return None
    return to_jsonable(read_verdict(metrics, benchmark, findings).to_record())


def _reading(criterion: ReferenceCriterion, findings: Sequence[Finding]) -> CriterionReading:
    reading = CriterionReading(
        criterion.name, criterion.measured, criterion.requirement, criterion.passed
    )
    if criterion.passed is not False:
        return reading
    explanation = _EXPLAINS[criterion.name]
    relevant = [
        f
        for f in findings
        if f.name in explanation.explains
        and (
            explanation.entry_point is None
            or f.evidence.get("entry_point", explanation.entry_point) == explanation.entry_point
        )
    ]
    if criterion.name in _SPEED_CRITERIA:
        relevant = _costly_breaks_only(relevant)
    reading.explained_by = list(dict.fromkeys(f"{f.code} {f.name}" for f in relevant))
    reading.excused = bool(relevant) and all(f.name in explanation.excuses for f in relevant)
    reading.confirmed = all(f.confidence == "high" for f in relevant)
    return reading
