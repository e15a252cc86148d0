"""`assert_compiles_cleanly`, the pytest helper, on real compiles of small modules.

Breaks are planted in `planted_breaks.py` (found by their marker comments); the GB id a
message must name is looked up in torch's own registry by the break type dynamo reported.
Everything compiles with the helper's default backend, "eager".
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torch._dynamo
from custom_models import ScaledRegressor, make_shifted, mean_square
from custom_models import planted_line as custom_line
from planted_breaks import LoopsOverBatch, ReadsInLoop, ReadsScalar, ReadsThrice, Scales
from planted_breaks import planted_line as planted_breaks_line
from torch import nn

from analyzer.errors import UsageError
from analyzer.testing import CompileHealthError, assert_compiles_cleanly

REGISTRY = json.loads(
    (Path(torch._dynamo.__file__).parent / "graph_break_registry.json").read_text()
)


class Healthy(nn.Module):
    """An MLP with dropout: nothing in it breaks or depends on the batch size."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def registry_id(gb_type: str) -> str:
    (gb_id,) = [gb for gb, entries in REGISTRY.items() for e in entries if e["Gb_type"] == gb_type]
    return gb_id


def batch(rows: int = 8) -> tuple[torch.Tensor]:
    return (torch.randn(rows, 8),)


def failure(model: nn.Module, inputs, **limits) -> CompileHealthError:
    with pytest.raises(CompileHealthError) as raised:
        assert_compiles_cleanly(model, inputs, **limits)
    assert isinstance(raised.value, AssertionError)  # what pytest reports as a failed test
    return raised.value


# --- passing -----------------------------------------------------------------------------------


def test_clean_model_passes_and_returns_what_was_measured() -> None:
    health = assert_compiles_cleanly(Healthy(), batch(), loss_fn=mean_square)
    assert health.graph_break_count == 0
    assert health.recompile_count == 0
    # the grad switch, train then eval, and 8 -> 4 rows (left symbolic): torch's by design
    assert health.by_design_recompile_count == health.recompiles.recompile_count == 3
    assert set(health.captures) == {"inference", "training"}
    for capture in health.captures.values():
        assert capture.frames_compiled >= 1
        assert capture.compiled_region_events and capture.ran_compiled_code
    assert health.ran_compiled_code and health.backend == "eager"


def test_keyword_inputs_pass() -> None:
    model, inputs = make_shifted()
    health = assert_compiles_cleanly(model, inputs)
    assert health.graph_break_count == health.recompile_count == 0


# --- graph breaks ------------------------------------------------------------------------------


def test_planted_break_fails_with_the_users_line_source_and_gb_id() -> None:
    error = failure(ReadsScalar(), batch())
    message = str(error)
    (brk,) = error.health.breaks
    line = planted_breaks_line("item")
    assert brk.graph_break.location.lineno == line
    assert f"tests/planted_breaks.py:{line} in forward [inference]" in message
    assert "scale = y.sum().item()" in message
    gb_id = registry_id(brk.graph_break.reason)
    assert re.fullmatch(r"GB\d{4}", gb_id)
    assert f"{gb_id}: {brk.graph_break.reason}" in message
    assert "Tensor.item()" in brk.graph_break.reason
    assert message.startswith("ReadsScalar does not compile cleanly (backend='eager'):")
    assert "1 graph break (max_graph_breaks=0):" in message


def test_max_graph_breaks_one_lets_one_break_pass() -> None:
    # recompiles are not what this test is about: their limit is set out of the way
    health = assert_compiles_cleanly(ReadsScalar(), batch(), max_graph_breaks=1, max_recompiles=99)
    assert health.graph_break_count == 1
    assert health.graph_breaks["inference"].break_count == 1


def test_a_break_hit_three_times_is_one_break() -> None:
    health = assert_compiles_cleanly(ReadsThrice(), batch(), max_graph_breaks=1, max_recompiles=99)
    (brk,) = health.breaks
    assert brk.graph_break.location.lineno == planted_breaks_line("helper-item")
    assert health.graph_breaks["inference"].break_count == 3


def test_a_break_in_both_entry_points_is_listed_once_with_both() -> None:
    torch.manual_seed(0)
    error = failure(ScaledRegressor(), batch(6), loss_fn=mean_square, max_recompiles=99)
    (brk,) = error.health.breaks
    assert brk.entry_points == ("inference", "training")
    line = custom_line("scale-item")
    assert f"tests/custom_models.py:{line} in forward [inference, training]" in str(error)
    assert {"inference", "training"} <= set(error.health.fullgraph)


def test_a_call_that_runs_no_compiled_code_fails() -> None:
    error = failure(ReadsInLoop(), batch(), max_graph_breaks=1, max_recompiles=99)
    assert error.health.captures["inference"].frames_compiled == 0
    assert not error.health.ran_compiled_code
    assert "inference: no compiled code ran (0 frames compiled" in str(error)
    assert "graph break" not in str(error)  # within its limit: not listed


# --- recompiles --------------------------------------------------------------------------------


def test_a_loop_over_the_batch_recompiles_at_another_batch_size_and_fails() -> None:
    error = failure(LoopsOverBatch(), batch())
    health = error.health
    (counted,) = health.counted_recompiles
    assert counted.evidence["scenario"] == "batch size 8 -> 4"
    assert health.recompile_count == 1
    message = str(error)
    assert "1 recompile (max_recompiles=0)" in message
    assert "under 'batch size 8 -> 4', guard `tensor 'x' size mismatch at index 0" in message
    # torch names no line for a size guard: the recompiled function's first line instead
    (frame,) = health.captures["inference"].frames
    assert f"tests/planted_breaks.py:{frame.first_line} in forward" in message
    assert frame.first_line < planted_breaks_line("shape-loop")


def test_the_same_arithmetic_without_the_loop_recompiles_only_by_design() -> None:
    health = assert_compiles_cleanly(Scales(), batch())
    assert health.recompile_count == 0
    assert health.by_design_recompile_count >= 1  # 8 -> 4 rows, left symbolic


def test_max_recompiles_lets_a_counted_recompile_pass() -> None:
    health = assert_compiles_cleanly(LoopsOverBatch(), batch(), max_recompiles=1)
    assert health.recompile_count == 1


# --- arguments and state -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("inputs", "kwargs", "expected"),
    [
        ("x", {}, "inputs must be a tuple of positional arguments or a dict"),
        ((torch.randn(8, 3),), {}, "the model fails on its inputs: RuntimeError"),
        (batch(), {"backend": "no-such-backend"}, "backend no-such-backend: unknown backend"),
        (batch(), {"max_graph_breaks": -1}, "max_graph_breaks must be a whole number"),
        (batch(), {"compile_how": "sideways"}, "compile_how 'sideways': choose from"),
    ],
)
def test_bad_arguments_are_one_line_errors(inputs, kwargs, expected) -> None:
    with pytest.raises(UsageError) as raised:
        assert_compiles_cleanly(Healthy(), inputs, **kwargs)
    text = str(raised.value)
    assert text.startswith(expected)
    assert "\n" not in text


def test_the_callers_model_random_state_and_grad_mode_are_left_as_they_were() -> None:
    model = Healthy()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    inputs = batch()
    rng = torch.get_rng_state()
    assert_compiles_cleanly(model, inputs, loss_fn=mean_square)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.is_grad_enabled()
    assert model.training and not hasattr(model, "_orig_mod")
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
