"""Rich renderables for the graph-break probe: graphs per entry point, breaks, recompiles.

They read the recorded section (`probes["graph_breaks"]`, see `probes.records.compile`), so a
live run and a `diagnosis.json` read back render alike. Below `WIDE_AT` columns each table
folds its columns into two (where, what) so that nothing is cut at 80 columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from analyzer.format import MISSING, count, plural, seconds, short_path
from probes.records.compile import (
    CATEGORY_LABELS,
    FULLGRAPH_KEY,
    RECOMPILES_KEY,
    entry_point_reports,
)
from probes.records.serialize import to_jsonable

WIDE_AT = 120  # columns from which every field has its own column


def _record(value: Any) -> Any:
    """The recorded (JSON) form, whether given the section as recorded or with dataclasses."""
    return to_jsonable(value)


def _where(location: Mapping[str, Any] | None) -> Text:
    if not location:
        return Text(MISSING)
    text = Text(f"{short_path(str(location.get('filename')))}:{location.get('lineno')}")
    if location.get("function"):
        text.append(f" in {location['function']}", style="dim")
    if location.get("code"):
        text.append(f"\n{location['code']}", style="dim")
    return text


def summary_lines(section: Mapping[str, Any]) -> Text:
    """One line per entry point: graphs, ops, breaks, and whether fullgraph compiles."""
    fullgraph = section.get(FULLGRAPH_KEY) or {}
    text = Text()
    for name, report in entry_point_reports(section).items():
        ops = report.get("ops_per_graph") or []
        text.append(f"{name}: ", style="bold")
        text.append(
            f"{plural(int(report.get('graph_count') or 0), 'graph')} "
            f"({', '.join(str(n) for n in ops) or 'none'} ops), "
            f"{plural(int(report.get('break_count') or 0), 'break')}, "
            f"explain took {seconds(report.get('seconds') or 0)}"
        )
        result = fullgraph.get(name)
        if result is not None:
            verdict = "compiles" if result.get("compiles") else f"fails: {result.get('error')}"
            text.append(f"; fullgraph=True {verdict}")
        text.append("\n")
    text.rstrip()
    return text


class GraphBreakTable:
    """Every distinct graph break: entry point, category, location, reason, hits, GB id."""

    def __init__(self, section: Mapping[str, Any]) -> None:
        self.rows = [
            (name, brk)
            for name, report in entry_point_reports(_record(section)).items()
            for brk in report.get("breaks") or []
        ]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.rows:
            yield Text("No graph breaks.", style="green")
            return
        wide = options.max_width >= WIDE_AT
        table = Table(title="Graph breaks", box=box.SIMPLE_HEAD, title_justify="left", expand=True)
        if wide:
            table.add_column("entry point", no_wrap=True)
            table.add_column("category", no_wrap=True)
            table.add_column("location", ratio=2, overflow="fold")
            table.add_column("reason", ratio=2, overflow="fold")
            table.add_column("hits", justify="right", no_wrap=True)
            table.add_column("ops before / after", justify="right", no_wrap=True)
            table.add_column("GB id", no_wrap=True)
        else:
            # the path is the longest word: give it the room so it does not fold
            table.add_column("where", ratio=3, overflow="fold")
            table.add_column("what", ratio=2, overflow="fold")
        for name, brk in self.rows:
            category = CATEGORY_LABELS.get(str(brk.get("category")), str(brk.get("category")))
            reason = Text(str(brk.get("reason") or MISSING))
            ops = f"{count(brk.get('ops_before'))} / {count(brk.get('ops_after'))} ops"
            if wide:
                table.add_row(
                    name,
                    category,
                    _where(brk.get("location")),
                    reason,
                    str(brk.get("hits")),
                    ops,
                    brk.get("gb_id") or MISSING,
                )
            else:
                where = Text(f"{name}\n", style="bold") + _where(brk.get("location"))
                what = Text(f"{category}, {plural(int(brk.get('hits') or 0), 'hit')}")
                what.append(f", {brk['gb_id']}" if brk.get("gb_id") else "")
                what.append(f"\n{ops}\n", style="dim")
                table.add_row(where, what + reason)
        yield table


class RecompileTable:
    """Every recompile of every scenario, with the guard that failed."""

    def __init__(self, section: Mapping[str, Any]) -> None:
        recompiles = (_record(section).get(RECOMPILES_KEY) or {}).items()
        self.reports = [(str(name), report) for name, report in recompiles]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.reports:
            return
        wide = options.max_width >= WIDE_AT
        table = Table(title="Recompiles", box=box.SIMPLE_HEAD, title_justify="left", expand=True)
        if wide:
            table.add_column("entry point", no_wrap=True)
            table.add_column("scenario", ratio=1, overflow="fold")
            table.add_column("compile", no_wrap=True)
            table.add_column("failing guard", ratio=2, overflow="fold")
            table.add_column("guarded line", ratio=2, overflow="fold")
            table.add_column("limit hit", no_wrap=True)
        else:
            table.add_column("scenario", ratio=1, overflow="fold")
            table.add_column("failing guard", ratio=2, overflow="fold")
        for name, report in self.reports:
            for scenario in report.get("scenarios") or []:
                for row in _scenario_rows(name, scenario, wide):
                    table.add_row(*row)
        limit = report_limits(self.reports)
        yield Group(table, Text(limit, style="dim")) if limit else table


def _scenario_rows(
    name: str, scenario: Mapping[str, Any], wide: bool
) -> list[Sequence[RenderableType]]:
    label = str(scenario.get("name"))
    if scenario.get("error"):
        message = Text(f"scenario failed: {scenario['error']}", style="red")
        return [(name, label, MISSING, message, "", "")] if wide else [(label, message)]
    recompiles = scenario.get("recompiles") or []
    if not recompiles:
        none = Text("no recompile", style="green")
        return [(name, label, MISSING, none, "", "")] if wide else [(label, none)]
    rows: list[Sequence[RenderableType]] = []
    for recompile in recompiles:
        limit = Text("yes", style="bold red") if recompile.get("limit_hit") else Text("no")
        guard = Text(str(recompile.get("guard")))
        if wide:
            where = _where(recompile.get("location"))
            compile_id = str(recompile.get("compile_id") or MISSING)
            rows.append((name, label, compile_id, guard, where, limit))
        else:
            where = _where(recompile.get("location")) if recompile.get("location") else Text()
            head = Text(f"{name}: {label}\n", style="bold") + Text(
                f"compile {recompile.get('compile_id')}", style="dim"
            )
            if recompile.get("limit_hit"):
                head.append(", limit hit", style="bold red")
            rows.append((head, guard + Text("\n") + where if where.plain else guard))
    return rows


def report_limits(reports: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """A note for each report that reached the recompile limit."""
    notes = [
        f"{name}: {report.get('function')} reached torch._dynamo.config.recompile_limit "
        f"({report.get('recompile_limit')}); calls no cache entry matches now run eagerly."
        for name, report in reports
        if report.get("limit_hit")
    ]
    return "\n".join(notes)


def graph_breaks_view(section: Mapping[str, Any]) -> Group:
    """Everything the probe recorded: `Console().print(graph_breaks_view(section))`."""
    section = _record(section)
    return Group(summary_lines(section), GraphBreakTable(section), RecompileTable(section))
