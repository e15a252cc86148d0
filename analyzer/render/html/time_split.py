"""Where the time goes: each entry point's call split into categories, eager beside compiled.

Reads the speed record (`probes["speed"]`, `probes.records.speed.EntrySpeed`: the attribution per
category, the library ops, the ceiling) and the what-ifs (`probes["what_ifs"]`). A diagnosis made
before the speed record existed has only the kernel probe's figures (`probes["kernels"]`): then
the split is inside and outside compiled regions, and the ops are the top host ops. The sentences
under the plots (the ceiling) are the record's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analyzer.format import ms
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
from analyzer.render.html.plot import (
    INK,
    SIDE_COLOUR,
    figure_legend,
    new_figure,
    plotting,
    svg_markup,
)
from analyzer.render.speed import (
    WHAT_IF_COLUMNS,
    category_rows,
    ceiling_line,
    library_op_rows,
    rest_outside_line,
    what_if_row,
)
from probes.records.names import COMPILED, EAGER, KERNELS, SIDES, SPEED, SPEED_WHAT_IFS
from probes.records.serialize import as_number
from probes.records.speed import (
    CATEGORIES,
    CATEGORY_LABELS,
    DEVICE_IDLE,
    FRAMEWORK_OVERHEAD,
    GENERATED_KERNELS,
    LIBRARY_KERNELS,
    OUTSIDE_COMPILED,
)

ANCHOR = "time"
TITLE = "Where the time goes"
ROW_HEIGHT_IN = 2.3
CATEGORY_COLOUR = {
    LIBRARY_KERNELS: "#7b5ea7",
    GENERATED_KERNELS: "#2a9d8f",
    OUTSIDE_COMPILED: "#d1495b",
    FRAMEWORK_OVERHEAD: "#9aa5b1",
    DEVICE_IDLE: "#d4d4d4",
}
# The kernel probe's split, for a diagnosis without the speed record.
INSIDE_REGIONS = "inside compiled regions"
OUTSIDE_REGIONS = "outside compiled regions"
EAGER_CALL = "eager call"
REGION_COLOUR = {
    INSIDE_REGIONS: CATEGORY_COLOUR[GENERATED_KERNELS],
    OUTSIDE_REGIONS: CATEGORY_COLOUR[OUTSIDE_COMPILED],
    EAGER_CALL: "#b8c4d6",
}
TOP_OPS = 6
LABEL_CHARS = 40  # an op's name on the plot; the table below has it whole


@dataclass(frozen=True)
class Segment:
    """One part of a side's bar: a category (or region) and its time per call."""

    label: str
    colour: str
    ms: float


@dataclass(frozen=True)
class OpTimes:
    name: str
    eager_ms: float
    compiled_ms: float


@dataclass(frozen=True)
class SplitRow:
    """One entry point's row of the plot: each side's bar, and its ops beside them."""

    entry_point: str
    bars: Mapping[str, Sequence[Segment]]  # side -> segments
    ops_title: str
    ops: Sequence[OpTimes]


# --- the figures, read back -----------------------------------------------------------------


