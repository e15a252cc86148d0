"""Which compile-time levers a diagnosis tries, and the dynamic-shapes lever on a real compile."""

from __future__ import annotations

import pytest
import torch
from regional_models import NoRepeats, Stack

from probes.benchmark import BenchmarkProbe
from probes.compile_time.dynamic import measure_dynamic
from probes.compile_time.levers import MIN_COMPILE_S, plan_levers
from probes.records.benchmark import BenchmarkSettings
from probes.records.compile_time import (
    DYNAMIC_SHAPES,
    LEVER_FAILED,
    LEVER_MEASURED,
    PORTABLE_CACHE,
    REGIONAL,
    WARM_CACHE,
    EntryCompileTime,
    FrameCompileTime,
)
from probes.targets.module import module_target
from probes.targets.target import CompileSettings

SETTINGS = CompileSettings(how="module", backend="aot_eager")
BENCH = BenchmarkSettings(iters_inference=3, iters_training=2, warmup=1)


def _baseline(compile_s: float) -> EntryCompileTime:
    frame = FrameCompileTime(compile_id="0/0", part="forward", seconds=compile_s)
    return EntryCompileTime("inference", first_call_s=compile_s + 0.01, frames=[frame])


def _not_run(plan, name: str) -> str:
    return next(lv.reason for lv in plan.not_run if lv.name == name)


def test_auto_tries_the_warm_cache_and_regional_compilation_of_a_long_compile() -> None:
    target = module_target(Stack(), torch.randn(8, 32))
    plan = plan_levers("auto", target, {"inference": _baseline(MIN_COMPILE_S + 1)})
    assert plan.to_run == {WARM_CACHE: ["inference"], REGIONAL: ["inference"]}
    assert "--compile-lever portable-cache" in _not_run(plan, PORTABLE_CACHE)
    assert "a full compile" in _not_run(plan, DYNAMIC_SHAPES)


def test_auto_leaves_a_short_compile_alone() -> None:
    target = module_target(Stack(), torch.randn(8, 32))
    plan = plan_levers("auto", target, {"inference": _baseline(MIN_COMPILE_S / 2)})
    assert plan.to_run == {}
    assert "under the" in _not_run(plan, WARM_CACHE)


def test_a_model_without_repeated_blocks_is_not_compiled_regionally_even_when_asked() -> None:
    target = module_target(NoRepeats(), torch.randn(2, 3, 8, 8))
    plan = plan_levers([REGIONAL], target, {"inference": _baseline(60.0)})
    assert plan.to_run == {} and plan.blocks == []
    assert "no repeated block" in _not_run(plan, REGIONAL)


def test_named_levers_run_whatever_the_figures_and_none_runs_nothing() -> None:
    target = module_target(Stack(), torch.randn(8, 32))
    baselines = {"inference": _baseline(0.1), "training": _baseline(0.1)}
    plan = plan_levers("portable-cache,dynamic-shapes", target, baselines)
    assert plan.to_run == {PORTABLE_CACHE: ["inference", "training"], DYNAMIC_SHAPES: ["inference"]}
    assert "inference call" in next(
        lv.reason for lv in plan.not_run if lv.entry_point == "training"
    )
    assert plan_levers("none", target, baselines).to_run == {}


def test_an_unknown_lever_is_refused() -> None:
    target = module_target(Stack(), torch.randn(8, 32))
    with pytest.raises(ValueError, match="unknown compile lever"):
        plan_levers("warm-cash", target, {"inference": _baseline(1.0)})


