"""The benchmark probe on real ACT with aot_eager: the reference keys, proof of compile."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_act

from probes.benchmark import BenchmarkProbe
from probes.records.benchmark import BenchmarkSettings
from probes.records.reference import reference_criteria, verdict_of
from probes.records.serialize import to_jsonable
from probes.targets.target import CompileSettings

QUICK = BenchmarkSettings(iters_inference=2, iters_training=2, warmup=1)

REFERENCE_KEYS = {
    "success": bool,
    "policy": str,
    "device": str,
    "pytorch_version": str,
    "compilation_successful": bool,
    "compilation_error": type(None),
    "correctness": dict,
    "correctness_passed": bool,
    "inference_benchmarked": bool,
    "training_benchmarked": bool,
    "time_original_inference": float,
    "time_compiled_inference": float,
    "speedup_inference": float,
    "time_original_training": float,
    "time_compiled_training": float,
    "speedup_training": float,
    "loss_consistency": float,
    "grad_norm_consistency": float,
}


def run_probe(how: str, backend: str = "aot_eager"):
    # Compiled code is cached per code object: start clean so each run's frames are its own.
    torch._dynamo.reset()
    probe = BenchmarkProbe(tiny_act(), CompileSettings(backend=backend, how=how), QUICK)
    return probe.run()


@pytest.fixture(scope="module")
def model_result():
    return run_probe("model")


def test_reference_metrics_have_every_key_with_its_type(model_result) -> None:
    metrics = model_result.reference_metrics()
    assert set(metrics) == set(REFERENCE_KEYS)
    for key, kind in REFERENCE_KEYS.items():
        assert isinstance(metrics[key], kind), key
    assert set(metrics["correctness"]) == {
        "inference_correct",
        "training_correct",
        "action_diff",
        "loss_diff",
    }


def test_raw_data_success_is_the_reference_criteria_verdict(model_result) -> None:
    metrics = model_result.reference_metrics()
    settings = model_result.settings
    criteria = reference_criteria(
        metrics,
        action_tolerance=settings.tolerance,
        loss_tolerance=settings.tolerance,
        speedup_threshold=settings.speedup_threshold,
    )
    assert metrics["success"] is (verdict_of(criteria) is True)
    assert metrics["correctness"]["inference_correct"] is True  # aot_eager: a difference of 0
    assert metrics["correctness"]["training_correct"] is True
    assert metrics["correctness_passed"] is True


def test_aot_eager_matches_eager_bit_for_bit(model_result) -> None:
    # aot_eager runs the same ATen kernels as eager: any difference would be a probe bug.
    assert model_result.action_diff == 0.0
    assert model_result.loss_diff == 0.0


def test_consistency_compares_the_same_step_on_both_sides(model_result) -> None:
    trace = model_result.training_trace
    steps = QUICK.warmup + QUICK.iters_training + 1  # + the peak-memory pass on each side
    assert len(trace.eager_losses) == len(trace.compiled_losses) >= steps - 1
    assert trace.eager_losses == trace.compiled_losses  # aot_eager: same numbers, step by step


def test_result_is_json_serialisable(model_result) -> None:
    import json

    json.dumps(to_jsonable(model_result), allow_nan=False)


@pytest.mark.parametrize("how", ["model", "methods"])
def test_compiled_entry_points_prove_they_ran_compiled_code(how: str) -> None:
    capture = run_probe(how).capture
    for entry_point in ("inference", "training"):
        assert capture[entry_point]["frames_compiled"] >= 1
        assert capture[entry_point]["compiled_region_events"] >= 1
        assert capture[entry_point]["ran_compiled_code"] is True


def test_wrapper_compile_is_bypassed_by_select_action() -> None:
    capture = run_probe("wrapper").capture
    assert capture["inference"]["frames_compiled"] == 0
    assert capture["inference"]["compiled_region_events"] == 0
    assert capture["inference"]["ran_compiled_code"] is False
    # The wrapper does compile forward, which the training step calls.
    assert capture["training"]["ran_compiled_code"] is True


def test_compiler_error_is_recorded_not_raised() -> None:
    def failing_backend(gm, example_inputs):
        raise RuntimeError("backend refuses this graph\nsecond line")

    result = run_probe("model", backend=failing_backend)
    assert result.compilation_successful is False
    assert "backend refuses this graph" in result.compilation_error
    assert "second line" not in result.compilation_error
    assert result.reference_metrics()["success"] is False
