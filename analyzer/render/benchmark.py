"""Rich renderables for the benchmark probe and the reference verdict.

Works from the recorded JSON of a diagnosis: `probes["benchmark"]`, `reference_metrics` and
`verdict` (the criteria and their reading, decided once by `analyzer.verdict` at the end of the
run), so a saved diagnosis renders the same as a live one. Nothing here decides a criterion.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from analyzer.format import NOT_MEASURED, count, mebibytes, ms, sci, seconds, speedup_range, times
from analyzer.render.verdicts import VERDICT_STYLE, passed_text
from probes.records.distributed import DISTRIBUTED
from probes.records.memory import SKIP_REASONS
from probes.records.names import BENCHMARK, COMPILED, EAGER, ENTRY_POINTS, SIDES
from probes.records.reference import (
    ACTION_DIFF,
    COMPILATION,
    LOSS_DIFF,
    NEEDS_WORK,
    SPEEDUP_CRITERION,
    SPEEDUP_KEY,
    TIME_COMPILED_KEY,
    TIME_ORIGINAL_KEY,
    UNDECIDED,
)

_REASON_STYLE = {NEEDS_WORK: "red", UNDECIDED: "yellow"}
_SPEEDUPS = frozenset(SPEEDUP_CRITERION.values())


def criteria_by_name(verdict: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    """The stored criteria of a verdict record, by name."""
    return {str(c.get("name")): c for c in (verdict or {}).get("criteria") or []}


def criterion_figure(criterion: Mapping[str, Any], missing: str = NOT_MEASURED) -> str:
    """A criterion's measured figure as it reads: 1.58e-02, 0.52x, failed, not measured."""
    measured = criterion.get("measured")
    if measured is None:
        return missing
    if criterion.get("name") == COMPILATION:
        return "succeeded" if measured else "failed"
    if criterion.get("name") in _SPEEDUPS:
        return times(measured)
    return sci(measured)


def criterion_shortfall(criterion: Mapping[str, Any]) -> str:
    """How a failed criterion reads: "loss diff 1.58e-02 fails < 1e-05", "compilation failed"."""
    if criterion.get("name") == COMPILATION:
        return "compilation failed"
    name, requirement = criterion.get("name"), criterion.get("requirement")
    return f"{name} {criterion_figure(criterion)} fails {requirement}"


def _passed_text(criterion: Mapping[str, Any] | None) -> Text:
    """A stored criterion's result; nothing where the verdict holds no such criterion."""
    return Text("") if criterion is None else passed_text(criterion.get("passed"))


def verdict_line(verdict: Mapping[str, Any], compilation_error: str | None = None) -> Text:
    """The reference verdict as stored, with each criterion that failed or was not measured."""
    label = str(verdict.get("reference"))
    text = Text(f"Reference criteria: {label}", style=VERDICT_STYLE.get(label, "bold"))
    reasons = []
    for criterion in criteria_by_name(verdict).values():
        if criterion.get("passed") is False:
            shortfall = criterion_shortfall(criterion)
            if criterion.get("name") == COMPILATION and compilation_error:
                shortfall += f" ({compilation_error})"
            reasons.append(shortfall)
        elif criterion.get("passed") is None:
            reasons.append(f"{criterion.get('name')} {NOT_MEASURED}")
    if reasons:
        text.append(" — " + "; ".join(reasons), style=_REASON_STYLE.get(label, ""))
    return text


def reading_lines(verdict: Mapping[str, Any]) -> list[Text]:
    """Each failed reference criterion with the findings that explain it, then the reading."""
    lines = []
    for criterion in criteria_by_name(verdict).values():
        if criterion.get("passed") is not False:
            continue
        line = Text(f"  {criterion_shortfall(criterion)}")
        explained_by = criterion.get("explained_by") or []
        if explained_by:
            line.append(" — explained by " + ", ".join(explained_by))
            if criterion.get("excused"):
                style = "green" if criterion.get("confirmed") else ""
                line.append(": " + str(criterion.get("excuse")), style=style)
        else:
            line.append(" — no finding explains it", style="yellow")
        lines.append(line)
    if verdict.get("reading"):
        lines.append(Text(str(verdict["reading"]), style="bold green"))
    return lines


