"""The memory plan's record: what each probe holds at once, against the memory free for it.

    diagnosis.json["memory_plan"] = MemoryPlan
        device, available_bytes, source, reserve_fraction, usable_bytes  # None: unknown
        footprint: ModelFootprint  # the built target's parameters and buffers, its own dtypes
        dtype, training, required_bytes
        probes: [ProbeMemory]  # in the order a run takes them
            probe, items: [{what, bytes}], needed_bytes, resident_bytes, runs, skipped

Made once, after the target is built and before the first probe (`probes/memory.py`), from the
parameter count and dtypes alone: each probe's copies of the model (eager, compiled, fp64),
gradients and Adam state, on top of what earlier probes keep alive (the benchmark's two copies,
which the later probes reuse). Activations are not estimated from the parameters: a share of the
free memory (`ACTIVATION_RESERVE`) is kept for them and the allocator instead. A probe that does
not fit is skipped, not failed: it is recorded here with the reason, and the rules say what it
needed and what machine would run it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# diagnosis.json's section: the plan, written before the first probe runs.
MEMORY_PLAN = "memory_plan"

# The share of the free memory the plan leaves for what it does not count: activations (the
# forward's saved tensors, which grow with the batch and the sequence, not with the parameters),
# the allocator's fragmentation, compiled code and its workspaces, a CUDA context. A probe runs
# when what it holds fits in the rest.
ACTIVATION_RESERVE = 0.2

# Bytes per element of the fp64 reference (the divergence probe's float64 copy).
FLOAT64_BYTES = 8

# Where `available_bytes` came from.
SOURCE_CUDA = "cuda"  # torch.cuda.mem_get_info, plus the blocks PyTorch's allocator holds free
SOURCE_MEMINFO = "meminfo"  # /proc/meminfo MemAvailable
SOURCE_CGROUP = "cgroup"  # the container's cgroup v2 memory.max less its memory.current
SOURCE_BUDGET = "budget"  # stated by the user: --memory-budget, or diagnose_module(memory_budget=)
SOURCE_UNKNOWN = "unknown"  # none could be read: no plan, every probe runs
SOURCE_LABELS = {
    SOURCE_CUDA: "free on the GPU (torch.cuda.mem_get_info, plus PyTorch's cached free blocks)",
    SOURCE_MEMINFO: "MemAvailable in /proc/meminfo",
    SOURCE_CGROUP: "the container's memory limit less its use (cgroup v2)",
    SOURCE_BUDGET: "the stated memory budget",
    SOURCE_UNKNOWN: "unknown",
}

# What a probe holds, item by item (the names a user reads in a finding).
EAGER_COPY = "eager copy"
COMPILED_COPY = "compiled copy"
GRADIENTS = "gradients"
ADAM_STATE = "Adam state"
FP64_REFERENCE = "fp64 reference"
FP64_GRADIENTS = "fp64 gradients"
SAVED_WEIGHTS = "the compiled copy's weights, saved to restore"
WHAT_IF_TWIN = "what-if twin (one compile more)"
CHECK_TWIN = "twin compiled for the fp64 check"
FRESH_COMPILED_COPY = "fresh compiled copy (what-if scenarios, localization)"
LEVER_TWIN = "lever twin (one compile more)"
FRESH_PROCESS_TARGET = "fresh process: the target built again"
FRESH_PROCESS_COPIES = "fresh process: its eager and compiled copies"
FRESH_PROCESS_GRADIENTS = "fresh process: gradients"

# Why a probe was skipped (`ProbeMemory.skipped`), and the words for it.
SKIPPED_MEMORY = "memory"
SKIPPED_NO_BENCHMARK = "no-benchmark"
SKIP_REASONS = {
    SKIPPED_MEMORY: "does not fit in the memory left for the probes",
    SKIPPED_NO_BENCHMARK: "the benchmark did not run",
}


@dataclass
class ModelFootprint:
    """The parameters and buffers of a module as they are, in its own dtypes (tied ones once)."""

    parameter_count: int
    parameter_bytes: int
    buffer_bytes: int
    trainable_count: int
    trainable_bytes: int
    float_count: int  # floating-point elements of the parameters and buffers
    float_bytes: int
    trainable_float_count: int
    dtypes: list[str] = field(default_factory=list)  # of the parameters and buffers, by name

    @property
    def model_bytes(self) -> int:
        return self.parameter_bytes + self.buffer_bytes

    @property
    def fp64_bytes(self) -> int:
        """A float64 copy: its floating-point tensors at 8 bytes an element, the rest as is."""
        return self.model_bytes - self.float_bytes + FLOAT64_BYTES * self.float_count

    @property
    def fp64_gradient_bytes(self) -> int:
        return FLOAT64_BYTES * self.trainable_float_count


@dataclass
class MemoryItem:
    what: str  # one of the item names above
    bytes: int


@dataclass
class ProbeMemory:
    """One probe's part of the plan: what it holds on top of what is already resident."""

    probe: str
    items: list[MemoryItem] = field(default_factory=list)
    needed_bytes: int = 0  # the items' sum
    resident_bytes: int = 0  # what earlier probes keep alive while it runs
    runs: bool = True
    skipped: str | None = None  # SKIPPED_MEMORY or SKIPPED_NO_BENCHMARK

    @property
    def peak_bytes(self) -> int:
        """What is held at once while it runs: the earlier probes' and its own."""
        return self.resident_bytes + self.needed_bytes


@dataclass
class MemoryPlan:
    device: str
    available_bytes: int | None  # free for the probes once the target is built; None: unknown
    source: str  # one of SOURCE_LABELS
    reserve_fraction: float
    usable_bytes: int | None  # available less the reserve: what the probes' items may take
    footprint: ModelFootprint
    dtype: str  # the dtype the target runs in (--dtype)
    training: bool  # the target has a training entry point
    # the most any selected probe holds at once, had every one run (resident and its own)
    required_bytes: int = 0
    probes: list[ProbeMemory] = field(default_factory=list)

    @property
    def planned(self) -> bool:
        return self.available_bytes is not None

    def entry(self, probe: str) -> ProbeMemory | None:
        return next((e for e in self.probes if e.probe == probe), None)

    def runs(self, probe: str) -> bool:
        entry = self.entry(probe)
        return entry is None or entry.runs


def usable_bytes(available_bytes: int, reserve_fraction: float = ACTIVATION_RESERVE) -> int:
    """What the probes' items may take of `available_bytes`: the rest is the reserve."""
    return int(available_bytes * (1.0 - reserve_fraction))


def free_bytes_needed(peak_bytes: int, reserve_fraction: float = ACTIVATION_RESERVE) -> int:
    """The free memory that holds `peak_bytes` and still leaves the reserve: `usable_bytes`'s
    inverse, for the machine that would run a skipped probe."""
    return math.ceil(peak_bytes / (1.0 - reserve_fraction))
