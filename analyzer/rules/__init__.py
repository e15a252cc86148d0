"""Rules: pure functions from recorded probe results (JSON dicts) to findings.

Each module in this package holds one family of rules and exposes
`check(probes: Mapping[str, Any]) -> list[Finding]`, where `probes` is the "probes" section of
`diagnosis.json` (keyed by probe name). Rules read the recorded form, so they run the same on a
live diagnosis and on a JSON fixture, without torch.
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
    "analyzer.rules.probe_errors",
)


def run_rules(probes: Mapping[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    for module_name in RULE_MODULES:
        findings.extend(importlib.import_module(module_name).check(probes))
    return rank(findings)
