"""The compile-time record: where the seconds of a compile go, and what each lever gave.

    probes["compile_time"] = CompileTimeReport
        entry_points: {"<entry point>": EntryCompileTime}
            # first_call_s, compile_s, share_of_first_call, stages {stage: s}, cache {...},
            # frames: [FrameCompileTime] (compile_id as tlparse names it, part, seconds, stages)
        recompiles: {"<entry point>": [{scenario, compiles, compile_s, backend}]}
        artifacts: {file, bytes} | None  # torch.compiler.save_cache_artifacts(), beside it
        compile_threads, cpu_count
        levers: [CompileLever]  # each one more compile, timed as the first one was

A compile's time is split into `STAGES` from the start and end of torch's own compile timers
(the `dynamo_timed` events, which tlparse shows as its chromium trace). Each timer's time is
charged to its stage *minus* the timers nested in it, so the stages of one compile add up to its
root timer (`entire_frame_compile` for a frame, `entire_backward_compile` for a training
backward that AOTAutograd compiles at the first backward). Work no timer names (Inductor's
once-per-process check of the CPU's vector instructions, for one) falls in the stage of the
timer around it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from probes.records.compile import RecompileReport

# --- the stages of one compile, in the order a compile passes them -----------------------------

DYNAMO = "dynamo"  # tracing the Python bytecode, building guards
AOT_AUTOGRAD = "aot_autograd"  # functionalising, tracing the joint graph, partitioning; backend
GRAPH_PASSES = "graph_passes"  # Inductor's pre-grad, joint-graph and post-grad FX passes
LOWERING = "lowering"  # Inductor's lowering to its IR and its scheduling (fusion)
CODE_GENERATION = "code_generation"  # writing the kernels' and the wrapper's source, loading it
KERNEL_COMPILE = "kernel_compile"  # the C++ compiler or Triton on the generated kernels
AUTOTUNE = "autotune"  # benchmarking kernel choices (max-autotune, template precompiles)
CACHE = "cache"  # cache keys, and loading compiled code from the FX graph / AOTAutograd caches
# Inductor's check of which vector instructions the CPU runs (a test build and one Python
# process per instruction set), paid by the first CPU compile of each process; measured apart.
CPU_ISA_CHECK = "cpu_isa_check"
STAGES = (
    CPU_ISA_CHECK,
    DYNAMO,
    AOT_AUTOGRAD,
    GRAPH_PASSES,
    LOWERING,
    CODE_GENERATION,
    KERNEL_COMPILE,
    AUTOTUNE,
    CACHE,
)
STAGE_LABELS = {
    CPU_ISA_CHECK: "CPU instruction-set check",
    DYNAMO: "dynamo tracing",
    AOT_AUTOGRAD: "AOTAutograd",
    GRAPH_PASSES: "graph passes",
    LOWERING: "Inductor lowering",
    CODE_GENERATION: "code generation",
    KERNEL_COMPILE: "kernel compile",
    AUTOTUNE: "autotuning",
    CACHE: "cache lookups and loads",
}

# The root timers of one compile (`FrameCompileTime.part`): a frame dynamo compiled, and the
# backward graph AOTAutograd compiles lazily at the first backward of a training call.
FORWARD = "forward"
BACKWARD = "backward"

# How far the stages may sum from torch's own figure for the frame (CompilationMetrics'
# `entire_frame_compile_time_s`): both time the same span, from two clocks a few calls apart.
STAGE_SUM_TOLERANCE = 0.02

# --- the levers -------------------------------------------------------------------------------

# The same compile in a fresh process, with the cache the first one wrote.
WARM_CACHE = "warm-cache"
# The same, on an empty cache filled only from `torch.compiler.save_cache_artifacts()`: what
# another machine gets from the artifacts file.
PORTABLE_CACHE = "portable-cache"
# Compile the repeated block once (each instance calls the same compiled code), the rest eager.
REGIONAL = "regional-compilation"
# One compile with `dynamic=True` for every batch size, against a compile per size.
DYNAMIC_SHAPES = "dynamic-shapes"
LEVERS = (WARM_CACHE, PORTABLE_CACHE, REGIONAL, DYNAMIC_SHAPES)

LEVER_MEASURED = "measured"
LEVER_FAILED = "failed"
LEVER_NOT_RUN = "not-run"  # the plan left it out: `reason` says why

# The artifacts file the diagnosis writes beside diagnosis.json for another machine to load.
CACHE_ARTIFACTS_FILE = "compile_cache_artifacts.bin"

# A model block counts as repeated when at least this many instances share its structure.
MIN_REPEATS = 2


@dataclass
class RepeatedBlock:
    """A block the model holds several instances of, alike in structure: what regional
    compilation compiles once and reuses for every instance."""

    class_name: str  # the block's class, qualified: "lerobot....ACTEncoderLayer"
    paths: list[str]  # each instance's submodule path, e.g. "model.encoder.layers.0"
    parameters: int  # of ONE instance
    share_of_parameters: float  # all instances' parameters / the model's

    @property
    def instances(self) -> int:
        return len(self.paths)

    @property
    def total_parameters(self) -> int:
        return self.parameters * len(self.paths)


@dataclass
class CacheLookups:
    """Cache hits and misses of the compiled-code caches during one compile (or a sum of them)."""

    fx_graph_hits: int = 0
    fx_graph_misses: int = 0
    aot_autograd_hits: int = 0
    aot_autograd_misses: int = 0
    remote_hits: int = 0  # remote FX graph and AOTAutograd caches, where configured
    remote_misses: int = 0

    def add(self, other: CacheLookups) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def hits(self) -> int:
        return self.fx_graph_hits + self.aot_autograd_hits + self.remote_hits

    @property
    def misses(self) -> int:
        return self.fx_graph_misses + self.aot_autograd_misses + self.remote_misses


@dataclass
class FrameCompileTime:
    """One compile: a frame's forward, or its backward compiled at the first backward."""

    compile_id: str  # "0/0": tlparse shows this frame's detail under [0/0]
    part: str  # FORWARD or BACKWARD
    seconds: float  # the root timer
    stages: dict[str, float] = field(default_factory=dict)
    function: str | None = None
    filename: str | None = None
    first_line: int | None = None
    torch_seconds: float | None = None  # torch's own figure for the same compile
    cache: CacheLookups = field(default_factory=CacheLookups)
    recompile_reason: str | None = None


