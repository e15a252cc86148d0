"""Speed rules and the recommendation on recorded speed fixtures, without torch.

The fixtures (`tests/fixtures/speed_*.json`) are diagnosis records without their conclusions:
`speed_act_cpu_slow` is ACT's CPU preset on a 2-core CPU (compiled 0.97x eager for inference,
0.80x for training; freezing measured 1.38x, a fused optimizer 1.15x), `speed_fp64_fails` the same
run where freezing is as fast but fails the fp64 criterion and the optimizer gains nothing, and
`speed_fast` a model that compiling speeds up 1.6x with no what-if run. Expected values are read
from the fixtures, not written here.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from analyzer.findings import Finding, Severity
from analyzer.format import ms, percent, speedup_range, times
from analyzer.rules import RULE_MODULES, run_rules
from analyzer.rules import compile as compile_rules
from analyzer.rules.speed import FASTER_COMPILE_SETTING, SPEEDUP_CEILING, check, recommend
from analyzer.verdict import read_verdict
from probes.records.names import INFERENCE, TRAINING
from probes.records.reference import SPEEDUP_CRITERION
from probes.records.speed import (
    CATEGORY_LABELS,
    COMPILED_OPTIMIZER,
    FREEZING,
    LIBRARY_KERNELS,
    REDUCE_OVERHEAD,
)

FIXTURES = Path(__file__).parent / "fixtures"
SPEED_RULES = {SPEEDUP_CEILING.name, FASTER_COMPILE_SETTING.name}


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"speed_{name}.json").read_text())


def findings_of(probes: dict[str, Any], rule: str) -> dict[str, list[Finding]]:
    """Findings of one rule, by the entry point they are about."""
    found: dict[str, list[Finding]] = {}
    for finding in check(probes):
        if finding.name == rule:
            found.setdefault(finding.evidence["entry_point"], []).append(finding)
    return found


def what_if(probes: dict[str, Any], name: str, entry_point: str) -> dict[str, Any]:
    return next(
        w for w in probes["what_ifs"] if w["name"] == name and w["entry_point"] == entry_point
    )


@pytest.fixture
def slow() -> dict[str, Any]:
    return load("act_cpu_slow")


@pytest.fixture
def fp64_fails() -> dict[str, Any]:
    return load("fp64_fails")


def test_speed_family_is_registered() -> None:
    assert "analyzer.rules.speed" in {family.__name__ for family in RULE_MODULES}


def test_nothing_without_a_benchmark() -> None:
    assert check({}) == []
    assert recommend({}) == {}


# --- speedup-ceiling ---------------------------------------------------------------------------


def test_ceiling_fires_on_each_entry_point_that_misses_the_bar(slow: dict[str, Any]) -> None:
    found = findings_of(slow["probes"], SPEEDUP_CEILING.name)
    assert sorted(found) == [INFERENCE, TRAINING]
    for entry_point, findings in found.items():
        (finding,) = findings
        record = slow["probes"]["speed"][entry_point]
        assert finding.code == "CD205"
        assert finding.confidence == "high"
        assert finding.impact_ms == pytest.approx(record["compiled_ms"] - record["eager_ms"])
        assert finding.evidence["ceiling"]["speedup_x"] == record["ceiling"]["speedup"]


def test_ceiling_names_where_the_compiled_time_goes(slow: dict[str, Any]) -> None:
    record = slow["probes"]["speed"][INFERENCE]
    (finding,) = findings_of(slow["probes"], SPEEDUP_CEILING.name)[INFERENCE]
    library = next(s for s in record["attribution"] if s["category"] == LIBRARY_KERNELS)
    share = percent(library["compiled_ms"] / record["compiled_ms"])
    label = CATEGORY_LABELS[LIBRARY_KERNELS]
    assert f"{label} {ms(library['compiled_ms'])} ({share}; eager {ms(library['eager_ms'])})" in (
        finding.cause
    )
    assert times(record["ceiling"]["speedup"]) in finding.cause
    assert record["ceiling"]["reason"] in finding.cause
    assert finding.evidence["largest_library_op"] == "aten::mkldnn_convolution"


def test_ceiling_says_what_was_tried_and_what_it_gave(slow: dict[str, Any]) -> None:
    (finding,) = findings_of(slow["probes"], SPEEDUP_CEILING.name)[INFERENCE]
    freezing = what_if(slow["probes"], FREEZING, INFERENCE)
    over_eager = speedup_range(
        freezing["speedup_vs_eager"], freezing["speedup_low"], freezing["speedup_high"]
    )
    assert f"{FREEZING} {over_eager} over eager" in finding.cause
    # the what-ifs not run are named; why each did not run is the what-if table's
    assert "not run: " in finding.cause and REDUCE_OVERHEAD in finding.cause
    not_run = what_if(slow["probes"], REDUCE_OVERHEAD, INFERENCE)
    assert not_run["reason"] not in finding.cause
    assert freezing["paste"].splitlines()[0] in finding.next_steps


def test_ceiling_below_the_bar_says_no_setting_that_keeps_the_kernels_clears_it(
    slow: dict[str, Any],
) -> None:
    slow["probes"]["speed"][INFERENCE]["ceiling"]["speedup"] = 1.05
    (finding,) = findings_of(slow["probes"], SPEEDUP_CEILING.name)[INFERENCE]
    assert "below the 1.10x bar" in finding.cause


def test_ceiling_explains_both_failed_speedup_criteria(slow: dict[str, Any]) -> None:
    findings = run_rules(slow["probes"])
    reading = read_verdict(slow["reference_metrics"], slow["probes"]["benchmark"], findings)
    for entry_point in (INFERENCE, TRAINING):
        criterion = next(c for c in reading.criteria if c.name == SPEEDUP_CRITERION[entry_point])
        assert criterion.passed is False
        assert "CD205 speedup-ceiling" in criterion.explained_by
        assert criterion.confirmed  # every explaining finding is measured


def test_ceiling_alone_explains_a_failed_speedup_when_no_setting_helped(
    fp64_fails: dict[str, Any],
) -> None:
    findings = run_rules(fp64_fails["probes"])
    reading = read_verdict(
        fp64_fails["reference_metrics"], fp64_fails["probes"]["benchmark"], findings
    )
    inference = next(c for c in reading.criteria if c.name == SPEEDUP_CRITERION[INFERENCE])
    assert inference.explained_by == ["CD205 speedup-ceiling"]


def test_no_ceiling_without_a_speed_record(slow: dict[str, Any]) -> None:
    del slow["probes"]["speed"][TRAINING]
    assert sorted(findings_of(slow["probes"], SPEEDUP_CEILING.name)) == [INFERENCE]


def test_the_bar_is_the_benchmarks(slow: dict[str, Any]) -> None:
    slow["probes"]["benchmark"]["settings"]["speedup_threshold"] = 0.9
    assert sorted(findings_of(slow["probes"], SPEEDUP_CEILING.name)) == [TRAINING]


def test_nothing_speed_related_fires_when_compile_pays_off() -> None:
    fast = load("fast")
    assert all(t["speedup"]["ratio"] > 1.1 for t in fast["probes"]["benchmark"]["timings"].values())
    assert {f.name for f in run_rules(fast["probes"])} & SPEED_RULES == set()


# --- faster-compile-setting --------------------------------------------------------------------


def test_a_clearly_faster_setting_that_passes_fp64_is_reported(slow: dict[str, Any]) -> None:
    found = findings_of(slow["probes"], FASTER_COMPILE_SETTING.name)
    assert {e: [f.evidence["what_if"] for f in fs] for e, fs in found.items()} == {
        INFERENCE: [FREEZING],
        TRAINING: [COMPILED_OPTIMIZER],
    }
    (finding,) = found[INFERENCE]
    freezing = what_if(slow["probes"], FREEZING, INFERENCE)
    assert finding.code == "CD206"
    assert finding.next_steps == freezing["paste"].splitlines()
    assert finding.measured_fix["speedup_vs_eager_x"] == freezing["speedup_vs_eager"]
    assert finding.measured_fix["speedup_vs_default_low_x"] == freezing["speedup_vs_default_low"]
    assert finding.impact_ms == pytest.approx(freezing["default_median_ms"] - freezing["median_ms"])


def test_a_setting_that_clears_the_bar_the_default_misses_is_a_warning(
    slow: dict[str, Any],
) -> None:
    (finding,) = findings_of(slow["probes"], FASTER_COMPILE_SETTING.name)[INFERENCE]
    assert what_if(slow["probes"], FREEZING, INFERENCE)["speedup_low"] > 1.1
    assert finding.severity == Severity.WARNING


def test_a_faster_setting_that_does_not_clear_the_bar_is_info(slow: dict[str, Any]) -> None:
    what_if(slow["probes"], FREEZING, INFERENCE)["speedup_low"] = 1.05
    (finding,) = findings_of(slow["probes"], FASTER_COMPILE_SETTING.name)[INFERENCE]
    assert finding.severity == Severity.INFO


def test_a_faster_setting_where_the_default_clears_the_bar_is_info(slow: dict[str, Any]) -> None:
    slow["probes"]["benchmark"]["settings"]["speedup_threshold"] = 0.5
    (finding,) = findings_of(slow["probes"], FASTER_COMPILE_SETTING.name)[INFERENCE]
    assert finding.severity == Severity.INFO


def test_a_faster_setting_that_fails_fp64_is_not_reported(fp64_fails: dict[str, Any]) -> None:
    freezing = what_if(fp64_fails["probes"], FREEZING, INFERENCE)
    assert freezing["speedup_vs_default_low"] > 1 and freezing["fp64_criterion_passed"] is False
    assert findings_of(fp64_fails["probes"], FASTER_COMPILE_SETTING.name) == {}


def test_a_setting_not_clearly_faster_than_the_default_is_not_reported(
    fp64_fails: dict[str, Any],
) -> None:
    optimizer = what_if(fp64_fails["probes"], COMPILED_OPTIMIZER, TRAINING)
    assert optimizer["speedup_vs_default"] > 1 >= optimizer["speedup_vs_default_low"]
    assert TRAINING not in findings_of(fp64_fails["probes"], FASTER_COMPILE_SETTING.name)


def test_a_setting_whose_fp64_was_not_checked_is_not_reported(slow: dict[str, Any]) -> None:
    what_if(slow["probes"], FREEZING, INFERENCE)["fp64_criterion_passed"] = None
    assert INFERENCE not in findings_of(slow["probes"], FASTER_COMPILE_SETTING.name)
    assert recommend(slow["probes"])[INFERENCE]["what_if"] is None


# --- the recommendation ------------------------------------------------------------------------


def test_recommendation_is_the_best_measured_setting(slow: dict[str, Any]) -> None:
    recommendation = recommend(slow["probes"])
    freezing = what_if(slow["probes"], FREEZING, INFERENCE)
    assert recommendation[INFERENCE] == {
        "what_if": FREEZING,
        "speedup": freezing["speedup_vs_eager"],
        "speedup_low": freezing["speedup_low"],
        "speedup_high": freezing["speedup_high"],
        "paste": freezing["paste"],
        "speedup_vs_default": freezing["speedup_vs_default"],
        "reason": recommendation[INFERENCE]["reason"],  # its own test below
    }
    assert recommendation[TRAINING]["what_if"] == COMPILED_OPTIMIZER


def test_recommendation_prefers_the_highest_speedup_over_eager(slow: dict[str, Any]) -> None:
    freezing = what_if(slow["probes"], FREEZING, INFERENCE)
    faster = copy.deepcopy(freezing) | {"name": "max-autotune-no-cudagraphs"}
    faster["speedup_vs_eager"] = freezing["speedup_vs_eager"] + 0.2
    slow["probes"]["what_ifs"].append(faster)
    assert recommend(slow["probes"])[INFERENCE]["what_if"] == "max-autotune-no-cudagraphs"
    faster["fp64_criterion_passed"] = False
    assert recommend(slow["probes"])[INFERENCE]["what_if"] == FREEZING


def test_a_faster_setting_that_fails_fp64_is_never_recommended(
    fp64_fails: dict[str, Any],
) -> None:
    recommendation = recommend(fp64_fails["probes"])[INFERENCE]
    assert recommendation["what_if"] is None
    assert "freezing" in recommendation["reason"]
    assert "failed the fp64 criterion" in recommendation["reason"]
    assert (
        what_if(fp64_fails["probes"], FREEZING, INFERENCE)["fp64_detail"]
        in (recommendation["reason"])
    )


def test_why_none_helps_gives_the_default_the_what_ifs_and_the_ceiling(
    fp64_fails: dict[str, Any],
) -> None:
    reason = recommend(fp64_fails["probes"])[TRAINING]["reason"]
    speedup = fp64_fails["probes"]["benchmark"]["timings"][TRAINING]["speedup"]
    default = speedup_range(speedup["ratio"], speedup["low"], speedup["high"])
    assert reason.startswith(f"the default compile gives {default} over eager")
    assert f"{COMPILED_OPTIMIZER} " in reason and "not clearly faster" in reason
    assert "not run: " in reason and REDUCE_OVERHEAD in reason
    ceiling = fp64_fails["probes"]["speed"][TRAINING]["ceiling"]["speedup"]
    assert f"cannot beat {times(ceiling)} over eager" in reason


def test_when_the_default_clears_the_bar_the_reason_says_so() -> None:
    fast = load("fast")
    recommendation = recommend(fast["probes"])
    assert set(recommendation) == {INFERENCE, TRAINING}
    for recommended in recommendation.values():
        assert recommended["what_if"] is None
        assert recommended["reason"].startswith("the default compile already clears the 1.10x bar")
        assert "no setting tried beat it" in recommended["reason"]


def test_without_any_what_if_the_reason_says_none_ran(slow: dict[str, Any]) -> None:
    slow["probes"]["what_ifs"] = []
    reason = recommend(slow["probes"])[INFERENCE]["reason"]
    assert "no what-if compile ran" in reason


# --- the cost of a graph break -----------------------------------------------------------------


def graph_break(probes: dict[str, Any], entry_point: str) -> Finding:
    return next(
        f
        for f in compile_rules.check(probes)
        if f.name == "graph-break" and f.evidence["entry_point"] == entry_point
    )


def test_a_graph_break_carries_its_measured_cost(slow: dict[str, Any]) -> None:
    (cost,) = slow["probes"]["speed"][TRAINING]["break_costs"]
    finding = graph_break(slow["probes"], TRAINING)
    assert finding.location is not None
    assert finding.location.lineno == cost["location"]["lineno"]
    assert finding.evidence["cost_ms_per_call"] == cost["ms_per_call"]
    assert finding.impact_ms == cost["ms_per_call"]
    assert ms(cost["ms_per_call"]) in finding.cause


def test_a_cost_at_another_line_is_not_the_breaks(slow: dict[str, Any]) -> None:
    slow["probes"]["speed"][TRAINING]["break_costs"][0]["location"]["lineno"] += 1
    finding = graph_break(slow["probes"], TRAINING)
    assert "cost_ms_per_call" not in finding.evidence
    assert finding.impact_ms is None


def test_a_graph_break_without_a_speed_record_has_no_cost(slow: dict[str, Any]) -> None:
    del slow["probes"]["speed"]
    assert "cost_ms_per_call" not in graph_break(slow["probes"], TRAINING).evidence


def training_speedup_explained_by(probes: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    reading = read_verdict(metrics, probes["benchmark"], run_rules(probes))
    return next(c for c in reading.criteria if c.name == SPEEDUP_CRITERION[TRAINING]).explained_by


def test_a_break_explains_a_speedup_only_with_a_measured_cost(slow: dict[str, Any]) -> None:
    assert "CD102 graph-break" in training_speedup_explained_by(
        slow["probes"], slow["reference_metrics"]
    )
    # found by explain in code the compiled call does not compile: no gap, no cost
    slow["probes"]["speed"][TRAINING]["break_costs"] = []
    assert "CD102 graph-break" not in training_speedup_explained_by(
        slow["probes"], slow["reference_metrics"]
    )
    # without the time attributed, a break stays a possible explanation
    del slow["probes"]["speed"]
    assert "CD102 graph-break" in training_speedup_explained_by(
        slow["probes"], slow["reference_metrics"]
    )


def test_a_faster_setting_not_yet_checked_is_not_recommended_but_named(
    slow: dict[str, Any],
) -> None:
    freezing = what_if(slow["probes"], FREEZING, INFERENCE)
    freezing["fp64_criterion_passed"] = None
    freezing["fp64_detail"] = "not checked: its check is a compile of its own"
    assert recommend(slow["probes"])[INFERENCE]["what_if"] is None
    assert not findings_of(slow["probes"], "faster-compile-setting").get(INFERENCE)
    (ceiling,) = findings_of(slow["probes"], SPEEDUP_CEILING.name)[INFERENCE]
    assert any(f"--what-if {FREEZING}" in step for step in ceiling.next_steps)


def test_a_recommendation_says_where_it_leaves_eager(slow: dict[str, Any]) -> None:
    recommended = recommend(slow["probes"])[INFERENCE]
    freezing = what_if(slow["probes"], FREEZING, INFERENCE)
    assert recommended["reason"].startswith(
        speedup_range(
            freezing["speedup_vs_default"],
            freezing["speedup_vs_default_low"],
            freezing["speedup_vs_default_high"],
        )
        + " over the default compile"
    )
    assert "eager" not in recommended["reason"]  # clearly faster than eager: nothing to add
    for key in ("speedup_vs_eager", "speedup_low", "speedup_high"):
        freezing[key] = {"speedup_vs_eager": 0.9, "speedup_low": 0.85, "speedup_high": 0.95}[key]
    assert "eager is still faster" in recommend(slow["probes"])[INFERENCE]["reason"]


def test_the_ceiling_says_when_the_same_library_calls_run_slower_compiled(
    slow: dict[str, Any],
) -> None:
    library = next(
        s
        for s in slow["probes"]["speed"][INFERENCE]["attribution"]
        if s["category"] == "library_kernels"
    )
    library["compiled_ms"] = 1.05 * library["eager_ms"]  # alike: nothing to say
    (finding,) = findings_of(slow["probes"], SPEEDUP_CEILING.name)[INFERENCE]
    assert "The same library calls take" not in finding.cause
    library["compiled_ms"] = 2 * library["eager_ms"]
    (finding,) = findings_of(slow["probes"], SPEEDUP_CEILING.name)[INFERENCE]
    assert f"against {ms(library['eager_ms'])} in eager (2.00x)" in finding.cause