def test_dynamic_shapes_serve_the_other_batch_size_without_compiling() -> None:
    torch._dynamo.reset()
    target = module_target(Stack(), torch.randn(8, 32))
    probe = BenchmarkProbe(target, SETTINGS, BENCH)
    eager, compiled = target.fresh_copy(), target.compiled_copy(SETTINGS)
    assert probe.compile_by_first_calls(eager, compiled)

    def inference(copy):
        def call():
            with torch.no_grad():
                return target.infer(copy)

        return call

    lever = measure_dynamic(
        target,
        SETTINGS,
        inference(eager),
        inference(compiled),
        probe.compile_time["inference"],
        BENCH,
    )
    assert lever.status == LEVER_MEASURED, lever.reason
    assert lever.detail["batch_sizes"] == [8, 4]
    assert lever.detail["other_size_frames"] == 0
    assert lever.compile_s > 0 and lever.median_ms > 0 and lever.baseline_median_ms > 0
    assert lever.stages["dynamo"] > 0


def test_dynamic_shapes_without_a_batch_dimension_fail_with_the_reason() -> None:
    target = module_target(Stack(), torch.randn(1, 32))  # a batch of one cannot be halved
    lever = measure_dynamic(target, SETTINGS, lambda: None, lambda: None, _baseline(1.0), BENCH)
    assert lever.status == LEVER_FAILED and "batch dimension" in lever.reason


def test_a_fresh_process_builds_a_picklable_module_target_and_compiles_it() -> None:
    from probes.compile_time.fresh_process import run_fresh_process
    from probes.records.serialize import as_number

    target = module_target(Stack(), torch.randn(8, 32))
    result = run_fresh_process(target, SETTINGS, BENCH, cache_dir=None)
    assert result.error is None
    record = result.entry_points["inference"]
    assert record["frames"] and as_number(record["compile_s"]) > 0
    assert result.build_s is not None and result.process_s > result.build_s


def test_a_target_that_does_not_pickle_says_so_in_one_line() -> None:
    from probes.compile_time.fresh_process import run_fresh_process

    target = module_target(Stack(), torch.randn(8, 32), loss_fn=lambda out: out.pow(2).mean())
    result = run_fresh_process(target, SETTINGS, BENCH, cache_dir=None)
    assert result.entry_points == {}
    assert result.error.startswith("the target does not pickle") and "\n" not in result.error


def test_the_settings_a_compile_depends_on_are_carried_to_the_fresh_process() -> None:
    """A setting changed in this process (by a user's script, or an earlier test) changes
    Inductor's cache key: the fresh process takes the settings over, or it could not hit."""
    from torch._inductor import config as inductor_config

    from probes.compile_time.fresh_process import ProcessSettings

    before = ProcessSettings.current()
    with inductor_config.patch(freezing=True):
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            changed = ProcessSettings.current()
        finally:
            torch.use_deterministic_algorithms(False)
    try:
        changed.apply()
        assert inductor_config.freezing is True
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        before.apply()
    assert inductor_config.freezing is False and not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("parent_sets_precision", [False, True])
def test_a_fresh_process_gets_the_matmul_settings_inductors_cache_key_reads(
    parent_sets_precision: bool,
) -> None:
    # "highest" reads the same before and after set_float32_matmul_precision("highest"), but
    # CUDA's fp32_precision goes from "none" to "ieee", a part of Inductor's cache key: the
    # warm-cache child missed every entry when it set the precision (a clean parent) or did not
    # (a parent that had set it), so it takes the key's settings over exactly
    import subprocess
    import sys

    code = (
        "import pickle, sys, torch\n"
        "from probes.compile_time.fresh_process import ProcessSettings\n"
        "if sys.argv[1] == 'parent':\n"
        f"    if {parent_sets_precision}: torch.set_float32_matmul_precision('highest')\n"
        "    sys.stdout.buffer.write(pickle.dumps(ProcessSettings.current()))\n"
        "else:\n"
        "    pickle.loads(sys.stdin.buffer.read()).apply()\n"
        "    print(torch.backends.cuda.matmul.fp32_precision)\n"
    )
    parent = subprocess.run(
        [sys.executable, "-c", code, "parent"], capture_output=True, check=True, timeout=300
    )
    child = subprocess.run(
        [sys.executable, "-c", code, "child"],
        input=parent.stdout,
        capture_output=True,
        check=True,
        timeout=300,
    )
    assert child.stdout.decode().strip() == ("ieee" if parent_sets_precision else "none")
