"""Rich renderables for the benchmark probe: the reference report's metrics, measured right.

Works from the recorded JSON (`diagnosis.probes["benchmark"]` and `diagnosis.reference_metrics`),
so a saved diagnosis renders the same as a live one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text


def _ms(value: Any) -> str:
    return "–" if value is None else f"{value:.2f} ms"


def _sci(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):  # "NaN", "Infinity"
        return value
    return "0" if value == 0 else f"{value:.2e}"


def _pass(ok: Any) -> Text:
    if ok is None:
        return Text("not measured", style="dim")
    return Text("PASS", style="green") if ok else Text("FAIL", style="red")


def verdict_line(metrics: Mapping[str, Any], benchmark: Mapping[str, Any]) -> Text:
    """The reference script's verdict, recomputed with its own criteria from this run."""
    settings = benchmark.get("settings", {})
    threshold = settings.get("speedup_threshold", 1.1)
    reasons = []
    if not metrics.get("compilation_successful"):
        reasons.append(f"compilation failed ({metrics.get('compilation_error')})")
    correctness = metrics.get("correctness", {})
    tolerance = settings.get("tolerance", 1e-5)
    for key, label in (("action_diff", "action diff"), ("loss_diff", "loss diff")):
        value = correctness.get(key)
        if isinstance(value, (int, float)) and not value < tolerance:
            reasons.append(f"{label} {_sci(value)} ≥ {tolerance:.0e}")
    for key, label in (("speedup_inference", "inference"), ("speedup_training", "training")):
        value = metrics.get(key)
        if value is None or not value > threshold:
            shown = "not measured" if value is None else f"{value:.2f}x"
            reasons.append(f"{label} speedup {shown} ≤ {threshold}x")
    if metrics.get("success"):
        return Text("Reference criteria: SUCCESS", style="bold green")
    text = Text("Reference criteria: NEEDS WORK", style="bold red")
    text.append(" — " + "; ".join(reasons), style="red")
    return text


def metrics_table(metrics: Mapping[str, Any], benchmark: Mapping[str, Any]) -> Table:
    settings = benchmark.get("settings", {})
    tolerance = settings.get("tolerance", 1e-5)
    threshold = settings.get("speedup_threshold", 1.1)
    table = Table(title="Benchmark metrics (the reference report's keys)", title_justify="left")
    table.add_column("metric")
    table.add_column("eager", justify="right")
    table.add_column("compiled", justify="right")
    table.add_column("result", justify="right")
    table.add_column("threshold", justify="right")
    table.add_column("verdict")
    correctness = metrics.get("correctness", {})
    table.add_row(
        "max action diff",
        "",
        "",
        _sci(correctness.get("action_diff")),
        f"< {tolerance:.0e}",
        _pass(correctness.get("inference_correct")),
    )
    table.add_row(
        "loss diff",
        _sci(benchmark.get("eager_loss")),
        _sci(benchmark.get("compiled_loss")),
        _sci(correctness.get("loss_diff")),
        f"< {tolerance:.0e}",
        _pass(correctness.get("training_correct")),
    )
    timings = benchmark.get("timings", {})
    for entry_point in ("inference", "training"):
        speedup = metrics.get(f"speedup_{entry_point}")
        timing = timings.get(entry_point, {})
        spread = timing.get("speedup", {})
        result = "–" if speedup is None else f"{speedup:.2f}x"
        if spread.get("low") is not None:
            result += f" ({spread['low']:.2f}–{spread['high']:.2f})"
        table.add_row(
            f"{entry_point} time / call (median)",
            _ms(metrics.get(f"time_original_{entry_point}")),
            _ms(metrics.get(f"time_compiled_{entry_point}")),
            result,
            f"> {threshold}x",
            _pass(None if speedup is None else speedup > threshold),
        )
    for key, label in (
        ("loss_consistency", "loss consistency"),
        ("grad_norm_consistency", "grad-norm consistency"),
    ):
        table.add_row(label, "", "", _sci(metrics.get(key)), "", Text("info", style="dim"))
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
    for entry_point, timing in benchmark.get("timings", {}).items():
        for side in ("eager", "compiled"):
            m = timing.get(side) or {}
            if not m:
                continue
            first = timing.get(f"{side}_first_call_s")
            memory = timing.get(f"{side}_peak_memory_mb")
            table.add_row(
                entry_point,
                side,
                _ms(m.get("median_ms")),
                _ms(m.get("iqr_ms")),
                f"{m['min_ms']:.1f}–{m['max_ms']:.1f} ms",
                str(m.get("calls")),
                "–" if first is None else f"{first:.2f} s",
                "–" if memory is None else f"{memory:.0f} MiB",
            )
    return table


def capture_table(benchmark: Mapping[str, Any]) -> Table:
    table = Table(title="Did compiled code run? (per entry point)", title_justify="left")
    table.add_column("entry point")
    table.add_column("frames compiled", justify="right")
    table.add_column("graphs", justify="right")
    table.add_column("compiled regions / warm call", justify="right")
    table.add_column("ran compiled code")
    for entry_point, capture in benchmark.get("capture", {}).items():
        regions = capture.get("compiled_region_events")
        ran = capture.get("ran_compiled_code")
        table.add_row(
            entry_point,
            str(capture.get("frames_compiled")),
            str(capture.get("graphs_captured")),
            "–" if regions is None else str(regions),
            Text("yes", style="green") if ran else Text("NO", style="bold red"),
        )
    return table


def benchmark_view(diagnosis: Mapping[str, Any]) -> RenderableType:
    benchmark = diagnosis.get("probes", {}).get("benchmark")
    metrics = diagnosis.get("reference_metrics")
    if not benchmark or not metrics:
        return Text("The benchmark probe recorded nothing.", style="dim")
    parts: list[RenderableType] = [metrics_table(metrics, benchmark)]
    if benchmark.get("capture"):
        parts.append(capture_table(benchmark))
    if benchmark.get("timings"):
        parts.append(timing_table(benchmark))
    for note in benchmark.get("method_notes", []):
        parts.append(Text(f"• {note}", style="dim"))
    return Group(*parts)


def reading_lines(reading) -> list[Text]:
    """Each failed reference criterion with the findings that explain it."""
    lines = []
    for criterion in reading.failed:
        measured = criterion.measured
        shown = f"{measured:.2f}x" if "speedup" in criterion.criterion else _sci(measured)
        line = Text(f"  {criterion.criterion} {shown} fails {criterion.requirement}")
        if criterion.explained_by:
            line.append(" — explained by " + ", ".join(criterion.explained_by))
            if criterion.excused:
                line.append(": " + criterion.excuse, style="green" if criterion.confirmed else "")
        else:
            line.append(" — no finding explains it", style="yellow")
        lines.append(line)
    if reading.differs:
        probably = "" if all(c.confirmed for c in reading.failed) else "probably "
        lines.append(
            Text(
                f"compile-diagnose reads this run as {probably}correct: every failed criterion "
                "is explained by findings that are not compile faults.",
                style="bold green",
            )
        )
    return lines
