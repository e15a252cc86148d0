"""The benchmark probe on real ACT with aot_eager: the reference keys, proof of compile."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_act
from torch import nn

from probes.benchmark import BenchmarkProbe, TrainingLoop
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


def test_float16_training_scales_the_loss_so_small_gradients_do_not_underflow() -> None:
    # A loss this small has float16 gradients below float16's smallest number (6e-8): without
    # scaling they are all zero and Adam does not move; scaled, then unscaled, they reach Adam.
    def tiny_loss(model: nn.Module) -> torch.Tensor:
        return model(torch.ones(4, 8)).float().sum() * 1e-9

    def moved(scaled: bool) -> tuple[bool, TrainingLoop]:
        torch.manual_seed(0)
        model = nn.Linear(8, 4)
        before = model.weight.detach().clone()
        loop = TrainingLoop(model, tiny_loss, BenchmarkSettings(), autocast="float16")
        assert loop.scaler is not None
        if not scaled:
            loop.scaler = None  # the step as it was before the scaler
        loop.step()
        return not torch.equal(model.weight, before), loop

    assert moved(scaled=False)[0] is False
    scaled, loop = moved(scaled=True)
    assert scaled
    assert 0 < loop.grad_norms[0] < 1e-6  # the norm clipped is the unscaled one
    bfloat16 = TrainingLoop(nn.Linear(8, 4), tiny_loss, BenchmarkSettings(), autocast="bfloat16")
    assert bfloat16.scaler is None  # bfloat16 has float32's range
