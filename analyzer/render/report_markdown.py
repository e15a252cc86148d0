"""A diagnosis as a Markdown report shaped like LeRobot's compile benchmark report.

The same sections as the reference report (environment, compilation, correctness, performance,
consistency, criteria, overall result, raw data), so the two can be read side by side, plus
what that report lacks: whether compiled code ran, the findings with their causes and next steps,
and how each failed criterion is explained.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from analyzer.findings import Finding
from analyzer.render.findings_markdown import findings_markdown
from analyzer.verdict import read_verdict


def _sci(value: Any) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, str):
        return value
    return f"{value:.2e}"


def _ms(value: Any) -> str:
    return "not measured" if value is None else f"{value:.2f} ms/iter"


def _passed(value: Any) -> str:
    return {True: "PASSED", False: "FAILED"}.get(value, "NOT MEASURED")


def report_markdown(diagnosis: Mapping[str, Any], findings: list[Finding]) -> str:
    metrics = diagnosis.get("reference_metrics") or {}
    benchmark = (diagnosis.get("probes") or {}).get("benchmark") or {}
    target = diagnosis.get("target") or {}
    env = diagnosis.get("environment") or {}
    settings = benchmark.get("settings") or {}
    correctness = metrics.get("correctness") or {}
    policy = str(target.get("policy", diagnosis.get("command", "model")))
    compiled_with = ", ".join(f"{k}={v}" for k, v in diagnosis.get("compile_settings", {}).items())
    lines = [
        f"# compile-diagnose report: {policy.upper()}",
        "",
        "## Environment",
        "",
        f"- **Policy**: {policy} (preset {target.get('preset', '–')})",
        f"- **Device**: {env.get('device')} ({env.get('device_name')})",
        f"- **PyTorch**: {env.get('torch')}; lerobot {env.get('lerobot')}",
        f"- **Inputs**: {target.get('batch_source', '–')}",
        f"- **Batch Size**: {target.get('batch_size', '–')}",
        f"- **Benchmark Parameters**: {settings.get('iters_inference')} inference runs, "
        f"{settings.get('iters_training')} training runs, {settings.get('warmup')} warm-up, "
        "interleaved",
        f"- **Compile**: {compiled_with}",
        "",
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
    tolerance = settings.get("tolerance", 1e-5)
    lines += [
        "",
        "## Correctness Results",
        "",
        f"- **Status**: {_passed(metrics.get('correctness_passed'))}",
        f"- **Max Action Difference**: {_sci(correctness.get('action_diff'))} "
        f"(threshold: {tolerance:.2e})",
        f"- **Loss Difference**: {_sci(correctness.get('loss_diff'))} (threshold: {tolerance:.2e})",
        "",
        "## Performance Results",
        "",
    ]
    for entry_point in ("inference", "training"):
        speedup = metrics.get(f"speedup_{entry_point}")
        lines += [
            f"### {entry_point.capitalize()} Performance",
            "",
            f"- **Original**: {_ms(metrics.get(f'time_original_{entry_point}'))} (median)",
            f"- **Compiled**: {_ms(metrics.get(f'time_compiled_{entry_point}'))} (median)",
            f"- **Speedup**: {'not measured' if speedup is None else f'{speedup:.2f}x'}",
            "",
        ]
    lines += [
        "### Consistency Metrics (step i of eager against step i of compiled)",
        "",
        f"- **Average Loss Difference**: {_sci(metrics.get('loss_consistency'))}",
        f"- **Average Grad Norm Difference**: {_sci(metrics.get('grad_norm_consistency'))}",
        "",
        "## Overall Result (the reference criteria)",
        "",
        "SUCCESS" if metrics.get("success") else "NEEDS WORK",
        "",
    ]
    if benchmark and metrics:
        reading = read_verdict(metrics, benchmark, findings)
        for criterion in reading.failed:
            because = ", ".join(criterion.explained_by) or "no finding explains it"
            excused = f" ({criterion.excuse})" if criterion.excused else ""
            lines.append(
                f"- {criterion.criterion} fails {criterion.requirement}: {because}{excused}"
            )
        lines.append("")
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
