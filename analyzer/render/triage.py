"""A triaged benchmark report as Rich renderables, Markdown and JSON.

Shows the report's verdict beside the one recomputed from its numbers, each reference criterion
with the findings that explain its figure, any disagreement, then the findings. Decides nothing:
everything shown is in the `TriageResult`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from analyzer.render.benchmark import criterion_figure
from analyzer.render.findings import render_findings
from analyzer.render.findings_markdown import findings_markdown
from analyzer.render.verdicts import VERDICT_STYLE, passed_text
from analyzer.rules.triage import RecomputedVerdict, ReportedCriterion, TriageResult
from probes.records.serialize import dumps, to_jsonable

SCHEMA_VERSION = 1  # of the JSON document `triage_document` writes

NOT_IN_REPORT = "not in report"  # a figure the report lacks
NOT_STATED = "n/a"  # a pass or fail the report does not state, or that its numbers cannot decide


def triage_document(result: TriageResult) -> dict[str, Any]:
    """The JSON document: schema version, the report as read, the verdict, the findings."""
    verdict = result.verdict
    return {
        "schema_version": SCHEMA_VERSION,
        "report": to_jsonable(result.report),
        "verdict": {
            "reported": verdict.reported_label,
            "recomputed": verdict.label,
            "criteria": to_jsonable(verdict.criteria),
            "disagreements": verdict.disagreements,
        },
        "findings": to_jsonable(result.findings),
    }


def triage_json(result: TriageResult) -> str:
    return dumps(triage_document(result))


def _measured_text(criterion: ReportedCriterion) -> str:
    return criterion_figure(asdict(criterion), missing=NOT_IN_REPORT)


def verdict_table(verdict: RecomputedVerdict) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD,
        title="Reference criteria",
        title_justify="left",
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("criterion", no_wrap=True)
    table.add_column("measured", no_wrap=True)
    table.add_column("needs", no_wrap=True)
    table.add_column("report", no_wrap=True)
    table.add_column("recomputed", no_wrap=True)
    table.add_column("see", min_width=5)
    for criterion in verdict.criteria:
        table.add_row(
            criterion.name,
            _measured_text(criterion),
            criterion.requirement,
            passed_text(criterion.reported, NOT_STATED),
            passed_text(criterion.passed, NOT_STATED),
            criterion.note,
        )
    return table


def verdicts_line(verdict: RecomputedVerdict) -> Text:
    """The report's verdict and the recomputed one, side by side."""
    return Text.assemble(
        "Report's verdict: ",
        (verdict.reported_label, VERDICT_STYLE[verdict.reported_label]),
        "   recomputed from its numbers: ",
        (verdict.label, VERDICT_STYLE[verdict.label]),
    )


def _report_line(result: TriageResult) -> Text:
    report = result.report
    facts = [
        report.policy or "unknown policy",
        report.device or "unknown device",
        f"torch {report.pytorch_version}" if report.pytorch_version else "",
        f"batch {report.batch_size}" if report.batch_size else "",
    ]
    line = Text.assemble(("Triage of ", "bold"), (report.source, "bold"), ": ")
    line.append(", ".join(fact for fact in facts if fact))
    return line


def render_triage(result: TriageResult) -> Group:
    verdict = result.verdict
    parts: list[Any] = [_report_line(result)]
    if result.report.missing or result.report.malformed:
        absent = ", ".join(result.report.missing + result.report.malformed)
        parts.append(Text(f"Not in the report or unreadable: {absent}", style="yellow"))
    parts += [Text(), verdicts_line(verdict), verdict_table(verdict)]
    parts += [Text(f"Disagreement: {line}", style="yellow") for line in verdict.disagreements]
    parts.append(
        Text(
            "\nWhat the numbers likely mean, from the report alone; each finding names the "
            "command that would confirm it.",
            style="dim",
        )
    )
    parts.append(render_findings(result.findings))
    return Group(*parts)


def triage_markdown(result: TriageResult) -> str:
    verdict = result.verdict
    lines = [
        f"# Triage of {result.report.source}",
        "",
        f"Report's verdict: **{verdict.reported_label}**; "
        f"recomputed from its numbers: **{verdict.label}**.",
        "",
        "| criterion | measured | needs | report | recomputed | see |",
        "|---|---|---|---|---|---|",
    ]
    for criterion in verdict.criteria:
        cells = [
            criterion.name,
            _measured_text(criterion),
            criterion.requirement,
            passed_text(criterion.reported, NOT_STATED).plain,
            passed_text(criterion.passed, NOT_STATED).plain,
            criterion.note,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *(f"- Disagreement: {line}" for line in verdict.disagreements)]
    if verdict.disagreements:
        lines.append("")
    lines += ["## Findings", "", findings_markdown(result.findings)]
    return "\n".join(lines)
