"""Regional compilation: which blocks repeat, and what compiling them one by one costs.

One real Inductor measurement (a model of six identical blocks, its default compile against the
regional one, cold caches on both sides); everything else is module-tree inspection or aot_eager.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import tiny_act
from regional_models import (
    Funnel,
    MlpStack,
    NestedStack,
    NoRepeats,
    Stack,
    bare_linears,
)

from probes.benchmark import TrainingLoop
from probes.compile.breakdown import entry_compile_time, watch_compiles
from probes.compile.cpu_isa import cpu_isa_check_pending, run_cpu_isa_check
from probes.compile_time.regional import (
    find_repeated_blocks,
    measure_regional,
    regional_copy,
    regional_paste,
    regional_settings,
)
from probes.records.benchmark import BenchmarkSettings
from probes.records.compile_time import (
    LEVER_FAILED,
    LEVER_MEASURED,
    REGIONAL,
    CompileLever,
    EntryCompileTime,
)
from probes.records.names import INFERENCE, TRAINING
from probes.speed.backends import FreshBackend
from probes.targets.module import module_target
from probes.targets.target import CompileSettings, Target
from probes.timing import time_first_call

FEW_CALLS = BenchmarkSettings(iters_inference=3, iters_training=2, warmup=1)


# --- finding the blocks ----------------------------------------------------------------------


def test_identical_blocks_in_a_module_list_are_one_block() -> None:
    model = Stack(width=32, depth=4)
    blocks = find_repeated_blocks(model)
    assert len(blocks) == 1
    block = blocks[0]
    assert block.paths == [f"layers.{i}" for i in range(4)]
    assert block.class_name.endswith("regional_models.Block")
    assert block.parameters == sum(p.numel() for p in model.layers[0].parameters())
    total = sum(p.numel() for p in model.parameters())
    assert block.share_of_parameters == pytest.approx(4 * block.parameters / total)


def test_blocks_that_differ_in_width_do_not_repeat() -> None:
    assert find_repeated_blocks(Funnel()) == []


def test_nested_repeats_give_only_the_outer_block() -> None:
    blocks = find_repeated_blocks(NestedStack())
    assert [b.paths for b in blocks] == [["pairs.0", "pairs.1", "pairs.2"]]
    assert blocks[0].class_name.endswith("regional_models.Pair")


def test_repeated_leaves_are_not_blocks() -> None:
    assert find_repeated_blocks(bare_linears(depth=4)) == []


def test_a_model_without_repeats_has_no_blocks() -> None:
    assert find_repeated_blocks(NoRepeats()) == []


def test_min_repeats_sets_how_many_instances_make_a_block() -> None:
    assert len(find_repeated_blocks(Stack(depth=3), min_repeats=3)) == 1
    assert find_repeated_blocks(Stack(depth=3), min_repeats=4) == []


def test_an_instance_inside_a_block_is_left_to_it_and_the_rest_still_repeat() -> None:
    """Two Pairs hold four Blocks; two more Blocks stand outside them: those two are a block."""
    model = torch.nn.Sequential(NestedStack().pairs[:2], Stack(depth=2).layers)
    blocks = {b.class_name.rpartition(".")[2]: b.paths for b in find_repeated_blocks(model)}
    assert blocks == {"Pair": ["0.0", "0.1"], "Block": ["1.0", "1.1"]}


def test_act_encoder_layers_are_found() -> None:
    target = tiny_act(n_encoder_layers="2")
    assert target.module.config.n_encoder_layers == 2
    blocks = {b.class_name.rpartition(".")[2]: b for b in find_repeated_blocks(target.module)}
    encoder = blocks["ACTEncoderLayer"]
    assert encoder.paths == ["model.encoder.layers.0", "model.encoder.layers.1"]
    for block in blocks.values():  # no block inside another
        for path in block.paths:
            others = [p for b in blocks.values() for p in b.paths if p != path]
            assert not any(path.startswith(other + ".") for other in others)
    paste = regional_paste(target, list(blocks.values()), CompileSettings())
    assert "for block in policy.model.encoder.layers:\n    block.compile()" in paste


# --- compiling them ----------------------------------------------------------------------------


def test_regional_settings_keep_the_mode_in_a_fresh_backend() -> None:
    fresh = regional_settings(CompileSettings(mode="max-autotune-no-cudagraphs", fullgraph=True))
    assert fresh.mode is None and fresh.fullgraph
    assert isinstance(fresh.backend, FreshBackend)
    assert fresh.backend.name == "inductor"
    assert fresh.backend.config_patches.get("max_autotune") is True


def test_regional_copy_compiles_every_instance_with_one_backend() -> None:
    target = module_target(Stack(depth=3), torch.randn(2, 32))
    blocks = find_repeated_blocks(target.module)
    copy = regional_copy(target, blocks, CompileSettings(backend="aot_eager"))
    compiled = [copy.get_submodule(path)._compiled_call_impl for path in blocks[0].paths]
    assert all(c is not None for c in compiled)
    assert copy.embed._compiled_call_impl is None  # the rest stays eager
    assert target.module.layers[0]._compiled_call_impl is None  # the original is untouched


def test_paste_lists_instances_that_are_not_a_whole_container() -> None:
    model = torch.nn.Sequential(*Stack(depth=2).layers, torch.nn.Linear(32, 32))
    target = module_target(model, torch.randn(2, 32))
    blocks = find_repeated_blocks(target.module)
    paste = regional_paste(target, blocks, CompileSettings(mode="max-autotune"))
    assert paste == ('model[0].compile(mode="max-autotune")\nmodel[1].compile(mode="max-autotune")')


# --- measuring: aot_eager ------------------------------------------------------------------------


def _baseline(
    target: Target, entry_point: str, call: Any, settings: CompileSettings
) -> EntryCompileTime:
    """The default compile's first call, watched, as the benchmark records it."""
    isa_s = run_cpu_isa_check() if cpu_isa_check_pending(target.device, settings) else 0.0
    with watch_compiles() as watched:
        first_s, _ = time_first_call(call, target.device)
    baseline = entry_compile_time(entry_point, isa_s + first_s, watched)
    baseline.cpu_isa_check_s = isa_s
    return baseline


