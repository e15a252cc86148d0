"""`compile-diagnose act` with the real Inductor backend: the session's one CLI Inductor run.

Its compiles share the session's Inductor cache with the divergence probe's own test, which
compiles the same tiny ACT graphs.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.inductor

REFERENCE_KEYS = (
    "success",
    "compilation_successful",
    "correctness_passed",
    "time_original_inference",
    "time_compiled_inference",
    "speedup_inference",
    "time_original_training",
    "time_compiled_training",
    "speedup_training",
    "loss_consistency",
    "grad_norm_consistency",
)


def named(diagnosis: dict, name: str) -> list[dict]:
    return [f for f in diagnosis["findings"] if f["name"] == name]


def test_every_reference_key_holds_a_value_measured_in_this_run(inductor_act_diagnosis) -> None:
    metrics = inductor_act_diagnosis["reference_metrics"]
    for key in REFERENCE_KEYS:
        assert metrics[key] is not None, key
    assert metrics["compilation_successful"] is True
    correctness = metrics["correctness"]
    assert correctness["action_diff"] is not None and correctness["loss_diff"] is not None


def test_inductor_changes_the_numbers_unlike_aot_eager(inductor_act_diagnosis) -> None:
    # A real backend reorders floating-point work: bit-for-bit equality would mean no compile.
    assert inductor_act_diagnosis["reference_metrics"]["correctness"]["action_diff"] > 0.0


def test_training_item_break_is_a_graph_break_finding(inductor_act_diagnosis) -> None:
    (finding,) = named(inductor_act_diagnosis, "graph-break")
    assert finding["evidence"]["entry_point"] == "training"
    assert finding["location"]["filename"].endswith("lerobot/policies/act/modeling_act.py")


def test_training_loss_difference_is_explained_by_random_numbers(inductor_act_diagnosis) -> None:
    metrics = inductor_act_diagnosis["reference_metrics"]
    assert metrics["correctness"]["training_correct"] is False  # fails the absolute 1e-5
    (finding,) = named(inductor_act_diagnosis, "rng-divergence")
    assert finding["severity"] in ("info", "warning")
    assert inductor_act_diagnosis["probes"]["divergence"]["attribution"]["verdict"] == "rng"
    assert not named(inductor_act_diagnosis, "numerical-divergence")


def test_cpu_run_says_the_reduce_overhead_what_if_needs_a_gpu(inductor_act_diagnosis) -> None:
    tried = [
        w for w in inductor_act_diagnosis["probes"]["what_ifs"] if w["name"] == "reduce-overhead"
    ]
    assert {w["entry_point"] for w in tried} == {"inference", "training"}
    for what_if in tried:
        assert what_if["status"] == "not-run" and "needs a GPU" in what_if["reason"]


def test_kernel_profiles_find_the_compiled_region_on_the_compiled_side_only(
    inductor_act_diagnosis,
) -> None:
    from pathlib import Path

    for entry in inductor_act_diagnosis["probes"]["kernels"]["entry_points"]:
        assert entry["compiled"]["compiled_regions_per_call"] >= 1
        assert entry["eager"]["compiled_regions_per_call"] == 0
        assert entry["eager"]["kernels_per_call"] is None  # CPU: device fields absent, not zero
        for side in ("eager", "compiled"):
            trace = Path(entry[side]["trace_path"])
            assert trace.is_file() and trace.parent.name == side
