"""A compile's seconds by stage, from the start and end events of torch's compile timers.

Every `dynamo_timed` block in torch emits a begin ("B") and an end ("E") event named after the
block, with the compile id in its arguments (tlparse draws them as its chromium trace). Blocks
nest on the compiling thread, so each event's own time is its span minus the spans of the events
nested directly in it; that own time goes to the event's stage, and an event whose name no stage
claims belongs to the stage of the event around it. The own times of one root event add up to
the root's span by construction; what this gains over torch's cumulative columns is the split
of the whole, including the work in between the named timers.

Events without a compile id come from the compile workers' threads, in parallel with the
compiling thread: they are left out, since the compiling thread's wait for them
(`async_compile.wait`) is what the compile's time holds.

Pure: no torch import, so it runs on recorded events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from probes.records.compile_time import (
    AOT_AUTOGRAD,
    AUTOTUNE,
    BACKWARD,
    CACHE,
    CODE_GENERATION,
    DYNAMO,
    FORWARD,
    GRAPH_PASSES,
    KERNEL_COMPILE,
    LOWERING,
)

# The root timer of each part of a compile.
ROOTS = {"entire_frame_compile": FORWARD, "entire_backward_compile": BACKWARD}

# Timer names (torch 2.11) and the stage each one starts. Unnamed timers inherit their parent's.
_STAGE_OF_NAME = {
    "entire_frame_compile": DYNAMO,
    "entire_backward_compile": AOT_AUTOGRAD,
    "backend_compile": AOT_AUTOGRAD,
    "create_aot_dispatcher_function": AOT_AUTOGRAD,
    "_recursive_pre_grad_passes": GRAPH_PASSES,
    "_recursive_joint_graph_passes": GRAPH_PASSES,
    "_recursive_post_grad_passes": GRAPH_PASSES,
    "inductor_compile": LOWERING,
    "fx_codegen_and_compile": LOWERING,
    "GraphLowering.run": LOWERING,
    "Scheduler.__init__": LOWERING,
    "code_gen": CODE_GENERATION,
    "GraphLowering.compile_to_fn": CODE_GENERATION,
    "GraphLowering.codegen": CODE_GENERATION,
    "Scheduler.codegen": CODE_GENERATION,
    "PyCodeCache.load_by_key_path": CODE_GENERATION,
    "compile_file": KERNEL_COMPILE,
    "async_compile.wait": KERNEL_COMPILE,
    "async_compile.precompile": KERNEL_COMPILE,
    "benchmark_fused_nodes": AUTOTUNE,
    "inductor_codecache_torch_key": CACHE,
    "AOTAutogradCache.inductor_load": CACHE,
}
_STAGE_OF_PREFIX = (("pass.", GRAPH_PASSES), ("aot_", AOT_AUTOGRAD))
_STAGE_OF_SUFFIX = (
    ("_template_autotuning", AUTOTUNE),
    ("_template_precompiling", AUTOTUNE),
)


def stage_of(name: str) -> str | None:
    """The stage a timer of this name starts, or None when it belongs to its parent's."""
    if name in _STAGE_OF_NAME:
        return _STAGE_OF_NAME[name]
    for prefix, stage in _STAGE_OF_PREFIX:
        if name.startswith(prefix):
            return stage
    for suffix, stage in _STAGE_OF_SUFFIX:
        if name.endswith(suffix):
            return stage
    return None


@dataclass
class TimedCompile:
    """One root timer's span and its split by stage (seconds)."""

    compile_id: str
    part: str
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)


@dataclass
class _Open:
    name: str
    stage: str
    start_us: float
    children_us: float = 0.0


def timed_compiles(events: Iterable[Mapping[str, Any]]) -> list[TimedCompile]:
    """Every root timer (a frame's compile, a lazy backward compile) in the events, in order."""
    stacks: dict[str, list[_Open]] = {}
    open_roots: dict[str, TimedCompile] = {}
    done: list[TimedCompile] = []
    for event in events:
        compile_id = (event.get("args") or {}).get("compile_id")
        name, phase, ts = event.get("name"), event.get("ph"), event.get("ts")
        if compile_id in (None, "None") or not isinstance(name, str) or ts is None:
            continue
        stack = stacks.setdefault(compile_id, [])
        if phase == "B":
            if not stack and name not in ROOTS:
                continue  # a timer outside any compile (e.g. a cache save after it)
            parent = stack[-1].stage if stack else DYNAMO
            stack.append(_Open(name, stage_of(name) or parent, float(ts)))
            if name in ROOTS and len(stack) == 1:
                open_roots[compile_id] = TimedCompile(compile_id, ROOTS[name], 0.0)
        elif phase == "E":
            _close(stack, name, float(ts), open_roots.get(compile_id))
            if not stack and compile_id in open_roots:
                done.append(open_roots.pop(compile_id))
    return done


def _close(stack: list[_Open], name: str, end_us: float, root: TimedCompile | None) -> None:
    """End the innermost open timer of this name (and any left open inside it)."""
    if root is None or not any(item.name == name for item in stack):
        return
    while stack:
        item = stack.pop()
        span = max(end_us - item.start_us, 0.0)
        own = max(span - item.children_us, 0.0)
        root.stages[item.stage] = root.stages.get(item.stage, 0.0) + own / 1e6
        if stack:
            stack[-1].children_us += span
        else:
            root.seconds = span / 1e6
        if item.name == name:
            return
