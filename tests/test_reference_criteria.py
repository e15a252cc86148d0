"""The reference verdict, decided once from Raw Data figures (no torch): missing figures leave a
criterion undecided, NaN fails, and the thresholds are the reference script's unless given. A
diagnosis stores the reference script's yes/no, as Raw Data `success`: undecided is NEEDS WORK."""

from __future__ import annotations

import math

from analyzer.findings import Finding, Severity
from analyzer.verdict import read_verdict
from probes.records.reference import (
    ACTION_DIFF,
    COMPILATION,
    CRITERIA,
    INFERENCE_SPEEDUP,
    LOSS_DIFF,
    NEEDS_WORK,
    SUCCESS,
    TRAINING_SPEEDUP,
    UNDECIDED,
    reference_criteria,
    verdict_label,
    verdict_of,
)

PASSING = {
    "compilation_successful": True,
    "correctness": {"action_diff": 1e-7, "loss_diff": 0.0},
    "speedup_inference": 1.5,
    "speedup_training": 1.2,
}


def passed(metrics: dict, **thresholds: float) -> dict[str, bool | None]:
    return {c.name: c.passed for c in reference_criteria(metrics, **thresholds)}


def test_criteria_come_in_their_one_order_under_their_one_name() -> None:
    assert tuple(c.name for c in reference_criteria(PASSING)) == CRITERIA
    assert verdict_label(verdict_of(reference_criteria(PASSING))) == SUCCESS


def test_a_missing_figure_leaves_its_criterion_and_the_verdict_undecided() -> None:
    metrics = {**PASSING, "speedup_training": None}
    assert passed(metrics)[TRAINING_SPEEDUP] is None
    assert verdict_label(verdict_of(reference_criteria(metrics))) == UNDECIDED
    assert passed({})[COMPILATION] is None


def test_a_diagnosis_missing_figures_reads_needs_work_as_its_raw_data_success() -> None:
    # A module without a loss: neither a loss difference nor a training speedup was measured.
    metrics = {
        **PASSING,
        "success": False,  # what the benchmark probe writes: a missing figure has not passed
        "correctness": {"action_diff": 1e-7, "loss_diff": None},
        "speedup_training": None,
    }
    reading = read_verdict(metrics, {}, [])
    undecided = [c.name for c in reading.criteria if c.passed is None]
    assert undecided == [LOSS_DIFF, TRAINING_SPEEDUP] and not reading.failed
    assert reading.success is metrics["success"]
    assert reading.label == NEEDS_WORK and reading.to_record()["reference"] == NEEDS_WORK
    assert reading.to_record()["reading"] is None


def test_nan_fails_whether_live_or_recorded() -> None:
    for nan in (math.nan, "NaN"):
        metrics = {**PASSING, "correctness": {"action_diff": nan, "loss_diff": 0.0}}
        assert passed(metrics)[ACTION_DIFF] is False
        assert verdict_label(verdict_of(reference_criteria(metrics))) == NEEDS_WORK


def test_one_failure_decides_even_beside_a_missing_figure() -> None:
    metrics = {**PASSING, "compilation_successful": False, "speedup_inference": None}
    assert verdict_of(reference_criteria(metrics)) is False


def test_thresholds_are_the_reference_scripts_unless_given() -> None:
    metrics = {**PASSING, "correctness": {"action_diff": 5e-5, "loss_diff": 5e-5}}
    assert passed(metrics)[ACTION_DIFF] is False
    assert passed(metrics, action_tolerance=1e-4)[ACTION_DIFF] is True
    assert passed(metrics, action_tolerance=1e-4)[LOSS_DIFF] is False
    assert passed({**PASSING, "speedup_inference": 1.1})[INFERENCE_SPEEDUP] is False  # "> 1.1x"
    assert passed(PASSING, speedup_threshold=1.3)[TRAINING_SPEEDUP] is False


def _finding(name: str, entry_point: str | None, confidence: str = "high") -> Finding:
    evidence = {} if entry_point is None else {"entry_point": entry_point}
    return Finding("CD000", name, "", Severity.INFO, confidence, "", evidence)


def test_reading_excuses_a_failure_only_when_every_explaining_finding_excuses_it() -> None:
    metrics = {**PASSING, "correctness": {"action_diff": 0.0, "loss_diff": 1e-2}}
    rng = _finding("rng-divergence", None)
    reading = read_verdict(metrics, {}, [rng])
    assert reading.label == NEEDS_WORK and reading.differs
    assert "correct" in (reading.to_record()["reading"] or "")
    numerical = _finding("numerical-divergence", "training", "medium")
    both = read_verdict(metrics, {}, [rng, numerical])
    assert not both.differs and both.to_record()["reading"] is None
    (loss,) = both.failed
    assert loss.explained_by == ["CD000 rng-divergence", "CD000 numerical-divergence"]


def test_reading_uses_the_thresholds_the_benchmark_ran_with() -> None:
    metrics = {**PASSING, "speedup_training": 1.2}
    reading = read_verdict(metrics, {"settings": {"speedup_threshold": 1.3}}, [])
    assert [c.name for c in reading.failed] == [TRAINING_SPEEDUP]
    assert reading.failed[0].requirement == "> 1.3x"
