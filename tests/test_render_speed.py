"""The speed section, the recommendation and their place in the diagnosis, rendered from the
recorded speed fixtures (`tests/fixtures/speed_*.json`, see tests/test_rules_speed.py) with their
conclusions made as a run's end makes them. No torch."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console, Group

from analyzer.format import ms, speedup_range
from analyzer.render.diagnosis import diagnosis_view
from analyzer.render.kernels import kernel_report_view
from analyzer.render.report_markdown import report_markdown
from analyzer.render.speed import (
    BAR_WIDTH,
    CATEGORY_GLYPH,
    recommendation_lines,
    speed_view,
)
from analyzer.rules import run_rules
from analyzer.rules.speed import recommend
from analyzer.verdict import verdict_record
from probes.records.names import INFERENCE, TRAINING
from probes.records.serialize import to_jsonable
from probes.records.speed import CATEGORY_LABELS, FREEZING, REDUCE_OVERHEAD

FIXTURES = Path(__file__).parent / "fixtures"


def concluded(name: str) -> dict[str, Any]:
    """A speed fixture with its findings, verdict and recommendation, as a run concludes them."""
    diagnosis = json.loads((FIXTURES / f"speed_{name}.json").read_text())
    findings = run_rules(diagnosis["probes"])
    return {
        **diagnosis,
        "recommendation": recommend(diagnosis["probes"]),
        "findings": to_jsonable(findings),
        "verdict": verdict_record(
            diagnosis["reference_metrics"], diagnosis["probes"]["benchmark"], findings
        ),
    }


def text_of(renderable: Any, width: int = 120) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(Group(*renderable) if isinstance(renderable, list) else renderable)
    return console.export_text()


def lines_of(renderable: Any, width: int = 120) -> list[str]:
    return [line.rstrip() for line in text_of(renderable, width).splitlines()]


@pytest.fixture(scope="module")
def slow() -> dict[str, Any]:
    return concluded("act_cpu_slow")


def freezing_of(diagnosis: dict[str, Any]) -> dict[str, Any]:
    return next(
        w
        for w in diagnosis["probes"]["what_ifs"]
        if w["name"] == FREEZING and w["entry_point"] == INFERENCE
    )


# --- the recommendation ------------------------------------------------------------------------


def test_recommendation_line_gives_the_setting_its_speedup_and_the_paste(
    slow: dict[str, Any],
) -> None:
    lines = lines_of(recommendation_lines(slow["recommendation"]), width=200)
    freezing = freezing_of(slow)
    speedup = speedup_range(
        freezing["speedup_vs_eager"], freezing["speedup_low"], freezing["speedup_high"]
    )
    assert lines[0] == "Recommendation"
    over_default = speedup_range(
        freezing["speedup_vs_default"],
        freezing["speedup_vs_default_low"],
        freezing["speedup_vs_default_high"],
    )
    assert lines[1] == (
        f"  inference: torch._inductor.config.freezing = True — {speedup} over eager, "
        f"{over_default} over the default compile"
    )
    assert lines[2] == f"    {freezing['paste']}"
    assert lines[3].startswith("  training: optimizer = torch.optim.Adam(")


def test_recommendation_without_a_setting_gives_the_reason() -> None:
    diagnosis = concluded("fp64_fails")
    text = text_of(recommendation_lines(diagnosis["recommendation"]), width=2000)
    reason = diagnosis["recommendation"][TRAINING]["reason"]
    assert f"training: no setting tried helps — {reason}" in text


def test_no_recommendation_renders_nothing() -> None:
    assert recommendation_lines(None) == []


# --- where the time goes -----------------------------------------------------------------------


def bar_lines(text: str) -> list[str]:
    """The eager and compiled bars of each entry point, in order."""
    return [line for line in text.splitlines() if line.startswith(("eager ", "compiled "))]


def test_bars_put_eager_above_compiled_on_one_scale(slow: dict[str, Any]) -> None:
    text = text_of(speed_view(slow["probes"]))
    glyphs = "".join(CATEGORY_GLYPH.values())
    for entry_point, (eager, compiled) in zip(
        (INFERENCE, TRAINING), zip(*[iter(bar_lines(text))] * 2, strict=True), strict=True
    ):
        record = slow["probes"]["speed"][entry_point]
        assert eager.startswith("eager ") and compiled.startswith("compiled ")
        widths = [sum(line.count(g) for g in glyphs) for line in (eager, compiled)]
        assert widths[1] == BAR_WIDTH  # the compiled call is the longer one in this run
        assert widths[0] == pytest.approx(
            BAR_WIDTH * record["eager_ms"] / record["compiled_ms"], abs=1
        )
        assert eager.endswith(ms(record["eager_ms"]))
        assert compiled.endswith(ms(record["compiled_ms"]))


def test_each_segment_is_as_wide_as_its_time(slow: dict[str, Any]) -> None:
    record = slow["probes"]["speed"][INFERENCE]
    compiled = bar_lines(text_of(speed_view(slow["probes"])))[1]
    for share in record["attribution"]:
        if share["compiled_ms"] is None:
            continue
        columns = compiled.count(CATEGORY_GLYPH[share["category"]])
        expected = BAR_WIDTH * share["compiled_ms"] / record["compiled_ms"]
        assert columns == pytest.approx(expected, abs=1), share["category"]


def test_legend_gives_each_category_its_figures(slow: dict[str, Any]) -> None:
    record = slow["probes"]["speed"][INFERENCE]
    lines = lines_of(speed_view(slow["probes"]))
    for share in record["attribution"]:
        if share["eager_ms"] is None and share["compiled_ms"] is None:
            continue  # a category neither side can have (device idle on a CPU)
        label = CATEGORY_LABELS[share["category"]]
        row = next(line for line in lines if label in line)
        assert row.split()[0] == CATEGORY_GLYPH[share["category"]] * 2
        assert ms(share["compiled_ms"]) in row
    assert not any(CATEGORY_LABELS["device_idle"] in line for line in lines)


def test_a_device_timeline_draws_the_idle_gpu() -> None:
    shares = {
        "library_kernels": (2.0, 2.0),
        "generated_kernels": (3.0, 1.0),
        "device_idle": (5.0, 7.0),
    }
    record = {
        "basis": "device",
        "eager_ms": 10.0,
        "compiled_ms": 10.0,
        "attribution": [
            {"category": category, "eager_ms": eager, "compiled_ms": compiled}
            for category, (eager, compiled) in shares.items()
        ],
        "ceiling": {"speedup": 5.0, "reason": "library kernels take 2.0 ms of 10.0 ms"},
    }
    text = text_of(speed_view({"speed": {INFERENCE: record}}))
    compiled = bar_lines(text)[1]
    assert compiled.count(CATEGORY_GLYPH["device_idle"]) == round(BAR_WIDTH * 7.0 / 10.0)
    assert CATEGORY_LABELS["device_idle"] in text and "device timeline" in text


def test_ceiling_break_costs_and_what_ifs_are_shown(slow: dict[str, Any]) -> None:
    text = text_of(speed_view(slow["probes"]), width=400)
    for entry_point in (INFERENCE, TRAINING):
        assert slow["probes"]["speed"][entry_point]["ceiling"]["reason"] in text
    assert "lerobot/policies/act/modeling_act.py:150" in text
    freezing = freezing_of(slow)
    row = next(line for line in text.splitlines() if line.strip().startswith(FREEZING))
    assert f"{freezing['speedup_vs_eager']:.2f}x" in row and ms(freezing["median_ms"]) in row
    assert "PASS" in row
    reduce_overhead = next(line for line in text.splitlines() if REDUCE_OVERHEAD in line)
    assert "not run" in reduce_overhead  # where its median would be
    not_run = next(
        w
        for w in slow["probes"]["what_ifs"]
        if w["name"] == REDUCE_OVERHEAD and w["entry_point"] == INFERENCE
    )
    assert not_run["reason"] in text


def test_a_what_if_that_fails_fp64_shows_why() -> None:
    diagnosis = concluded("fp64_fails")
    text = text_of(speed_view(diagnosis["probes"]), width=200)
    row = next(line for line in text.splitlines() if line.strip().startswith(FREEZING))
    assert "FAIL" in row
    assert freezing_of(diagnosis)["fp64_detail"] in text


@pytest.mark.parametrize("width", [80, 120])
def test_speed_view_fits_the_terminal(slow: dict[str, Any], width: int) -> None:
    text = text_of(speed_view(slow["probes"]), width=width)
    assert max(len(line) for line in text.splitlines()) <= width


def test_the_kernel_section_no_longer_shows_the_what_if() -> None:
    report = json.loads((FIXTURES / "kernels_launch_bound_measured.json").read_text())
    assert REDUCE_OVERHEAD not in text_of(kernel_report_view(report), width=200)


# --- in the diagnosis --------------------------------------------------------------------------


@pytest.mark.parametrize("width", [80, 120])
def test_diagnosis_reads_verdict_recommendation_findings_then_where_the_time_goes(
    slow: dict[str, Any], width: int
) -> None:
    text = text_of(diagnosis_view(slow), width=width)
    order = [
        "Reference criteria",
        "Recommendation",
        "findings",
        "Benchmark metrics",
        "Where the time goes: inference",
        "Where the time goes: training",
    ]
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert max(len(line) for line in text.splitlines()) <= width


def test_a_failed_speedup_is_always_explained_when_the_time_was_attributed() -> None:
    for name in ("act_cpu_slow", "fp64_fails"):
        lines = lines_of(diagnosis_view(concluded(name)), width=200)
        for entry_point in (INFERENCE, TRAINING):
            reading = next(line for line in lines if line.startswith(f"  {entry_point} speedup"))
            assert "fails" in reading and "CD205 speedup-ceiling" in reading, name
        assert not any("no finding explains it" in line for line in lines)


def test_a_diagnosis_without_a_speed_record_has_no_speed_section(slow: dict[str, Any]) -> None:
    probes = {k: v for k, v in slow["probes"].items() if k not in ("speed", "what_ifs")}
    text = text_of(diagnosis_view({**slow, "probes": probes, "recommendation": None}))
    assert "Where the time goes" not in text and "Recommendation" not in text


# --- Markdown ----------------------------------------------------------------------------------


def test_markdown_opens_with_the_recommendation(slow: dict[str, Any]) -> None:
    markdown = report_markdown(slow)
    sections = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert sections[0] == "## Recommendation"
    recommendation = markdown.split("## Recommendation")[1].split("## ")[0]
    assert "- inference: torch._inductor.config.freezing = True — " in recommendation
    assert f"  {freezing_of(slow)['paste']}" in recommendation.splitlines()


def test_markdown_tables_where_the_time_goes(slow: dict[str, Any]) -> None:
    markdown = report_markdown(slow)
    section = markdown.split("## Where the time goes")[1].split("## Diagnosis")[0]
    inference = section.split("### Inference")[1].split("### Training")[0]
    assert "| category | eager | compiled | share of compiled |" in inference
    record = slow["probes"]["speed"][INFERENCE]
    library = record["attribution"][0]
    row = f"| {CATEGORY_LABELS[library['category']]} | {ms(library['eager_ms'])} | "
    assert row + f"{ms(library['compiled_ms'])} |" in inference
    freezing = freezing_of(slow)
    what_if_row = next(line for line in inference.splitlines() if line.startswith(f"| {FREEZING}"))
    over_eager = speedup_range(
        freezing["speedup_vs_eager"], freezing["speedup_low"], freezing["speedup_high"]
    )
    assert f"| {over_eager} |" in what_if_row and "| yes |" in what_if_row


def test_markdown_without_a_recommendation_has_no_such_section(slow: dict[str, Any]) -> None:
    markdown = report_markdown({**slow, "recommendation": None})
    assert "## Recommendation" not in markdown


def test_a_what_if_not_checked_says_why_and_how_to_check_it(slow: dict[str, Any]) -> None:
    slow = copy.deepcopy(slow)  # the fixture is shared by the module's tests
    freezing = freezing_of(slow)
    freezing["fp64_criterion_passed"] = None
    freezing["fp64_detail"] = "not checked: its check is a compile of its own, --what-if freezing"
    text = " ".join(text_of(speed_view(slow["probes"]), width=200).split())
    assert freezing["fp64_detail"] in text
