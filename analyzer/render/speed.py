"""Rich renderables and Markdown for the speed record: where a call's time goes, what each
what-if compile gave, and the recommendation.

Reads what `diagnosis.json` stores: `probes["speed"]` (per entry point, the time attribution of a
profiled eager and compiled call, the graph-break gaps and the ceiling), `probes["what_ifs"]` and
the `recommendation` the rules made (`analyzer.rules.speed.recommend`); its schema is
`probes/records/speed.py`. Nothing here decides: which what-if is best, and why none helps, are
the recommendation's words, shown as stored. The bars draw each category with its own colour and
its own character, so that they read in a terminal without colour and in a copied text too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from analyzer.format import (
    MISSING,
    count,
    ms,
    percent,
    seconds,
    short_path,
    speedup_range,
    times,
)
from analyzer.render.bars import append_segments
from analyzer.render.grouping import by_entry_point
from analyzer.render.markdown_table import markdown_table
from analyzer.render.verdicts import passed_text
from analyzer.rules.speed import paste_lines
from probes.records.names import COMPILED, EAGER, SPEED, SPEED_WHAT_IFS
from probes.records.serialize import as_number
from probes.records.speed import (
    CATEGORIES,
    CATEGORY_LABELS,
    DEVICE_IDLE,
    FRAMEWORK_OVERHEAD,
    GENERATED_KERNELS,
    LIBRARY_KERNELS,
    OUTSIDE_COMPILED,
    WHAT_IF_FAILED,
    WHAT_IF_MEASURED,
)
from probes.records.speed import WHAT_IFS as WHAT_IF_ORDER

# Columns of the longer of an entry point's two bars; the shorter is drawn to the same scale.
BAR_WIDTH = 48
CATEGORY_STYLE = {
    LIBRARY_KERNELS: "blue",
    GENERATED_KERNELS: "green",
    OUTSIDE_COMPILED: "red",
    FRAMEWORK_OVERHEAD: "yellow",
    DEVICE_IDLE: "bright_black",
}
CATEGORY_GLYPH = {
    LIBRARY_KERNELS: "█",
    GENERATED_KERNELS: "▓",
    OUTSIDE_COMPILED: "▒",
    FRAMEWORK_OVERHEAD: "░",
    DEVICE_IDLE: "·",
}
STATUS_LABEL = {WHAT_IF_MEASURED: "measured", WHAT_IF_FAILED: "failed"}
NOT_RUN_LABEL = "not run"
WHAT_IF_COLUMNS = ("what-if", "status", "compile", "median", "x eager", "x default", "fp64", "note")
CATEGORY_COLUMNS = ("category", EAGER, COMPILED, "share of compiled")


# --- the recommendation ------------------------------------------------------------------------


def setting_of(recommended: Mapping[str, Any]) -> str:
    """The recommended change as one line: the paste's first line without its comment."""
    first = next((line for line in str(recommended.get("paste") or "").splitlines() if line), "")
    return first.split("  #", 1)[0].strip() or str(recommended.get("what_if"))


def recommendation_sentence(entry_point: str, recommended: Mapping[str, Any]) -> str:
    """ "inference: torch._inductor.config.freezing = True — 1.38x (1.30–1.45x) over eager", or
    "training: no setting tried helps — <the stored reason>"."""
    if not recommended.get("what_if"):
        return f"{entry_point}: no setting tried helps — {recommended.get('reason')}"
    speedup = speedup_range(
        recommended.get("speedup"), recommended.get("speedup_low"), recommended.get("speedup_high")
    )
    reason = f", {recommended['reason']}" if recommended.get("reason") else ""
    return f"{entry_point}: {setting_of(recommended)} — {speedup} over eager{reason}"


def extra_paste_lines(recommended: Mapping[str, Any]) -> list[str]:
    """The paste, where it says more than the setting line does (a comment, more lines)."""
    lines = paste_lines(recommended)
    return [] if lines == [setting_of(recommended)] else lines


