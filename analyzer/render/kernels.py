"""Rich renderables for kernel timing: one trace's summary (`compile-diagnose trace`), and the
kernels probe's eager/compiled report (the what-ifs, reduce-overhead among them, are the speed
section's: `analyzer.render.speed`).

Both take the record (`TraceSummary`, `KernelTimingReport` in `probes/records/kernels.py`) or its
JSON form, so a live run and a `diagnosis.json` read back render alike; they decide nothing (the
findings are `analyzer.rules.kernels`'). Kernel names are C++ signatures hundreds of characters
long, so theirs is the column that gives way on a narrow terminal: it shrinks and the names end
in an ellipsis.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from analyzer.format import MISSING, count, ms, percent
from probes.records.kernels import (
    COMPILED_REGION_PREFIX,
    CUBLAS,
    CUDNN,
    KERNEL,
    MEMCPY,
    MEMSET,
    OTHER,
    PERFETTO_UI,
    TRITON,
    WINDOW_FROM_STEPS,
)
from probes.records.names import COMPILED, EAGER
from probes.records.serialize import to_jsonable

FAMILY_LABELS = {TRITON: "Triton", CUBLAS: "cuBLAS", CUDNN: "cuDNN", OTHER: "other"}
NO_DEVICE_ACTIVITY = (
    f"This trace holds no device activity (no {KERNEL}, {MEMCPY} or {MEMSET} events): device "
    "time, GPU busy and launch cost do not apply. Host ops are shown instead."
)


def _record(value: Any) -> Mapping[str, Any]:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(value)
    return value


def _facts_table(rows: Sequence[tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in rows:
        table.add_row(label, value)
    return table


def trace_summary_view(summary: Any) -> RenderableType:
    """Headline figures, top kernels, library split and top host ops of one trace."""
    s = _record(summary)
    parts: list[RenderableType] = [Text(f"Trace {s['source']}", style="bold"), _trace_facts(s)]
    if s["has_device_activity"]:
        parts.append(kernel_table(s.get("top_kernels") or [], per_call=False))
        parts.append(family_table(s.get("kernel_families") or [], per_call=False))
    else:
        parts.append(Text(NO_DEVICE_ACTIVITY, style="yellow"))
    parts.append(op_table(s.get("top_ops") or [], per_call=False))
    return Group(*parts)


def _trace_facts(s: Mapping[str, Any]) -> Table:
    steps = s.get("step_count") or 0
    window = (
        f"{steps} ProfilerStep(s)"
        if s.get("window_source") == WINDOW_FROM_STEPS
        else "first to last"
    )
    rows = [
        ("Device", ", ".join(sorted(set(s.get("device_names") or []))) or "none recorded"),
        ("Span", f"{ms(s['span_ms'])} ({window})"),
    ]
    if s["has_device_activity"]:
        rows += [
            (
                "Kernels",
                f"{count(s['kernel_count'])} kernels, {count(s['memcpy_count'])} "
                f"memcpy, {count(s['memset_count'])} memset",
            ),
            (
                "Device time",
                f"{ms(s['device_time_ms'])} (kernels {ms(s['kernel_time_ms'])})",
            ),
            (
                "GPU busy",
                f"{percent(s['gpu_busy_fraction'])} of the span, idle {ms(s['gpu_idle_ms'])}",
            ),
            (
                "Launch API",
                f"{ms(s['launch_api_ms'])} in {count(s['kernel_launch_count'])} "
                f"kernel launches, {count(s['cudagraph_replay_count'])} CUDA-graph replays",
            ),
        ]
    rows.append(("Compiled regions", _compiled_text(s)))
    rows.append(
        (
            "Host ops",
            f"{count(s['cpu_op_count'])} ops, {ms(s['cpu_op_self_ms'])} self time",
        )
    )
    return _facts_table(rows)


def _compiled_text(s: Mapping[str, Any]) -> str:
    if s.get("compiled_region_ms") is None:
        return f"none (no '{COMPILED_REGION_PREFIX}' event)"
    names = ", ".join(s.get("compiled_region_names") or []) or "backward only"
    return (
        f"{ms(s['compiled_region_ms'])} inside, "
        f"{ms(s['outside_compiled_region_ms'])} outside ({names})"
    )


def _name_cell(name: str) -> Text:
    # The column may shrink (it is the only one that can), the name inside it never wraps.
    return Text(name, no_wrap=True, overflow="ellipsis")


def kernel_table(
    kernels: Sequence[Mapping[str, Any]], *, per_call: bool, title: str = "Top kernels"
) -> Table:
    suffix = " / call" if per_call else ""
    table = Table(title=f"{title} by device time", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("Kernel", min_width=16)
    table.add_column("Library", no_wrap=True)
    table.add_column(f"Count{suffix}", justify="right", no_wrap=True)
    table.add_column(f"Time{suffix}", justify="right", no_wrap=True)
    table.add_column("Share", justify="right", no_wrap=True)
    for k in kernels:
        table.add_row(
            _name_cell(k["name"]),
            FAMILY_LABELS.get(k["family"], k["family"]),
            count(k.get("count_per_call", k.get("count"))),
            ms(k.get("ms_per_call", k.get("total_ms"))),
            percent(k["share"]),
        )
    return table


def family_table(families: Sequence[Mapping[str, Any]], *, per_call: bool) -> Table:
    suffix = " / call" if per_call else ""
    table = Table(title="Kernel time by library", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("Library", no_wrap=True)
    table.add_column(f"Kernels{suffix}", justify="right", no_wrap=True)
    table.add_column(f"Time{suffix}", justify="right", no_wrap=True)
    table.add_column("Share", justify="right", no_wrap=True)
    for f in families:
        table.add_row(
            FAMILY_LABELS.get(f["family"], f["family"]),
            count(f.get("count_per_call", f.get("count"))),
            ms(f.get("ms_per_call", f.get("total_ms"))),
            percent(f["share"]),
        )
    return table


def op_table(
    ops: Sequence[Mapping[str, Any]], *, per_call: bool, title: str = "Top host ops"
) -> Table:
    suffix = " / call" if per_call else ""
    table = Table(title=f"{title} by self time", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("Op", min_width=16)
    table.add_column(f"Count{suffix}", justify="right", no_wrap=True)
    table.add_column(f"Self time{suffix}", justify="right", no_wrap=True)
    table.add_column("Share", justify="right", no_wrap=True)
    for op in ops:
        table.add_row(
            _name_cell(op["name"]),
            count(op.get("count_per_call", op.get("count"))),
            ms(op.get("self_ms_per_call", op.get("self_ms"))),
            percent(op["share"]),
        )
    return table


_ROWS: tuple[tuple[str, str, str], ...] = (
    # (label, CallProfile key, format)
    ("Wall time / call (under profiler)", "wall_ms", "ms"),
    ("Kernels / call", "kernels_per_call", "count"),
    ("Kernel time / call", "kernel_ms_per_call", "ms"),
    ("Device time / call", "device_ms_per_call", "ms"),
    ("GPU busy", "gpu_busy_fraction", "percent"),
    ("GPU idle / call", "gpu_idle_ms_per_call", "ms"),
    ("Launch API / call", "launch_api_ms_per_call", "ms"),
    ("CUDA-graph replays / call", "cudagraph_replays_per_call", "count"),
    ("Compiled regions / call", "compiled_regions_per_call", "count"),
    ("Inside compiled / call", "compiled_region_ms_per_call", "ms"),
    ("Outside compiled / call", "outside_compiled_region_ms_per_call", "ms"),
    ("Host-op self time / call", "host_op_self_ms_per_call", "ms"),
)
_FORMATS = {"ms": ms, "count": count, "percent": percent}


def call_comparison_table(entry: Mapping[str, Any]) -> Table:
    """Eager against compiled, one row per figure, for one entry point."""
    table = Table(
        title=f"{entry['name']}: eager vs compiled", box=box.SIMPLE_HEAD, title_justify="left"
    )
    table.add_column("Per call", no_wrap=True)
    table.add_column(EAGER, justify="right", no_wrap=True)
    table.add_column(COMPILED, justify="right", no_wrap=True)
    for label, key, kind in _ROWS:
        fmt = _FORMATS[kind]
        table.add_row(label, fmt(entry[EAGER].get(key)), fmt(entry[COMPILED].get(key)))
    return table


def kernel_report_view(report: Any) -> RenderableType:
    """Per entry point: the eager/compiled table and the compiled side's top kernels."""
    r = _record(report)
    parts: list[RenderableType] = [
        Text(
            f"Kernel timing on {r['device']}, {r['profiled_calls']} profiled calls per side "
            f"after {r['warmup_calls']} warm-up calls (torch {r['torch_version']})",
            style="bold",
        )
    ]
    for entry in r["entry_points"]:
        parts.append(call_comparison_table(entry))
        if not entry[COMPILED].get("has_device_activity"):
            parts.append(
                Text(f"No device activity recorded: device rows do not apply ({MISSING}).")
            )
        compiled = entry[COMPILED]
        if compiled.get("top_kernels"):
            parts.append(
                kernel_table(compiled["top_kernels"], per_call=True, title="Compiled: top kernels")
            )
        else:
            ops = compiled.get("top_ops") or []
            parts.append(op_table(ops, per_call=True, title="Compiled: top host ops"))
    parts.append(_facts_table(_trace_rows(r)))
    return Group(*parts)


def _trace_rows(r: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Where the traces are and how to open them: Perfetto first, then TensorBoard."""
    merged = [(e["name"], e.get("perfetto_trace")) for e in r["entry_points"]]
    rows = [(f"Perfetto ({name})", path) for name, path in merged if path]
    if rows:
        rows.append(
            (
                "Open",
                f"{PERFETTO_UI}, Open trace file: eager above compiled, both from t=0 "
                "(the file stays in your browser)",
            )
        )
    return [*rows, ("TensorBoard", r["tensorboard_logdir"]), ("View", r["tensorboard_command"])]
