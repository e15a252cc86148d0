"""The report's verdict beside the one its numbers give under the reference criteria.

The criteria are decided by `probes.records.reference.reference_criteria`, the one computation
the benchmark probe and the diagnosis use too; triage feeds it the figures as it reads them (a
speedup computed from the times where the report states none, the thresholds its Markdown
states) and adds what a report brings: the pass/fail it states per criterion, where the two
disagree, and the codes of the findings that explain each figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from analyzer.findings import Finding
from analyzer.rules.triage.reading import Reading
from probes.records.reference import (
    ACTION_DIFF,
    COMPILATION,
    INFERENCE_SPEEDUP,
    LOSS_DIFF,
    TRAINING_SPEEDUP,
    ReferenceCriterion,
    reference_criteria,
    verdict_label,
    verdict_of,
)

# Evidence keys that tie a finding to the criterion whose figure it explains.
_CRITERION_OF_EVIDENCE = {
    "max_action_diff_abs": ACTION_DIFF,
    "loss_diff_abs": LOSS_DIFF,
    "speedup_inference_x": INFERENCE_SPEEDUP,
    "speedup_training_x": TRAINING_SPEEDUP,
}


@dataclass
class ReportedCriterion:
    """One reference criterion, recomputed from the numbers beside what the report says."""

    name: str  # one of probes.records.reference.CRITERIA
    measured: float | bool | None
    requirement: str  # e.g. "< 1e-05", "> 1.1x"
    passed: bool | None  # recomputed; None when the report lacks the number
    reported: bool | None  # as the report states it, where it states it
    note: str = ""  # codes of the findings that explain this figure, e.g. "CD101"


@dataclass
class RecomputedVerdict:
    criteria: list[ReportedCriterion]
    success: bool | None  # recomputed: every criterion passed
    reported_success: bool | None
    disagreements: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return verdict_label(self.success)

    @property
    def reported_label(self) -> str:
        return verdict_label(self.reported_success)


def recompute_verdict(reading: Reading, findings: Sequence[Finding]) -> RecomputedVerdict:
    """The reference criteria from the report's numbers, each with what the report states and
    the findings that explain its figure."""
    report = reading.report
    criteria = reference_criteria(
        _figures(reading),
        action_tolerance=report.action_threshold,
        loss_tolerance=report.loss_threshold,
    )
    stated = {
        COMPILATION: report.compilation_successful,
        ACTION_DIFF: report.correctness.inference_correct,
        LOSS_DIFF: report.correctness.training_correct,
    }
    verdict = RecomputedVerdict(
        criteria=[
            _beside_report(criterion, stated.get(criterion.name), findings)
            for criterion in criteria
        ],
        success=verdict_of(criteria),
        reported_success=report.success,
    )
    verdict.disagreements = _disagreements(verdict)
    return verdict


def _figures(reading: Reading) -> dict[str, Any]:
    """The Raw Data figures the criteria read, as triage reads them from the report."""
    report = reading.report
    compiled: bool | None = None
    if report.compilation_successful is not None or report.compilation_error is not None:
        # A report that states no outcome but holds a compile error did not compile.
        compiled = not reading.compilation_failed
    return {
        "compilation_successful": compiled,
        "correctness": {
            "action_diff": report.correctness.action_diff,
            "loss_diff": report.correctness.loss_diff,
        },
        "speedup_inference": reading.speedup_inference,
        "speedup_training": reading.speedup_training,
    }


def _beside_report(
    criterion: ReferenceCriterion, reported: bool | None, findings: Sequence[Finding]
) -> ReportedCriterion:
    codes = [
        finding.code
        for finding in findings
        if criterion.name in {_CRITERION_OF_EVIDENCE.get(key) for key in finding.evidence}
    ]
    return ReportedCriterion(
        name=criterion.name,
        measured=criterion.measured,
        requirement=criterion.requirement,
        passed=criterion.passed,
        reported=reported,
        note=", ".join(dict.fromkeys(codes)),
    )


def _disagreements(verdict: RecomputedVerdict) -> list[str]:
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
