"""Timing: every call the benchmark timed, eager beside compiled, per entry point.

Reads `probes["benchmark"]["timings"]` (`probes.records.benchmark.EntryTiming`: each side's
`Measurement.summary()`, with every kept sample). The plot shows the distribution, not only the
median: a box (quartiles, median) with every sample drawn over it, in call order spread across
the box's height.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from analyzer.format import count, ms, seconds, speedup_range
from analyzer.render.html.markup import absent, figure, missing_probe, section, table
from analyzer.render.html.plot import INK, SIDE_COLOUR, new_figure, plotting, svg_markup
from probes.records.names import BENCHMARK, COMPILED, EAGER, ENTRY_POINTS, SIDES
from probes.records.serialize import as_number

ANCHOR = "timing"
TITLE = "Timing: every timed call"
ROW_HEIGHT_IN = 1.9  # one entry point's panel
GOLDEN = 0.6180339887  # spreads the samples across a box's height without random numbers
SPREAD = 0.32  # of a box's height
COLUMNS = ("entry point", "side", "calls", "median", "IQR", "min", "max", "first call", "speedup")


def timings(diagnosis: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Per entry point (the record's order), its timing record where a side has samples."""
    benchmark = (diagnosis.get("probes") or {}).get(BENCHMARK) or {}
    recorded = benchmark.get("timings") or {}
    names = [
        *(n for n in ENTRY_POINTS if n in recorded),
        *(n for n in recorded if n not in ENTRY_POINTS),
    ]
    return {
        name: recorded[name] for name in names if any(samples(recorded[name], s) for s in SIDES)
    }


def samples(timing: Mapping[str, Any], side: str) -> list[float]:
    measured = (timing.get(side) or {}).get("samples_ms") or []
    numbers = [as_number(value) for value in measured]
    return [n for n in numbers if n is not None]


def sample_group(entry_point: str, side: str) -> str:
    """The SVG group (id) that holds one side's samples: one mark per timed call."""
    return f"samples-{entry_point}-{side}"


def _spread(n: int) -> list[float]:
    """Offsets in (-SPREAD/2, SPREAD/2), one per sample in call order."""
    return [((i * GOLDEN) % 1.0 - 0.5) * SPREAD for i in range(n)]


def _title(entry_point: str, timing: Mapping[str, Any]) -> str:
    speedup = timing.get("speedup") or {}
    ratio = speedup_range(speedup.get("ratio"), speedup.get("low"), speedup.get("high"))
    return f"{entry_point}: compiled runs at {ratio} eager's speed (medians)"


def _panel(ax: Any, entry_point: str, timing: Mapping[str, Any]) -> None:
    sides = [side for side in (COMPILED, EAGER) if samples(timing, side)]  # eager on top
    data = [samples(timing, side) for side in sides]
    boxes = ax.boxplot(
        data,
        orientation="horizontal",
        positions=range(len(sides)),
        widths=0.55,
        showfliers=False,
        patch_artist=True,
        whis=(0, 100),
    )
    for side, box, median in zip(sides, boxes["boxes"], boxes["medians"], strict=True):
        box.set(facecolor=SIDE_COLOUR[side], alpha=0.18, edgecolor=SIDE_COLOUR[side])
        median.set(color=SIDE_COLOUR[side], linewidth=2.2)
    for part in ("whiskers", "caps"):
        for line in boxes[part]:
            line.set(color="#9a9a9a")
    for y, (side, values) in enumerate(zip(sides, data, strict=True)):
        ys = [y + offset for offset in _spread(len(values))]
        ax.scatter(
            values,
            ys,
            s=16,
            color=SIDE_COLOUR[side],
            alpha=0.8,
            linewidths=0,
            zorder=3,
            gid=sample_group(entry_point, side),
        )
        median = (timing.get(side) or {}).get("median_ms")
        ax.annotate(
            f"median {ms(median)}",
            xy=(1.0, y),
            xycoords=("axes fraction", "data"),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
            color=SIDE_COLOUR[side],
        )
    ax.set_yticks(
        range(len(sides)), [f"{side} ({len(v)} calls)" for side, v in zip(sides, data, strict=True)]
    )
    for tick, side in zip(ax.get_yticklabels(), sides, strict=True):
        tick.set_color(SIDE_COLOUR[side])
    ax.set_ylim(-0.6, len(sides) - 0.4)
    ax.grid(axis="y", visible=False)
    ax.set_title(_title(entry_point, timing), color=INK)
    ax.set_xlabel("call time (ms)")


def timing_plot(recorded: Mapping[str, Mapping[str, Any]]) -> str:
    with plotting():
        fig = new_figure(ROW_HEIGHT_IN * len(recorded))
        axes = fig.subplots(len(recorded), 1, squeeze=False)[:, 0]
        for ax, (entry_point, timing) in zip(axes, recorded.items(), strict=True):
            _panel(ax, entry_point, timing)
        return svg_markup(fig, ANCHOR)


def timing_rows(recorded: Mapping[str, Mapping[str, Any]]) -> list[Sequence[str]]:
    rows = []
    for entry_point, timing in recorded.items():
        speedup = timing.get("speedup") or {}
        for side in SIDES:
            summary = timing.get(side) or {}
            rows.append(
                (
                    entry_point,
                    side,
                    count(summary.get("calls")),
                    ms(summary.get("median_ms")),
                    ms(summary.get("iqr_ms")),
                    ms(summary.get("min_ms")),
                    ms(summary.get("max_ms")),
                    seconds(timing.get(f"{side}_first_call_s"), digits=2),
                    speedup_range(speedup.get("ratio"), speedup.get("low"), speedup.get("high"))
                    if side == COMPILED
                    else "",
                )
            )
    return rows


def timing_section(diagnosis: Mapping[str, Any]) -> str:
    probes = diagnosis.get("probes") or {}
    if not probes.get(BENCHMARK):
        return section(ANCHOR, TITLE, missing_probe(diagnosis, BENCHMARK, "timing"))
    recorded = timings(diagnosis)
    if not recorded:
        error = probes[BENCHMARK].get("compilation_error")
        why = f"compilation failed ({error})" if error else "no call was timed"
        return section(ANCHOR, TITLE, absent(f"No timing: {why}."))
    benchmark = probes[BENCHMARK]
    settings = benchmark.get("settings") or {}
    caption = (
        "Each dot is one timed call (eager and compiled interleaved, after "
        f"{settings.get('warmup', '?')} untimed warm-up calls); the box spans the quartiles, "
        "its thick line is the median, the whiskers reach the fastest and the slowest call. "
        "Speedup: eager's median over compiled's, with the range the quartiles allow."
    )
    return section(
        ANCHOR,
        TITLE,
        figure(timing_plot(recorded), caption, ANCHOR),
        table(COLUMNS, timing_rows(recorded), numeric=range(2, len(COLUMNS))),
    )
