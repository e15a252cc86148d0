"""A comparison as titled tables of text: what the terminal and the Markdown renderers share.

Each section is a title, a one-line summary and rows of cells, in the order a reader wants
them: the two runs, the settings that differ (they explain much of any change), graph breaks,
recompiles, compile figures, speedups, accuracy, findings, and what could not be compared.
Decides nothing: every word is a recorded figure or a call the comparison made.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from analyzer.comparison.changes import (
    ADDED,
    APPEARED,
    DISAPPEARED,
    FIXED,
    SECONDS,
    UNCHANGED,
    AccuracyChange,
    BreakChange,
    Comparison,
    FigureChange,
    RunSide,
    SpeedupChange,
    SpeedupRange,
)
from analyzer.comparison.speed import FASTER, NOISE, SLOWER, ranges_apart
from analyzer.comparison.targets import PROBES_RUN
from analyzer.format import (
    MISSING,
    count,
    ms,
    percent,
    plural,
    sci,
    seconds,
    short_path,
    speedup_range,
)
from probes.records.compile import CATEGORY_LABELS

# A speedup call in words: what it means, from the definition in analyzer.comparison.speed.
CALL_TEXT = {
    NOISE: "noise (the ranges overlap)",
    FASTER: "faster (the ranges are apart)",
    SLOWER: "slower (the ranges are apart)",
}
SMALL_CHANGE_TEXT = "noise (the ranges are apart, the median moved under {min_change})"
NO_RANGE = "no range recorded"


@dataclass
class Section:
    title: str
    summary: str = ""
    columns: tuple[str, ...] = ()
    rows: list[tuple[str, ...]] = field(default_factory=list)


def side_line(label: str, side: RunSide) -> str:
    reference = f", reference {side.reference}" if side.reference else ""
    return f"{label}: {side.source}: {side.target}, {side.command}, {side.status}{reference}"


def header_lines(comparison: Comparison) -> list[str]:
    lines = [side_line("BEFORE", comparison.before), side_line("AFTER", comparison.after)]
    if comparison.forced:
        differences = "; ".join(
            f"{d.name} {value_text(d.before)} vs {value_text(d.after)}"
            for d in comparison.target_differences
        )
        lines.append(f"Compared with --force although the targets differ: {differences}")
    return lines


def sections(comparison: Comparison) -> list[Section]:
    return [
        _settings(comparison),
        _graph_breaks(comparison),
        _recompiles(comparison),
        _figures(comparison),
        _speedups(comparison),
        _accuracy(comparison),
        _findings(comparison),
        _not_compared(comparison),
    ]


def value_text(value: Any) -> str:
    """A recorded setting as one cell."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ", ".join(value_text(v) for v in value) or "[]"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _settings(comparison: Comparison) -> Section:
    rows = [(c.name, value_text(c.before), value_text(c.after)) for c in comparison.settings]
    summary = (
        "none: both runs recorded the same versions, machine, compile options and numerics"
        if not rows
        else f"{plural(len(rows), 'setting')} {'differs' if len(rows) == 1 else 'differ'}: they "
        "may explain the changes below"
    )
    return Section("Settings that differ", summary, ("setting", "before", "after"), rows)


def _where(location: dict[str, Any] | None) -> str:
    if not location:
        return MISSING
    return f"{short_path(str(location.get('filename')))}:{location.get('lineno')}"


def _status_counts(statuses: Sequence[str], order: Sequence[str]) -> str:
    counted = Counter(statuses)
    return ", ".join(f"{counted[s]} {s}" for s in order)


def _break_text(change: BreakChange) -> str:
    """The break's GB id and kind, or its reason where torch gives no id."""
    kind = CATEGORY_LABELS.get(change.category, change.category)
    return f"{change.gb_id} {kind}" if change.gb_id else change.reason


def _graph_breaks(comparison: Comparison) -> Section:
    changes = comparison.graph_breaks
    rows = [
        (
            c.entry_point,
            c.status,
            _where(c.location),
            str((c.location or {}).get("code") or ""),
            _break_text(c),
            f"{c.hits_before} -> {c.hits_after}",
        )
        for c in changes
    ]
    summary = (
        _status_counts([c.status for c in changes], (FIXED, ADDED, UNCHANGED))
        if changes
        else "none in either run"
    )
    columns = ("entry point", "status", "where", "code", "break", "hits")
    return Section("Graph breaks", summary, columns, rows)


