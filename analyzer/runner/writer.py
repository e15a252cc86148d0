"""Keeping `<out>/diagnosis.json` equal to the diagnosis as it grows, and the time each phase took.

The file is rewritten after every probe, so an interruption or a later failure loses nothing that
was measured.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from analyzer.diagnosis import DIAGNOSIS_FILE, Diagnosis
from probes.records.serialize import to_jsonable, write_json_atomic

REPORT_HTML = "report.html"  # the self-contained HTML report, beside diagnosis.json


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


def write_html_report(
    diagnosis: Mapping[str, Any], path: Path, diagnosis_dir: Path | None = None
) -> Path:
    """Render a stored diagnosis (`diagnosis.json`'s content) as the HTML report at `path`.

    `diagnosis_dir` is the folder that holds the diagnosis's files now (the report's own folder
    when None): the report links to its traces and tlparse reports relative to itself.
    """
    from analyzer.render.html import report_html  # matplotlib loads when a report is written

    base = "" if diagnosis_dir is None else os.path.relpath(diagnosis_dir, path.parent)
    page = report_html(diagnosis, base="" if base == os.curdir else Path(base).as_posix())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
