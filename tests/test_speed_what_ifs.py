"""The speed attribution and the what-ifs for speed, on real Inductor compiles of small models.

One diagnosis per model (module-scoped), with the graph-break, kernel and what-if probes:
- a convolution network: library kernels take most of the compiled inference call, so `auto`
  tries freezing, and it is measured and checked against fp64;
- a `.item()` read in a loop: the break's eager gap has a cost in ms at its line, and `auto`
  tries capture_scalar_outputs (no-graph-breaks);
- a training step dominated by its optimizer: `auto` tries the fused optimizer;
- a pointwise chain that compile speeds up: no speed finding at all.
The plan itself is tested on given figures.
"""

from __future__ import annotations

import pytest
import torch
from speed_models import (
    ConvNet,
    LoopedScalarRead,
    ManySmallLayers,
    PointwiseChain,
    mean_square,
    planted_line,
)

from analyzer import diagnose_module
from analyzer.diagnosis import Diagnosis
from analyzer.errors import UsageError
from probes.records.benchmark import BenchmarkSettings
from probes.records.divergence import Fp64Criterion
from probes.records.names import INFERENCE, SPEED, SPEED_WHAT_IFS, TRAINING
from probes.records.speed import (
    COMPILED_OPTIMIZER,
    FREEZING,
    FREEZING_LIBRARY_SHARE,
    LIBRARY_KERNELS,
    MAX_AUTOTUNE,
    NO_GRAPH_BREAKS,
    NO_LAYOUT_OPTIMIZATION,
    REDUCE_OVERHEAD,
    WHAT_IF_MEASURED,
    WHAT_IF_NOT_RUN,
    WhatIfResult,
)
from probes.speed.plan import EntryEvidence, WhatIfEvidence, plan_what_ifs
from probes.speed.what_ifs import WhatIfRun, check_candidates, what_if_change
from probes.targets.module import module_target
from probes.targets.target import CompileSettings

SETTINGS = BenchmarkSettings(iters_inference=15, iters_training=8, warmup=3)
SPEED_PROBES = ["graph_breaks", "kernels", "what_ifs"]


def diagnose(model, inputs, **kwargs) -> Diagnosis:
    return diagnose_module(model, inputs, benchmark=SETTINGS, probes=SPEED_PROBES, **kwargs)


def what_if(diagnosis: Diagnosis, name: str, entry_point: str) -> dict:
    (found,) = [
        w
        for w in diagnosis.to_dict()["probes"][SPEED_WHAT_IFS]
        if w["name"] == name and w["entry_point"] == entry_point
    ]
    return found


def share(speed: dict, category: str, side: str = "compiled_ms") -> float:
    (row,) = [r for r in speed["attribution"] if r["category"] == category]
    total = speed["compiled_ms"] if side == "compiled_ms" else speed["eager_ms"]
    return row[side] / total


@pytest.fixture(scope="module")
def conv(inductor_cache) -> Diagnosis:
    torch.manual_seed(0)
    return diagnose(ConvNet().eval(), (torch.randn(4, 3, 48, 48),))


@pytest.fixture(scope="module")
def looped(inductor_cache) -> Diagnosis:
    torch.manual_seed(0)
    return diagnose(LoopedScalarRead(), (torch.randn(32, 64),))


@pytest.fixture(scope="module")
def optimizer_bound(inductor_cache) -> Diagnosis:
    torch.manual_seed(0)
    return diagnose(ManySmallLayers(), (torch.randn(2, 8),), loss_fn=mean_square)


@pytest.fixture(scope="module")
def pointwise(inductor_cache) -> Diagnosis:
    torch.manual_seed(0)
    return diagnose(PointwiseChain(), (torch.randn(256, 1024),))


def test_convolutions_are_named_library_time_and_freezing_is_measured(conv) -> None:
    speed = conv.to_dict()["probes"][SPEED][INFERENCE]
    assert share(speed, LIBRARY_KERNELS) > 0.25
    assert any("conv" in op["name"] for op in speed["library_ops"])
    assert speed["ceiling"]["speedup"] > 1.0 and "library kernels" in speed["ceiling"]["reason"]
    freezing = what_if(conv, FREEZING, INFERENCE)
    assert freezing["status"] == WHAT_IF_MEASURED, freezing["reason"]
    assert freezing["compile_s"] > 0 and freezing["median_ms"] > 0
    assert freezing["speedup_low"] <= freezing["speedup_vs_eager"] <= freezing["speedup_high"]
    assert freezing["fp64_criterion_passed"] is True, freezing["fp64_detail"]
    assert "freezing = True" in freezing["paste"]


