"""Findings as Markdown, for `--markdown` reports: the same content as the terminal view."""

from __future__ import annotations

from collections.abc import Sequence

from analyzer.findings import Finding
from analyzer.render.findings import evidence_rows, impact_rows
from analyzer.render.snippets import snippet_language


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(rows: Sequence[tuple[str, str]], header: tuple[str, str]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {_cell(label)} | {_cell(text)} |" for label, text in rows]
    return "\n".join(lines)


def _fenced(snippet: str) -> str:
    fence = "````" if "```" in snippet else "```"
    return f"{fence}{snippet_language(snippet)}\n{snippet}\n{fence}"


def finding_markdown(finding: Finding, index: int = 1, heading_level: int = 3) -> str:
    hashes = "#" * heading_level
    parts = [
        f"{hashes} {index}. {finding.code} `{finding.name}`: {finding.title}",
        f"**Severity:** {finding.severity.value} · **Confidence:** {finding.confidence}",
        f"**Cause.** {finding.cause}",
    ]
    rows = evidence_rows(finding.evidence) + impact_rows(finding)
    if rows:
        parts.append(_table(rows, ("evidence", "value")))
    if finding.location is not None:
        where = f"**Where:** `{finding.location}`"
        if finding.location.code:
            where += f": `{finding.location.code}`"
        parts.append(where)
    if finding.next_steps:
        parts.append("**Next steps**")
        parts += [_fenced(step) for step in finding.next_steps]
    if finding.measured_fix:
        parts.append("**Measured fix**")
        parts.append(_table(evidence_rows(finding.measured_fix), ("what-if", "measured")))
    return "\n\n".join(parts)


def findings_markdown(findings: Sequence[Finding], heading_level: int = 3) -> str:
    """Every finding, most important first, as Markdown sections (ends with a newline)."""
    ranked = list(findings)  # in the order the rules ranked them
    if not ranked:
        return "No findings.\n"
    sections = [
        finding_markdown(finding, index, heading_level)
        for index, finding in enumerate(ranked, start=1)
    ]
    return "\n\n".join(sections) + "\n"
