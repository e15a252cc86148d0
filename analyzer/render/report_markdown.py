"""A diagnosis as a Markdown report shaped like LeRobot's compile benchmark report.

The same sections as the reference report (environment, compilation, correctness, performance,
consistency, criteria, overall result, raw data), so the two can be read side by side, plus
what that report lacks: the recommendation first, whether compiled code ran, where each call's
time goes with the what-ifs measured, the findings with their causes and next steps, and how each
failed criterion is explained.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from analyzer.findings import Finding
from analyzer.format import MISSING, NOT_MEASURED, ms, sci, times
from analyzer.render.benchmark import benchmark_absence, criteria_by_name, criterion_shortfall
from analyzer.render.compile_time import compile_time_markdown
from analyzer.render.distributed import distributed_markdown
from analyzer.render.findings_markdown import findings_markdown
from analyzer.render.memory import memory_plan_markdown
from analyzer.render.speed import recommendation_markdown, speed_markdown
from probes.records import target as keys
from probes.records.distributed import DISTRIBUTED
from probes.records.names import BENCHMARK, ENTRY_POINTS
from probes.records.reference import SPEEDUP_KEY, TIME_COMPILED_KEY, TIME_ORIGINAL_KEY


def _per_iter(value: Any) -> str:
    shown = ms(value, missing="")
    return f"{shown}/iter" if shown else NOT_MEASURED


def _passed(value: Any) -> str:
    return {True: "PASSED", False: "FAILED"}.get(value, "NOT MEASURED")


def _overall_lines(verdict: Mapping[str, Any] | None) -> list[str]:
    """The stored reference verdict, each failed criterion with what explains it."""
    if not verdict:
        return ["no verdict: the benchmark did not run", ""]
    lines = [str(verdict.get("reference")), ""]
    failed = [c for c in criteria_by_name(verdict).values() if c.get("passed") is False]
    for criterion in failed:
        because = ", ".join(criterion.get("explained_by") or []) or "no finding explains it"
        excused = f" ({criterion.get('excuse')})" if criterion.get("excused") else ""
        lines.append(f"- {criterion_shortfall(criterion)}: {because}{excused}")
    if failed:
        lines.append("")
    if verdict.get("reading"):
        lines += [str(verdict["reading"]), ""]
    return lines


def report_markdown(diagnosis: Mapping[str, Any]) -> str:
    """A diagnosis record (as `diagnosis.json` holds it) as the Markdown report."""
    metrics = diagnosis.get("reference_metrics") or {}
    benchmark = (diagnosis.get("probes") or {}).get(BENCHMARK) or {}
    findings = [Finding.from_record(f) for f in diagnosis.get("findings") or []]
    target = diagnosis.get("target") or {}
    env = diagnosis.get("environment") or {}
    settings = benchmark.get("settings") or {}
    correctness = metrics.get("correctness") or {}
    policy = str(target.get(keys.POLICY, diagnosis.get("command", "model")))
    compiled_with = ", ".join(f"{k}={v}" for k, v in diagnosis.get("compile_settings", {}).items())
    lines = [
        f"# compile-diagnose report: {policy.upper()}",
        "",
        *recommendation_markdown(diagnosis.get("recommendation")),
        "## Environment",
        "",
        f"- **Policy**: {policy} (preset {target.get(keys.PRESET, MISSING)})",
        f"- **Device**: {env.get('device')} ({env.get('device_name')})",
        f"- **PyTorch**: {env.get('torch')}; lerobot {env.get('lerobot')}",
        f"- **Inputs**: {target.get(keys.BATCH_SOURCE, MISSING)}",
        f"- **Batch Size**: {target.get(keys.BATCH_SIZE, MISSING)}",
        f"- **Benchmark Parameters**: {settings.get('iters_inference')} inference runs, "
        f"{settings.get('iters_training')} training runs, {settings.get('warmup')} warm-up, "
        "interleaved",
        f"- **Compile**: {compiled_with}",
        "",
        *memory_plan_markdown(diagnosis.get("memory_plan")),
        *distributed_markdown((diagnosis.get("probes") or {}).get(DISTRIBUTED)),
    ]
    if benchmark:
        lines += benchmark_markdown(diagnosis, metrics, benchmark, settings, correctness)
    else:
        lines += ["## Benchmark", "", benchmark_absence(diagnosis), ""]
    lines += [
        "## Overall Result (the reference criteria)",
        "",
        *_overall_lines(diagnosis.get("verdict")),
    ]
    lines += speed_markdown(diagnosis.get("probes") or {})
    lines += compile_time_markdown(diagnosis.get("probes") or {})
    lines += [
        "## Diagnosis",
        "",
        findings_markdown(findings),
        "## Raw Data",
        "",
        "```json",
        json.dumps(metrics, indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)


def benchmark_markdown(
    diagnosis: Mapping[str, Any],
    metrics: Mapping[str, Any],
    benchmark: Mapping[str, Any],
    settings: Mapping[str, Any],
    correctness: Mapping[str, Any],
) -> list[str]:
    """The benchmark's sections, in the reference report's format."""
    lines = [
        "## Compilation Results",
        "",
        f"- **Status**: {'SUCCESS' if metrics.get('compilation_successful') else 'FAILED'}",
    ]
    if metrics.get("compilation_error"):
        lines.append(f"- **Error**: `{metrics['compilation_error']}`")
    for entry_point, capture in (benchmark.get("capture") or {}).items():
        ran = "yes" if capture.get("ran_compiled_code") else "**NO**"
        lines.append(
            f"- **{entry_point}**: compiled code ran: {ran} ({capture.get('frames_compiled')} "
            f"frames compiled, {capture.get('compiled_region_events')} compiled regions per call)"
        )
    tolerance = sci(settings.get("tolerance"), missing=NOT_MEASURED)
    lines += [
        "",
        "## Correctness Results",
        "",
        f"- **Status**: {_passed(metrics.get('correctness_passed'))}",
        f"- **Max Action Difference**: {sci(correctness.get('action_diff'), NOT_MEASURED)} "
        f"(threshold: {tolerance})",
        f"- **Loss Difference**: {sci(correctness.get('loss_diff'), NOT_MEASURED)} "
        f"(threshold: {tolerance})",
        "",
        "## Performance Results",
        "",
    ]
    for entry_point in ENTRY_POINTS:
        lines += [
            f"### {entry_point.capitalize()} Performance",
            "",
            f"- **Original**: {_per_iter(metrics.get(TIME_ORIGINAL_KEY[entry_point]))} (median)",
            f"- **Compiled**: {_per_iter(metrics.get(TIME_COMPILED_KEY[entry_point]))} (median)",
            f"- **Speedup**: {times(metrics.get(SPEEDUP_KEY[entry_point]), NOT_MEASURED)}",
            "",
        ]
    lines += [
        "### Consistency Metrics (step i of eager against step i of compiled)",
        "",
        f"- **Average Loss Difference**: {sci(metrics.get('loss_consistency'), NOT_MEASURED)}",
        "- **Average Grad Norm Difference**: "
        f"{sci(metrics.get('grad_norm_consistency'), NOT_MEASURED)}",
        "",
    ]
    return lines