def metrics_table(
    metrics: Mapping[str, Any],
    benchmark: Mapping[str, Any],
    verdict: Mapping[str, Any] | None,
) -> Table:
    """The reference report's figures; each criterion's requirement and result as stored."""
    criteria = criteria_by_name(verdict)
    table = Table(title="Benchmark metrics (the reference report's keys)", title_justify="left")
    table.add_column("metric")
    table.add_column(EAGER, justify="right")
    table.add_column(COMPILED, justify="right")
    table.add_column("result", justify="right")
    table.add_column("threshold", justify="right")
    table.add_column("verdict")

    def requirement(name: str) -> str:
        return str((criteria.get(name) or {}).get("requirement") or "")

    correctness = metrics.get("correctness") or {}
    table.add_row(
        ACTION_DIFF,
        "",
        "",
        sci(correctness.get("action_diff")),
        requirement(ACTION_DIFF),
        _passed_text(criteria.get(ACTION_DIFF)),
    )
    table.add_row(
        LOSS_DIFF,
        sci(benchmark.get("eager_loss")),
        sci(benchmark.get("compiled_loss")),
        sci(correctness.get("loss_diff")),
        requirement(LOSS_DIFF),
        _passed_text(criteria.get(LOSS_DIFF)),
    )
    timings = benchmark.get("timings") or {}
    for entry_point in ENTRY_POINTS:
        spread = (timings.get(entry_point) or {}).get("speedup") or {}
        name = SPEEDUP_CRITERION[entry_point]
        table.add_row(
            f"{entry_point} time / call (median)",
            ms(metrics.get(TIME_ORIGINAL_KEY[entry_point])),
            ms(metrics.get(TIME_COMPILED_KEY[entry_point])),
            speedup_range(
                metrics.get(SPEEDUP_KEY[entry_point]), spread.get("low"), spread.get("high")
            ),
            requirement(name),
            _passed_text(criteria.get(name)),
        )
    for key, label in (
        ("loss_consistency", "loss consistency"),
        ("grad_norm_consistency", "grad-norm consistency"),
    ):
        table.add_row(label, "", "", sci(metrics.get(key)), "", Text("info", style="dim"))
    return table


def timing_table(benchmark: Mapping[str, Any]) -> Table:
    table = Table(title="Timing detail (interleaved, synchronised)", title_justify="left")
    table.add_column("entry point")
    table.add_column("side")
    table.add_column("median", justify="right")
    table.add_column("IQR", justify="right")
    table.add_column("min–max", justify="right")
    table.add_column("calls", justify="right")
    table.add_column("first call", justify="right")
    table.add_column("peak mem", justify="right")
    for entry_point, timing in (benchmark.get("timings") or {}).items():
        for side in SIDES:
            m = timing.get(side) or {}
            if not m:
                continue
            table.add_row(
                entry_point,
                side,
                ms(m.get("median_ms")),
                ms(m.get("iqr_ms")),
                f"{ms(m.get('min_ms'))}–{ms(m.get('max_ms'))}",
                count(m.get("calls")),
                seconds(timing.get(f"{side}_first_call_s"), digits=2),
                mebibytes(timing.get(f"{side}_peak_memory_mb")),
            )
    return table


def capture_table(benchmark: Mapping[str, Any]) -> Table:
    table = Table(title="Did compiled code run? (per entry point)", title_justify="left")
    table.add_column("entry point")
    table.add_column("frames compiled", justify="right")
    table.add_column("graphs", justify="right")
    table.add_column("compiled regions / warm call", justify="right")
    table.add_column("ran compiled code")
    for entry_point, capture in (benchmark.get("capture") or {}).items():
        ran = capture.get("ran_compiled_code")
        table.add_row(
            entry_point,
            count(capture.get("frames_compiled")),
            count(capture.get("graphs_captured")),
            count(capture.get("compiled_region_events")),
            Text("yes", style="green") if ran else Text("NO", style="bold red"),
        )
    return table


def benchmark_absence(diagnosis: Mapping[str, Any]) -> str:
    """Why the diagnosis holds no benchmark, in a line, from what it recorded."""
    if BENCHMARK in (diagnosis.get("probe_errors") or {}):
        return f"The benchmark failed: {diagnosis['probe_errors'][BENCHMARK]}"
    for entry in (diagnosis.get("memory_plan") or {}).get("probes") or []:
        if entry.get("probe") == BENCHMARK and not entry.get("runs", True):
            reason = SKIP_REASONS.get(entry.get("skipped"), entry.get("skipped"))
            return f"The benchmark was not run: it {reason} (see the memory plan)."
    if DISTRIBUTED in (diagnosis.get("probes") or {}):
        return "The benchmark of one process was not run: each rank's training is measured above."
    if diagnosis.get("status") == "complete":
        return "The benchmark was not run: it was not among the probes selected (see the notes)."
    return "The benchmark recorded nothing: the diagnosis stopped before it."


def benchmark_view(diagnosis: Mapping[str, Any]) -> RenderableType:
    """The benchmark's tables from a diagnosis record."""
    benchmark = (diagnosis.get("probes") or {}).get(BENCHMARK)
    metrics = diagnosis.get("reference_metrics")
    if not benchmark or not metrics:
        return Text(benchmark_absence(diagnosis), style="dim")
    parts: list[RenderableType] = [metrics_table(metrics, benchmark, diagnosis.get("verdict"))]
    if benchmark.get("capture"):
        parts.append(capture_table(benchmark))
    if benchmark.get("timings"):
        parts.append(timing_table(benchmark))
    for note in benchmark.get("method_notes") or []:
        parts.append(Text(f"• {note}", style="dim"))
    return Group(*parts)
