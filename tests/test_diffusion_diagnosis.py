"""diffusion's tiny preset diagnosed on the CPU with backend="aot_eager" (its build and batches
are tested with the other policies in test_other_policies.py).

DiffusionModel has no forward: `--compile-how model` compiles the two methods the policy calls,
`generate_actions` (the denoising loop) and `compute_loss`.
"""

from __future__ import annotations

import pytest
from tiny_policies import assert_benchmarked, quick_diagnosis, tiny

from analyzer.diagnosis import Diagnosis
from probes.records.names import INFERENCE, TRAINING


@pytest.fixture(scope="module")
def diagnosis() -> Diagnosis:
    return quick_diagnosis(tiny("diffusion"), {"benchmark"})


def test_diagnosis_completes_with_the_benchmark_keys(diagnosis: Diagnosis) -> None:
    assert_benchmarked(diagnosis)


def test_the_compiled_methods_run_in_both_entry_points(diagnosis: Diagnosis) -> None:
    capture = diagnosis.probes["benchmark"]["capture"]
    expected = {INFERENCE: "generate_actions", TRAINING: "compute_loss"}
    for entry_point, method in expected.items():
        assert capture[entry_point]["ran_compiled_code"] is True, entry_point
        functions = {frame["function"] for frame in capture[entry_point]["frames"]}
        assert method in functions, functions


def test_seeded_training_loss_matches_eager_exactly(diagnosis: Diagnosis) -> None:
    # Training samples noise and timesteps: the benchmark seeds each forward, and aot_eager
    # changes no arithmetic. (The action is not compared here: the benchmark's one extra,
    # profiled training call on the compiled side updates its BatchNorm running statistics.)
    assert diagnosis.reference_metrics["correctness"]["loss_diff"] == 0.0