def test_the_freezing_twin_really_is_frozen(inductor_cache) -> None:
    """Dynamo reads `freezing` while it traces: a twin compiled with the setting in the backend
    alone keeps its weights as inputs and runs oneDNN's plain convolution, as the default does."""
    torch.manual_seed(0)
    target = module_target(ConvNet().eval(), (torch.randn(2, 3, 32, 32),), device="cpu")
    change = what_if_change(FREEZING, CompileSettings(how="module"), SETTINGS.learning_rate)
    run = WhatIfRun(target, change, INFERENCE, SETTINGS, Fp64Criterion())
    call = run.call_of(target.compiled_copy(change.settings))
    call()  # the compile
    with torch.profiler.profile() as profiler:
        call()
    ops = {event.name for event in profiler.events()}
    assert any("_convolution_pointwise" in op for op in ops), sorted(ops)  # pre-packed weights
    assert "aten::mkldnn_convolution" not in ops


def test_a_break_in_a_loop_costs_ms_at_its_line_and_no_graph_breaks_is_tried(looped) -> None:
    speed = looped.to_dict()["probes"][SPEED][INFERENCE]
    costs = speed["break_costs"]
    assert costs and all(c["ms_per_call"] > 0 for c in costs)
    lines = {c["location"]["lineno"] for c in costs if c["location"]}
    assert planted_line("loop-item") in lines
    tried = what_if(looped, NO_GRAPH_BREAKS, INFERENCE)
    assert tried["status"] == WHAT_IF_MEASURED, tried["reason"]
    assert tried["fp64_criterion_passed"] is True, tried["fp64_detail"]
    breaks = [f for f in looped.findings if f.name == "graph-break"]
    assert any((f.evidence.get("cost_ms_per_call") or 0) > 0 for f in breaks)


def test_an_optimizer_bound_step_gets_the_fused_optimizer(optimizer_bound) -> None:
    speed = optimizer_bound.to_dict()["probes"][SPEED][TRAINING]
    assert speed["outside_compiled_rest_ms"] / speed["compiled_ms"] > 0.2
    fused = what_if(optimizer_bound, COMPILED_OPTIMIZER, TRAINING)
    assert fused["status"] == WHAT_IF_MEASURED, fused["reason"]
    assert fused["fp64_criterion_passed"] is True, fused["fp64_detail"]
    assert "fused=True" in fused["paste"]
    # inference of the same model: what ran for it ran because its own figure said so (its small
    # matmuls' library share moves around the freezing threshold with the load on 2 cores)
    record = optimizer_bound.to_dict()["probes"]
    ran = [
        w["name"]
        for w in record[SPEED_WHAT_IFS]
        if w["entry_point"] == INFERENCE and w["status"] != WHAT_IF_NOT_RUN
    ]
    assert set(ran) <= {FREEZING}
    if ran:
        # the figure the plan read: library kernels' share of the compiled call
        assert record[SPEED][INFERENCE]["ceiling"]["library_share"] >= FREEZING_LIBRARY_SHARE


def test_a_model_compile_speeds_up_gets_no_speed_finding(pointwise) -> None:
    """Fused pointwise work (2.1x here, even with CI running beside it): nothing to explain.

    No speed target is asserted (timing on 2 shared cores is noisy); the finding must follow the
    measured speedup either way, and no figure points to any what-if."""
    record = pointwise.to_dict()
    speedup = record["probes"]["benchmark"]["timings"][INFERENCE]["speedup"]["ratio"]
    ceiling = [f for f in pointwise.findings if f.name == "speedup-ceiling"]
    assert bool(ceiling) is (speedup <= 1.1)
    assert all(w["status"] == WHAT_IF_NOT_RUN for w in record["probes"][SPEED_WHAT_IFS])
    assert record["recommendation"][INFERENCE]["what_if"] is None
    assert not [f for f in pointwise.findings if f.name == "faster-compile-setting"]


# --- the plan, on given figures -----------------------------------------------------------


def evidence(device: str = "cpu", backend: str = "inductor", **figures) -> WhatIfEvidence:
    return WhatIfEvidence(
        device,
        CompileSettings(backend=backend),
        {INFERENCE: EntryEvidence(**figures), TRAINING: EntryEvidence(**figures)},
    )


def planned(plan, name: str, entry_point: str):
    (found,) = [p for p in plan if p.name == name and p.entry_point == entry_point]
    return found


def test_auto_runs_what_the_figures_point_to_and_says_why_not_the_rest() -> None:
    plan = plan_what_ifs("auto", evidence(library_share=0.7, outside_rest_share=0.05))
    assert planned(plan, FREEZING, INFERENCE).run
    assert "70 %" in planned(plan, FREEZING, INFERENCE).reason
    assert not planned(plan, COMPILED_OPTIMIZER, TRAINING).run
    assert "5 %" in planned(plan, COMPILED_OPTIMIZER, TRAINING).reason
    assert not planned(plan, REDUCE_OVERHEAD, INFERENCE).run
    assert "needs a GPU" in planned(plan, REDUCE_OVERHEAD, INFERENCE).reason
    assert not planned(plan, MAX_AUTOTUNE, INFERENCE).run
    assert not [p for p in plan if p.name == FREEZING and p.entry_point == TRAINING]


