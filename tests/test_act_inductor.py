"""`compile-diagnose act` with the real Inductor backend: the session's one CLI Inductor run.

It compiles on an empty Inductor cache of its own (`--fresh-cache`), so its compile-time figures
are a cold compile's, and the warm-cache lever's fresh process finds that cache warm.
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


def test_the_compile_splits_by_stage_and_adds_up_to_torchs_own_figure(
    inductor_act_diagnosis,
) -> None:
    from probes.records.compile_time import KERNEL_COMPILE, STAGE_SUM_TOLERANCE, STAGES

    section = inductor_act_diagnosis["probes"]["compile_time"]
    assert set(section["entry_points"]) == {"inference", "training"}
    for record in section["entry_points"].values():
        frames = record["frames"]
        assert frames, "the first compiled call compiled at least one frame"
        for frame in frames:
            # the stages split the root timer; torch's own figure times the same compile
            assert sum(frame["stages"].values()) == pytest.approx(frame["seconds"], rel=1e-3)
            assert frame["seconds"] == pytest.approx(
                frame["torch_seconds"], rel=STAGE_SUM_TOLERANCE
            )
            assert set(frame["stages"]) <= set(STAGES)
        assert record["compile_s"] <= record["first_call_s"]
        assert record["compile_s"] == pytest.approx(
            record["cpu_isa_check_s"] + sum(f["seconds"] for f in frames), rel=1e-3
        )
        # --fresh-cache: a cold compile, whatever this process compiled before
        assert record["cache"]["fx_graph_misses"] > 0 and record["cache"]["fx_graph_hits"] == 0
        assert record["stages"][KERNEL_COMPILE] > 0  # Inductor on a CPU compiles C++ kernels
    training = section["entry_points"]["training"]
    assert {f["part"] for f in training["frames"]} == {"forward", "backward"}
    finding = named(inductor_act_diagnosis, "compile-time-cost")[0]
    assert finding["evidence"]["stages_s"] and finding["evidence"]["tlparse_frames"]


def test_a_warm_cache_in_a_fresh_process_hits_and_saves_compile_time(
    inductor_act_diagnosis,
) -> None:
    section = inductor_act_diagnosis["probes"]["compile_time"]
    warm = {lv["entry_point"]: lv for lv in section["levers"] if lv["name"] == "warm-cache"}
    assert set(warm) == {"inference", "training"}
    for entry_point, lever in warm.items():
        baseline = section["entry_points"][entry_point]
        assert lever["status"] == "measured", lever["reason"]
        assert lever["detail"]["fresh_process"] is True
        cache = lever["cache"]
        assert cache["fx_graph_hits"] > 0 and cache["fx_graph_misses"] == 0, (cache, lever)
        # both less Inductor's once-per-process CPU check, which every new process pays
        assert lever["baseline_compile_s"] == pytest.approx(
            baseline["compile_s"] - baseline["cpu_isa_check_s"], abs=1e-3
        )
        assert lever["compile_s"] < lever["baseline_compile_s"]
    artifacts = section["artifacts"]
    assert artifacts["file"] == "compile_cache_artifacts.bin" and artifacts["bytes"] > 0
