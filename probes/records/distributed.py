"""The record of a diagnosis on several processes: what each rank measured, and the merge.

Each rank of a `torchrun` launch writes its own `RankRecord` to `<out>/ranks/rank<N>.json`
(`rank_file`) as soon as each phase ends, so a rank killed later keeps what it measured. The
launcher merges them into the `distributed` section of one `diagnosis.json`
(`DistributedSection`). Rules compare the ranks from these figures; nothing here decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes.records.location import SourceLocation
from probes.records.names import LOW_PRECISION_DTYPES

DISTRIBUTED = "distributed"  # the section's key under "probes"

# Files of a distributed diagnosis, under its out folder.
RANKS_DIR = "ranks"
REQUEST_FILE = "request.pkl"  # what every rank measures (pickled `DistributedRequest`)
LAUNCHER_LOG = "torchrun.log"  # torchrun's own output: which rank failed first, its exit code
MERGED_TRACE = "ranks_trace.json"  # every rank's profile, one process per rank, for Perfetto
RANK_TRACES_DIR = "torch_trace_ranks"  # the ranks' compile traces, named for tlparse
RANKS_REPORT_DIR = "tlparse_ranks"  # tlparse --all-ranks-html


def is_frame(compiled: Mapping[str, Any]) -> bool:
    """Whether a recorded `RankCompile` is a frame dynamo compiled, not the backward graph
    AOTAutograd compiled for one (torch's compile metrics give that no code object's name)."""
    return compiled.get("function") not in (None, "None")


def rank_file(out_dir: Path, rank: int) -> Path:
    return Path(out_dir) / RANKS_DIR / f"rank{rank}.json"


def rank_trace_dir(out_dir: Path, rank: int) -> Path:
    """Where one rank's compile trace and profile go."""
    return Path(out_dir) / RANKS_DIR / f"rank{rank}"


# The environment torchrun and `accelerate launch` give each process.
RANK_VARIABLE = "RANK"
WORLD_SIZE_VARIABLE = "WORLD_SIZE"
LOCAL_RANK_VARIABLE = "LOCAL_RANK"
RUN_ID_VARIABLE = "TORCHELASTIC_RUN_ID"  # torchrun's rendezvous id: a uuid when --standalone
UNSET_RUN_ID = "none"  # torchrun's default --rdzv-id, shared by every launch
ACCELERATE_VARIABLE = "ACCELERATE_MIXED_PRECISION"  # set by `accelerate launch` only

# How the ranks were started.
LAUNCHED_BY_TOOL = "compile-diagnose --nproc (torchrun)"
LAUNCHED_BY_TORCHRUN = "torchrun"
LAUNCHED_BY_ACCELERATE = "accelerate launch"

# A rank's phases, in order; its record is written after each.
SETUP = "setup"  # process group, target, DDP wrapper
COMPILE = "compile"  # the first training step, which compiles
STEPS = "steps"  # warm steps, timed
PROFILE = "profile"  # profiled steps: communication against compute
# Tried last, when every rank's compiled wrapper broke the graph in DDP's or Accelerate's code:
# the model compiled before DDP wraps it, its first step and warm steps timed (the lever CD806
# names, measured).
INSIDE_DDP_TRIAL = "inside-ddp trial"
PHASES = (SETUP, COMPILE, STEPS, PROFILE, INSIDE_DDP_TRIAL)

# A rank's status.
RUNNING = "running"  # what a rank's file says until it finishes: it never did, if it stays
COMPLETE = "complete"
FAILED = "failed"  # raised an error it recorded
DIED = "died"  # ended without recording why (killed by a signal, crashed)
STOPPED = "stopped"  # stopped by the launcher after another rank failed
HUNG = "hung"  # still running when the launch timed out
MISSING = "missing"  # never wrote a file
RANK_STATUSES = (RUNNING, COMPLETE, FAILED, DIED, STOPPED, HUNG, MISSING)

# Where a graph break happened: in DDP's own code, in Accelerate's, or in the user's model.
BREAK_IN_DDP = "ddp"
BREAK_IN_ACCELERATE = "accelerate"
BREAK_IN_USER = "user"
BREAK_ORIGINS = (BREAK_IN_DDP, BREAK_IN_ACCELERATE, BREAK_IN_USER)
FRAMEWORK_ORIGINS = (BREAK_IN_DDP, BREAK_IN_ACCELERATE)  # breaks not in the model's code
ORIGIN_LABELS = {
    BREAK_IN_DDP: "inside DDP",
    BREAK_IN_ACCELERATE: "inside Accelerate",
    BREAK_IN_USER: "in the model",
}

# The process-group backends, by device.
GLOO = "gloo"
NCCL = "nccl"

# torch's DDPOptimizer assertion when `bucket_cap_mb` is below DDP's first bucket (1 MiB).
FIRST_BUCKET_ASSERTION = "First bucket should be smaller/equal to other buckets"
AUTOCAST_DTYPES = LOW_PRECISION_DTYPES
DEFAULT_FIND_UNUSED_PARAMETERS = True  # LeRobot's trainer passes it to Accelerate's DDP
# Where each rank compiles (`--ddp-compile`): around DDP, `torch.compile(DDP(model))`, which
# traces DDP's forward; or inside it, the model compiled as `--compile-how` says, then
# `DDP(model)`, whose forward stays eager.
COMPILE_AROUND_DDP = "wrapper"
COMPILE_INSIDE_DDP = "model"
DDP_COMPILES = (COMPILE_AROUND_DDP, COMPILE_INSIDE_DDP)
WRAPPER_COMPILED = "torch.compile(DDP(model))"
MODEL_COMPILED = "{how}, then DDP(model)"  # the model compiled as --compile-how says
DEFAULT_TIMEOUT_S = 900.0  # the whole launch; a rank still running then is hung
DEFAULT_STEPS = 3  # warm training steps timed per rank
DEFAULT_PROFILED_STEPS = 2

