"""The graph-break, recompile and capture probes on a real (small) lerobot ACT, on the CPU.

Expected lines are read from the installed `modeling_act.py`, never written down here.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass

import pytest
import torch
import torch._dynamo
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.act import modeling_act
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy

from probes.compile.capture import record_compiles
from probes.compile.graph_breaks import probe_graph_breaks
from probes.compile.recompiles import RecompileScenario, probe_recompiles
from probes.records.compile import Capture, RecompileReport

CHUNK = 10
DIM = 6


def small_act(use_vae: bool) -> ACTPolicy:
    config = ACTConfig(
        input_features={
            "observation.state": PolicyFeature(type=FeatureType.STATE, shape=(DIM,)),
            "observation.images.top": PolicyFeature(type=FeatureType.VISUAL, shape=(3, 64, 64)),
        },
        output_features={"action": PolicyFeature(type=FeatureType.ACTION, shape=(DIM,))},
        pretrained_backbone_weights=None,
        use_vae=use_vae,
        dim_model=64,
        n_heads=2,
        dim_feedforward=128,
        n_encoder_layers=1,
        chunk_size=CHUNK,
        n_action_steps=5,
        device="cpu",
    )
    torch.manual_seed(0)
    return ACTPolicy(config)


def make_batch(size: int) -> dict[str, torch.Tensor]:
    return {
        "observation.state": torch.randn(size, DIM),
        "observation.images.top": torch.rand(size, 3, 64, 64),
        "action": torch.randn(size, CHUNK, DIM),
        "action_is_pad": torch.zeros(size, CHUNK, dtype=torch.bool),
    }


def source_lines(function) -> list[tuple[int, str]]:
    lines, first = inspect.getsourcelines(function)
    return [(first + i, line) for i, line in enumerate(lines)]


def item_lines(use_vae: bool) -> set[int]:
    """Lines of ACTPolicy.forward that call `.item()` and run with this config."""
    lines = source_lines(ACTPolicy.forward)
    vae_branch = next(n for n, line in lines if "if self.config.use_vae" in line)
    return {n for n, line in lines if ".item()" in line and (use_vae or n < vae_branch)}


def queue_check_line() -> int:
    """The line of select_action that decides whether the action queue is empty."""
    lines = source_lines(ACTPolicy.select_action)
    return next(n for n, line in lines if line.strip().startswith("if") and "_action_queue" in line)


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_inference_chunk_prediction_has_no_graph_break():
    policy = small_act(use_vae=False).eval()
    report = probe_graph_breaks("inference", policy.predict_action_chunk, make_batch(2))
    assert report.breaks == []
    assert report.graph_count == 1
    assert report.op_count > 0


@pytest.mark.parametrize("use_vae", [False, True])
def test_training_forward_breaks_on_item_at_the_lines_that_call_it(use_vae):
    policy = small_act(use_vae=use_vae).train()
    report = probe_graph_breaks("training", policy.forward, make_batch(2))
    assert {b.location.lineno for b in report.breaks} == item_lines(use_vae)
    for brk in report.breaks:
        assert "Tensor.item()" in brk.reason
        assert brk.category == "scalar-read"
        assert brk.location.filename == inspect.getfile(modeling_act)
        assert brk.location.function == "forward"
        assert ".item()" in brk.location.code
    assert report.break_count == len(item_lines(use_vae))


def compiled_select_action(policy: ACTPolicy) -> ACTPolicy:
    """LeRobot's script today: a deep copy whose bound method is compiled."""
    twin = copy.deepcopy(policy)
    twin.reset()
    twin.select_action = torch.compile(twin.select_action, backend="eager")
    return twin


@dataclass
class SelectActionRun:
    capture: Capture  # what the first call compiled
    recompiles: RecompileReport  # then: a second batch size, then a stale queue


@pytest.fixture(scope="module")
def select_action_run() -> SelectActionRun:
    """One compiled twin driven as users drive it (one compile shared by the tests below)."""
    torch._dynamo.reset()
    twin = compiled_select_action(small_act(use_vae=False))
    capture, _ = record_compiles("inference", lambda: twin.select_action(make_batch(2)))
    batch = make_batch(3)

    def second_batch_size():
        twin.reset()
        twin.select_action(batch)

    def without_reset():
        twin.reset()
        twin.select_action(batch)
        twin.select_action(batch)  # the queue still holds the rest of the chunk

    scenarios = [
        RecompileScenario("batch size 2 -> 3", second_batch_size),
        RecompileScenario("stale action queue", without_reset),
    ]
    report = probe_recompiles("inference", twin.select_action, scenarios)
    torch._dynamo.reset()
    return SelectActionRun(capture, report)


def test_batch_size_change_recompiles_on_the_batch_dimension(select_action_run):
    (recompile,) = select_action_run.recompiles.scenarios[0].recompiles
    assert "size mismatch at index 0" in recompile.guard
    assert "expected 2, actual 3" in recompile.guard
    assert select_action_run.recompiles.function.endswith("select_action")


def test_stale_action_queue_recompiles_on_the_queue_check(select_action_run):
    (recompile,) = select_action_run.recompiles.scenarios[1].recompiles
    assert "_action_queue" in recompile.guard
    assert recompile.location.filename == inspect.getfile(modeling_act)
    assert recompile.location.lineno == queue_check_line()
    assert not select_action_run.recompiles.limit_hit


def test_bound_method_compile_driven_through_select_action_captures_frames(select_action_run):
    assert select_action_run.capture.frames_compiled >= 1
    assert select_action_run.capture.graphs_captured >= 1


def test_wrapper_compile_driven_through_select_action_captures_nothing():
    policy = small_act(use_vae=False)
    wrapper = torch.compile(copy.deepcopy(policy), backend="eager")
    wrapper.reset()
    capture, _ = record_compiles("inference", lambda: wrapper.select_action(make_batch(2)))
    assert capture.frames_compiled == 0
    assert capture.graphs_captured == 0
