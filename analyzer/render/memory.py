"""The memory plan, for the terminal and the Markdown report: what each probe holds at once,
against the memory available, and the probes skipped.

Reads `diagnosis.json["memory_plan"]` (`probes/records/memory.py`). In full (a table, one row per
probe) when a probe was skipped or the budget was stated; otherwise one line. Nothing here
decides: which probes ran and why is the plan's, what it means for the diagnosis the findings'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from analyzer.format import byte_size, percent
from analyzer.render.markdown_table import markdown_table
from probes.records.memory import SKIP_REASONS, SOURCE_BUDGET, SOURCE_LABELS, SOURCE_UNKNOWN

COLUMNS = ("probe", "its own", "kept before it", "at once", "runs")


def shown_in_full(plan: Mapping[str, Any]) -> bool:
    """A table when a probe was skipped or the budget was stated; one line otherwise."""
    skipped = any(not e.get("runs", True) for e in plan.get("probes") or [])
    return skipped or plan.get("source") == SOURCE_BUDGET


def summary_line(plan: Mapping[str, Any]) -> str:
    footprint = plan.get("footprint") or {}
    model = (footprint.get("parameter_bytes") or 0) + (footprint.get("buffer_bytes") or 0)
    head = (
        f"memory plan: model {footprint.get('parameter_count', 0):,} parameters in "
        f"{plan.get('dtype')}, {byte_size(model)}; "
    )
    source = str(plan.get("source"))
    if source == SOURCE_UNKNOWN:
        return head + "free memory unknown: no plan, every probe runs"
    label = SOURCE_LABELS.get(source, source)
    return head + (
        f"{byte_size(plan.get('available_bytes'))} available ({label}), "
        f"{byte_size(plan.get('usable_bytes'))} for the probes "
        f"({percent(plan.get('reserve_fraction'))} kept for activations and the allocator); "
        f"the most a probe holds at once {byte_size(plan.get('required_bytes'))}"
    )


def _runs(entry: Mapping[str, Any]) -> str:
    if entry.get("runs", True):
        return "yes"
    return f"skipped: {SKIP_REASONS.get(str(entry.get('skipped')), entry.get('skipped'))}"


def _row(entry: Mapping[str, Any]) -> tuple[str, ...]:
    own, kept = entry.get("needed_bytes") or 0, entry.get("resident_bytes") or 0
    return (
        str(entry.get("probe")),
        byte_size(own),
        byte_size(kept),
        byte_size(own + kept),
        _runs(entry),
    )


def memory_plan_view(plan: Mapping[str, Any] | None) -> RenderableType | None:
    """The plan for the terminal; None when no plan was recorded."""
    if not plan:
        return None
    line = Text(summary_line(plan), style="dim" if not shown_in_full(plan) else "")
    if not shown_in_full(plan):
        return line
    table = Table(title="Memory plan", box=box.SIMPLE_HEAD, title_justify="left")
    for column in COLUMNS:
        table.add_column(column, justify="right" if column not in ("probe", "runs") else "left")
    for entry in plan.get("probes") or []:
        style = None if entry.get("runs", True) else "yellow"
        table.add_row(*_row(entry), style=style)
    return Group(line, table)


def memory_plan_markdown(plan: Mapping[str, Any] | None) -> list[str]:
    """The plan's section of the Markdown report; no lines when no plan was recorded."""
    if not plan:
        return []
    lines = ["## Memory Plan", "", summary_line(plan).removeprefix("memory plan: "), ""]
    if shown_in_full(plan):
        lines += markdown_table(COLUMNS, [_row(e) for e in plan.get("probes") or []])
    return lines
