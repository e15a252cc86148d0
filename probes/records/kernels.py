"""The kernel-timing record: what the profiling probe and the trace reader write, and its words.

Two results live here. `TraceSummary` is one Kineto trace reduced to totals over its analysed
window (`compile-diagnose trace FILE --json`). `KernelTimingReport` is the probe's eager/compiled
comparison per entry point, each side a `CallProfile` of per-call figures read from a trace of
its own (`diagnosis.json`, under `probes["kernels"]`); the what-ifs are `probes/records/speed.py`'s.
Field names are the JSON keys. Device figures are None, not zero, when a run recorded no
device activity (a CPU run), so that "not measured" never reads as "nothing happened".

The measuring and parsing code is in `probes/kernels/`; the rules and renderers read the JSON
form of these results and take their thresholds and vocabulary from here.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- thresholds ------------------------------------------------------------------------------

# The fraction of a call's span with device work running below which the GPU waits on the host
# most of the call. The launch-bound rule reports calls below it; `--what-if auto` tries
# reduce-overhead only for them, since CUDA graphs remove launch cost and nothing else.
LAUNCH_BOUND_BUSY = 0.5

# Where a diagnosis folder keeps the profiler traces, one TensorBoard run per side:
# `<out>/tensorboard/eager/`, `<out>/tensorboard/compiled/` (beside the compile trace's
# `TRACE_SUBDIR` and `REPORT_SUBDIR`).
TENSORBOARD_SUBDIR = "tensorboard"
# One merged trace per entry point, for Perfetto: `<out>/traces/<entry point>.perfetto.json`,
# the eager and the compiled profiled calls as two processes ("eager" above "compiled"), each
# shifted so that its first profiled step starts at t=0.
PERFETTO_SUBDIR = "traces"
PERFETTO_SUFFIX = ".perfetto.json"
# Where a user opens it: the UI loads the file in the browser and sends it nowhere.
PERFETTO_UI = "https://ui.perfetto.dev"

# --- profiler vocabulary (Kineto event categories and names the record is built on) ----------

# Device work: the only categories counted as device time. Annotations that span many kernels
# (`gpu_user_annotation`) are never added, or time would be counted twice.
KERNEL = "kernel"
MEMCPY = "gpu_memcpy"
MEMSET = "gpu_memset"
DEVICE_CATEGORIES = frozenset({KERNEL, MEMCPY, MEMSET})
# torch.compile wraps each compiled forward in a host event named "Torch-Compiled Region: F/C".
COMPILED_REGION_PREFIX = "Torch-Compiled Region"
# One ProfilerStep per profiled call: "ProfilerStep#N".
STEP_PREFIX = "ProfilerStep#"

# `TraceSummary.window_source`: how the analysed window was chosen.
WINDOW_FROM_STEPS = "ProfilerStep"  # the recorded ProfilerSteps
WINDOW_FROM_EVENTS = "events"  # first to last event, for a trace without steps

# Kernel families (`family` of a kernel), by the library that produced the kernel.
TRITON = "triton"
CUBLAS = "cublas"
CUDNN = "cudnn"
OTHER = "other"
KERNEL_FAMILIES = (TRITON, CUBLAS, CUDNN, OTHER)


# --- one trace -------------------------------------------------------------------------------


@dataclass
class KernelStat:
    name: str
    family: str  # one of KERNEL_FAMILIES
    count: int
    total_ms: float
    share: float  # of the window's kernel time


@dataclass
class KernelFamilyShare:
    family: str
    count: int
    total_ms: float
    share: float  # of the window's kernel time


@dataclass
class OpStat:
    name: str
    count: int
    self_ms: float  # time in the op itself, not in ops it called
    share: float  # of the window's host-op self time


@dataclass
class TraceSummary:
    """Totals over the analysed window of one trace (all profiled calls together)."""

    source: str
    device_names: list[str]
    has_device_activity: bool
    window_source: str  # WINDOW_FROM_STEPS or WINDOW_FROM_EVENTS
    span_ms: float
    step_count: int
    step_ms: list[float]  # duration of each ProfilerStep, host side
    # Device side: None when the trace holds no device activity.
    kernel_count: int | None
    memcpy_count: int | None
    memset_count: int | None
    kernel_time_ms: float | None
    device_time_ms: float | None  # kernel + memcpy + memset
    gpu_busy_ms: float | None  # union of device intervals
    gpu_busy_fraction: float | None  # gpu_busy_ms / span_ms
    gpu_idle_ms: float | None
    launch_api_ms: float | None  # host time inside launch calls
    launch_counts: dict[str, int] | None  # per launch API
    kernel_launch_count: int | None
    cudagraph_replay_count: int | None
    top_kernels: list[KernelStat] | None
    kernel_families: list[KernelFamilyShare] | None
    # Compiled code: None when the trace shows no compiled region.
    compiled_region_names: list[str]
    compiled_region_count: int
    compiled_backward_count: int
    compiled_region_ms: float | None
    outside_compiled_region_ms: float | None
    # Host ops: always present, the whole story of a CPU-only trace.
    cpu_op_count: int
    cpu_op_self_ms: float
    top_ops: list[OpStat]


# --- the probe's eager/compiled comparison ---------------------------------------------------


@dataclass
class KernelPerCall:
    name: str
    family: str
    count_per_call: float
    ms_per_call: float
    share: float  # of kernel time


@dataclass
class KernelFamilyPerCall:
    family: str
    count_per_call: float
    ms_per_call: float
    share: float  # of kernel time


@dataclass
class OpPerCall:
    name: str
    count_per_call: float
    self_ms_per_call: float
    share: float  # of host-op self time


@dataclass
class CallProfile:
    """One side of one entry point, per call, from its own profiled run (under the profiler)."""

    side: str  # EAGER or COMPILED
    trace_path: str
    calls: int  # ProfilerSteps found in the trace
    wall_ms: float  # median ProfilerStep duration, host side, under the profiler
    wall_ms_samples: list[float]
    span_ms_per_call: float  # analysed window / calls, includes a device tail
    has_device_activity: bool
    # Device side: None when the run recorded no device activity (CPU).
    kernels_per_call: float | None
    memcpy_per_call: float | None
    memset_per_call: float | None
    kernel_ms_per_call: float | None
    device_ms_per_call: float | None
    gpu_busy_fraction: float | None
    gpu_idle_ms_per_call: float | None
    launch_api_ms_per_call: float | None
    kernel_launches_per_call: float | None
    cudagraph_replays_per_call: float | None
    top_kernels: list[KernelPerCall] | None
    kernel_families: list[KernelFamilyPerCall] | None
    # Compiled code: None when the call ran no compiled region.
    compiled_region_names: list[str]
    compiled_regions_per_call: float
    compiled_region_ms_per_call: float | None
    outside_compiled_region_ms_per_call: float | None
    host_op_self_ms_per_call: float
    top_ops: list[OpPerCall]


@dataclass
class EntryPointKernels:
    name: str
    eager: CallProfile
    compiled: CallProfile
    # `<out>/PERFETTO_SUBDIR/<entry point>PERFETTO_SUFFIX`; None in a record written before it.
    perfetto_trace: str | None = None


@dataclass
class KernelTimingReport:
    device: str
    torch_version: str
    warmup_calls: int
    profiled_calls: int
    busy_threshold: float  # the LAUNCH_BOUND_BUSY in force (the launch-bound line)
    tensorboard_logdir: str
    tensorboard_command: str
    entry_points: list[EntryPointKernels]