@dataclass
class EntryCompileTime:
    """What compiling cost one entry point: its first call, by frame and by stage."""

    entry_point: str
    first_call_s: float  # the first compiled call, compile included
    frames: list[FrameCompileTime] = field(default_factory=list)
    cpu_isa_check_s: float = 0.0  # paid by this call, before its first compile

    @property
    def compile_s(self) -> float:
        return self.cpu_isa_check_s + sum(f.seconds for f in self.frames)

    @property
    def share_of_first_call(self) -> float | None:
        return self.compile_s / self.first_call_s if self.first_call_s > 0 else None

    @property
    def stages(self) -> dict[str, float]:
        totals = dict.fromkeys(STAGES, 0.0)
        totals[CPU_ISA_CHECK] = self.cpu_isa_check_s
        for frame in self.frames:
            for stage, seconds in frame.stages.items():
                totals[stage] = totals.get(stage, 0.0) + seconds
        return totals

    @property
    def cache(self) -> CacheLookups:
        total = CacheLookups()
        for frame in self.frames:
            total.add(frame.cache)
        return total

    def summary(self) -> dict[str, Any]:
        share = self.share_of_first_call
        return {
            "entry_point": self.entry_point,
            "first_call_s": round(self.first_call_s, 4),
            "compile_s": round(self.compile_s, 4),
            "share_of_first_call": None if share is None else round(share, 4),
            "cpu_isa_check_s": round(self.cpu_isa_check_s, 4),
            "stages": {k: round(v, 4) for k, v in self.stages.items()},
            "cache": self.cache,
            "frames": self.frames,
        }


@dataclass
class CompileLever:
    """One lever on compile time, tried: one more compile, timed as the benchmark's first one.

    `compile_s` against `baseline_compile_s` (the benchmark's compile of the same entry point),
    both less Inductor's once-per-process CPU check (`CPU_ISA_CHECK`), which any new process
    pays whatever the lever, and which `detail["cpu_isa_check_s"]` records where it was paid;
    `median_ms` against `baseline_median_ms` (the default compile's warm call) and `eager_ms`,
    so that a lever that starts faster but runs slower says so.
    """

    name: str
    entry_point: str
    status: str = LEVER_NOT_RUN
    reason: str = ""
    compile_s: float | None = None
    first_call_s: float | None = None
    baseline_compile_s: float | None = None
    median_ms: float | None = None
    baseline_median_ms: float | None = None
    eager_ms: float | None = None
    cache: CacheLookups | None = None
    stages: dict[str, float] | None = None
    detail: dict[str, Any] = field(default_factory=dict)  # what the lever did, in figures
    paste: str = ""  # the code a user writes to apply it


@dataclass
class ScenarioCompileCost:
    """What one recompile scenario's compiles cost (from the recompile probe's run)."""

    scenario: str
    compiles: int  # recompiles and first compiles of new frames
    compile_s: float
    backend: str  # the backend the scenarios compiled with (`eager`: dynamo's cost only)


def compile_time_section(
    entry_points: dict[str, EntryCompileTime],
    *,
    recompiles: dict[str, list[ScenarioCompileCost]] | None = None,
    levers: list[CompileLever] | None = None,
    compile_threads: int | None = None,
    cpu_count: int | None = None,
    artifacts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The recorded form of `probes["compile_time"]` (the schema above)."""
    return {
        "entry_points": {name: record.summary() for name, record in entry_points.items()},
        "recompiles": recompiles or {},
        "levers": levers or [],
        "compile_threads": compile_threads,
        "cpu_count": cpu_count,
        "artifacts": artifacts,
    }


def scenario_compile_costs(report: RecompileReport, backend: str) -> list[ScenarioCompileCost]:
    """Each recompile scenario's compiles and their seconds, from the recompile probe's report."""
    return [
        ScenarioCompileCost(s.name, len(s.recompiles) + s.new_frames, s.compile_s, backend)
        for s in report.scenarios
    ]
