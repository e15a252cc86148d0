"""Rules: pure functions from recorded probe results (JSON dicts) to findings.

Each family module in this package documents its rules (`RULES`, one `Rule` each, beside the
check that yields its findings). The families over the recorded probes expose
`check(probes: Mapping[str, Any]) -> list[Finding]`, where `probes` is the "probes" section of
`diagnosis.json` (keyed by probe name); `probe_errors` reads the probes that could not finish
instead. Rules read the recorded form, so they run the same on a live diagnosis and on a JSON
fixture, without torch. `RULE_FAMILIES` is the one list of families: `run_rules` runs them and
the catalogue indexes their rules. `analyzer.rules.triage` holds the rules over a parsed
benchmark report instead, with the rule objects of these families.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from analyzer.findings import Finding, rank
from analyzer.rules import (
    benchmark,
    compile,
    compile_time,
    distributed,
    divergence,
    kernels,
    memory,
    probe_errors,
    speed,
)
from analyzer.rules.probe_errors import probe_failed_findings

# The families whose `check(probes)` reads the recorded probes, in the order they run.
RULE_MODULES: tuple[ModuleType, ...] = (
    benchmark,
    compile_time,
    kernels,
    speed,
    compile,
    divergence,
    distributed,
)
# Every family of rules: those above, then the one over probes that could not finish, then the
# memory plan's (skipped probes; an out-of-memory it could not foresee).
RULE_FAMILIES: tuple[ModuleType, ...] = (*RULE_MODULES, probe_errors, memory)


def run_rules(
    probes: Mapping[str, Any],
    probe_errors: Mapping[str, str] | None = None,
    batch_size: int | None = None,
    memory_plan: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """Every finding the recorded probes support, most important first.

    `probe_errors` (probe name -> its error line) adds a finding for each probe that could not
    finish; `batch_size` lets an out-of-memory finding suggest a smaller one; `memory_plan`
    (`diagnosis.json["memory_plan"]`) adds a finding for each probe it skipped.
    """
    findings: list[Finding] = []
    for family in RULE_MODULES:
        findings.extend(family.check(probes))
    findings.extend(probe_failed_findings(probe_errors or {}, batch_size))
    findings.extend(memory.check(memory_plan, probe_errors or {}))
    return rank(findings)
