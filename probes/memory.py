"""The memory plan: what each probe holds at once, set against the memory free for it.

A diagnosis makes copies of the model: graph breaks one, the benchmark an eager and a compiled
copy (kept for the later probes, with the gradients of their last training step), the
divergence probe a float64 reference, the what-ifs and the levers on compile time twins of their
own or a fresh process that builds the whole target again. On a model of 2 billion parameters
each copy is 8 GB in float32. This module measures the memory free on the target's device
(`free_memory`) and the model's parameters and buffers (`model_footprint`), and plans, before
the first probe, which probes fit (`plan_memory`): the bytes each one holds on top of what is
resident, item by item, following what the code holds at once. Activations are not estimated
from the parameters: `ACTIVATION_RESERVE` of the free memory is left for them. A stated budget
replaces the measured free memory; with neither, there is no plan and every probe runs.

The plan decides what runs; it words no conclusion (the rules in `analyzer/rules/memory.py` do).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from probes.records.compile_time import DYNAMIC_SHAPES, LEVERS, PORTABLE_CACHE, REGIONAL, WARM_CACHE
from probes.records.memory import (
    ACTIVATION_RESERVE,
    ADAM_STATE,
    CHECK_TWIN,
    COMPILED_COPY,
    EAGER_COPY,
    FP64_GRADIENTS,
    FP64_REFERENCE,
    FRESH_COMPILED_COPY,
    FRESH_PROCESS_COPIES,
    FRESH_PROCESS_GRADIENTS,
    FRESH_PROCESS_TARGET,
    GRADIENTS,
    LEVER_TWIN,
    SAVED_WEIGHTS,
    SKIPPED_MEMORY,
    SKIPPED_NO_BENCHMARK,
    SOURCE_BUDGET,
    SOURCE_CGROUP,
    SOURCE_CUDA,
    SOURCE_MEMINFO,
    SOURCE_UNKNOWN,
    WHAT_IF_TWIN,
    MemoryItem,
    MemoryPlan,
    ModelFootprint,
    ProbeMemory,
    usable_bytes,
)
from probes.records.names import (
    BENCHMARK,
    COMPILE_TIME,
    DIVERGENCE,
    GRAPH_BREAKS,
    KERNELS,
    RECOMPILES,
    SPEED_WHAT_IFS,
    TRAINING,
)
from probes.records.speed import (
    WHAT_IF_ALL,
    WHAT_IF_AUTO,
    WHAT_IF_NONE,
    requested_what_ifs,
)
from probes.speed.plan import PlannedWhatIf
from probes.targets.target import Target

MEMINFO = Path("/proc/meminfo")
CGROUP = Path("/sys/fs/cgroup")  # a container's own cgroup v2, mounted at the root
# The probes that hold memory, in the order a run takes them (`analyzer/runner/run.py`).
PLAN_ORDER = (
    GRAPH_BREAKS,
    BENCHMARK,
    KERNELS,
    SPEED_WHAT_IFS,
    COMPILE_TIME,
    DIVERGENCE,
    RECOMPILES,
)
# Probes that measure on the benchmark's eager and compiled copies: no benchmark, no probe.
REUSES_BENCHMARK = (KERNELS, SPEED_WHAT_IFS, COMPILE_TIME, DIVERGENCE)
# Levers `auto` may run (the others only when asked for: `probes/compile_time/levers.py`).
AUTO_LEVERS = (WARM_CACHE, REGIONAL)

# --- what is free ------------------------------------------------------------------------------


def free_memory(
    device: torch.device, meminfo: Path = MEMINFO, cgroup: Path = CGROUP
) -> tuple[int | None, str]:
    """The bytes free on `device` for the probes, and where the figure came from.

    CUDA: what the driver says is free plus what PyTorch's caching allocator holds reserved but
    unused (it serves the next allocation). CPU: MemAvailable, or the container's cgroup v2
    room (memory.max less memory.current) when that is smaller. (None, SOURCE_UNKNOWN) when
    neither can be read.
    """
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return free + cached, SOURCE_CUDA
    return host_free_memory(meminfo, cgroup)


def host_free_memory(meminfo: Path = MEMINFO, cgroup: Path = CGROUP) -> tuple[int | None, str]:
    available = _mem_available(meminfo)
    room = _cgroup_room(cgroup)
    if room is not None and (available is None or room < available):
        return room, SOURCE_CGROUP
    if available is None:
        return None, SOURCE_UNKNOWN
    return available, SOURCE_MEMINFO


def _mem_available(meminfo: Path) -> int | None:
    try:
        lines = meminfo.read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, value = line.partition(":")
        if name == "MemAvailable":
            number, _, unit = value.strip().partition(" ")
            return int(number) * (1024 if unit.strip() == "kB" else 1)
    return None


def _cgroup_room(cgroup: Path) -> int | None:
    """memory.max less memory.current; None without a limit ("max") or a cgroup v2 to read."""
    try:
        limit = (cgroup / "memory.max").read_text(encoding="ascii").strip()
        current = int((cgroup / "memory.current").read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    if not limit.isdigit():
        return None
    return max(0, int(limit) - current)


# --- what the model holds ----------------------------------------------------------------------


def model_footprint(module: nn.Module) -> ModelFootprint:
    """The module's parameters and buffers as they are (tied tensors counted once)."""
    parameters, buffers = list(module.parameters()), list(module.buffers())
    trainable = [p for p in parameters if p.requires_grad]
    tensors = parameters + buffers
    floats = [t for t in tensors if t.is_floating_point()]
    return ModelFootprint(
        parameter_count=sum(p.numel() for p in parameters),
        parameter_bytes=_bytes(parameters),
        buffer_bytes=_bytes(buffers),
        trainable_count=sum(p.numel() for p in trainable),
        trainable_bytes=_bytes(trainable),
        float_count=sum(t.numel() for t in floats),
        float_bytes=_bytes(floats),
        trainable_float_count=sum(p.numel() for p in trainable if p.is_floating_point()),
        dtypes=sorted({str(t.dtype).removeprefix("torch.") for t in tensors}),
    )


