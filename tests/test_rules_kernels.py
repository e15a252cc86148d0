"""Kernel-timing rules on recorded probe results (tests/fixtures/kernels_*.json), without torch.

The reduce-overhead what-if that goes with each kernels fixture is recorded where the speed
what-ifs are, `probes["what_ifs"]`: `tests/fixtures/speed_reduce_overhead.json` holds it per
fixture name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analyzer.findings import Finding
from analyzer.rules import RULE_MODULES
from analyzer.rules.kernels import OUTSIDE_SHARE, check, check_trace
from probes.records.kernels import LAUNCH_BOUND_BUSY
from probes.records.reference import REFERENCE_SPEEDUP
from probes.records.speed import REDUCE_OVERHEAD

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"kernels_{name}.json").read_text())


def what_ifs(name: str) -> list[dict[str, Any]]:
    """The what-ifs recorded with the kernels fixture `name`."""
    return json.loads((FIXTURES / "speed_reduce_overhead.json").read_text())[name]


def reduce_overhead(name: str, entry_point: str) -> dict[str, Any]:
    return next(
        w
        for w in what_ifs(name)
        if w["entry_point"] == entry_point and w["name"] == REDUCE_OVERHEAD
    )


def entry(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in report["entry_points"] if e["name"] == name)


def findings_for(
    report: dict[str, Any], rule: str, recorded: list[dict[str, Any]] | None = None
) -> dict[str, Finding]:
    """Findings of one rule, keyed by the entry point they are about."""
    probes = {"kernels": report, "what_ifs": recorded or []}
    return {f.evidence["entry_point"]: f for f in check(probes) if f.name == rule}


def launch_bound(name: str) -> Finding:
    """The launch-bound finding on select_action of fixture `name`, with its what-ifs."""
    return findings_for(load(name), "launch-bound", what_ifs(name))["select_action"]


def test_kernels_family_is_registered() -> None:
    assert "analyzer.rules.kernels" in {family.__name__ for family in RULE_MODULES}


def test_no_kernels_probe_gives_no_findings() -> None:
    assert check({"benchmark": {}}) == []


def test_idle_gpu_in_the_compiled_call_is_launch_bound() -> None:
    report = load("launch_bound_measured")
    assert entry(report, "select_action")["compiled"]["gpu_busy_fraction"] < LAUNCH_BOUND_BUSY
    found = findings_for(report, "launch-bound")
    assert list(found) == ["select_action"]
    assert found["select_action"].code == "CD201"


def test_busy_gpu_is_not_launch_bound() -> None:
    report = load("launch_bound_measured")
    assert entry(report, "training_step")["compiled"]["gpu_busy_fraction"] >= LAUNCH_BOUND_BUSY
    assert "training_step" not in findings_for(report, "launch-bound")


def test_launch_bound_carries_the_measured_reduce_overhead_speedup() -> None:
    what_if = reduce_overhead("launch_bound_measured", "select_action")
    finding = launch_bound("launch_bound_measured")
    assert finding.measured_fix["speedup_vs_eager_x"] == what_if["speedup_vs_eager"]
    assert finding.measured_fix["speedup_vs_default_x"] == what_if["speedup_vs_default"]
    assert finding.impact_ms == pytest.approx(what_if["default_median_ms"] - what_if["median_ms"])


def test_a_clear_measured_speedup_makes_the_finding_high_confidence() -> None:
    what_if = reduce_overhead("launch_bound_measured", "select_action")
    assert what_if["speedup_vs_default_low"] > REFERENCE_SPEEDUP
    finding = launch_bound("launch_bound_measured")
    assert finding.confidence == "high"
    assert 'mode="reduce-overhead"' in finding.next_steps[0]


def test_launch_bound_without_the_what_if_says_why_it_was_not_measured() -> None:
    finding = launch_bound("launch_bound_not_measured")
    assert finding.measured_fix is None
    assert finding.confidence == "medium"
    reason = reduce_overhead("launch_bound_not_measured", "select_action")["reason"]
    assert finding.evidence["reduce_overhead_what_if"] == reason


def test_launch_bound_without_any_what_if_recorded_says_it_was_not_run() -> None:
    finding = findings_for(load("launch_bound_measured"), "launch-bound")["select_action"]
    assert finding.measured_fix is None
    assert finding.evidence["reduce_overhead_what_if"] == "not run"


def test_a_what_if_of_another_entry_point_is_not_this_ones_fix() -> None:
    moved = [w | {"entry_point": "training_step"} for w in what_ifs("launch_bound_measured")]
    finding = findings_for(load("launch_bound_measured"), "launch-bound", moved)
    assert finding["select_action"].measured_fix is None


def test_a_cudagraph_skip_reason_becomes_a_next_step() -> None:
    reason = reduce_overhead("reduce_overhead_skipped", "select_action")["cudagraph_skip_reasons"][
        0
    ]
    finding = launch_bound("reduce_overhead_skipped")
    assert finding.measured_fix["cudagraph_skip_reasons"] == [reason]
    assert any(reason in step for step in finding.next_steps)


def test_reduce_overhead_that_did_not_help_is_not_recommended_as_a_fix() -> None:
    finding = launch_bound("reduce_overhead_skipped")
    assert finding.confidence == "medium"
    assert "did not clearly help" in finding.next_steps[0]


def test_a_cpu_run_is_never_launch_bound() -> None:
    report = load("cpu")
    assert entry(report, "select_action")["compiled"]["gpu_busy_fraction"] is None
    assert findings_for(report, "launch-bound") == {}


def test_time_outside_compiled_regions_is_reported_for_the_training_step() -> None:
    report = load("launch_bound_measured")
    compiled = entry(report, "training_step")["compiled"]
    share = compiled["outside_compiled_region_ms_per_call"] / compiled["span_ms_per_call"]
    assert share >= OUTSIDE_SHARE
    finding = findings_for(report, "eager-work-outside-compiled-region")["training_step"]
    assert finding.evidence["outside_pct"] == pytest.approx(100 * share, abs=0.05)
    assert finding.impact_ms == compiled["outside_compiled_region_ms_per_call"]


def test_several_compiled_regions_per_call_point_at_graph_breaks() -> None:
    report = load("launch_bound_measured")
    finding = findings_for(report, "eager-work-outside-compiled-region")["training_step"]
    assert "graph breaks" in finding.next_steps[0]


def test_a_mostly_compiled_call_has_no_outside_finding() -> None:
    for name in ("launch_bound_measured", "cpu"):
        found = findings_for(load(name), "eager-work-outside-compiled-region")
        assert "select_action" not in found


def test_a_trace_summary_with_an_idle_gpu_is_launch_bound() -> None:
    summary = load("trace_summary")
    assert summary["gpu_busy_fraction"] < LAUNCH_BOUND_BUSY
    found = check_trace(summary)
    assert [f.name for f in found] == ["launch-bound"]
    assert found[0].evidence["kernel_count"] == summary["kernel_count"]


def test_a_trace_summary_mostly_outside_compiled_code_is_reported() -> None:
    summary = load("trace_summary") | {"compiled_region_ms": 1.0, "outside_compiled_region_ms": 3.0}
    summary["span_ms"] = 4.0
    names = [f.name for f in check_trace(summary)]
    assert "eager-work-outside-compiled-region" in names


def test_a_cpu_trace_summary_gets_no_launch_bound() -> None:
    summary = load("trace_summary") | {"gpu_busy_fraction": None, "has_device_activity": False}
    assert [f.name for f in check_trace(summary)] == []
