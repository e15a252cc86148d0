"""Rules: pure functions from recorded probe results (JSON dicts) to findings.

Each family module in this package documents its rules (`RULES`, one `Rule` each, beside the
check that yields its findings) and exposes `check(probes: Mapping[str, Any]) -> list[Finding]`,
where `probes` is the "probes" section of `diagnosis.json` (keyed by probe name). Rules read the
recorded form, so they run the same on a live diagnosis and on a JSON fixture, without torch.
`analyzer.rules.triage` holds the rules over a parsed benchmark report instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from analyzer.findings import Finding, rank

RULE_MODULES: tuple[str, ...] = (
    "analyzer.rules.benchmark",
    "analyzer.rules.kernels",
    "analyzer.rules.compile",
    "analyzer.rules.divergence",
)


def run_rules(
    probes: Mapping[str, Any],
    probe_errors: Mapping[str, str] | None = None,
    batch_size: int | None = None,
) -> list[Finding]:
    """Every finding the recorded probes support, most important first.

    `probe_errors` (probe name -> its error line) adds a finding for each probe that could not
    finish; `batch_size` lets an out-of-memory finding suggest a smaller one.
    """
    from analyzer.rules.probe_errors import probe_failed_findings

    findings: list[Finding] = []
    for module_name in RULE_MODULES:
        findings.extend(importlib.import_module(module_name).check(probes))
    findings.extend(probe_failed_findings(probe_errors or {}, batch_size))
    return rank(findings)
