"""The compile record: graph breaks, fullgraph, recompiles and proof that compiled code ran.

The probes of `probes/compile/` fill these dataclasses; `graph_breaks_section` turns them into
the recorded section the rules (`analyzer.rules.compile`) and renderers
(`analyzer.render.graph_breaks`) read back as JSON. Its schema, `probes["graph_breaks"]`::

    {
      "<entry point>": GraphBreakReport,   # "inference", "training": one explain run each
          # {"entry_point", "graph_count", "break_count", "op_count", "ops_per_graph": [int],
          #  "seconds", "torch_version",
          #  "breaks": [GraphBreak: {"reason", "category", "hits", "location", "user_stack",
          #             "gb_id", "explanation", "hints", "doc_url", "graph_index",
          #             "ops_before", "ops_after", "last_ops_before", "first_ops_after"}]}
          # location: {"filename", "lineno", "function", "code"} (as SourceLocation)
      "fullgraph": {"<entry point>": FullgraphResult},
          # {"entry_point", "compiles", "error", "error_type", "backend", "seconds"}
      "recompiles": {"<entry point>": RecompileReport},
          # {"entry_point", "function", "recompile_limit", "recompile_count", "limit_hit",
          #  "torch_version",
          #  "scenarios": [ScenarioRecompiles: {"name", "new_frames", "guard_failures": [str],
          #                 "limit_hit", "seconds", "error",
          #                 "recompiles": [Recompile: {"compile_id", "function", "guard",
          #                                "guard_source", "location", "reason",
          #                                "limit_hit", "compile_s", "symbolic_sizes"}]}]}
    }

`probes["benchmark"]["capture"]` (when present): `{"<entry point>": Capture.summary()}` with
`frames_compiled`, `graphs_captured`, `compiled_region_events` and `ran_compiled_code`.

Every entry point recorded is one the diagnosis times.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from probes.records.location import SourceLocation
from probes.records.serialize import to_jsonable

# Keys of the recorded section (`probes["graph_breaks"]`) that are not entry points.
FULLGRAPH_KEY = "fullgraph"
RECOMPILES_KEY = "recompiles"

# The kind of a graph break, as the probe records it (`GraphBreak.category`).
SCALAR_READ = "scalar-read"
DATA_DEPENDENT_BRANCH = "data-dependent-branch"
PRINT_LOGGING = "print-logging"
UNSUPPORTED_CALL = "unsupported-call"
DYNAMIC_SHAPE = "dynamic-shape"
OTHER = "other"

# How each kind reads to a person: in the rules' cause sentences and the renderers' tables.
CATEGORY_LABELS = {
    SCALAR_READ: "scalar read",
    DATA_DEPENDENT_BRANCH: "branch on a tensor value",
    PRINT_LOGGING: "print / logging",
    UNSUPPORTED_CALL: "call dynamo cannot trace",
    DYNAMIC_SHAPE: "dynamic shape",
    OTHER: "other",
}


# --- graph breaks and fullgraph ----------------------------------------------------------------


@dataclass
class GraphBreak:
    """One distinct graph break: one reason at one place in the user's code."""

    reason: str  # the break type, the first line of dynamo's reason
    category: str  # one of CATEGORY_LABELS: scalar-read, data-dependent-branch, ...
    hits: int  # graphs that ended here in the explained call (1 when only the log saw it)
    location: SourceLocation | None  # innermost frame of user code
    user_stack: list[SourceLocation] = field(default_factory=list)  # outermost first
    gb_id: str | None = None  # "GB0124": torch's id for the break type, when it has one
    explanation: str | None = None  # dynamo's explanation, specific to this break
    hints: list[str] = field(default_factory=list)  # torch's, filled in (else its registry's)
    doc_url: str | None = None
    graph_index: int | None = None  # the graph that ended at the break (first hit)
    ops_before: int | None = None  # ops of that graph
    ops_after: int | None = None  # ops of the graph that resumed after it
    last_ops_before: list[str] = field(default_factory=list)
    first_ops_after: list[str] = field(default_factory=list)


@dataclass
class GraphBreakReport:
    """What explain saw for one call of one entry point."""

    entry_point: str
    graph_count: int
    break_count: int  # how many times the call left a graph: the hits of all its breaks
    op_count: int
    ops_per_graph: list[int]
    breaks: list[GraphBreak]
    seconds: float  # wall time of the explain run
    torch_version: str


@dataclass
class FullgraphResult:
    """Whether the entry point compiles as one graph (`fullgraph=True`).

    Not the same question as "no graph breaks": under fullgraph=True torch 2.11 turns on
    `capture_scalar_outputs`, so a `.item()` that breaks the default compile does not fail here.
    """

    entry_point: str
    compiles: bool
    error: str | None  # the first line of the first error
    error_type: str | None
    backend: str
    seconds: float


