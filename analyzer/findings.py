"""What the analyzer concludes: rules (the catalogue) and the findings they yield.

A `Rule` is documentation: a stable code and name, what it detects, why it matters, an example
and what to do instead (the four parts of a ruff rule page). A `Finding` is one conclusion drawn
from one run's measurements, with the evidence that triggered it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from probes.records.location import SourceLocation
from probes.records.serialize import as_number

__all__ = [
    "Finding",
    "Rule",
    "Severity",
    "SourceLocation",
    "code_block",
    "make_finding",
    "prose",
    "rank",
]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


@dataclass(frozen=True)
class Rule:
    code: str  # stable, e.g. "CD102"
    name: str  # kebab-case slug, e.g. "graph-break"
    title: str
    default_severity: Severity
    what_it_does: str
    why_it_matters: str
    example: str
    use_instead: str


def code_block(snippet: str) -> str:
    """A rule's example or fix, written indented in its module, as the code it shows."""
    return textwrap.dedent(snippet).strip("\n")


def prose(*sentences: str) -> str:
    """A rule's documentation paragraph, written as short lines in its module."""
    return " ".join(sentences)


@dataclass
class Finding:
    code: str
    name: str
    title: str
    severity: Severity
    confidence: str  # "high" | "medium" | "low": how sure the rule is of the cause
    cause: str  # one sentence
    evidence: dict[str, Any] = field(default_factory=dict)  # measured numbers, with units in keys
    next_steps: list[str] = field(default_factory=list)  # things a user can paste or do
    location: SourceLocation | None = None
    measured_fix: dict[str, Any] | None = None  # what a what-if run measured, if one ran
    impact_ms: float | None = None  # time explained per call, for ranking
    impact_error: float | None = None  # error explained (absolute), for ranking

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Finding:
        """A finding as `diagnosis.json` records it (its fields, by name), read back."""
        return cls(
            code=str(record["code"]),
            name=str(record["name"]),
            title=str(record.get("title") or ""),
            severity=Severity(record.get("severity") or Severity.INFO),
            confidence=str(record.get("confidence") or ""),
            cause=str(record.get("cause") or ""),
            evidence=dict(record.get("evidence") or {}),
            next_steps=list(record.get("next_steps") or []),
            location=SourceLocation.from_record(record.get("location")),
            measured_fix=record.get("measured_fix"),
            impact_ms=as_number(record.get("impact_ms")),
            impact_error=as_number(record.get("impact_error")),
        )

    def sort_key(self) -> tuple[int, float, float]:
        return (
            self.severity.rank,
            -(self.impact_ms or 0.0),
            -(self.impact_error or 0.0),
        )


def make_finding(rule: Rule, **fields: Any) -> Finding:
    """A finding of `rule`; its code, name, title and default severity come from the rule."""
    fields.setdefault("title", rule.title)
    fields.setdefault("severity", rule.default_severity)
    return Finding(code=rule.code, name=rule.name, **fields)


def rank(findings: list[Finding]) -> list[Finding]:
    """Most important first: errors before warnings, then by measured impact."""
    return sorted(findings, key=Finding.sort_key)
