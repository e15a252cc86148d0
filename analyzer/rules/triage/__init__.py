"""Triage of a benchmark report: what its numbers likely mean, from the numbers alone.

Each conclusion is a finding with a confidence and the `compile-diagnose` command that would
confirm it, from the rule families' own rules. The report is first read (`reading.py`: device
kind, speedups, the policy's facts, the command that reruns it); the checks then read it by what
they look at (`compilation.py`, `correctness.py`, `timing.py`); the findings are ranked once here,
and the verdict recomputed from the reference criteria stands beside the report's own
(`report_verdict.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.findings import Finding, rank
from analyzer.reference_report import BenchmarkReport
from analyzer.rules.triage import compilation, correctness, timing
from analyzer.rules.triage.reading import Reading, read
from analyzer.rules.triage.report_verdict import (
    RecomputedVerdict,
    ReportedCriterion,
    recompute_verdict,
)

__all__ = ["RecomputedVerdict", "ReportedCriterion", "TriageResult", "triage", "triage_findings"]


@dataclass
class TriageResult:
    report: BenchmarkReport
    verdict: RecomputedVerdict
    findings: list[Finding]

    @property
    def has_error(self) -> bool:
        return any(finding.severity == "error" for finding in self.findings)


def triage(report: BenchmarkReport) -> TriageResult:
    reading = read(report)
    findings = triage_findings(reading)
    return TriageResult(
        report=report, verdict=recompute_verdict(reading, findings), findings=findings
    )


def triage_findings(reading: Reading) -> list[Finding]:
    """Everything the numbers support, most important first."""
    findings = compilation.check(reading)
    if reading.compilation_failed:
        # No other figure of the report measures compiled code.
        return findings
    return rank([*findings, *correctness.check(reading), *timing.check(reading)])
