"""tdmpc's tiny preset diagnosed on the CPU with backend="aot_eager" (its build and batches are
tested with the other policies in test_other_policies.py).

`--compile-how model` compiles the methods of tdmpc's network that its planner and its loss call
(TDMPCTOLD has no forward), so the benchmark proves that those compiled methods ran.
"""

from __future__ import annotations

import pytest
from tiny_policies import assert_benchmarked, quick_diagnosis, tiny

from analyzer.diagnosis import Diagnosis
from probes.records.names import INFERENCE, TRAINING


@pytest.fixture(scope="module")
def diagnosis() -> Diagnosis:
    return quick_diagnosis(tiny("tdmpc"), {"benchmark"})


def test_diagnosis_completes_with_the_benchmark_keys(diagnosis: Diagnosis) -> None:
    assert_benchmarked(diagnosis)


def test_the_compiled_network_methods_run_in_both_entry_points(diagnosis: Diagnosis) -> None:
    capture = diagnosis.probes["benchmark"]["capture"]
    for entry_point in (INFERENCE, TRAINING):
        assert capture[entry_point]["ran_compiled_code"] is True, entry_point
        functions = {frame["function"] for frame in capture[entry_point]["frames"]}
        assert "encode" in functions, functions


def test_seeded_planning_matches_eager_exactly(diagnosis: Diagnosis) -> None:
    # The planner samples (randn, multinomial, randint): infer seeds each call, and aot_eager
    # changes no arithmetic, so the same draws give the same action.
    correctness = diagnosis.reference_metrics["correctness"]
    assert correctness["action_diff"] == 0.0
    assert correctness["loss_diff"] == 0.0
