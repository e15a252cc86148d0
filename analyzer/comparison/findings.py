"""The findings one diagnosis made and the other did not.

A finding is matched on its rule, its entry point, its place in the code (file name, function
and line, so that a line moved by an edit above it still matches) and, for a recompile, its
scenario and failing guard. Causes hold measured figures, so they differ between any two runs
and are not part of the match.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from analyzer.comparison.changes import APPEARED, DISAPPEARED, FindingChange

Record = Mapping[str, Any]

# Evidence that tells two findings of one rule apart (beside the entry point and location).
IDENTITY_EVIDENCE = ("entry_point", "scenario", "failing_guard", "what_if")


def finding_identity(finding: Record) -> tuple[Any, ...]:
    evidence = finding.get("evidence") or {}
    location = finding.get("location") or {}
    place = (
        Path(str(location.get("filename") or "")).name,
        str(location.get("function") or ""),
        str(location.get("code") or location.get("lineno") or ""),
    )
    return (finding.get("code"), place, *(str(evidence.get(key)) for key in IDENTITY_EVIDENCE))


def finding_changes(before: Sequence[Record], after: Sequence[Record]) -> list[FindingChange]:
    """Findings in AFTER only (appeared), then in BEFORE only (disappeared), in each run's order."""
    one = Counter(finding_identity(f) for f in before)
    other = Counter(finding_identity(f) for f in after)
    appeared = _beyond(after, one)
    disappeared = _beyond(before, other)
    return [_change(APPEARED, f) for f in appeared] + [_change(DISAPPEARED, f) for f in disappeared]


def _beyond(findings: Sequence[Record], other: Counter[tuple[Any, ...]]) -> list[Record]:
    """The findings of one run the other run's findings do not account for."""
    left = Counter(other)
    extra = []
    for finding in findings:
        identity = finding_identity(finding)
        if left[identity]:
            left[identity] -= 1
        else:
            extra.append(finding)
    return extra


def _change(status: str, finding: Record) -> FindingChange:
    evidence = finding.get("evidence") or {}
    return FindingChange(
        status=status,
        code=str(finding.get("code")),
        name=str(finding.get("name")),
        title=str(finding.get("title") or ""),
        severity=str(finding.get("severity")),
        entry_point=evidence.get("entry_point"),
        location=finding.get("location"),
        cause=str(finding.get("cause") or ""),
    )
