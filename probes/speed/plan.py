"""Which what-ifs for speed a diagnosis runs, and why: the plan, from figures measured earlier.

`plan_what_ifs` reads, per entry point, what the time attribution and the other probes measured
(`entry_evidence`): the library kernels' share of the compiled call and how much slower the same
library calls ran compiled, the eager gaps at graph breaks, the work outside compiled code, the
scalar-read breaks explain found, the frames dynamo gave up on, the GPU's busy fraction. With
`--what-if auto` it runs the what-ifs those figures point to; `none`, `all` or names override it.
Every what-if gets a reason, whether it runs or not: the figures that decided, never a verdict.
A what-if that cannot apply (an Inductor setting on another backend, CUDA graphs on a CPU,
freezing a training step) is planned as not run with that reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from probes.records.kernels import LAUNCH_BOUND_BUSY
from probes.records.names import INFERENCE, TRAINING
from probes.records.speed import (
    COMPILED_OPTIMIZER,
    FREEZING,
    FREEZING_LIBRARY_SHARE,
    LIBRARY_KERNELS,
    LIBRARY_SLOWDOWN,
    MAX_AUTOTUNE,
    NO_GRAPH_BREAKS,
    NO_LAYOUT_OPTIMIZATION,
    OUTSIDE_COMPILED_SHARE,
    REDUCE_OVERHEAD,
    WHAT_IF_ALL,
    WHAT_IF_AUTO,
    WHAT_IF_NONE,
    WHAT_IFS,
    EntrySpeed,
    requested_what_ifs,
)
from probes.targets.target import CompileSettings


@dataclass(frozen=True)
class EntryEvidence:
    """What the plan reads of one entry point, all measured earlier in the run."""

    library_share: float | None = None  # library kernels / the compiled call's span
    library_slowdown: float | None = None  # the compiled call's library time / eager's
    break_ms: float = 0.0  # eager gaps between compiled regions, per call
    outside_rest_share: float | None = None  # other work outside compiled code / the span
    scalar_read_breaks: int = 0  # scalar-read breaks the graph-break probe found
    frames_given_up: int = 0  # frames of the compiled call dynamo failed on (they run eager)
    gpu_busy: float | None = None  # the compiled call's GPU busy fraction (CUDA)


def entry_evidence(
    speed: EntrySpeed | None,
    *,
    scalar_read_breaks: int = 0,
    frames: Sequence[Mapping[str, Any]] = (),
    gpu_busy: float | None = None,
) -> EntryEvidence:
    """An entry point's figures for the plan: its time attribution (None when the kernel probe
    did not run), the scalar-read breaks explain found, the frames the benchmark's compile
    recorded (`{"fail_type", ...}`) and the compiled call's GPU busy fraction."""
    given_up = sum(1 for frame in frames if frame.get("fail_type"))
    if speed is None:
        return EntryEvidence(
            scalar_read_breaks=scalar_read_breaks, frames_given_up=given_up, gpu_busy=gpu_busy
        )
    library = next((s for s in speed.attribution if s.category == LIBRARY_KERNELS), None)
    rest = speed.outside_compiled_rest_ms
    return EntryEvidence(
        library_share=speed.ceiling.library_share,
        library_slowdown=library.compiled_ms / library.eager_ms
        if library and library.eager_ms and library.compiled_ms
        else None,
        break_ms=sum(cost.ms_per_call for cost in speed.break_costs),
        outside_rest_share=rest / speed.compiled_ms
        if rest is not None and speed.compiled_ms
        else None,
        scalar_read_breaks=scalar_read_breaks,
        frames_given_up=given_up,
        gpu_busy=gpu_busy,
    )


@dataclass(frozen=True)
class WhatIfEvidence:
    device_type: str  # "cpu" or "cuda"
    settings: CompileSettings  # how the benchmark compiled
    entry_points: Mapping[str, EntryEvidence]


@dataclass(frozen=True)
class PlannedWhatIf:
    name: str
    entry_point: str
    run: bool
    reason: str  # the figures that made it run or not


def plan_what_ifs(requested: str | Sequence[str], evidence: WhatIfEvidence) -> list[PlannedWhatIf]:
    """Every what-if for every entry point it applies to: whether it runs, and why."""
    mode, names = requested_what_ifs(requested)
    planned = []
    for name in WHAT_IFS:
        for entry_point, figures in evidence.entry_points.items():
            cannot = _cannot_apply(name, entry_point, evidence)
            if cannot == _NOT_THIS_ENTRY_POINT:
                continue
            pointed, why = _POINTERS[name](figures)
            if cannot:
                planned.append(PlannedWhatIf(name, entry_point, False, cannot))
            elif mode == WHAT_IF_NONE:
                planned.append(
                    PlannedWhatIf(name, entry_point, False, "what-ifs off (--what-if none)")
                )
            elif mode == WHAT_IF_AUTO:
                planned.append(PlannedWhatIf(name, entry_point, pointed, why))
            elif mode == WHAT_IF_ALL or name in names:
                planned.append(PlannedWhatIf(name, entry_point, True, f"asked for; {why}"))
            else:
                planned.append(PlannedWhatIf(name, entry_point, False, f"not asked for; {why}"))
    return planned


