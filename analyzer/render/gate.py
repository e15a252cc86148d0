"""The gate's outcome: one line per violated threshold, a table, and the JUnit XML file.

JUnit XML is what CI systems display as test results (GitHub, GitLab, Jenkins): one test
suite, one test case per threshold, a `<failure>` carrying the measured value on each violated
one. Written with the standard library's xml module.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from rich import box
from rich.table import Table
from rich.text import Text

from analyzer.format import NOT_MEASURED, format_number
from analyzer.gate import Check, GateResult

SUITE = "compile-diagnose"
CLASSNAME = "compile-diagnose.fail-on"  # each test case's: the suite's name says what was checked
PASSED = "holds"
VIOLATED = "violated"


def measured_text(check: Check) -> str:
    """The measured value as a reader reads it, then what it counts."""
    value = check.measured.value
    if value is None:
        shown = NOT_MEASURED
    elif isinstance(value, bool):
        shown = "yes" if value else "no"
    else:
        shown = format_number(value)
    detail = check.measured.detail
    return f"{shown}: {detail}" if detail else shown


def violation_lines(result: GateResult) -> list[str]:
    """One line per violated threshold: the threshold and what was measured."""
    return [f"fail-on {c.threshold.text}: measured {measured_text(c)}" for c in result.violations]


def summary_line(result: GateResult) -> str:
    held = len(result.checks) - len(result.violations)
    return f"fail-on ({result.source}): {held} of {len(result.checks)} thresholds hold"


def gate_table(result: GateResult) -> Table:
    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"Gate ({result.source})",
        title_justify="left",
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("threshold", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("measured", overflow="fold")
    for check in result.checks:
        outcome = (
            Text(VIOLATED, style="bold red") if check.violated else Text(PASSED, style="green")
        )
        table.add_row(check.threshold.text, outcome, measured_text(check))
    return table


def gate_markdown(result: GateResult) -> list[str]:
    lines = [f"## Gate ({result.source})", "", "| threshold | | measured |", "|---|---|---|"]
    for check in result.checks:
        cells = [check.threshold.text, VIOLATED if check.violated else PASSED, measured_text(check)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return [*lines, ""]


def gate_record(result: GateResult) -> dict[str, object]:
    """The outcome as JSON: each threshold, its measured value and whether it is violated."""
    return {
        "source": result.source,
        "subject": result.subject,
        "passed": result.passed,
        "checks": [
            {
                "threshold": c.threshold.text,
                "violated": c.violated,
                "measured": c.measured.value,
                "detail": c.measured.detail,
            }
            for c in result.checks
        ],
    }


def junit_xml(results: Sequence[GateResult]) -> str:
    """A JUnit XML document: a suite per gate result, a test case per threshold."""
    root = ET.Element("testsuites", name=SUITE)
    total = failures = 0
    for result in results:
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"{SUITE} fail-on: {result.subject}",
            tests=str(len(result.checks)),
            failures=str(len(result.violations)),
            errors="0",
            skipped="0",
        )
        properties = ET.SubElement(suite, "properties")
        ET.SubElement(properties, "property", name="source", value=result.source)
        for check in result.checks:
            _test_case(suite, check)
        total += len(result.checks)
        failures += len(result.violations)
    root.set("tests", str(total))
    root.set("failures", str(failures))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def _test_case(suite: ET.Element, check: Check) -> None:
    case = ET.SubElement(suite, "testcase", classname=CLASSNAME, name=check.threshold.text)
    measured = measured_text(check)
    if check.violated:
        failure = ET.SubElement(
            case, "failure", message=f"measured {measured}", type="threshold-violated"
        )
        failure.text = f"{check.threshold.text} is violated: measured {measured}"
    ET.SubElement(case, "system-out").text = f"measured {measured}"
