"""A comparison of two diagnoses as Rich renderables, Markdown and JSON.

The sections and their cells come from `comparison_rows`, so the terminal and the Markdown
read the same; the JSON is the `Comparison` record itself, with the gate's outcome when one ran.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from analyzer.comparison.changes import ADDED, APPEARED, DISAPPEARED, FIXED, UNCHANGED, Comparison
from analyzer.comparison.speed import FASTER, NOISE, SLOWER
from analyzer.gate import GateResult
from analyzer.render.comparison_rows import CALL_TEXT, Section, header_lines, sections
from analyzer.render.gate import gate_markdown, gate_record, gate_table
from analyzer.render.markdown_table import markdown_table
from probes.records.serialize import dumps, to_jsonable

SCHEMA_VERSION = 1  # of the JSON document `comparison_document` writes

CELL_STYLE = {
    FIXED: "green",
    ADDED: "bold red",
    UNCHANGED: "dim",
    APPEARED: "yellow",
    DISAPPEARED: "green",
    CALL_TEXT[FASTER]: "green",
    CALL_TEXT[SLOWER]: "bold red",
    CALL_TEXT[NOISE]: "dim",
    "FAIL": "red",
}


def comparison_document(comparison: Comparison, gate: GateResult | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {"schema_version": SCHEMA_VERSION, **to_jsonable(comparison)}
    if gate is not None:
        document["gate"] = to_jsonable(gate_record(gate))
    return document


def comparison_json(comparison: Comparison, gate: GateResult | None = None) -> str:
    return dumps(comparison_document(comparison, gate))


def _table(section: Section) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in section.columns:
        table.add_column(column, overflow="fold")
    for row in section.rows:
        table.add_row(*(Text(cell, style=CELL_STYLE.get(cell, "")) for cell in row))
    return table


def comparison_view(comparison: Comparison, gate: GateResult | None = None) -> Group:
    parts: list[Any] = [
        Text(line, style="bold" if i < 2 else "yellow")
        for i, line in enumerate(header_lines(comparison))
    ]
    for section in sections(comparison):
        parts.append(Text.assemble("\n", (section.title, "bold"), ("  " + section.summary, "dim")))
        if section.rows:
            parts.append(_table(section))
    if gate is not None:
        parts += [Text(), gate_table(gate)]
    return Group(*parts)


def comparison_markdown(comparison: Comparison, gate: GateResult | None = None) -> str:
    before, after = comparison.before.source, comparison.after.source
    lines = [f"# {before} -> {after}", ""]
    lines += [f"- {line}" for line in header_lines(comparison)]
    lines.append("")
    for section in sections(comparison):
        lines += [f"## {section.title}", ""]
        if section.summary:
            lines += [section.summary[0].upper() + section.summary[1:] + ".", ""]
        if section.rows:
            lines += markdown_table(section.columns, section.rows)
    if gate is not None:
        lines += gate_markdown(gate)
    return "\n".join(lines)