# --- recompiles --------------------------------------------------------------------------------


@dataclass
class Recompile:
    """One compile of a function dynamo had compiled before, and the guard that made it."""

    compile_id: str | None  # "0/1": frame 0, its second compile
    function: str | None  # the code dynamo compiled
    guard: str  # the failing guard, e.g. "len(fn.__self__._action_queue) == 4"
    guard_source: str | None  # the user's line the guard came from, as dynamo quotes it
    location: SourceLocation | None  # where that line is
    reason: str  # dynamo's recompile reason, first line
    limit_hit: bool = False  # refused: the function had reached the recompile limit
    compile_s: float | None = None  # what this recompile cost (torch's figure, forward)
    # The sizes the recompiled graph leaves symbolic (automatic dynamic shapes), as dynamo names
    # the graph's tensors: {"l_x_[0]": "s77"}, the first tensor dimension of each symbol. Empty
    # when every size is a number (a size torch specialised on, or a guard not on sizes).
    symbolic_sizes: dict[str, str] = field(default_factory=dict)


def batch_size_scenario(size: int, other: int) -> str:
    """The name of the recompile scenario that calls with another batch size."""
    return f"batch size {size} -> {other}"


@dataclass
class ScenarioRecompiles:
    """What one way of calling the compiled entry point (a scenario) recompiled."""

    name: str  # the scenario's, e.g. "batch size 8 -> 2"
    recompiles: list[Recompile]
    new_frames: int  # frames compiled for the first time (e.g. after a new graph break)
    guard_failures: list[str]  # every distinct failing guard dynamo recorded, all cache entries
    limit_hit: bool
    seconds: float
    error: str | None = None  # the scenario raised: first line
    compile_s: float = 0.0  # every compile the scenario made (recompiles, new frames, backward)


@dataclass
class RecompileReport:
    entry_point: str
    function: str  # the compiled callable, as the user named it
    recompile_limit: int  # torch._dynamo.config.recompile_limit when the probe ran
    scenarios: list[ScenarioRecompiles]
    recompile_count: int
    limit_hit: bool
    torch_version: str
    # Frames dynamo compiled on the compiled copy's first call, before the scenarios: 0 means
    # the call never entered compiled code. None: not recorded.
    first_call_frames: int | None = None


# --- capture: whether compiled code ran --------------------------------------------------------


@dataclass
class CompiledFrame:
    """One frame dynamo compiled during a call, as torch's compilation metrics hold it."""

    compile_id: str | None
    function: str | None
    filename: str | None
    first_line: int | None
    graph_ops: int | None
    compile_time_s: float | None
    fail_type: str | None = None
    fail_reason: str | None = None
    recompile_reason: str | None = None


@dataclass
class Capture:
    """What one call of an entry point compiled, and whether its compiled code ran."""

    entry_point: str
    frames: list[CompiledFrame] = field(default_factory=list)
    graphs_captured: int = 0
    compiled_region_events: int | None = None  # in one warm call under the profiler

    @property
    def frames_compiled(self) -> int:
        return sum(1 for f in self.frames if f.fail_type is None and (f.graph_ops or 0) > 0)

    @property
    def ran_compiled_code(self) -> bool:
        # The run-time witness wins: frames compiled earlier prove nothing about this call.
        if self.compiled_region_events is not None:
            return self.compiled_region_events > 0
        return self.frames_compiled > 0

    def summary(self) -> dict[str, Any]:
        return {
            "entry_point": self.entry_point,
            "frames_compiled": self.frames_compiled,
            "graphs_captured": self.graphs_captured,
            "compiled_region_events": self.compiled_region_events,
            "ran_compiled_code": self.ran_compiled_code,
            "frames": self.frames,
        }


# --- the recorded section ----------------------------------------------------------------------


def graph_breaks_section(
    reports: Sequence[GraphBreakReport],
    fullgraph: Sequence[FullgraphResult] = (),
    recompiles: Sequence[RecompileReport] = (),
) -> dict[str, Any]:
    """The recorded form of `probes["graph_breaks"]` (the schema above)."""
    section: dict[str, Any] = {r.entry_point: to_jsonable(r) for r in reports}
    section[FULLGRAPH_KEY] = {r.entry_point: to_jsonable(r) for r in fullgraph}
    section[RECOMPILES_KEY] = {r.entry_point: to_jsonable(r) for r in recompiles}
    return section


def entry_point_reports(section: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The graph-break reports of a recorded section, by entry point."""
    return {
        str(key): value
        for key, value in section.items()
        if key not in (FULLGRAPH_KEY, RECOMPILES_KEY) and isinstance(value, Mapping)
    }