# Thresholds the rules read.
STRAGGLER_RATIO = 1.5  # a rank's compile this many times the fastest rank's ...
STRAGGLER_MIN_S = 2.0  # ... and at least this many seconds slower
EXPOSED_COMM_FRACTION = 0.2  # communication not hidden behind compute, per step


@dataclass(frozen=True)
class DdpSettings:
    """How each rank wraps and trains the model, as LeRobot's trainer does through Accelerate."""

    find_unused_parameters: bool = DEFAULT_FIND_UNUSED_PARAMETERS
    bucket_cap_mb: float | None = None  # None: DDP's default (25 MB)
    autocast: str | None = None  # "bfloat16" / "float16": the step under torch.autocast
    steps: int = DEFAULT_STEPS
    compile_where: str = COMPILE_AROUND_DDP  # COMPILE_AROUND_DDP or COMPILE_INSIDE_DDP
    inside_ddp_trial: bool = True  # try INSIDE_DDP_TRIAL when DDP's code broke the graph
    profiled_steps: int = DEFAULT_PROFILED_STEPS


@dataclass
class RankBreak:
    """One distinct graph break a rank's training step met, with where it happened."""

    origin: str  # BREAK_IN_DDP, BREAK_IN_ACCELERATE or BREAK_IN_USER
    reason: str  # dynamo's reason, first line
    location: SourceLocation | None  # the innermost frame that decides the origin
    gb_id: str | None = None  # torch's graph-break id ("GB0156")
    hits: int = 1


@dataclass
class DdpSplit:
    """A graph DDPOptimizer split at gradient-bucket boundaries (a split, not a graph break)."""

    bucket_cap_bytes: int
    first_bucket_cap_bytes: int
    bucket_bytes: list[int]  # parameter bytes per bucket, in graph order

    @property
    def bucket_count(self) -> int:
        return len(self.bucket_bytes)


@dataclass
class RankCompile:
    """One frame a rank compiled, in the phase that compiled it."""

    phase: str
    compile_id: str
    function: str
    filename: str
    first_line: int | None
    seconds: float
    graph_ops: int | None = None
    recompile_reason: str | None = None  # the guard that failed, for a recompile
    fail_type: str | None = None


@dataclass
class CommTime:
    """Communication against compute over a rank's profiled steps, from its profile.

    `comm_ms`: the union of the collectives' events (gloo/NCCL); `compute_ms`: the union of
    everything else that ran (host ops on a CPU, kernels on a GPU); `exposed_comm_ms`: the
    communication during which nothing computed.
    """

    window_ms: float
    steps: int
    comm_ms: float
    compute_ms: float
    overlapped_ms: float
    exposed_comm_ms: float
    collectives: int
    device_type: str


@dataclass
class InsideDdpTrial:
    """The same training step with the model compiled before DDP wraps it, on this rank."""

    how: str  # MODEL_COMPILED, formatted
    first_step_s: float | None = None
    step_ms: list[float] = field(default_factory=list)  # warm steps, as many as the main run's
    breaks: list[RankBreak] = field(default_factory=list)
    frames: int = 0  # frames dynamo compiled (not the backward graphs compiled for them)
    error: str | None = None  # one line, where the trial failed on this rank


@dataclass
class RankRecord:
    rank: int
    world_size: int
    local_rank: int
    pid: int
    host: str
    process_group: str  # GLOO or NCCL
    device: str
    settings: DdpSettings
    status: str = RUNNING
    phase: str = SETUP  # the phase running, or the last one when finished
    phases_done: list[str] = field(default_factory=list)
    target: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    compile_settings: dict[str, Any] = field(default_factory=dict)
    bucket_cap_bytes: int | None = None  # DDP's, as it wrapped the model
    first_bucket_cap_bytes: int | None = None  # DDP's first bucket (DDPOptimizer's too)
    optimize_ddp: str | None = None  # torch._dynamo.config.optimize_ddp, as set
    breaks: list[RankBreak] = field(default_factory=list)
    splits: list[DdpSplit] = field(default_factory=list)
    compiles: list[RankCompile] = field(default_factory=list)
    first_step_s: float | None = None  # the compiling step, wall seconds
    step_ms: list[float] = field(default_factory=list)  # warm steps
    losses: list[float] = field(default_factory=list)
    comm: CommTime | None = None
    inside_ddp: InsideDdpTrial | None = None  # tried when DDP's own code broke the graph
    profile_trace: str | None = None
    compile_trace_log: str | None = None
    error: str | None = None  # one line
    error_phase: str | None = None


@dataclass
class RankOutcome:
    """How a rank's process ended, as the launcher saw it (torchrun's failure summary)."""

    rank: int
    exit_code: int | None = None
    signal: str | None = None  # "SIGKILL" for an exit code of -9
    first_failure: bool = False  # torchrun's root cause: the rank that failed first


@dataclass
class DistributedSection:
    world_size: int
    launcher: str
    process_group: str
    settings: DdpSettings
    ranks: list[dict[str, Any]] = field(default_factory=list)  # each rank's record, as written
    outcomes: list[RankOutcome] = field(default_factory=list)
    timeout_s: float | None = None
    timed_out: bool = False
    wall_s: float | None = None
    launcher_exit_code: int | None = None
    merged_trace: str | None = None
    merged_trace_error: str | None = None
    tlparse_report: str | None = None
    tlparse_error: str | None = None