def _bytes(tensors: Iterable[torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


# --- what each probe holds ---------------------------------------------------------------------


class _Sizes:
    """The byte counts the items are made of: a copy, gradients, an fp64 copy and its grads."""

    def __init__(self, footprint: ModelFootprint, training: bool) -> None:
        self.copy = footprint.model_bytes
        self.grads = footprint.trainable_bytes if training else 0
        self.fp64 = footprint.fp64_bytes
        self.fp64_grads = footprint.fp64_gradient_bytes if training else 0
        self.training = training


def _items(*pairs: tuple[str, int]) -> list[MemoryItem]:
    """The items that hold something (gradients and Adam state are 0 without training)."""
    return [MemoryItem(what, size) for what, size in pairs if size > 0]


def _graph_breaks(s: _Sizes) -> list[MemoryItem]:
    return _items((EAGER_COPY, s.copy))  # explain's copy, called forward only


def _benchmark(s: _Sizes) -> list[MemoryItem]:
    # Training: each copy's gradients, and its Adam optimizer's two moments.
    return _items(
        (EAGER_COPY, s.copy),
        (COMPILED_COPY, s.copy),
        (GRADIENTS, 2 * s.grads),
        (ADAM_STATE, 4 * s.grads),
    )


def _benchmark_keeps(s: _Sizes) -> int:
    """The copies stay for the later probes, with the gradients of their last training step."""
    return 2 * s.copy + 2 * s.grads


def _kernels(s: _Sizes) -> list[MemoryItem]:
    return _items((ADAM_STATE, 4 * s.grads))  # a new training loop on each kept copy


def _what_ifs(s: _Sizes) -> list[MemoryItem]:
    """One what-if at a time is counted: its twin (with a training loop), the Adam state of the
    kept copies' loops it is timed against, and its fp64 check (for a training graph it
    changes, on a twin of its own). Each further what-if keeps one more twin until the checks."""
    return _items(
        (WHAT_IF_TWIN, s.copy),
        (GRADIENTS, s.grads + 2 * s.grads),  # the twin's, then the check's eager and twin outputs
        (ADAM_STATE, 2 * s.grads + 4 * s.grads),  # the twin's loop, the kept copies' loops
        (EAGER_COPY, s.copy),
        (FP64_REFERENCE, s.fp64),
        (CHECK_TWIN, s.copy if s.training else 0),
        (FP64_GRADIENTS, s.fp64_grads),
    )


def _compile_levers(s: _Sizes, target: Target, levers: Collection[str]) -> list[MemoryItem]:
    """The largest of the levers that may run, one after another: a fresh process builds the
    target again with an eager and a compiled copy; regional compilation and dynamic shapes
    compile a twin (regional times the training step too, beside the kept copies' loops)."""
    phases: list[list[MemoryItem]] = []
    if target.recipe is not None and {WARM_CACHE, PORTABLE_CACHE} & set(levers):
        phases.append(
            _items(
                (FRESH_PROCESS_TARGET, s.copy),
                (FRESH_PROCESS_COPIES, 2 * s.copy),
                (FRESH_PROCESS_GRADIENTS, s.grads),
            )
        )
    if REGIONAL in levers:
        phases.append(
            _items(
                (LEVER_TWIN, s.copy), (GRADIENTS, s.grads), (ADAM_STATE, 2 * s.grads + 4 * s.grads)
            )
        )
    if DYNAMIC_SHAPES in levers:
        phases.append(_items((LEVER_TWIN, s.copy)))
    return max(phases, key=lambda items: sum(i.bytes for i in items), default=[])


def _divergence(s: _Sizes) -> list[MemoryItem]:
    """A scenario's eager copy and fp64 reference beside the kept compiled copy (its weights
    saved to restore), a fresh compiled copy for a what-if scenario or the localization, and
    the gradients each side's training run returns."""
    return _items(
        (SAVED_WEIGHTS, s.copy),
        (EAGER_COPY, s.copy),
        (FP64_REFERENCE, s.fp64),
        (FRESH_COMPILED_COPY, s.copy),
        (GRADIENTS, 3 * s.grads),  # kept to compare: eager's twice, compiled's once
        (FP64_GRADIENTS, 2 * s.fp64_grads),  # the fp64 run's own, and its copy kept
    )


def _recompiles(s: _Sizes) -> list[MemoryItem]:
    return _items((COMPILED_COPY, s.copy))  # the inference scenarios' one compiled copy


def requested_levers(compile_lever: str | Collection[str]) -> tuple[str, ...]:
    """The levers on compile time a request may run (`auto` runs only some, when the
    benchmark's figures point to them: the plan counts them all)."""
    mode, names = requested_what_ifs(compile_lever, LEVERS, "compile lever")
    if mode == WHAT_IF_NONE:
        return ()
    if mode == WHAT_IF_ALL:
        return LEVERS
    return AUTO_LEVERS if mode == WHAT_IF_AUTO else names


def probe_items(
    target: Target,
    footprint: ModelFootprint,
    *,
    what_if: str | Collection[str] = WHAT_IF_AUTO,
    compile_lever: str | Collection[str] = WHAT_IF_AUTO,
) -> dict[str, list[MemoryItem]]:
    """What each probe holds on top of what is resident, item by item."""
    s = _Sizes(footprint, target.loss is not None)
    no_what_ifs = requested_what_ifs(what_if)[0] == WHAT_IF_NONE
    makers: dict[str, Callable[[], list[MemoryItem]]] = {
        GRAPH_BREAKS: lambda: _graph_breaks(s),
        BENCHMARK: lambda: _benchmark(s),
        KERNELS: lambda: _kernels(s),
        SPEED_WHAT_IFS: lambda: [] if no_what_ifs else _what_ifs(s),
        COMPILE_TIME: lambda: _compile_levers(s, target, requested_levers(compile_lever)),
        DIVERGENCE: lambda: _divergence(s),
        RECOMPILES: lambda: _recompiles(s),
    }
    return {probe: make() for probe, make in makers.items()}


# --- the plan ----------------------------------------------------------------------------------


def plan_memory(
    target: Target,
    probes: Collection[str] | None = None,
    budget: int | None = None,
    *,
    what_if: str | Collection[str] = WHAT_IF_AUTO,
    compile_lever: str | Collection[str] = WHAT_IF_AUTO,
) -> MemoryPlan:
    """Which of `probes` (None: all) fit in the memory free on the target's device, or in
    `budget` bytes when one is stated; `what_if` and `compile_lever` as the run asks for them."""
    footprint = model_footprint(target.module)
    if budget is not None:
        available, source = budget, SOURCE_BUDGET
    else:
        available, source = free_memory(target.device)
    plan = MemoryPlan(
        device=str(target.device),
        available_bytes=available,
        source=source,
        reserve_fraction=ACTIVATION_RESERVE,
        usable_bytes=None if available is None else usable_bytes(available),
        footprint=footprint,
        dtype=target.dtype,
        training=target.loss is not None,
    )
    items = probe_items(target, footprint, what_if=what_if, compile_lever=compile_lever)
    keeps = _benchmark_keeps(_Sizes(footprint, plan.training))
    benchmark_runs = False  # a benchmark not selected keeps nothing
    for name in PLAN_ORDER:
        if probes is not None and name not in probes:
            continue
        # the probes that reuse the benchmark's copies count them, as had it run
        resident = keeps if benchmark_runs or name in REUSES_BENCHMARK else 0
        entry = _decide(name, items[name], resident, plan.usable_bytes, benchmark_runs)
        if name == BENCHMARK:
            benchmark_runs = entry.runs
        plan.probes.append(entry)
    plan.required_bytes = max((e.peak_bytes for e in plan.probes), default=0)
    return plan


def _decide(
    name: str, items: list[MemoryItem], resident: int, usable: int | None, benchmark_runs: bool
) -> ProbeMemory:
    entry = ProbeMemory(name, items, sum(i.bytes for i in items), resident)
    if name in REUSES_BENCHMARK and not benchmark_runs:
        entry.runs, entry.skipped = False, SKIPPED_NO_BENCHMARK
    elif usable is not None and entry.peak_bytes > usable:
        entry.runs, entry.skipped = False, SKIPPED_MEMORY
    return entry


def what_ifs_that_fit(
    plan: MemoryPlan | None, planned: Sequence[PlannedWhatIf]
) -> list[PlannedWhatIf]:
    """The what-ifs planned to run, as many as the memory holds; the rest planned not to run.

    The plan counted one what-if's twin. Each timed what-if keeps its twin (and, for training,
    the gradients of its last step) until every one is checked against fp64: each one more
    holds that much more. Without a plan (free memory unknown) every planned what-if runs.
    """
    entry = plan.entry(SPEED_WHAT_IFS) if plan is not None else None
    if plan is None or entry is None or plan.usable_bytes is None:
        return list(planned)
    room = plan.usable_bytes - entry.peak_bytes
    counted_one, fitted = False, []
    for what_if in planned:
        twin = plan.footprint.model_bytes
        if what_if.entry_point == TRAINING:
            twin += plan.footprint.trainable_bytes
        if what_if.run and counted_one and twin > room:
            reason = (
                f"{what_if.reason}; not run for memory: one more twin holds {twin:,} bytes, "
                f"{max(room, 0):,} left of the {plan.usable_bytes:,} for the probes"
            )
            what_if = dataclasses.replace(what_if, run=False, reason=reason)
        elif what_if.run:
            room -= twin if counted_one else 0
            counted_one = True
        fitted.append(what_if)
    return fitted
