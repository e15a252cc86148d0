"""Findings for probes that could not finish, and for a compile that raised.

Unlike the other rule families these read more than `probes`: a probe that raised left no result
there, only its error line in `diagnosis.probe_errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analyzer.findings import Finding, Severity, make_finding

OUT_OF_MEMORY = "OutOfMemoryError"


def probe_failed_findings(
    probe_errors: Mapping[str, str], batch_size: int | None = None
) -> list[Finding]:
    return [_probe_failed(probe, error, batch_size) for probe, error in probe_errors.items()]


def _probe_failed(probe: str, error: str, batch_size: int | None) -> Finding:
    evidence: dict[str, Any] = {"probe": probe, "error": error}
    if OUT_OF_MEMORY in error:
        evidence["batch_size"] = batch_size
        smaller = max(1, (batch_size or 2) // 2)
        return make_finding(
            "probe-failed",
            severity=Severity.ERROR,
            confidence="high",
            title=f"The {probe} probe ran out of memory at batch size {batch_size}",
            cause=f"The {probe} probe ran out of memory with batch size {batch_size}: {error}",
            evidence=evidence,
            next_steps=[
                f"rerun with a smaller batch: --batch-size {smaller}",
                "on CUDA, free other processes' memory (nvidia-smi) or use a smaller preset",
            ],
        )
    return make_finding(
        "probe-failed",
        confidence="high",
        title=f"The {probe} probe could not finish",
        cause=f"The {probe} probe raised {error}; the findings it feeds are missing.",
        evidence=evidence,
        next_steps=[
            "rerun with --json to see what the other probes measured",
            "report the error with the diagnosis.json attached if it looks like a tool bug",
        ],
    )


def compilation_failed_findings(probes: Mapping[str, Any]) -> list[Finding]:
    benchmark = probes.get("benchmark") or {}
    error = benchmark.get("compilation_error")
    if not error:
        return []
    entry_point = benchmark.get("compile_error_entry_point")
    compile_settings = benchmark.get("compile") or {}
    return [
        make_finding(
            "compilation-failed",
            confidence="high",
            cause=f"Compiling the {entry_point} entry point raised {error}",
            evidence={
                "entry_point": entry_point,
                "error": error,
                "backend": compile_settings.get("backend"),
                "mode": compile_settings.get("mode"),
                "compile_how": compile_settings.get("how"),
            },
            next_steps=[
                "rerun with --backend aot_eager: if that compiles, the error is Inductor's",
                "TORCH_LOGS=+dynamo,+inductor compile-diagnose ...  # the full compiler log",
                "the graph-break table above still shows what dynamo captured",
            ],
        )
    ]


def check(probes: Mapping[str, Any]) -> list[Finding]:
    return compilation_failed_findings(probes)
