"""Findings for probes that could not finish (a compile that raised is `rules/compile.py`'s).

Unlike the other rule families this one does not read `probes`: a probe that raised left no
result there, only its error line in `diagnosis.probe_errors`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analyzer.findings import Finding, Rule, Severity, code_block, make_finding, prose

# --- the rules of this family, documented beside their checks --------------------

PROBE_FAILED = Rule(
    code="CD501",
    name="probe-failed",
    title="A probe could not finish",
    default_severity=Severity.WARNING,
    what_it_does="Reports a probe that raised, with the first line of its error, while the "
    "other probes went on.",
    why_it_matters=prose(
        "The findings that need that probe's measurements are missing from the diagnosis: a",
        "diagnosis that looks clean may only be incomplete.",
    ),
    example=code_block(
        """
        # kernel-timing probe at batch 64 on a 24 GB GPU:
        # torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB
        """
    ),
    use_instead=code_block(
        """
        compile-diagnose act --batch-size 8  # a batch that fits, or skip that probe
        """
    ),
)

RULES: tuple[Rule, ...] = (PROBE_FAILED,)


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
            PROBE_FAILED,
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
        PROBE_FAILED,
        confidence="high",
        title=f"The {probe} probe could not finish",
        cause=f"The {probe} probe raised {error}; the findings it feeds are missing.",
        evidence=evidence,
        next_steps=[
            "rerun with --json to see what the other probes measured",
            "report the error with the diagnosis.json attached if it looks like a tool bug",
        ],
    )