def speed_entries(probes: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    speed = probes.get(SPEED) or {}
    return {str(k): v for k, v in speed.items() if isinstance(v, Mapping) and v.get("attribution")}


def _segments_from_speed(record: Mapping[str, Any], side: str) -> list[Segment]:
    """One segment per category the side spent time in, in CATEGORIES order."""
    by_category = {str(s.get("category")): s for s in record.get("attribution") or []}
    segments = []
    for category in CATEGORIES:
        value = as_number((by_category.get(category) or {}).get(f"{side}_ms"))
        if value:
            segments.append(Segment(CATEGORY_LABELS[category], CATEGORY_COLOUR[category], value))
    return segments


def kernel_entries(probes: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    entries = (probes.get(KERNELS) or {}).get("entry_points") or []
    return {str(e.get("name")): e for e in entries if isinstance(e, Mapping)}


def _segments_from_kernels(entry: Mapping[str, Any], side: str) -> list[Segment]:
    record = entry.get(side) or {}
    span = as_number(record.get("span_ms_per_call")) or 0.0
    inside = as_number(record.get("compiled_region_ms_per_call"))
    outside = as_number(record.get("outside_compiled_region_ms_per_call"))
    if inside is None or outside is None:
        return [Segment(EAGER_CALL, REGION_COLOUR[EAGER_CALL], span)] if span else []
    return [
        Segment(INSIDE_REGIONS, REGION_COLOUR[INSIDE_REGIONS], inside),
        Segment(OUTSIDE_REGIONS, REGION_COLOUR[OUTSIDE_REGIONS], outside),
    ]


def _top_ops(entry: Mapping[str, Any]) -> list[OpTimes]:
    """The host ops with the most self time per call on either side."""
    per_side = {
        side: {
            str(op.get("name")): as_number(op.get("self_ms_per_call")) or 0.0
            for op in (entry.get(side) or {}).get("top_ops") or []
        }
        for side in SIDES
    }
    names = sorted(
        set(per_side[EAGER]) | set(per_side[COMPILED]),
        key=lambda n: -max(per_side[EAGER].get(n, 0.0), per_side[COMPILED].get(n, 0.0)),
    )
    return [
        OpTimes(n, per_side[EAGER].get(n, 0.0), per_side[COMPILED].get(n, 0.0))
        for n in names[:TOP_OPS]
    ]


def _library_ops(record: Mapping[str, Any]) -> list[OpTimes]:
    return [
        OpTimes(
            str(op.get("name")),
            as_number(op.get("eager_ms")) or 0.0,
            as_number(op.get("compiled_ms")) or 0.0,
        )
        for op in (record.get("library_ops") or [])[:TOP_OPS]
    ]


# --- the plot -------------------------------------------------------------------------------


def _short(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"


def _split_panel(ax: Any, title: str, bars: Mapping[str, Sequence[Segment]]) -> None:
    """One bar per side (eager on top), a segment per category, to one scale."""
    sides = [side for side in (COMPILED, EAGER) if bars.get(side)]
    for y, side in enumerate(sides):
        left = 0.0
        for segment in bars[side]:
            ax.barh(
                y,
                segment.ms,
                left=left,
                height=0.6,
                color=segment.colour,
                edgecolor="white",
                linewidth=0.8,
                label=segment.label,
            )
            left += segment.ms
        ax.annotate(
            ms(left),
            xy=(left, y),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
            color=INK,
        )
    ax.set_yticks(range(len(sides)), sides)
    for tick, side in zip(ax.get_yticklabels(), sides, strict=True):
        tick.set_color(SIDE_COLOUR[side])
        tick.set_fontweight("bold")
    ax.set_ylim(-0.6, len(sides) - 0.4)
    ax.margins(x=0.12)
    ax.grid(axis="y", visible=False)
    ax.set_title(title, color=INK)
    ax.set_xlabel("ms per call (profiled)")


def _ops_panel(ax: Any, title: str, ops: Sequence[OpTimes]) -> None:
    """Grouped bars: each op's time per call, eager above compiled, the longest on top."""
    height = 0.38
    shown = list(reversed(ops))
    for index, op in enumerate(shown):
        for offset, side, value in (
            (height / 2, EAGER, op.eager_ms),
            (-height / 2, COMPILED, op.compiled_ms),
        ):
            ax.barh(index + offset, value, height, color=SIDE_COLOUR[side], label=side)
    ax.set_yticks(range(len(shown)), [_short(op.name) for op in shown], fontsize=8.5)
    ax.grid(axis="y", visible=False)
    ax.set_title(title, color=INK)
    ax.set_xlabel("ms per call (profiled)")


def split_plot(rows: Sequence[SplitRow]) -> str:
    """Per entry point: its split (left) and its top ops (right), eager and compiled."""
    with plotting():
        fig = new_figure(ROW_HEIGHT_IN * len(rows))
        grid = fig.add_gridspec(len(rows), 2, width_ratios=(1.25, 1))
        for index, row in enumerate(rows):
            _split_panel(fig.add_subplot(grid[index, 0]), f"{row.entry_point}: one call", row.bars)
            if row.ops:
                title = f"{row.entry_point}: {row.ops_title}"
                _ops_panel(fig.add_subplot(grid[index, 1]), title, row.ops)
        figure_legend(fig, 7)
        return svg_markup(fig, ANCHOR)


# --- the section ----------------------------------------------------------------------------


def _speed_parts(entries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    rows = [
        SplitRow(
            name,
            {side: _segments_from_speed(record, side) for side in SIDES},
            "library kernels",
            _library_ops(record),
        )
        for name, record in entries.items()
    ]
    basis = {str(r.get("basis")) for r in entries.values()}
    caption = (
        f"One profiled call of each side, split on the {'/'.join(sorted(basis))} timeline into "
        "what compiling changes (generated kernels, framework overhead, work outside compiled "
        "code) and what it calls as it is (library kernels); right: the library kernels that "
        "take longest, per call."
    )
    parts = [figure(split_plot(rows), caption, ANCHOR)]
    for name, record in entries.items():
        parts.append(subheading(name))
        categories = table(
            ("category", EAGER, COMPILED, "share of compiled"), category_rows(record)
        )
        ops = (
            table(("library op", EAGER, COMPILED), library_op_rows(record))
            if record.get("library_ops")
            else ""
        )
        parts.append(f'<div class="pair"><div>{categories}</div><div>{ops}</div></div>')
        parts.append(paragraph(ceiling_line(record)))
        rest = rest_outside_line(record)
        if rest:
            parts.append(paragraph(rest))
    return parts


def _kernel_parts(entries: Mapping[str, Mapping[str, Any]]) -> list[str]:
    rows = [
        SplitRow(
            name,
            {side: _segments_from_kernels(entry, side) for side in SIDES},
            "top host ops",
            _top_ops(entry),
        )
        for name, entry in entries.items()
    ]
    caption = (
        "No time attribution was recorded (a diagnosis older than it): this is the kernel "
        "probe's split of a profiled call, inside and outside compiled regions, and the host ops "
        "with the most self time per call."
    )
    return [figure(split_plot(rows), caption, ANCHOR)]


def what_if_table(probes: Mapping[str, Any]) -> str:
    what_ifs = [w for w in probes.get(SPEED_WHAT_IFS) or [] if isinstance(w, Mapping)]
    if not what_ifs:
        return ""
    rows = [(str(w.get("entry_point")), *what_if_row(w)) for w in what_ifs]
    header = ("entry point", *WHAT_IF_COLUMNS[:-1])  # the note: a sentence, under the table
    return (
        subheading("What-ifs for speed")
        + table(header, [row[:-1] for row in rows], numeric=range(3, 7), names=(1,))
        + notes((f"{row[0]} {row[1]}", row[-1]) for row in rows)
    )


def time_split_section(diagnosis: Mapping[str, Any]) -> str:
    probes = diagnosis.get("probes") or {}
    speed = speed_entries(probes)
    if speed:
        return section(ANCHOR, TITLE, *_speed_parts(speed), what_if_table(probes))
    kernels = {
        n: e
        for n, e in kernel_entries(probes).items()
        if any(_segments_from_kernels(e, s) for s in SIDES)
    }
    if kernels:
        return section(ANCHOR, TITLE, *_kernel_parts(kernels), what_if_table(probes))
    if probes.get(KERNELS):
        return section(ANCHOR, TITLE, absent("No split: the kernel probe profiled no call."))
    return section(ANCHOR, TITLE, missing_probe(diagnosis, KERNELS, "time split"))
