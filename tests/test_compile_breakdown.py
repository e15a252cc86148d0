"""A compile's seconds by stage: timer-event arithmetic on recorded events, and real compiles."""

from __future__ import annotations

import logging

import pytest
import torch
import torch._logging._internal as torch_logging
from torch import nn

from probes.compile.breakdown import entry_compile_time, watch_compiles
from probes.compile.stages import stage_of, timed_compiles
from probes.records.compile_time import (
    AOT_AUTOGRAD,
    BACKWARD,
    CODE_GENERATION,
    DYNAMO,
    FORWARD,
    GRAPH_PASSES,
    KERNEL_COMPILE,
    STAGE_SUM_TOLERANCE,
)


def _event(name: str, phase: str, ts_us: float, compile_id: str | None = "0/0") -> dict:
    return {"name": name, "ph": phase, "ts": ts_us, "args": {"compile_id": str(compile_id)}}


def _frame(*inner: tuple[str, float, float], compile_id: str = "0/0") -> list[dict]:
    """A frame's root timer from 0 to 100 s with timers (name, start s, end s) inside."""
    events = [_event("entire_frame_compile", "B", 0.0, compile_id)]
    for name, start, end in inner:
        events.append(_event(name, "B", start * 1e6, compile_id))
        events.append(_event(name, "E", end * 1e6, compile_id))
    events.append(_event("entire_frame_compile", "E", 100e6, compile_id))
    return events


def test_each_timer_is_charged_its_own_time_and_the_stages_add_up_to_the_root() -> None:
    events = [
        _event("entire_frame_compile", "B", 0),
        _event("bytecode_tracing", "B", 1e6),
        _event("bytecode_tracing", "E", 6e6),
        _event("backend_compile", "B", 10e6),
        _event("_recursive_joint_graph_passes", "B", 12e6),
        _event("_recursive_joint_graph_passes", "E", 14e6),
        _event("code_gen", "B", 20e6),
        _event("compile_file", "B", 30e6),
        _event("compile_file", "E", 70e6),
        _event("code_gen", "E", 90e6),
        _event("backend_compile", "E", 95e6),
        _event("entire_frame_compile", "E", 100e6),
    ]
    (timed,) = timed_compiles(events)
    assert timed.part == FORWARD and timed.seconds == pytest.approx(100.0)
    # dynamo: the root's own 10 s plus the tracing timer's 5 s (no stage of its own)
    assert timed.stages[DYNAMO] == pytest.approx(15.0)
    assert timed.stages[AOT_AUTOGRAD] == pytest.approx(85.0 - 2.0 - 70.0)
    assert timed.stages[GRAPH_PASSES] == pytest.approx(2.0)
    assert timed.stages[CODE_GENERATION] == pytest.approx(70.0 - 40.0)
    assert timed.stages[KERNEL_COMPILE] == pytest.approx(40.0)
    assert sum(timed.stages.values()) == pytest.approx(timed.seconds)


def test_worker_thread_events_and_timers_outside_a_compile_are_left_out() -> None:
    events = _frame(("code_gen", 10, 60))
    # a compile worker's timer runs in parallel: it has no compile id
    events.insert(3, _event("compile_file", "B", 20e6, compile_id=None))
    events.insert(4, _event("compile_file", "E", 50e6, compile_id=None))
    # a timer after the compile ended
    events += [_event("cache_save", "B", 120e6), _event("cache_save", "E", 130e6)]
    (timed,) = timed_compiles(events)
    assert KERNEL_COMPILE not in timed.stages
    assert timed.stages[CODE_GENERATION] == pytest.approx(50.0)
    assert timed.seconds == pytest.approx(100.0)


def test_a_lazy_backward_is_a_compile_of_its_own_and_frames_are_kept_apart() -> None:
    events = _frame(("backend_compile", 5, 95), compile_id="0/0")
    events += [
        _event("entire_backward_compile", "B", 200e6),
        _event("compile_file", "B", 201e6),
        _event("compile_file", "E", 203e6),
        _event("entire_backward_compile", "E", 204e6),
    ]
    events += _frame(compile_id="1/0")
    forward, backward, other = timed_compiles(events)
    assert (forward.compile_id, forward.part) == ("0/0", FORWARD)
    assert (backward.compile_id, backward.part) == ("0/0", BACKWARD)
    assert backward.seconds == pytest.approx(4.0)
    assert backward.stages == pytest.approx({AOT_AUTOGRAD: 2.0, KERNEL_COMPILE: 2.0})
    assert other.compile_id == "1/0" and other.stages == pytest.approx({DYNAMO: 100.0})


def test_an_end_without_its_start_changes_nothing() -> None:
    events = _frame(("bytecode_tracing", 1, 2))
    events.insert(1, _event("dynamo", "E", 0.5e6))
    (timed,) = timed_compiles(events)
    assert sum(timed.stages.values()) == pytest.approx(100.0)


def test_stage_names_follow_torchs_timer_names() -> None:
    assert stage_of("pass.post_grad_passes.remove_noop_ops") == GRAPH_PASSES
    assert stage_of("aot_trace_joint_graph") == AOT_AUTOGRAD
    assert stage_of("mm_template_autotuning") == "autotune"
    assert stage_of("bytecode_tracing") is None  # inherits its parent's


class _TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


def test_a_real_training_compile_adds_up_to_torchs_own_figures() -> None:
    torch._dynamo.reset()
    model = torch.compile(_TwoLayers(), backend="aot_eager")
    x = torch.randn(4, 8)
    with watch_compiles() as watched:
        model(x).sum().backward()
    record = entry_compile_time("training", 1.0, watched)
    parts = sorted(frame.part for frame in record.frames)
    assert parts == [BACKWARD, FORWARD]
    for frame in record.frames:
        assert frame.torch_seconds is not None
        assert frame.seconds == pytest.approx(frame.torch_seconds, rel=STAGE_SUM_TOLERANCE)
        assert sum(frame.stages.values()) == pytest.approx(frame.seconds, rel=1e-3)
        assert all(seconds >= 0 for seconds in frame.stages.values())
    forward = next(f for f in record.frames if f.part == FORWARD)
    assert forward.function == "forward" and forward.first_line is not None
    assert forward.stages[DYNAMO] > 0 and forward.stages[AOT_AUTOGRAD] > 0


def test_watching_leaves_torchs_trace_logger_as_it_was() -> None:
    logger = torch_logging.trace_log
    before = (list(logger.handlers), logger.level, logger.propagate)
    with watch_compiles():
        assert logger.level == logging.DEBUG and not logger.propagate
    assert (list(logger.handlers), logger.level, logger.propagate) == before


def test_a_call_that_compiles_nothing_has_no_frames() -> None:
    torch._dynamo.reset()
    model = torch.compile(_TwoLayers(), backend="aot_eager")
    x = torch.randn(4, 8)
    model(x)
    with watch_compiles() as watched:
        model(x)
    record = entry_compile_time("inference", 0.001, watched)
    assert record.frames == [] and record.compile_s == 0.0