def test_training_step_is_measured_with_its_backward() -> None:
    target = module_target(
        Stack(depth=3), torch.randn(4, 32), loss_fn=lambda out: out.pow(2).mean()
    )
    settings = CompileSettings(backend="aot_eager", how="module")

    def call_of(copy: torch.nn.Module) -> Any:
        return TrainingLoop(copy, target.loss, FEW_CALLS).step

    default_call = call_of(target.compiled_copy(settings))
    baseline = _baseline(target, TRAINING, default_call, settings)
    blocks = find_repeated_blocks(target.module)
    lever = measure_regional(
        target,
        settings,
        blocks,
        TRAINING,
        call_of,
        call_of(target.fresh_copy()),
        default_call,
        baseline,
        FEW_CALLS,
    )
    assert lever.status == LEVER_MEASURED, lever.reason
    assert lever.detail["instances"] == 3 and lever.detail["frames_compiled"] >= 1
    assert lever.stages is not None and lever.stages["aot_autograd"] > 0
    assert lever.compile_s is not None and 0 < lever.compile_s <= lever.first_call_s
    assert lever.median_ms and lever.baseline_median_ms and lever.eager_ms
    assert 'block.compile(backend="aot_eager")' in lever.paste


def test_a_failing_compile_is_a_failed_lever_with_its_error() -> None:
    target = module_target(Stack(depth=2), torch.randn(2, 32))
    blocks = find_repeated_blocks(target.module)
    eager = target.fresh_copy()
    lever = measure_regional(
        target,
        CompileSettings(backend="no_such_backend"),
        blocks,
        INFERENCE,
        lambda copy: lambda: target.infer(copy),
        lambda: target.infer(eager),
        lambda: target.infer(eager),
        EntryCompileTime(INFERENCE, first_call_s=1.0),
        FEW_CALLS,
    )
    assert lever.status == LEVER_FAILED
    assert "no_such_backend" in lever.reason and "\n" not in lever.reason
    assert lever.compile_s is None and lever.detail["instances"] == 2


# --- measuring: Inductor, once -----------------------------------------------------------------


@pytest.fixture(scope="module")
def inductor_regional(
    inductor_cache: Path,
) -> tuple[Target, EntryCompileTime, CompileLever, torch.Tensor]:
    """Six identical blocks: the whole model compiled by Inductor, then block by block."""
    torch.manual_seed(0)
    target = module_target(MlpStack(width=32, depth=6), torch.randn(8, 32))
    settings = CompileSettings(how="module")
    default = target.compiled_copy(settings)
    eager = target.fresh_copy()
    baseline = _baseline(target, INFERENCE, lambda: target.infer(default), settings)
    blocks = find_repeated_blocks(target.module)
    copy = regional_copy(target, blocks, settings)
    lever = measure_regional(
        target,
        settings,
        blocks,
        INFERENCE,
        lambda copy_: lambda: target.infer(copy_),
        lambda: target.infer(eager),
        lambda: target.infer(default),
        baseline,
        FEW_CALLS,
        copy=copy,
    )
    return target, baseline, lever, target.infer(copy)


def test_regional_compile_is_shorter_than_the_whole_model(inductor_regional) -> None:
    _, baseline, lever, _ = inductor_regional
    assert lever.status == LEVER_MEASURED, lever.reason
    assert lever.name == REGIONAL and lever.entry_point == INFERENCE
    assert lever.baseline_compile_s == pytest.approx(baseline.compile_s - baseline.cpu_isa_check_s)
    assert lever.compile_s is not None and lever.baseline_compile_s is not None
    assert lever.compile_s < lever.baseline_compile_s
    assert lever.stages is not None and lever.stages["lowering"] > 0


def test_six_instances_compile_one_block_graph(inductor_regional) -> None:
    _, _, lever, _ = inductor_regional
    assert lever.detail["instances"] == 6
    assert lever.detail["blocks"][0]["instances"] == 6
    assert lever.detail["frames_compiled"] == 1


def test_regional_output_equals_eager(inductor_regional) -> None:
    target, _, _, regional_output = inductor_regional
    eager_output = target.infer(target.fresh_copy())
    torch.testing.assert_close(regional_output, eager_output, rtol=1e-5, atol=1e-5)


def test_cold_when_the_baseline_compiled_cold(inductor_regional) -> None:
    _, baseline, lever, _ = inductor_regional
    assert lever.detail["cold"] == (baseline.cache.hits == 0)
    assert lever.cache is not None
    if lever.detail["cold"]:
        assert lever.cache.hits == 0  # the caches were off for its compile


def test_warm_calls_are_timed_beside_eager_and_the_default(inductor_regional) -> None:
    _, _, lever, _ = inductor_regional
    assert lever.median_ms and lever.baseline_median_ms and lever.eager_ms
    assert lever.paste == "for block in model.blocks:\n    block.compile()"
