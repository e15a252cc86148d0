"""A diagnosis: the record of one run, written to disk as it grows.

`Diagnosis` holds everything a run measured and concluded. `DiagnosisWriter` writes
`diagnosis.json` after every probe, so an interruption or a later failure loses nothing that was
measured. The orchestration of probes for a target lives in `analyzer.runner.run`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer.findings import Finding
from probes.records.serialize import dumps, to_jsonable, write_json_atomic

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
    target: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    compile_settings: dict[str, Any] = field(default_factory=dict)
    probes: dict[str, Any] = field(default_factory=dict)  # probe name -> recorded JSON result
    probe_errors: dict[str, str] = field(default_factory=dict)  # probe name -> first line
    reference_metrics: dict[str, Any] | None = None  # the reference report's Raw Data keys
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


class DiagnosisWriter:
    """Keeps `<out>/diagnosis.json` equal to the diagnosis after every change."""

    def __init__(self, diagnosis: Diagnosis, out_dir: Path | None) -> None:
        self.diagnosis = diagnosis
        self.out_dir = out_dir
        if out_dir is not None:
            diagnosis.out_dir = str(out_dir)

    @property
    def path(self) -> Path | None:
        return None if self.out_dir is None else self.out_dir / DIAGNOSIS_FILE

    def save(self) -> None:
        if self.path is not None:
            write_json_atomic(self.path, self.diagnosis.to_dict())

    def record_probe(self, name: str, result: Any) -> None:
        self.diagnosis.probes[name] = to_jsonable(result)
        self.save()

    def record_error(self, name: str, message: str) -> None:
        self.diagnosis.probe_errors[name] = message
        self.save()


class PhaseClock:
    """Seconds spent per phase of a diagnosis (compile, timing, profiling, ...)."""

    def __init__(self, diagnosis: Diagnosis) -> None:
        self.diagnosis = diagnosis
        self.started = time.perf_counter()

    def add(self, phase: str, seconds: float) -> None:
        self.diagnosis.phase_seconds[phase] = self.diagnosis.phase_seconds.get(phase, 0.0) + seconds

    def total(self) -> float:
        return time.perf_counter() - self.started
