"""The graph breaks, each with its source line, and the recompiles with the guard that failed.

Reads `probes["graph_breaks"]` (schema in `probes.records.compile`): per entry point its graphs
and breaks (each at one line of the user's code, with torch's explanation, hints and page), the
fullgraph check, and the recompile scenarios.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analyzer.format import MISSING, count, plural, short_path
from analyzer.render.html.markup import (
    absent,
    code_block,
    esc,
    missing_probe,
    paragraph,
    section,
    subheading,
    table,
)
from probes.records.compile import (
    CATEGORY_LABELS,
    FULLGRAPH_KEY,
    RECOMPILES_KEY,
    entry_point_reports,
)
from probes.records.names import GRAPH_BREAKS

ANCHOR = "graph-breaks"
TITLE = "Graph breaks"
RECOMPILE_COLUMNS = ("entry point", "scenario", "compile", "failing guard", "guarded line")


def where(location: Mapping[str, Any] | None) -> str:
    if not location:
        return MISSING
    text = f"{short_path(str(location.get('filename')))}:{location.get('lineno')}"
    return f"{text} in {location['function']}" if location.get("function") else text


def summary_line(name: str, report: Mapping[str, Any], fullgraph: Mapping[str, Any] | None) -> str:
    ops = ", ".join(str(n) for n in report.get("ops_per_graph") or []) or "none"
    line = (
        f"{name}: {plural(int(report.get('graph_count') or 0), 'graph')} ({ops} ops), "
        f"{plural(int(report.get('break_count') or 0), 'break')}"
    )
    if fullgraph is not None:
        verdict = "compiles" if fullgraph.get("compiles") else f"fails ({fullgraph.get('error')})"
        line += f"; fullgraph=True {verdict}"
    return line


def break_card(name: str, index: int, brk: Mapping[str, Any]) -> str:
    """One break: where, its source line, why, and what torch says to do."""
    location = brk.get("location") or {}
    category = CATEGORY_LABELS.get(str(brk.get("category")), str(brk.get("category")))
    facts = (
        f"{category} · {plural(int(brk.get('hits') or 0), 'hit')} · "
        f"{count(brk.get('ops_before'))} ops before, {count(brk.get('ops_after'))} after"
    )
    gb = esc(brk.get("gb_id") or "")
    if brk.get("doc_url"):
        gb = f'<a href="{esc(brk["doc_url"])}">{gb or "torch&#x27;s page"}</a>'
    parts = [
        f'<div class="card"><div class="card-head">{esc(name)} break {index}: '
        f"<strong>{esc(where(location))}</strong> {gb}</div>",
        code_block([str(location["code"])]) if location.get("code") else "",
        paragraph(str(brk.get("reason") or MISSING)),
        paragraph(facts, "note"),
    ]
    if brk.get("explanation"):
        parts.append(paragraph(str(brk["explanation"]), "note"))
    hints = brk.get("hints") or []
    if hints:
        parts.append("<ul>" + "".join(f"<li>{esc(h)}</li>" for h in hints) + "</ul>")
    stack = [s for s in brk.get("user_stack") or [] if isinstance(s, Mapping)]
    if len(stack) > 1:
        lines = [f"{where(frame)}: {frame.get('code') or ''}" for frame in stack]
        summary = f"<summary>user stack ({len(stack)} frames)</summary>"
        parts.append(f"<details>{summary}{code_block(lines)}</details>")
    parts.append("</div>")
    return "".join(part for part in parts if part)


def recompile_rows(record: Mapping[str, Any]) -> list[tuple[str, ...]]:
    rows = []
    for name, report in (record.get(RECOMPILES_KEY) or {}).items():
        for scenario in report.get("scenarios") or []:
            for recompile in scenario.get("recompiles") or []:
                location = recompile.get("location") or {}
                guarded = where(location) + (
                    f": {location['code']}" if location.get("code") else ""
                )
                rows.append(
                    (
                        str(name),
                        str(scenario.get("name")),
                        str(recompile.get("compile_id") or MISSING),
                        str(recompile.get("guard") or MISSING),
                        guarded if location else MISSING,
                    )
                )
    return rows


def graph_breaks_section(diagnosis: Mapping[str, Any]) -> str:
    record = (diagnosis.get("probes") or {}).get(GRAPH_BREAKS)
    if not isinstance(record, Mapping) or not record:
        return section(ANCHOR, TITLE, missing_probe(diagnosis, GRAPH_BREAKS, "graph-break figures"))
    reports = entry_point_reports(record)
    fullgraph = record.get(FULLGRAPH_KEY) or {}
    parts = [
        "<ul>"
        + "".join(
            f"<li>{esc(summary_line(n, r, fullgraph.get(n)))}</li>" for n, r in reports.items()
        )
        + "</ul>"
    ]
    cards = [
        break_card(name, index, brk)
        for name, report in reports.items()
        for index, brk in enumerate(report.get("breaks") or [], start=1)
        if isinstance(brk, Mapping)
    ]
    parts += cards or [absent("No graph breaks were found.")]
    recompiles = recompile_rows(record)
    if recompiles:
        parts += [subheading("Recompiles"), table(RECOMPILE_COLUMNS, recompiles, numeric=())]
    return section(ANCHOR, TITLE, *parts)
