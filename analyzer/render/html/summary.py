"""The head of the report: what was diagnosed, the reference verdict with its reading, the
recommendation. All as stored in the diagnosis: the verdict and the recommendation were decided
once, at the end of the run (`analyzer.verdict`, `analyzer.rules.speed.recommend`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analyzer.format import MISSING, seconds
from analyzer.render.benchmark import criteria_by_name, criterion_figure
from analyzer.render.html.markup import (
    absent,
    badge,
    code_block,
    esc,
    key_values,
    paragraph,
    passed_badge,
    section,
    table,
)
from analyzer.render.speed import recommendation_sentence
from analyzer.rules.speed import paste_lines
from probes.records import target as keys
from probes.records.reference import NEEDS_WORK, SUCCESS, UNDECIDED

VERDICT_TONE = {SUCCESS: "good", NEEDS_WORK: "bad", UNDECIDED: "warn"}
CRITERIA_COLUMNS = ("criterion", "measured", "requirement", "result", "explained by")


def target_name(diagnosis: Mapping[str, Any]) -> str:
    target = diagnosis.get("target") or {}
    return str(target.get(keys.POLICY, diagnosis.get("command") or "model"))


def setting_rows(diagnosis: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What was diagnosed, where, with what: the terminal's setting table."""
    env = diagnosis.get("environment") or {}
    target = diagnosis.get("target") or {}
    numerics = env.get("numerics") or {}
    parameters = target.get(keys.PARAMETERS)
    rows = [
        (
            "target",
            f"{target_name(diagnosis)} (preset {target.get(keys.PRESET, MISSING)}, batch "
            f"{target.get(keys.BATCH_SIZE, MISSING)}"
            + (f", {parameters:,} parameters)" if isinstance(parameters, int) else ")"),
        ),
        ("inputs", str(target.get(keys.BATCH_SOURCE, MISSING))),
        ("weights", str(target.get(keys.WEIGHTS, MISSING))),
        ("device", f"{env.get('device')} ({env.get('device_name')})"),
        (
            "versions",
            f"torch {env.get('torch')}, lerobot {env.get('lerobot')}, python {env.get('python')}",
        ),
        (
            "compile",
            ", ".join(f"{k}={v}" for k, v in (diagnosis.get("compile_settings") or {}).items()),
        ),
        (
            "numerics",
            f"matmul precision {numerics.get('float32_matmul_precision')}, "
            f"cuda matmul TF32 {numerics.get('cuda_matmul_allow_tf32')}, "
            f"cudnn TF32 {numerics.get('cudnn_allow_tf32')}",
        ),
    ]
    phases = diagnosis.get("phase_seconds") or {}
    if phases.get("total") is not None:
        rows.append(("diagnosis took", seconds(phases["total"])))
    return rows


def header(diagnosis: Mapping[str, Any]) -> str:
    status = str(diagnosis.get("status") or "")
    parts = [
        f"<h1>compile-diagnose: {esc(target_name(diagnosis))}</h1>",
        key_values(setting_rows(diagnosis)),
    ]
    if status and status != "complete":
        parts.append(
            paragraph(f"This diagnosis is {status}: what follows is what it recorded.", "warn")
        )
    parts += [paragraph(f"note: {note}", "warn") for note in diagnosis.get("notes") or []]
    parts += [
        paragraph(f"the {probe} probe failed: {error}", "warn")
        for probe, error in (diagnosis.get("probe_errors") or {}).items()
    ]
    return "<header>" + "".join(parts) + "</header>"


def _criterion_row(criterion: Mapping[str, Any]) -> tuple[str, ...]:
    explained = ", ".join(criterion.get("explained_by") or []) or MISSING
    if criterion.get("excused"):
        explained += f" ({criterion.get('excuse')})"
    return (
        str(criterion.get("name")),
        criterion_figure(criterion),
        str(criterion.get("requirement") or ""),
        passed_badge(criterion.get("passed")),
        explained,
    )


def verdict_section(diagnosis: Mapping[str, Any]) -> str:
    verdict = diagnosis.get("verdict")
    if not isinstance(verdict, Mapping):
        return section(
            "verdict", "Verdict", absent("No verdict: the benchmark did not run to the end.")
        )
    label = str(verdict.get("reference"))
    parts = [
        f'<p class="verdict">Reference criteria: {badge(label, VERDICT_TONE.get(label, "muted"))}'
        "</p>",
        table(
            CRITERIA_COLUMNS,
            [_criterion_row(c) for c in criteria_by_name(verdict).values()],
            numeric=(1,),
            raw_columns=(3,),
        ),
    ]
    error = (diagnosis.get("reference_metrics") or {}).get("compilation_error")
    if error:
        parts.append(paragraph(f"compilation error: {error}", "warn"))
    if verdict.get("reading"):
        parts.append(paragraph(str(verdict["reading"]), "reading"))
    return section("verdict", "Verdict and its reading", *parts)


def recommendation_section(diagnosis: Mapping[str, Any]) -> str:
    recommendation = diagnosis.get("recommendation")
    if not isinstance(recommendation, Mapping) or not recommendation:
        return section(
            "recommendation",
            "Recommendation",
            absent("No recommendation: no what-if for speed was measured in this diagnosis."),
        )
    parts = []
    for entry_point, recommended in recommendation.items():
        tone = "good" if recommended.get("what_if") else "muted"
        parts.append(
            f'<p class="{tone}-line">{esc(recommendation_sentence(entry_point, recommended))}</p>'
        )
        lines = paste_lines(recommended)
        if lines:
            parts.append(code_block(lines))
    return section("recommendation", "Recommendation", *parts)