def _recompiles(comparison: Comparison) -> Section:
    changes = comparison.recompiles
    design = {True: "yes", False: "no", None: MISSING}
    rows = [
        (
            c.entry_point,
            c.scenario,
            c.guard,
            f"{c.before} -> {c.after}",
            c.status,
            design[c.by_design],
        )
        for c in changes
    ]
    before = sum(c.before for c in changes)
    after = sum(c.after for c in changes)
    summary = (
        f"{before} -> {after} recompiles; guards: "
        + _status_counts([c.status for c in changes], (FIXED, ADDED, UNCHANGED))
        if changes
        else "none in either run's scenarios"
    )
    columns = ("entry point", "scenario", "failing guard", "recompiles", "status", "by design")
    return Section("Recompiles", summary, columns, rows)


def _figure_text(change: FigureChange, value: float | None) -> str:
    return seconds(value, digits=2) if change.unit == SECONDS else count(value)


def _figures(comparison: Comparison) -> Section:
    rows = [
        (c.name, c.entry_point, _figure_text(c, c.before), _figure_text(c, c.after))
        for c in comparison.compile_figures
    ]
    summary = "" if rows else "no compile figures in either run"
    return Section("Compile", summary, ("figure", "entry point", "before", "after"), rows)


def _speedup(value: SpeedupRange | None) -> str:
    return MISSING if value is None else speedup_range(value.ratio, value.low, value.high)


def _call_text(change: SpeedupChange, min_change: float) -> str:
    if change.call is None:
        return MISSING if change.before is None or change.after is None else NO_RANGE
    apart = change.before and change.after and ranges_apart(change.before, change.after)
    if change.call == NOISE and apart:
        return SMALL_CHANGE_TEXT.format(min_change=percent(min_change))
    return CALL_TEXT[change.call]


def _speedups(comparison: Comparison) -> Section:
    rows = []
    for c in comparison.speedups:
        change = c.change
        rows.append(
            (
                c.entry_point,
                _speedup(c.before),
                _speedup(c.after),
                MISSING if change is None else f"{change:+.2f}x",
                f"{ms(c.compiled_ms_before)} -> {ms(c.compiled_ms_after)}",
                _call_text(c, comparison.min_change),
            )
        )
    summary = (
        "speedup over eager, median (range the timing spreads allow); a change is noise while "
        f"the two ranges overlap or the median moved under {percent(comparison.min_change)}"
        if rows
        else "neither run timed the same entry point"
    )
    columns = ("entry point", "before", "after", "change", "compiled median", "call")
    return Section("Speedups", summary, columns, rows)


def _passed(value: bool | None) -> str:
    return {True: "pass", False: "FAIL"}.get(value, MISSING)  # type: ignore[arg-type]


def _difference(value: float | None, passed: bool | None) -> str:
    return MISSING if value is None else f"{sci(value)} ({_passed(passed)})"


def _accuracy_row(change: AccuracyChange) -> tuple[str, ...]:
    tolerance = change.tolerance_after or change.tolerance_before
    return (
        change.name,
        _difference(change.before, change.passed_before),
        _difference(change.after, change.passed_after),
        f"< {sci(tolerance)}" if tolerance is not None else MISSING,
    )


def _accuracy(comparison: Comparison) -> Section:
    rows = [_accuracy_row(c) for c in comparison.accuracy]
    rows += [
        (
            f"fp64 criterion, {c.scenario} ({c.entry_point})",
            _passed(c.passed_before),
            _passed(c.passed_after),
            "as close to fp64 as eager",
        )
        for c in comparison.fp64
    ]
    if comparison.divergence_verdict:
        before, after = comparison.divergence_verdict
        rows.append(("divergence reading", value_text(before), value_text(after), ""))
    summary = "" if rows else "neither run measured compiled against eager"
    return Section("Accuracy", summary, ("figure", "before", "after", "needs"), rows)


def _findings(comparison: Comparison) -> Section:
    rows = [
        (
            c.status,
            c.severity,
            f"{c.code} {c.name}",
            c.entry_point or "",
            _where(c.location) if c.location else "",
            c.title,
        )
        for c in comparison.findings
    ]
    summary = (
        _status_counts([c.status for c in comparison.findings], (APPEARED, DISAPPEARED))
        if rows
        else "the same findings in both runs"
    )
    if any(change.name == PROBES_RUN for change in comparison.settings):
        summary += " (the runs ran different probes: a probe's findings come and go with it)"
    columns = ("", "severity", "finding", "entry point", "where", "title")
    return Section("Findings", summary, columns, rows)


def _not_compared(comparison: Comparison) -> Section:
    rows = [(c.what, c.which, f"not in {c.missing_in.upper()}") for c in comparison.not_compared]
    summary = "" if rows else "everything either run measured, both did"
    return Section("Not compared", summary, ("what", "of", ""), rows)
