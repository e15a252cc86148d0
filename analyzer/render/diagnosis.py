"""The whole diagnosis as a user reads it: setting, verdict, recommendation, findings, then the
detail tables (benchmark, where the time goes, graph breaks, divergence, kernels)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from analyzer.diagnosis import DIAGNOSIS_FILE
from analyzer.findings import Finding
from analyzer.format import MISSING, file_link, seconds
from analyzer.render.benchmark import benchmark_view, reading_lines, verdict_line
from analyzer.render.compile_time import compile_time_view, has_compile_time_record
from analyzer.render.distributed import distributed_view
from analyzer.render.divergence import divergence_view
from analyzer.render.findings import render_findings
from analyzer.render.graph_breaks import graph_breaks_view
from analyzer.render.kernels import kernel_report_view
from analyzer.render.memory import memory_plan_view
from analyzer.render.speed import has_speed_record, recommendation_lines, speed_view
from probes.records import target as keys
from probes.records.distributed import DISTRIBUTED
from probes.records.names import COMPILE_TRACE, DIVERGENCE, GRAPH_BREAKS, KERNELS


def setting_table(diagnosis: Mapping[str, Any]) -> Table:
    env = diagnosis.get("environment", {})
    target = diagnosis.get("target", {})
    compile_settings = diagnosis.get("compile_settings", {})
    numerics = env.get("numerics", {})
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rows = [
        (
            "target",
            f"{target.get(keys.POLICY, diagnosis.get('command'))} "
            f"(preset {target.get(keys.PRESET, MISSING)}, "
            f"batch {target.get(keys.BATCH_SIZE, MISSING)}, "
            f"{target.get(keys.PARAMETERS, 0):,} parameters)",
        ),
        ("inputs", str(target.get(keys.BATCH_SOURCE, MISSING))),
        ("weights", str(target.get(keys.WEIGHTS, MISSING))),
        ("device", f"{env.get('device')} — {env.get('device_name')}"),
        (
            "versions",
            f"torch {env.get('torch')}, lerobot {env.get('lerobot')}, python {env.get('python')}",
        ),
        ("compile", ", ".join(f"{k}={v}" for k, v in compile_settings.items())),
        ("inductor cache", str(env.get("inductor_cache_dir"))),
        (
            "numerics",
            f"matmul precision {numerics.get('float32_matmul_precision')}, "
            f"cuda matmul TF32 {numerics.get('cuda_matmul_allow_tf32')}, "
            f"cudnn TF32 {numerics.get('cudnn_allow_tf32')}, "
            f"deterministic {numerics.get('deterministic_algorithms')}, "
            f"inductor fallback_random {numerics.get('inductor_fallback_random')}",
        ),
    ]
    benchmark_settings = ((diagnosis.get("probes") or {}).get("benchmark") or {}).get("settings")
    autocast = (benchmark_settings or {}).get("autocast")
    if autocast:
        rows.append(("training", f"forward and loss under torch.autocast({autocast})"))
    for key, value in rows:
        table.add_row(key, value)
    return table


def compile_report_lines(compile_trace: Mapping[str, Any] | None) -> list[Text]:
    """Where the tlparse reports of this run's compiles are, or why there are none."""
    if not compile_trace:
        return [Text("no compile trace was recorded", style="dim")]
    lines = []
    for phase, trace in compile_trace.items():
        report = trace.get("tlparse") or {}
        if report.get("error"):
            lines.append(
                Text(
                    f"compile trace ({phase}) in {trace.get('trace_dir')}; tlparse report: "
                    f"{report['error']}",
                    style="yellow",
                )
            )
        else:
            link = file_link(report["index_html"])
            lines.append(Text(f"compiler detail, {phase} (tlparse): {link}"))
    return lines


def diagnosis_view(diagnosis: Mapping[str, Any]) -> RenderableType:
    """A diagnosis record (as `diagnosis.json` holds it): its findings and its stored verdict
    are shown as recorded."""
    findings = [Finding.from_record(f) for f in diagnosis.get("findings") or []]
    parts: list[RenderableType] = [setting_table(diagnosis)]
    for note in diagnosis.get("notes", []):
        parts.append(Text(f"note: {note}", style="yellow"))
    verdict = diagnosis.get("verdict")
    if verdict:
        compilation_error = (diagnosis.get("reference_metrics") or {}).get("compilation_error")
        parts.append(Text())
        parts.append(verdict_line(verdict, compilation_error))
        parts.extend(reading_lines(verdict))
    recommendation = recommendation_lines(diagnosis.get("recommendation"))
    if recommendation:
        parts += [Text(), *recommendation]
    for probe, error in diagnosis.get("probe_errors", {}).items():
        parts.append(Text(f"probe {probe} failed: {error}", style="bold red"))
    memory = memory_plan_view(diagnosis.get("memory_plan"))
    if memory is not None:
        parts += [Text(), memory]
    distributed = distributed_view((diagnosis.get("probes") or {}).get(DISTRIBUTED))
    if distributed is not None:
        parts += [Text(), distributed]
    parts.append(Text())
    parts.append(render_findings(findings))
    parts.append(Text())
    parts.append(benchmark_view(diagnosis))
    probes = diagnosis.get("probes") or {}
    if has_speed_record(probes):
        parts.extend([Text(), speed_view(probes)])
    if has_compile_time_record(probes):
        parts.extend([Text(), compile_time_view(probes)])
    if probes.get(GRAPH_BREAKS):
        parts.extend([Text(), graph_breaks_view(probes[GRAPH_BREAKS])])
    if probes.get(DIVERGENCE):
        parts.extend([Text(), divergence_view(probes[DIVERGENCE])])
    if probes.get(KERNELS):
        parts.extend([Text(), kernel_report_view(probes[KERNELS])])
    parts.extend(compile_report_lines(probes.get(COMPILE_TRACE)))
    phases = diagnosis.get("phase_seconds", {})
    if phases:
        spent = ", ".join(f"{k} {seconds(v)}" for k, v in phases.items())
        parts.append(Text(f"time spent: {spent}", style="dim"))
    if diagnosis.get("out_dir"):
        parts.append(Text(f"written to {diagnosis['out_dir']}/{DIAGNOSIS_FILE}", style="dim"))
    return Group(*parts)
