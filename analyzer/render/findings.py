"""Findings as Rich renderables, most important first.

Each finding shows its code, name, severity, confidence, title, cause, evidence (numbers with
their units), location, next steps and any measured fix. Below `WIDE_AT` columns everything is
stacked; from there on the evidence sits beside the text so a wide terminal is not one long line.
Next steps are printed without borders or bullets so that they can be copied and pasted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.padding import Padding
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from analyzer.findings import Finding, Severity, SourceLocation
from analyzer.format import NOT_MEASURED, format_number, plural, times

WIDE_AT = 150  # columns from which evidence is laid out beside the text
PROSE_WIDTH = 100  # the text column on a wide terminal: long lines are hard to read

SEVERITY_STYLE = {
    Severity.ERROR: "bold red",
    Severity.WARNING: "bold yellow",
    Severity.INFO: "cyan",
}
CONFIDENCE_STYLE = {"high": "bold", "medium": "", "low": "dim"}

# Evidence keys carry their unit as a suffix (`time_compiled_inference_ms`); shown as a unit.
_UNIT_SUFFIXES = {
    "_ms": " ms",
    "_us": " µs",
    "_s": " s",
    "_x": "x",
    "_pct": " %",
    "_mib": " MiB",
    "_gib": " GiB",
    "_bytes": " B",
    "_abs": " (absolute)",
    "_rel": " (relative)",
}
# Keys that count something keep the word in the label ("inference runs: 100").
_COUNT_SUFFIXES = (
    "_calls",
    "_runs",
    "_steps",
    "_ops",
    "_graphs",
    "_breaks",
    "_kernels",
    "_frames",
    "_recompiles",
    "_count",
)


def format_value(value: Any, unit: str = "") -> str:
    if value is None:
        return NOT_MEASURED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if unit == "x":
            # "inf x": a bare "inf" beside other ratios would not say what it is
            return times(value) if math.isfinite(value) else f"{format_number(value)} x"
        if unit == " %" and math.isfinite(value):
            return f"{value:.1f} %"
        return format_number(value) + unit
    if isinstance(value, SourceLocation):
        return str(value)
    if isinstance(value, Mapping):
        return "; ".join(f"{label}: {text}" for label, text in evidence_rows(value))
    if isinstance(value, list | tuple):
        return ", ".join(format_value(item, unit) for item in value)
    return str(value)


def format_quantity(key: str, value: Any) -> tuple[str, str]:
    """An evidence entry as (label, value with its unit), the unit read from the key's suffix."""
    if key.endswith("_fraction") and isinstance(value, int | float) and math.isfinite(value):
        return key.removesuffix("_fraction").replace("_", " "), f"{value:.0%}"
    for suffix, unit in _UNIT_SUFFIXES.items():
        if key.endswith(suffix):
            return key.removesuffix(suffix).replace("_", " "), format_value(value, unit)
    if key.endswith(_COUNT_SUFFIXES) and isinstance(value, float) and value.is_integer():
        value = int(value)
    return key.replace("_", " "), format_value(value)


def evidence_rows(evidence: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [format_quantity(str(key), value) for key, value in evidence.items()]


def impact_rows(finding: Finding) -> list[tuple[str, str]]:
    """What the finding explains, unless the evidence already shows that very number."""
    shown = [value for value in finding.evidence.values() if isinstance(value, int | float)]
    rows = []
    if finding.impact_ms is not None and finding.impact_ms not in shown:
        rows.append(("time explained", format_value(finding.impact_ms, " ms") + " per call"))
    if finding.impact_error is not None and finding.impact_error not in shown:
        rows.append(("error explained", format_value(finding.impact_error, " (absolute)")))
    return rows


def _key_value_grid(rows: Sequence[tuple[str, str]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", no_wrap=True, max_width=32)
    grid.add_column(overflow="fold")
    for label, text in rows:
        grid.add_row(label, text)
    return grid


def _heading(text: str) -> Text:
    return Text(text, style="bold")


def _header(finding: Finding, index: int) -> Text:
    confidence_style = CONFIDENCE_STYLE.get(finding.confidence, "")
    return Text.assemble(
        f"{index}. ",
        (finding.severity.value.upper(), SEVERITY_STYLE[finding.severity]),
        "  ",
        (finding.code, "bold"),
        " ",
        (finding.name, "bold magenta"),
        "  confidence: ",
        (finding.confidence, confidence_style),
    )


def _location(location: SourceLocation) -> RenderableType:
    parts: list[RenderableType] = [Text(str(location))]
    if location.code:
        parts.append(Text(location.code, style="dim"))
    return Group(*parts)


def _next_steps(steps: Sequence[str]) -> RenderableType:
    # Plain text, two spaces in, no bullets: what is shown is what gets pasted.
    return Group(*(Text(step, style="green") for step in steps))


def _text_parts(finding: Finding) -> list[RenderableType]:
    parts: list[RenderableType] = [Text(finding.title, style="bold"), Text(finding.cause)]
    if finding.location is not None:
        parts += [_heading("Where"), Padding(_location(finding.location), (0, 0, 0, 2))]
    if finding.next_steps:
        parts += [_heading("Next steps"), Padding(_next_steps(finding.next_steps), (0, 0, 0, 2))]
    return parts


def _number_parts(finding: Finding) -> list[RenderableType]:
    parts: list[RenderableType] = []
    rows = evidence_rows(finding.evidence) + impact_rows(finding)
    if rows:
        parts += [_heading("Evidence"), Padding(_key_value_grid(rows), (0, 0, 0, 2))]
    if finding.measured_fix:
        fix = _key_value_grid(evidence_rows(finding.measured_fix))
        parts += [_heading("Measured fix"), Padding(fix, (0, 0, 0, 2))]
    return parts


class FindingView:
    """One finding; stacked on a narrow terminal, text and numbers side by side on a wide one."""

    def __init__(self, finding: Finding, index: int = 1) -> None:
        self.finding = finding
        self.index = index

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield _header(self.finding, self.index)
        text, numbers = _text_parts(self.finding), _number_parts(self.finding)
        if options.max_width < WIDE_AT or not numbers:
            yield Padding(Group(*text, *numbers), (0, 0, 0, 3))
            return
        grid = Table.grid(padding=(0, 4))
        grid.add_column(width=PROSE_WIDTH)
        grid.add_column(ratio=1)
        grid.add_row(Group(*text), Group(*numbers))
        yield Padding(grid, (0, 0, 0, 3))


class FindingsView:
    """A list of findings in the order given (the rules rank them), with a count line."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)  # ranked by the rules that found them

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield summary_line(self.findings)
        for index, finding in enumerate(self.findings, start=1):
            yield Rule(style="dim")
            yield FindingView(finding, index)


def summary_line(findings: Sequence[Finding]) -> Text:
    if not findings:
        return Text("No findings.", style="bold green")
    counts = {severity: 0 for severity in Severity}
    for finding in findings:
        counts[finding.severity] += 1
    text = Text.assemble((plural(len(findings), "finding"), "bold"), ": ")
    shown = [(severity, n) for severity, n in counts.items() if n]
    for position, (severity, n) in enumerate(shown):
        text.append(f"{n} {severity.value}", style=SEVERITY_STYLE[severity])
        text.append(", " if position < len(shown) - 1 else "")
    text.append(" (most important first)", style="dim")
    return text


def render_findings(findings: Sequence[Finding]) -> FindingsView:
    """The renderable for a list of findings: `Console().print(render_findings(findings))`."""
    return FindingsView(findings)