def test_names_all_and_none() -> None:
    figures = evidence(library_share=0.1)
    assert planned(plan_what_ifs(MAX_AUTOTUNE, figures), MAX_AUTOTUNE, TRAINING).run
    assert not planned(plan_what_ifs(MAX_AUTOTUNE, figures), FREEZING, INFERENCE).run
    everything = plan_what_ifs("all", figures)
    assert planned(everything, FREEZING, INFERENCE).run
    assert not planned(everything, REDUCE_OVERHEAD, TRAINING).run  # no GPU, even when asked
    assert not any(p.run for p in plan_what_ifs("none", figures))


def test_inductor_settings_are_not_tried_on_another_backend() -> None:
    plan = plan_what_ifs("all", evidence(backend="aot_eager", library_share=0.9))
    assert not planned(plan, FREEZING, INFERENCE).run
    assert "aot_eager" in planned(plan, FREEZING, INFERENCE).reason
    assert planned(plan, COMPILED_OPTIMIZER, TRAINING).run


def test_an_unknown_what_if_is_a_one_line_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown what-if warp-speed"):
        diagnose_module(PointwiseChain(), (torch.randn(2, 2),), what_if="warp-speed")


@pytest.mark.parametrize(
    ("busy", "runs", "expected"),
    [
        (0.8, False, "GPU busy 80.0 % of the compiled call, at or above the 50 %"),
        (0.3, True, "GPU busy 30.0 % of the compiled call, below the 50 %"),
    ],
)
def test_reduce_overhead_on_cuda_is_planned_from_the_busy_figure(
    busy: float, runs: bool, expected: str
) -> None:
    plan = plan_what_ifs("auto", evidence(device="cuda", gpu_busy=busy))
    reduce_overhead = planned(plan, REDUCE_OVERHEAD, INFERENCE)
    assert reduce_overhead.run is runs
    assert reduce_overhead.reason == expected + " below which CUDA graphs are tried"
    assert "launch-bound" not in reduce_overhead.reason


def test_no_graph_breaks_needs_the_break_inside_the_compiled_call() -> None:
    outside = evidence(scalar_read_breaks=1, outside_rest_share=0.4)
    assert not planned(plan_what_ifs("auto", outside), NO_GRAPH_BREAKS, TRAINING).run
    gaps = evidence(scalar_read_breaks=1, break_ms=0.2)
    assert planned(plan_what_ifs("auto", gaps), NO_GRAPH_BREAKS, TRAINING).run
    skipped = evidence(scalar_read_breaks=1, frames_given_up=1)
    reason = planned(plan_what_ifs("auto", skipped), NO_GRAPH_BREAKS, INFERENCE).reason
    assert planned(plan_what_ifs("auto", skipped), NO_GRAPH_BREAKS, INFERENCE).run
    assert "gave up on 1 frame" in reason


def test_eagers_layout_is_tried_when_the_same_library_calls_run_slower_compiled() -> None:
    slower = planned(
        plan_what_ifs("auto", evidence(library_slowdown=1.6)), NO_LAYOUT_OPTIMIZATION, TRAINING
    )
    assert slower.run and "1.60x eager's time" in slower.reason
    alike = planned(
        plan_what_ifs("auto", evidence(library_slowdown=1.02)), NO_LAYOUT_OPTIMIZATION, INFERENCE
    )
    assert not alike.run and "below the 1.10x" in alike.reason


class CheckThatCompiles:
    """A what-if run whose fp64 check would cost a compile: records whether it was asked."""

    check_compiles = True

    def __init__(self, passes: bool) -> None:
        self.passes, self.checked = passes, False

    def record_check(self, result: WhatIfResult) -> None:
        self.checked = True
        result.fp64_criterion_passed = self.passes


def measured(name: str, over_eager: float, over_default_low: float) -> WhatIfResult:
    return WhatIfResult(
        name,
        TRAINING,
        WHAT_IF_MEASURED,
        "asked for",
        speedup_vs_eager=over_eager,
        speedup_vs_default_low=over_default_low,
    )


@pytest.mark.parametrize("fastest_passes", [True, False])
def test_checks_that_compile_run_only_down_the_candidates_until_one_passes(
    fastest_passes: bool,
) -> None:
    runs = [CheckThatCompiles(fastest_passes), CheckThatCompiles(True), CheckThatCompiles(True)]
    results = [measured("a", 1.5, 1.2), measured("b", 1.3, 1.1), measured("c", 1.0, 0.9)]
    check_candidates(list(zip(runs, results, strict=True)), results, lambda _: None)
    assert runs[0].checked
    assert runs[1].checked is not fastest_passes  # checked only when the faster one failed
    assert not runs[2].checked and "not clearly faster" in results[2].fp64_detail
    if fastest_passes:
        assert "a measured faster and passed" in results[1].fp64_detail
