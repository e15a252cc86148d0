"""The gate for CI: thresholds a run fails on, checked against a diagnosis or a comparison.

    compile-diagnose module model.py:make --fail-on 'graph-breaks>0,recompiles>0,error'
    compile-diagnose compare before/ after/ --fail-on 'graph-breaks.added>0'

`gate_for_diagnosis` and `gate_for_comparison` read the thresholds (the command line's, else the
project's pyproject.toml: `config.py`) and refuse a bad one before anything runs;
`check_diagnosis` and `check_comparison` measure each (`measure.py`) and say which are violated.
A threshold on a figure the run did not measure is violated: a probe that did not run cannot
pass a gate unseen. Nothing here prints: `analyzer.render.gate` writes the lines and the JUnit
file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analyzer.comparison.changes import Comparison
from analyzer.errors import UsageError
from analyzer.gate.config import COMPARE_FAIL_ON, FAIL_ON, project_thresholds
from analyzer.gate.measure import Measured, measure, measure_comparison
from analyzer.gate.thresholds import Threshold, parse_thresholds

__all__ = [
    "Check",
    "Gate",
    "GateResult",
    "check_comparison",
    "check_diagnosis",
    "gate_for_comparison",
    "gate_for_diagnosis",
]

COMMAND_LINE = "--fail-on"


@dataclass(frozen=True)
class Gate:
    """The thresholds a run is checked against, and where they were written."""

    thresholds: tuple[Threshold, ...]
    source: str  # "--fail-on", or the pyproject.toml they come from


@dataclass(frozen=True)
class Check:
    threshold: Threshold
    measured: Measured

    @property
    def violated(self) -> bool:
        value = self.measured.value
        if value is None:
            return True  # not measured: it cannot pass
        if isinstance(value, bool):
            return value
        return self.threshold.holds(float(value))


@dataclass(frozen=True)
class GateResult:
    subject: str  # what was checked: a target, or "BEFORE -> AFTER"
    source: str
    checks: tuple[Check, ...]

    @property
    def violations(self) -> list[Check]:
        return [check for check in self.checks if check.violated]

    @property
    def passed(self) -> bool:
        return not self.violations


def gate_for_diagnosis(fail_on: Sequence[str] | None, cwd: Path) -> Gate | None:
    """The gate of a diagnosing command: `--fail-on`, else the project's `fail-on`; None if
    neither names a threshold. A threshold that compares two runs is a usage error here."""
    if fail_on is not None:
        return _gate(_diagnosis_thresholds(fail_on, COMMAND_LINE), COMMAND_LINE)
    project = project_thresholds(cwd)
    if project is None:
        return None
    where = project.where(FAIL_ON)
    return _gate(_diagnosis_thresholds(project.fail_on, where), str(project.path))


def gate_for_comparison(fail_on: Sequence[str] | None, cwd: Path) -> Gate | None:
    """The gate of `compare`: `--fail-on`, else the project's `fail-on` and `compare-fail-on`."""
    if fail_on is not None:
        return _gate(parse_thresholds(fail_on, where=COMMAND_LINE), COMMAND_LINE)
    project = project_thresholds(cwd)
    if project is None:
        return None
    thresholds = parse_thresholds(project.fail_on, where=project.where(FAIL_ON))
    thresholds += parse_thresholds(project.compare_fail_on, where=project.where(COMPARE_FAIL_ON))
    return _gate(thresholds, str(project.path))


def _diagnosis_thresholds(expressions: Sequence[str], where: str) -> list[Threshold]:
    thresholds = parse_thresholds(expressions, where=where)
    comparing = [t.text for t in thresholds if t.comparison]
    if comparing:
        hint = f"; put it under {COMPARE_FAIL_ON}" if where != COMMAND_LINE else ""
        raise UsageError(
            f"{where}: {', '.join(comparing)} compares two diagnoses: "
            f"use it with compile-diagnose compare{hint}"
        )
    return thresholds


def _gate(thresholds: Sequence[Threshold], source: str) -> Gate | None:
    return Gate(tuple(thresholds), source) if thresholds else None


def check_diagnosis(gate: Gate, diagnosis: Mapping[str, Any], subject: str) -> GateResult:
    """Each threshold of `gate`, measured on one recorded diagnosis."""
    checks = tuple(Check(t, measure(diagnosis, t)) for t in gate.thresholds)
    return GateResult(subject, gate.source, checks)


def check_comparison(
    gate: Gate,
    comparison: Comparison,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> GateResult:
    """Each threshold of `gate` on a comparison: its own figures, changes, or AFTER's figures."""
    checks = tuple(
        Check(t, measure_comparison(comparison, before, after, t)) for t in gate.thresholds
    )
    subject = f"{comparison.before.source} -> {comparison.after.source}"
    return GateResult(subject, gate.source, checks)