def recommendation_lines(recommendation: Mapping[str, Any] | None) -> list[Text]:
    """One line per entry point, each recommended setting followed by the lines to paste."""
    if not recommendation:
        return []
    lines = [Text("Recommendation", style="bold")]
    for entry_point, recommended in recommendation.items():
        style = "bold green" if recommended.get("what_if") else ""
        lines.append(Text(f"  {recommendation_sentence(entry_point, recommended)}", style=style))
        lines += [Text(f"    {line}", style="green") for line in extra_paste_lines(recommended)]
    return lines


def recommendation_markdown(recommendation: Mapping[str, Any] | None) -> list[str]:
    """The recommendation as a Markdown section's lines; none where the run made none."""
    if not recommendation:
        return []
    lines = ["## Recommendation", ""]
    for entry_point, recommended in recommendation.items():
        lines += [f"- {recommendation_sentence(entry_point, recommended)}", ""]
        if paste_lines(recommended):
            lines += ["  ```python", *(f"  {line}" for line in paste_lines(recommended))]
            lines += ["  ```", ""]
    return lines


# --- the figures, as rows both renderers lay out ------------------------------------------------


def category_rows(record: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(category, eager, compiled, share of compiled) per category a side can have."""
    compiled_ms = as_number(record.get("compiled_ms"))
    rows = []
    for share in _shares(record):
        compiled = as_number(share.get("compiled_ms"))
        fraction = compiled / compiled_ms if compiled is not None and compiled_ms else None
        rows.append(
            (
                CATEGORY_LABELS.get(share["category"], share["category"]),
                ms(share.get("eager_ms")),
                ms(compiled),
                percent(fraction),
            )
        )
    return rows


def _shares(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The recorded categories in CATEGORIES order, without those neither side can have."""
    by_category = {
        str(s.get("category")): s for s in record.get("attribution") or [] if isinstance(s, Mapping)
    }
    return [
        by_category[c]
        for c in CATEGORIES
        if c in by_category
        and (
            by_category[c].get("eager_ms") is not None
            or by_category[c].get("compiled_ms") is not None
        )
    ]


def ceiling_line(record: Mapping[str, Any]) -> str:
    ceiling = record.get("ceiling") or {}
    if ceiling.get("speedup") is None:
        return f"Ceiling: none from library kernels — {ceiling.get('reason')}"
    return (
        f"Ceiling: at most {times(ceiling.get('speedup'))} over eager while the "
        f"library kernels stay as they are — {ceiling.get('reason')}"
    )


def break_cost_rows(record: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """(where, the frame that resumes after it, ms per call, gaps per call) per graph-break gap."""
    rows = []
    for cost in record.get("break_costs") or []:
        location = cost.get("location") or {}
        where = (
            f"{short_path(str(location['filename']))}:{location.get('lineno')}"
            if location.get("filename")
            else MISSING
        )
        rows.append(
            (
                where,
                f"[{cost.get('compile_id')}]",
                ms(cost.get("ms_per_call")),
                count(cost.get("gaps_per_call")),
            )
        )
    return rows


def rest_outside_line(record: Mapping[str, Any]) -> str | None:
    rest = record.get("outside_compiled_rest_ms")
    if rest is None:
        return None
    return f"other work outside compiled code (graph-break gaps apart): {ms(rest)} per call"


def library_op_rows(record: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (str(op.get("name")), ms(op.get("eager_ms")), ms(op.get("compiled_ms")))
        for op in record.get("library_ops") or []
    ]


def what_if_row(what_if: Mapping[str, Any]) -> tuple[str, ...]:
    """One what-if as the table shows it: its figures when measured, why not when not."""
    status = what_if.get("status")
    measured = status == WHAT_IF_MEASURED
    fp64 = what_if.get("fp64_criterion_passed")
    fp64_text = ("yes" if fp64 else "no") if fp64 is not None else MISSING
    return (
        str(what_if.get("name")),
        STATUS_LABEL.get(str(status), NOT_RUN_LABEL),
        seconds(what_if.get("compile_s")),
        ms(what_if.get("median_ms")),
        speedup_range(
            what_if.get("speedup_vs_eager"), what_if.get("speedup_low"), what_if.get("speedup_high")
        ),
        speedup_range(
            what_if.get("speedup_vs_default"),
            what_if.get("speedup_vs_default_low"),
            what_if.get("speedup_vs_default_high"),
        ),
        fp64_text if measured else MISSING,
        _note(what_if),
    )


def _note(what_if: Mapping[str, Any]) -> str:
    notes = []
    if what_if.get("status") != WHAT_IF_MEASURED:
        notes.append(str(what_if.get("reason") or ""))
    elif what_if.get("fp64_criterion_passed") is not True and what_if.get("fp64_detail"):
        notes.append(str(what_if["fp64_detail"]))  # what failed, or why it was not checked
    notes += [f"cudagraph skipped: {r}" for r in what_if.get("cudagraph_skip_reasons") or []]
    return "; ".join(n for n in notes if n)


def _what_ifs_by_entry_point(probes: Mapping[str, Any]) -> dict[str, list[Mapping[str, Any]]]:
    return by_entry_point(probes.get(SPEED_WHAT_IFS), WHAT_IF_ORDER)


def _entry_points(probes: Mapping[str, Any]) -> list[str]:
    speed = probes.get(SPEED) or {}
    return list(dict.fromkeys([*speed, *_what_ifs_by_entry_point(probes)]))


def has_speed_record(probes: Mapping[str, Any]) -> bool:
    return bool(probes.get(SPEED) or probes.get(SPEED_WHAT_IFS))


# --- the terminal view -----------------------------------------------------------------------


def _look(category: str) -> tuple[str, str]:
    """A category's character and colour in the bars and their legend."""
    return CATEGORY_GLYPH.get(category, "?"), CATEGORY_STYLE.get(category, "")


def time_bars(record: Mapping[str, Any]) -> Text:
    """Eager above compiled, a segment per category, both to the scale of the longer one."""
    spans = [as_number(record.get(f"{side}_ms")) or 0.0 for side in (EAGER, COMPILED)]
    scale = BAR_WIDTH / max(max(spans), 1e-9)
    text = Text()
    for side, span in zip((EAGER, COMPILED), spans, strict=True):
        text.append(f"{side:<9}")
        segments = (
            (*_look(share["category"]), as_number(share.get(f"{side}_ms")) or 0.0)
            for share in _shares(record)
        )
        done_columns = append_segments(text, segments, scale)
        text.append(f"{' ' * (BAR_WIDTH - done_columns)} {ms(span)}\n")
    text.rstrip()
    return text


def category_table(record: Mapping[str, Any]) -> Table:
    """The legend of the bars, with each category's figures."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for i, column in enumerate(CATEGORY_COLUMNS):
        table.add_column(column, justify="left" if i == 0 else "right", no_wrap=True)
    for share, row in zip(_shares(record), category_rows(record), strict=True):
        glyph, style = _look(share["category"])
        legend = Text(glyph * 2 + " ", style=style)
        legend.append(row[0])
        table.add_row(legend, *row[1:])
    return table


def _small_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def what_if_table(what_ifs: Sequence[Mapping[str, Any]], title: str = "What-ifs") -> Table:
    """The figures of each what-if; its note (why it did not run, what failed) is a line below
    the table (`what_if_notes`), since a sentence does not fit a column. A what-if that was not
    measured says so where its median would be, so that the table fits 80 columns with the
    longest name unbroken."""
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    table.add_column(WHAT_IF_COLUMNS[0], no_wrap=True)
    for column in ("compile", "median", "x eager", "x default"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("fp64", no_wrap=True)
    for what_if in what_ifs:
        name, status, compile_s, median, *speedups, fp64_text, _ = what_if_row(what_if)
        measured = what_if.get("status") == WHAT_IF_MEASURED
        fp64 = what_if.get("fp64_criterion_passed")
        fp64_cell = passed_text(fp64, MISSING) if fp64_text != MISSING else Text(MISSING)
        # a speedup's range on a line of its own: "1.38x" over "(1.30–1.45x)"
        speedups = [cell.replace(" (", "\n(", 1) for cell in speedups]
        table.add_row(name, compile_s, median if measured else status, *speedups, fp64_cell)
    return table


def what_if_notes(what_ifs: Sequence[Mapping[str, Any]]) -> Table:
    """Below the table: why a what-if did not run, what failed, what fp64 found."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(style="dim", overflow="fold")
    for what_if in what_ifs:
        note = what_if_row(what_if)[-1]
        if note:
            grid.add_row(f"  {what_if.get('name')}:", note)
    return grid


def entry_speed_view(
    entry_point: str, record: Mapping[str, Any] | None, what_ifs: Sequence[Mapping[str, Any]]
) -> RenderableType:
    parts: list[RenderableType] = []
    if record:
        parts += [
            Text(
                f"Where the time goes: {entry_point} ({record.get('basis')} timeline, per call "
                "under the profiler)",
                style="bold",
            ),
            time_bars(record),
            category_table(record),
            Text(ceiling_line(record)),
        ]
        if record.get("library_ops"):
            parts.append(
                _small_table("Library ops", ("op", EAGER, COMPILED), library_op_rows(record))
            )
        if record.get("break_costs"):
            columns = ("graph break at", "resumed frame", "per call", "gaps / call")
            parts.append(_small_table("Graph-break gaps", columns, break_cost_rows(record)))
        rest = rest_outside_line(record)
        if rest:
            parts.append(Text(rest))
    if what_ifs:
        parts.append(what_if_table(what_ifs, title=f"What-ifs: {entry_point}"))
        parts.append(what_if_notes(what_ifs))
    return Group(*parts)


def speed_view(probes: Mapping[str, Any]) -> RenderableType:
    """Per entry point: the time bars and their legend, the ceiling, the graph-break gaps and
    the what-if table."""
    speed = probes.get(SPEED) or {}
    what_ifs = _what_ifs_by_entry_point(probes)
    parts: list[RenderableType] = []
    for entry_point in _entry_points(probes):
        if parts:
            parts.append(Text())
        parts.append(
            entry_speed_view(entry_point, speed.get(entry_point), what_ifs.get(entry_point, []))
        )
    return Group(*parts)


# --- Markdown ---------------------------------------------------------------------------------


def speed_markdown(probes: Mapping[str, Any]) -> list[str]:
    """The "Where the time goes" section's lines: a table per entry point, then its what-ifs."""
    if not has_speed_record(probes):
        return []
    speed = probes.get(SPEED) or {}
    what_ifs = _what_ifs_by_entry_point(probes)
    lines = ["## Where the time goes", ""]
    for entry_point in _entry_points(probes):
        record = speed.get(entry_point)
        lines += [f"### {entry_point.capitalize()}", ""]
        if record:
            lines += [
                f"Per call under the profiler, {record.get('basis')} timeline: eager "
                f"{ms(record.get('eager_ms'))}, compiled {ms(record.get('compiled_ms'))}.",
                "",
                *markdown_table(CATEGORY_COLUMNS, category_rows(record)),
                f"{ceiling_line(record)}.",
                "",
            ]
            if record.get("library_ops"):
                lines += markdown_table(("library op", EAGER, COMPILED), library_op_rows(record))
            if record.get("break_costs"):
                columns = ("graph break at", "resumed frame", "per call", "gaps per call")
                lines += markdown_table(columns, break_cost_rows(record))
            rest = rest_outside_line(record)
            lines += [rest[0].upper() + rest[1:] + ".", ""] if rest else []
        if what_ifs.get(entry_point):
            lines += [f"What-ifs for {entry_point}:", ""]
            lines += markdown_table(
                WHAT_IF_COLUMNS, [what_if_row(w) for w in what_ifs[entry_point]]
            )
    return lines
