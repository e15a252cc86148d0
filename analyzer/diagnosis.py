"""A diagnosis: the record of one run, what `diagnosis.json` holds.

`Diagnosis` holds everything a run measured and concluded. The runner (`analyzer.runner`) fills
it and writes it after every probe (`analyzer.runner.writer`); renderers read its JSON form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analyzer.findings import Finding
from probes.records.serialize import dumps, to_jsonable

SCHEMA_VERSION = 1
DIAGNOSIS_FILE = "diagnosis.json"


def tool_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("compile-diagnose")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class Diagnosis:
    command: str
    # Per entry point, the measured setting to use or why none of those tried helps
    # (`analyzer.rules.speed.recommend`), first in `diagnosis.json` so that it is read first.
    recommendation: dict[str, Any] | None = None
    target: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    compile_settings: dict[str, Any] = field(default_factory=dict)
    # Which probes fit in the memory free, before the first ran (`probes.records.memory`)
    memory_plan: dict[str, Any] | None = None
    probes: dict[str, Any] = field(default_factory=dict)  # probe name -> recorded JSON result
    probe_errors: dict[str, str] = field(default_factory=dict)  # probe name -> first line
    reference_metrics: dict[str, Any] | None = None  # the reference report's Raw Data keys
    # The reference verdict and how the findings read it (`analyzer.verdict.VerdictReading`'s
    # record), made once at the end of a run so that every renderer shows it as stored.
    verdict: dict[str, Any] | None = None
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    status: str = "running"  # running | complete | interrupted | failed
    out_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "compile-diagnose", "version": tool_version()},
            **to_jsonable(self),
        }

    def to_json(self) -> str:
        return dumps(self.to_dict())

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)
