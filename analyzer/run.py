"""Run the probes on a target, in an order that keeps each measurement honest and cheap.

Order matters: explain-style probes reset dynamo, so they run before anything timed is compiled;
the benchmark probe compiles each entry point once and later probes reuse its compiled copies.
Each probe's result is recorded as soon as it exists; a probe that raises is recorded as an error
and the others still run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from analyzer.diagnosis import Diagnosis, DiagnosisWriter, PhaseClock
from analyzer.rules import run_rules
from probes.benchmark import BenchmarkProbe, BenchmarkSettings
from probes.environment import current_environment
from probes.errors import first_line
from probes.serialize import to_jsonable
from probes.target import CompileSettings, Target

Progress = Callable[[str], None]


class DiagnosisRun:
    def __init__(
        self,
        target: Target,
        compile_settings: CompileSettings,
        benchmark_settings: BenchmarkSettings,
        diagnosis: Diagnosis,
        out_dir: Path | None,
        progress: Progress = lambda _: None,
    ) -> None:
        self.target = target
        self.compile_settings = compile_settings
        self.benchmark_settings = benchmark_settings
        self.diagnosis = diagnosis
        self.writer = DiagnosisWriter(diagnosis, out_dir)
        self.clock = PhaseClock(diagnosis)
        self.progress = progress
        self.benchmark: BenchmarkProbe | None = None

    def run(self) -> Diagnosis:
        diagnosis = self.diagnosis
        diagnosis.target = to_jsonable(self.target.description)
        diagnosis.environment = to_jsonable(current_environment(self.target.device))
        diagnosis.compile_settings = self.compile_settings.describe()
        diagnosis.notes.extend(self.target.notes)
        self.writer.save()
        try:
            # RNG state is global: give it back as it was, whatever the probes seeded.
            with torch.random.fork_rng(devices=self._cuda_devices()):
                self._probe("benchmark", self._run_benchmark)
            diagnosis.status = "complete"
        except KeyboardInterrupt:
            diagnosis.status = "interrupted"
            raise
        finally:
            self.conclude()
        return diagnosis

    def conclude(self) -> None:
        """Findings from whatever was measured; then the final write."""
        self.diagnosis.findings = run_rules(self.diagnosis.probes)
        self.diagnosis.phase_seconds["total"] = self.clock.total()
        self.writer.save()

    def _cuda_devices(self) -> list[int]:
        device = self.target.device
        return [device.index or 0] if device.type == "cuda" else []

    def _probe(self, name: str, measure: Callable[[], Any]) -> None:
        started = time.perf_counter()
        try:
            measure()
        except Exception as error:  # one probe failing must not lose the others
            self.writer.record_error(name, f"{type(error).__name__}: {first_line(error)}")
        finally:
            self.clock.add(name, time.perf_counter() - started)

    def _run_benchmark(self) -> None:
        probe = BenchmarkProbe(
            self.target, self.compile_settings, self.benchmark_settings, on_phase=self._phase
        )
        self.benchmark = probe
        try:
            probe.run()
        finally:
            self.writer.record_probe("benchmark", probe.result)
            self.diagnosis.reference_metrics = to_jsonable(probe.result.reference_metrics())
            self.writer.save()

    def _phase(self, text: str) -> None:
        self.progress(text)
        self.writer.save()