_NOT_THIS_ENTRY_POINT = "-"
_INDUCTOR_SETTINGS = (FREEZING, NO_LAYOUT_OPTIMIZATION, MAX_AUTOTUNE, REDUCE_OVERHEAD)


def _cannot_apply(name: str, entry_point: str, evidence: WhatIfEvidence) -> str:
    """Why `name` cannot run for this entry point here ("" when it can)."""
    settings = evidence.settings
    if name == FREEZING and entry_point != INFERENCE:
        return _NOT_THIS_ENTRY_POINT  # frozen weights cannot be trained
    if name == COMPILED_OPTIMIZER and entry_point != TRAINING:
        return _NOT_THIS_ENTRY_POINT
    if settings.how == "config":
        return "the policy's own compile switch made the compiled copy: its settings are fixed"
    if name in _INDUCTOR_SETTINGS and settings.backend_name != "inductor":
        return f"an Inductor setting, and this run compiles with backend {settings.backend_name}"
    if name == REDUCE_OVERHEAD and evidence.device_type != "cuda":
        return (
            "CUDA graphs replay recorded GPU work, and this run is on "
            f"{evidence.device_type}: the what-if needs a GPU"
        )
    return ""


def _side(value: float, line: float) -> str:
    return "at or above" if value >= line else "below"


def _freezing(figures: EntryEvidence) -> tuple[bool, str]:
    share = figures.library_share
    if share is None:
        return False, "no library kernel time was measured in the compiled call"
    return share >= FREEZING_LIBRARY_SHARE, (
        f"library kernels are {100 * share:.0f} % of the compiled call, "
        f"{_side(share, FREEZING_LIBRARY_SHARE)} the {100 * FREEZING_LIBRARY_SHARE:.0f} % from "
        "which freezing is tried"
    )


def _no_layout_optimization(figures: EntryEvidence) -> tuple[bool, str]:
    slowdown = figures.library_slowdown
    if slowdown is None:
        return False, "no library kernel time was measured on both sides"
    return slowdown >= LIBRARY_SLOWDOWN, (
        f"the same library calls take {slowdown:.2f}x eager's time in the compiled call, "
        f"{_side(slowdown, LIBRARY_SLOWDOWN)} the {LIBRARY_SLOWDOWN:.2f}x from which eager's "
        "layout is tried"
    )


def _no_graph_breaks(figures: EntryEvidence) -> tuple[bool, str]:
    breaks = figures.scalar_read_breaks
    if breaks == 0:
        return False, "the graph-break probe found no scalar-read break"
    if figures.break_ms > 0:
        return True, (
            f"{breaks} scalar-read break(s); the eager gaps between compiled regions take "
            f"{figures.break_ms:.3g} ms per call"
        )
    if figures.frames_given_up > 0:
        return True, (
            f"{breaks} scalar-read break(s); dynamo gave up on {figures.frames_given_up} "
            "frame(s) of the compiled call, which run eager (a break in a loop skips its "
            "whole frame)"
        )
    return False, (
        f"{breaks} scalar-read break(s) found, but the compiled call shows no eager gap "
        "between compiled regions and no frame dynamo gave up on: the break lies outside "
        "the compiled code"
    )


def _compiled_optimizer(figures: EntryEvidence) -> tuple[bool, str]:
    share = figures.outside_rest_share
    if share is None:
        return False, "no time outside compiled code was measured"
    return share >= OUTSIDE_COMPILED_SHARE, (
        f"work outside compiled code (graph-break gaps apart) is {100 * share:.0f} % of the "
        f"compiled step, {_side(share, OUTSIDE_COMPILED_SHARE)} the "
        f"{100 * OUTSIDE_COMPILED_SHARE:.0f} % from which the fused optimizer is tried"
    )


def _reduce_overhead(figures: EntryEvidence) -> tuple[bool, str]:
    busy = figures.gpu_busy
    if busy is None:
        return False, "the compiled call recorded no device activity"
    side = "below" if busy < LAUNCH_BOUND_BUSY else "at or above"
    return busy < LAUNCH_BOUND_BUSY, (
        f"GPU busy {100 * busy:.1f} % of the compiled call, {side} the "
        f"{100 * LAUNCH_BOUND_BUSY:.0f} % below which CUDA graphs are tried"
    )


def _only_when_asked(figures: EntryEvidence) -> tuple[bool, str]:
    return False, "run only when asked: max-autotune compiles take many minutes"


# What in the figures points each what-if out for `auto`, and the figures that say so
# (max-autotune: nothing; it runs when asked).
_POINTERS = {
    FREEZING: _freezing,
    NO_LAYOUT_OPTIMIZATION: _no_layout_optimization,
    NO_GRAPH_BREAKS: _no_graph_breaks,
    COMPILED_OPTIMIZER: _compiled_optimizer,
    REDUCE_OVERHEAD: _reduce_overhead,
    MAX_AUTOTUNE: _only_when_asked,
}
