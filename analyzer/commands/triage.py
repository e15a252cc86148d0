"""`compile-diagnose triage REPORT`: what a benchmark report's numbers likely mean.

Prints the report's verdict beside the one recomputed from its numbers, then the findings.
`--json PATH|-` writes the verdict and findings as JSON (`-`: standard output, then nothing else
is printed there); `--markdown PATH` writes them as Markdown. Exit status: 0 when no
error-severity finding stands, 1 when one does, 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from analyzer.errors import InputFileError
from analyzer.reference_report import read_report
from analyzer.render.findings import format_value, render_findings
from analyzer.render.findings_markdown import findings_markdown
from analyzer.rules.triage import Criterion, TriageResult, Verdict, triage
from probes.records.serialize import dumps, to_jsonable

SCHEMA_VERSION = 1

_VERDICT_STYLE = {"SUCCESS": "bold green", "NEEDS WORK": "bold red", "UNDECIDED": "bold yellow"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "triage",
        help="explain a LeRobot benchmark report's numbers (e.g. a NEEDS WORK verdict)",
        description="Read a report in the format of LeRobot's policies_compilation benchmark "
        "(Markdown with a Raw Data JSON block, or the JSON alone) and say, from its numbers, "
        "what they likely mean, how sure that is, and which command would confirm it.",
    )
    parser.add_argument("report", metavar="REPORT", type=Path, help="the report file")
    parser.add_argument("--json", metavar="PATH|-", help="write verdict and findings as JSON")
    parser.add_argument("--markdown", metavar="PATH", type=Path, help="write them as Markdown")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    result = triage(read_report(args.report))
    if args.json == "-":
        sys.stdout.write(triage_json(result) + "\n")
    else:
        Console().print(render_triage(result))
        if args.json:
            _write(Path(args.json), triage_json(result) + "\n")
    if args.markdown:
        _write(args.markdown, triage_markdown(result))
    return 1 if result.has_error else 0


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as error:
        raise InputFileError(f"{path}: cannot write it ({error.strerror})") from None


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


def _passed_text(passed: bool | None) -> Text:
    if passed is None:
        return Text("n/a", style="dim")
    return Text("pass", style="green") if passed else Text("FAIL", style="bold red")


def _measured_text(criterion: Criterion) -> str:
    if criterion.measured is None:
        return "not in report"
    if isinstance(criterion.measured, bool):
        return "ok" if criterion.measured else "failed"
    unit = f" {criterion.unit}" if criterion.unit == "abs" else criterion.unit
    return format_value(criterion.measured, unit)


def verdict_table(verdict: Verdict) -> Table:
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
            _passed_text(criterion.reported),
            _passed_text(criterion.passed),
            criterion.note,
        )
    return table


def verdict_line(verdict: Verdict) -> Text:
    return Text.assemble(
        "Report's verdict: ",
        (verdict.reported_label, _VERDICT_STYLE[verdict.reported_label]),
        "   recomputed from its numbers: ",
        (verdict.label, _VERDICT_STYLE[verdict.label]),
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
    parts += [Text(), verdict_line(verdict), verdict_table(verdict)]
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
            _passed_text(criterion.reported).plain,
            _passed_text(criterion.passed).plain,
            criterion.note,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *(f"- Disagreement: {line}" for line in verdict.disagreements)]
    lines += ["## Findings", "", findings_markdown(result.findings)]
    return "\n".join(lines)
