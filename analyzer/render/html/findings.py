"""The findings, most important first, each with its cause, evidence, place and next steps: the
same content as the terminal and Markdown views (`analyzer.render.findings`' evidence rows)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from analyzer.findings import Finding, Severity
from analyzer.render.findings import evidence_rows, impact_rows
from analyzer.render.html.markup import absent, badge, code_block, esc, paragraph, section, table

ANCHOR = "findings"
TITLE = "Findings"
SEVERITY_TONE = {Severity.ERROR: "bad", Severity.WARNING: "warn", Severity.INFO: "info"}


def _head(finding: Finding, index: int) -> str:
    severity = badge(finding.severity.value, SEVERITY_TONE[finding.severity])
    return (
        f'<div class="card-head">{index}. {severity} '
        f"<strong>{esc(finding.code)}</strong> <code>{esc(finding.name)}</code> "
        f'<span class="note">confidence {esc(finding.confidence)}</span></div>'
        f"<h3>{esc(finding.title)}</h3>"
    )


def _text(finding: Finding) -> str:
    """The cause, the place in the user's code, and the next steps to paste."""
    parts = [paragraph(finding.cause)]
    if finding.location is not None:
        parts.append(paragraph(f"Where: {finding.location}"))
        if finding.location.code:
            parts.append(code_block([finding.location.code]))
    if finding.next_steps:
        parts.append("<h4>Next steps</h4>")
        parts += [code_block(step.splitlines()) for step in finding.next_steps]
    return "".join(parts)


def _numbers(finding: Finding) -> str:
    """The evidence (each figure with its unit) and any measured fix, folded: one click away."""
    rows = evidence_rows(finding.evidence) + impact_rows(finding)
    fix = evidence_rows(finding.measured_fix) if finding.measured_fix else []
    if not rows and not fix:
        return ""
    tables = table(("evidence", ""), rows, numeric=()) if rows else ""
    tables += table(("measured fix", ""), fix, numeric=()) if fix else ""
    opened = " open" if finding.severity == Severity.ERROR else ""
    label = f"evidence ({len(rows)} figures)" + (" and the measured fix" if fix else "")
    return f'<details class="numbers"{opened}><summary>{esc(label)}</summary>{tables}</details>'


def finding_card(finding: Finding, index: int) -> str:
    """An error or a warning shows its cause and next steps; one for information is folded."""
    body = _text(finding) + _numbers(finding)
    if finding.severity == Severity.INFO:
        summary = f"<summary>{_head(finding, index)}</summary>"
        return f'<details class="card finding">{summary}{body}</details>'
    return f'<article class="card finding">{_head(finding, index)}{body}</article>'


def findings_section(diagnosis: Mapping[str, Any]) -> str:
    findings: Sequence[Finding] = [Finding.from_record(f) for f in diagnosis.get("findings") or []]
    if not findings:
        return section(ANCHOR, TITLE, absent("No findings: no rule fired on this diagnosis."))
    counts = {s: sum(f.severity == s for f in findings) for s in Severity}
    summary = " ".join(badge(f"{n} {s.value}", SEVERITY_TONE[s]) for s, n in counts.items() if n)
    cards = [finding_card(finding, index) for index, finding in enumerate(findings, start=1)]
    folded = '<p class="note">Findings for information are folded: click one to open it.</p>'
    if not counts[Severity.INFO]:
        folded = ""
    return section(ANCHOR, f"{TITLE} ({len(findings)})", f"<p>{summary}</p>", folded, *cards)
