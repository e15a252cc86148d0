"""The speed record: where a call's time goes, eager against compiled, and what each lever gave.

Two probe sections and one conclusion live in `diagnosis.json`:

    probes["speed"] = {"<entry point>": EntrySpeed}
        # attribution: [{category, eager_ms, compiled_ms}] per call, from the kernel probe's
        #   profiled runs; ceiling: {speedup, reason, ...}; break_costs: [BreakCost]
    probes["what_ifs"] = [WhatIfResult]
        # {name, entry_point, status, reason, settings, paste, compile_s, median_ms,
        #  speedup_vs_eager, speedup_low, speedup_high, speedup_vs_default,
        #  fp64_criterion_passed, ...}
    recommendation = {"<entry point>": {what_if, speedup, speedup_low, speedup_high, paste,
                                        speedup_vs_default, reason}
                                       | {what_if: None, reason}}   (the analyzer's)

The attribution splits one call's time into `CATEGORIES`. On a CPU the split is of the host
timeline (the call is the host's work); on CUDA it is of the device timeline, where the GPU
either runs a kernel or waits (`DEVICE_IDLE`), and the host-side causes of the wait (work outside
compiled code, guards, launches) are in the break costs and the kernel record. The categories of
one side add up to its span per call; a category a side cannot have is None (eager has no work
outside compiled code; a CPU has no device idle).

The ceiling is Amdahl's law over the library kernels: if everything but them took no time, the
compiled call would still take their time, so no setting that keeps them as they are can make it
faster than `eager_ms / library_ms`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from probes.records.location import SourceLocation

# --- the time categories ----------------------------------------------------------------------

# GEMM, convolution, attention and the other calls into vendor libraries (cuBLAS, cuDNN,
# oneDNN/mkldnn, flash or memory-efficient SDPA): compiling calls them as they are.
LIBRARY_KERNELS = "library_kernels"
# Compiled: Inductor's own kernels (Triton, C++) and the code around them inside compiled
# regions. Eager: the pointwise, normalisation, reduction and copy ops they replace.
GENERATED_KERNELS = "generated_kernels"
# Compiled only: eager work inside a compiled call: between graph breaks, the optimizer step,
# clipping, bookkeeping.
OUTSIDE_COMPILED = "outside_compiled"
# Guard evaluation and cache lookup, launch API time, Python between ops.
FRAMEWORK_OVERHEAD = "framework_overhead"
# CUDA only: the GPU waiting on the host.
DEVICE_IDLE = "device_idle"
CATEGORIES = (
    LIBRARY_KERNELS,
    GENERATED_KERNELS,
    OUTSIDE_COMPILED,
    FRAMEWORK_OVERHEAD,
    DEVICE_IDLE,
)
CATEGORY_LABELS = {
    LIBRARY_KERNELS: "library kernels",
    GENERATED_KERNELS: "generated kernels",
    OUTSIDE_COMPILED: "outside compiled code",
    FRAMEWORK_OVERHEAD: "framework overhead",
    DEVICE_IDLE: "device idle",
}

# `EntrySpeed.basis`: which timeline the categories split.
HOST_TIMELINE = "host"
DEVICE_TIMELINE = "device"

# Host ops (CPU) that call a vendor library, matched on the op's name without its namespace:
# exact names, then substrings. `aten::mm`, `aten::addmm`, `aten::mkldnn_convolution`,
# `aten::convolution_backward`, `mkldnn::_linear_pointwise` (a frozen linear),
# `aten::_scaled_dot_product_flash_attention_for_cpu`, ...
LIBRARY_OP_NAMES = frozenset(
    {"mm", "addmm", "bmm", "baddbmm", "addbmm", "_addmm_activation", "matmul", "linear", "addmv"}
)
LIBRARY_OP_MARKERS = (
    "convolution",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_",  # conv_transpose2d, conv_depthwise2d (not convert_element_type)
    "mkldnn",
    "onednn",
    "cudnn",
    "miopen",
    "scaled_dot_product",
    "flash_attention",
    "efficient_attention",
    "_rnn",
    "lstm",
    "gru_cell",
    # LAPACK's (not linalg_vector_norm, a reduction Inductor generates)
    "cholesky",
    "linalg_solve",
    "linalg_inv",
    "linalg_svd",
    "linalg_qr",
    "linalg_eig",
    "lstsq",
    "lu_factor",
)
# Device kernels (CUDA) from a vendor library besides the cuBLAS and cuDNN families of
# `probes.records.kernels`: flash and memory-efficient attention.
LIBRARY_KERNEL_MARKERS = ("flash", "fmha", "efficient_attention", "mem_eff")

# The library kernels' share of the compiled call at or above which `--what-if auto` tries
# freezing (weights as constants: oneDNN pre-packs them, and convolutions fold batch norm).
FREEZING_LIBRARY_SHARE = 0.25
# The compiled call's library time over eager's (the same calls) at or above which
# `--what-if auto` tries Inductor's layout optimization off: it hands convolutions channels-last
# inputs, which oneDNN ran 1.6-2x slower than eager's layout on a 2-core CPU (ACT inference:
# 21.5-33.4 ms against 13.4-15.8 ms for the same 21 convolutions), plus the conversions.
LIBRARY_SLOWDOWN = 1.1
# Work outside compiled code (graph-break gaps apart) at or above this share of a compiled
# training step makes `--what-if auto` try the fused optimizer.
OUTSIDE_COMPILED_SHARE = 0.2


@dataclass
class TimeShare:
    category: str  # one of CATEGORIES
    eager_ms: float | None  # per call; None: the side cannot have this category
    compiled_ms: float | None


@dataclass
class OpTime:
    """One library op (CPU) or kernel (CUDA), per call on each side."""

    name: str
    eager_ms: float
    compiled_ms: float


@dataclass
class BreakCost:
    """Eager work between two compiled regions of a call: the code at one graph break."""

    compile_id: str  # the frame that resumes after the break ("1/0")
    function: str  # its code name: "torch_dynamo_resume_in_forward_at_150"
    location: SourceLocation | None  # the break's line, read from the resume function's name
    ms_per_call: float
    gaps_per_call: float


@dataclass
class Ceiling:
    """The fastest the compiled call could be while its library kernels stay as they are."""

    speedup: float | None  # eager_ms / library_ms; None when no library time was measured
    eager_ms: float
    library_ms: float | None  # the smaller of the two sides' library time per call
    library_share: float | None  # the compiled call's library time over its span
    reason: str  # the figures, in words


@dataclass
class EntrySpeed:
    entry_point: str
    basis: str  # HOST_TIMELINE or DEVICE_TIMELINE
    eager_ms: float  # span per call under the profiler
    compiled_ms: float
    attribution: list[TimeShare]  # one per category, in CATEGORIES order
    library_ops: list[OpTime]  # the largest, by compiled time
    break_costs: list[BreakCost]
    outside_compiled_rest_ms: float | None  # outside compiled code, breaks apart
    ceiling: Ceiling
    traces: list[str] = field(default_factory=list)  # eager, compiled


# --- the what-ifs for speed ----------------------------------------------------------------------

FREEZING = "freezing"
NO_LAYOUT_OPTIMIZATION = "no-layout-optimization"
NO_GRAPH_BREAKS = "no-graph-breaks"
COMPILED_OPTIMIZER = "compiled-optimizer"
REDUCE_OVERHEAD = "reduce-overhead"
MAX_AUTOTUNE = "max-autotune-no-cudagraphs"
WHAT_IFS = (
    FREEZING,
    NO_LAYOUT_OPTIMIZATION,
    NO_GRAPH_BREAKS,
    COMPILED_OPTIMIZER,
    REDUCE_OVERHEAD,
    MAX_AUTOTUNE,
)
# `--what-if`: the ones the attribution points to, none, all, or names.
WHAT_IF_AUTO = "auto"
WHAT_IF_NONE = "none"
WHAT_IF_ALL = "all"

WHAT_IF_NAMES = "names"  # the mode of a request that lists what-ifs by name


def requested_what_ifs(
    requested: str | Sequence[str], choices: Sequence[str] = WHAT_IFS, what: str = "what-if"
) -> tuple[str, tuple[str, ...]]:
    """`auto`, `none`, `all`, or names of `choices`: the mode and the names asked for (checked).

    The compile-time levers are asked for the same way (`probes.records.compile_time.LEVERS`).
    """
    words = [requested] if isinstance(requested, str) else list(requested)
    words = [w.strip() for word in words for w in word.split(",") if w.strip()]
    if words in ([WHAT_IF_AUTO], [WHAT_IF_NONE], [WHAT_IF_ALL]):
        return words[0], ()
    unknown = [w for w in words if w not in choices]
    if unknown or not words:
        listed = ", ".join((WHAT_IF_AUTO, WHAT_IF_NONE, WHAT_IF_ALL, *choices))
        raise ValueError(f"unknown {what} {', '.join(unknown) or '(none)'}; choose from {listed}")
    return WHAT_IF_NAMES, tuple(dict.fromkeys(words))


def clearly_faster_than_default(speedup_vs_default_low: float | None) -> bool:
    """A what-if's time beats the default compile's even at the pessimistic end of the spreads:
    what the probe checks first (a check that costs a compile) and the rules recommend from."""
    return speedup_vs_default_low is not None and speedup_vs_default_low > 1.0


# `WhatIfResult.status`.
WHAT_IF_MEASURED = "measured"
WHAT_IF_NOT_RUN = "not-run"
WHAT_IF_FAILED = "failed"


@dataclass
class WhatIfResult:
    name: str  # one of WHAT_IFS
    entry_point: str
    status: str  # WHAT_IF_MEASURED, WHAT_IF_NOT_RUN or WHAT_IF_FAILED
    reason: str  # the figures that made it run or not, or the error it failed with
    settings: dict[str, Any] = field(default_factory=dict)  # what was changed, as applied
    paste: str = ""  # the lines a user pastes to make the same change
    compile_s: float | None = None  # its first call: the compile
    seconds: float = 0.0  # all it took: compiles, timing, the fp64 check
    median_ms: float | None = None
    eager_median_ms: float | None = None  # timed with it, interleaved
    default_median_ms: float | None = None
    speedup_vs_eager: float | None = None
    speedup_low: float | None = None  # over eager, the pessimistic end of the spreads
    speedup_high: float | None = None
    speedup_vs_default: float | None = None
    speedup_vs_default_low: float | None = None
    speedup_vs_default_high: float | None = None
    fp64_criterion_passed: bool | None = None  # None: not checked
    fp64_detail: str = ""  # which output failed, its error ratio against eager's
    timings: dict[str, Any] = field(default_factory=dict)  # side -> Measurement.summary()
    cudagraph_skips: int | None = None  # reduce-overhead only
    cudagraph_skip_reasons: list[str] = field(default_factory=list)
