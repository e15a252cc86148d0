"""Dynamic shapes: one compile for every batch size, against a compile per size.

The default compile specialises on the batch size: the first call at another size fails a
shape guard and compiles again (with `automatic_dynamic_shapes`, on by default, that second
compile is a dynamic one, and later sizes reuse it). The recompile scenarios show that a size
change recompiles; this lever measures the alternative: a twin compiled with `dynamic=True` from
the start, its first call (the compile, by stage), then a call at the other batch size, watched
for any compile, then its warm calls against eager's and the default compile's, since a graph
that holds for any size may run slower than one for a single size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from probes.compile.breakdown import entry_compile_time, watch_compiles
from probes.compile_time.first_call import record_twin_timing, watched_first_call
from probes.errors import error_line
from probes.records.benchmark import BenchmarkSettings
from probes.records.compile_time import (
    DYNAMIC_SHAPES,
    LEVER_FAILED,
    CompileLever,
    EntryCompileTime,
)
from probes.records.names import INFERENCE
from probes.speed.backends import FreshBackend, mode_config
from probes.targets.target import CompileSettings, Target
from probes.timing import time_first_call

Call = Callable[[], Any]

PASTE = "torch.compile(model, dynamic=True)  # one graph for every batch size"


def dynamic_settings(settings: CompileSettings) -> CompileSettings:
    """`settings` with `dynamic=True`, in a backend of its own (the mode's config carried)."""
    patches = mode_config(settings.mode) if settings.backend_name == "inductor" else {}
    backend = FreshBackend(settings.backend_name, patches)
    return dataclasses.replace(settings, mode=None, backend=backend, dynamic=True)


def measure_dynamic(
    target: Target,
    settings: CompileSettings,
    eager_call: Call,
    default_call: Call,
    baseline: EntryCompileTime,
    bench: BenchmarkSettings,
) -> CompileLever:
    """A `dynamic=True` twin's inference: its compile, a call at the other batch size, its speed.

    `eager_call` and `default_call` are the benchmark's warm inference calls; `baseline` what
    the default compile of inference cost. Compared less Inductor's CPU check, cold against
    cold as `first_call.py` says. A compile or call that raises is a failed lever.
    """
    lever = CompileLever(
        name=DYNAMIC_SHAPES,
        entry_point=INFERENCE,
        baseline_compile_s=baseline.compile_s - baseline.cpu_isa_check_s,
        paste=PASTE,
    )
    other = target.other_batch
    if other is None:
        lever.status = LEVER_FAILED
        lever.reason = "the inputs have no batch dimension to change"
        return lever
    cold = baseline.cache.hits == 0
    lever.detail = {"batch_sizes": list(other.sizes), "cold": cold}
    try:
        twin = target.compiled_copy(dynamic_settings(settings))
        call = _inference(target, twin)
        compile_time = watched_first_call(INFERENCE, call, settings, target.device, cold=cold)
        other_size = _other_size_call(other.infer, twin, target.device)
        record_twin_timing(
            lever, compile_time, (eager_call, default_call, call), bench, target.device
        )
    except Exception as error:  # a failed lever is a result, not the diagnosis's end
        lever.status = LEVER_FAILED
        lever.reason = error_line(error)
        return lever
    lever.detail["other_size_frames"] = len(other_size.frames)
    lever.detail["other_size_compile_s"] = round(other_size.compile_s, 4)
    return lever


def _inference(target: Target, copy: nn.Module) -> Call:
    def call() -> Any:
        with torch.no_grad():
            return target.infer(copy)

    return call


def _other_size_call(
    infer: Callable[[nn.Module], Any], twin: nn.Module, device: torch.device
) -> EntryCompileTime:
    """The twin called at the other batch size: what, if anything, it compiled."""
    with watch_compiles() as watched:
        first_s, _ = time_first_call(lambda: infer(twin), device)
    return entry_compile_time(INFERENCE, first_s, watched)
