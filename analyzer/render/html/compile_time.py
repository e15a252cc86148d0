"""Compile time: each entry point's first compiled call, its seconds by stage.

Reads `probes["compile_time"]` (`probes.records.compile_time`: per entry point the stages of its
compiles, its cache lookups and its frames; the levers). The bar charges each stage its own
seconds, the stages in the order a compile passes them; the tables are the terminal's rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analyzer.format import seconds
from analyzer.render.compile_time import (
    FRAME_COLUMNS,
    LEVER_COLUMNS,
    cache_line,
    compile_threads_line,
    frame_rows,
    lever_note,
    lever_row,
    stage_label,
    stage_rows,
    title_line,
)
from analyzer.render.html.markup import (
    absent,
    figure,
    missing_probe,
    notes,
    paragraph,
    section,
    subheading,
    table,
)
from analyzer.render.html.plot import INK, figure_legend, new_figure, plotting, svg_markup
from probes.records.compile_time import (
    AOT_AUTOGRAD,
    AUTOTUNE,
    CACHE,
    CODE_GENERATION,
    CPU_ISA_CHECK,
    DYNAMO,
    GRAPH_PASSES,
    KERNEL_COMPILE,
    LOWERING,
)
from probes.records.names import COMPILE_TIME
from probes.records.serialize import as_number

ANCHOR = "compile-time"
TITLE = "Compile time"
STAGE_COLOUR = {
    CPU_ISA_CHECK: "#c7c7c7",
    DYNAMO: "#f2c14e",
    AOT_AUTOGRAD: "#b07aa1",
    GRAPH_PASSES: "#76b7b2",
    LOWERING: "#4e79a7",
    CODE_GENERATION: "#59a14f",
    KERNEL_COMPILE: "#e15759",
    AUTOTUNE: "#ff9da7",
    CACHE: "#9c755f",
}
OTHER_COLOUR = "#bab0ac"
LEGEND_LINE_IN = 0.24


def entries(record: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    recorded = record.get("entry_points") or {}
    return {str(k): v for k, v in recorded.items() if isinstance(v, Mapping) and stage_rows(v)}


def stage_plot(recorded: Mapping[str, Mapping[str, Any]]) -> str:
    """One bar per entry point, a segment per stage, all to one scale of seconds."""
    names = list(recorded)
    stages = {stage for entry in recorded.values() for stage, _ in stage_rows(entry)}
    with plotting():
        # tall enough for the bars, and for the legend beside them (a stage a line)
        fig = new_figure(max(1.5 + 0.6 * len(names), 0.7 + LEGEND_LINE_IN * len(stages)))
        ax = fig.add_subplot()
        seen: set[str] = set()
        for index, name in enumerate(names):  # the first on top; the legend in stage order
            y = len(names) - 1 - index
            left = 0.0
            for stage, value in stage_rows(recorded[name]):
                label = stage_label(stage)
                ax.barh(
                    y,
                    value,
                    left=left,
                    height=0.58,
                    color=STAGE_COLOUR.get(stage, OTHER_COLOUR),
                    edgecolor="white",
                    linewidth=0.8,
                    label=None if label in seen else label,
                )
                seen.add(label)
                left += value
            ax.annotate(
                seconds(recorded[name].get("compile_s"), digits=1),
                xy=(left, y),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=9,
                color=INK,
            )
        ax.set_yticks(range(len(names)), list(reversed(names)))
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.margins(x=0.08)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("seconds of the first compiled call spent compiling")
        ax.set_title("Where each entry point's compile went, by stage", color=INK)
        figure_legend(fig, columns=1, where="outside right upper")
        return svg_markup(fig, ANCHOR)


def _entry_parts(name: str, entry: Mapping[str, Any]) -> list[str]:
    parts = [subheading(title_line(name, entry)), paragraph(cache_line(entry.get("cache")), "note")]
    rows = frame_rows(entry)
    if rows:
        parts.append(table(FRAME_COLUMNS, rows, numeric=(3,)))
    return parts


def compile_time_section(diagnosis: Mapping[str, Any]) -> str:
    record = (diagnosis.get("probes") or {}).get(COMPILE_TIME)
    if not isinstance(record, Mapping) or not record:
        return section(
            ANCHOR, TITLE, missing_probe(diagnosis, COMPILE_TIME, "compile-time figures")
        )
    recorded = entries(record)
    if not recorded:
        return section(
            ANCHOR, TITLE, absent("No compile-time figures: no compile was timed by stage.")
        )
    isa = max((as_number(e.get("cpu_isa_check_s")) or 0.0 for e in recorded.values()), default=0.0)
    caption = (
        "torch's own compile timers, each charged its own time (the timers nested in it apart); "
        + (
            f"the first CPU compile of a process also pays Inductor's CPU check ({seconds(isa)})."
            if isa
            else "no CPU instruction-set check was paid."
        )
    )
    parts = [figure(stage_plot(recorded), caption, ANCHOR)]
    for name, entry in recorded.items():
        parts += _entry_parts(name, entry)
    threads = compile_threads_line(record)
    if threads:
        parts.append(paragraph(threads, "note"))
    levers = [lever for lever in record.get("levers") or [] if isinstance(lever, Mapping)]
    if levers:
        rows = [(str(lever.get("entry_point")), *lever_row(lever)) for lever in levers]
        parts += [
            subheading("Levers on compile time"),
            table(("entry point", *LEVER_COLUMNS), rows, numeric=range(3, 8), names=(1,)),
            notes(
                (f"{row[0]} {row[1]}", lever_note(lever))
                for row, lever in zip(rows, levers, strict=True)
            ),
        ]
    return section(ANCHOR, TITLE, *parts)
