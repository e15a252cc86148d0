"""The compile-trace record: torch's structured trace of a block's compiles, and its tlparse report.

`probes.compile.trace` fills a `CompileTraceRecord` from the trace it writes, and
`probes.compile.tlparse` a `TlparseReport` from what tlparse made of it. The diagnosis records
one of each per phase that compiles after a `torch._dynamo.reset()`, `probes["compile_trace"]`::

    {
      "<phase>": {                          # "benchmark", "recompiles"
        "trace_dir", "logs": [str], "logging_overhead_s", "frame_ids_repeat",
        "frames": [TracedFrame: {"frame_id", "compile_id", "function", "filename",
                   "first_line", "graph_ops", "compile_time_s", "attempts", "fail_type",
                   "recompile_reason"}],
        "graph_breaks": [TracedGraphBreak: {"frame_id", "filename", "lineno", "reason"}],
        "tlparse": TlparseReport: {"log", "out_dir", "index_html", "restarts_and_failures",
                   "tlparse", "tlparse_version", "stats", "seconds", "error",
                   "frames": [ReportFrame], "graph_breaks": [ReportGraphBreak]}
      }
    }

The frame ids (`[1/0]`) are tlparse's names of the compile ids of torch's compilation metrics
(`"1/0"`), so a finding can point at the frame whose page holds the compiler's full detail.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

# Where a diagnosis folder keeps the trace and the report: `<out>/torch_trace/`, `<out>/tlparse/`.
TRACE_SUBDIR = "torch_trace"
REPORT_SUBDIR = "tlparse"
TLPARSE_INSTALL_HINT = "pip install 'compile-diagnose[tlparse]'"  # where tlparse is missing
LOG_PREFIX = "dedicated_log_torch_trace_"  # TORCH_TRACE's own name, which tlparse users know


# --- the trace ---------------------------------------------------------------------------------


@dataclass
class TraceLog:
    path: Path
    size_bytes: int


@dataclass
class TracedFrame:
    """One compile of one Python frame, as the trace and tlparse name it."""

    frame_id: str  # "[1/0]": tlparse's name
    compile_id: str  # "1/0": torch's compilation metrics' name
    function: str | None  # co_name; "torch_dynamo_resume_in_forward_at_9" after a break
    filename: str | None
    first_line: int | None
    graph_ops: int | None = None
    compile_time_s: float | None = None
    attempts: int = 1  # dynamo restarts its analysis after a break in an inlined call
    fail_type: str | None = None
    recompile_reason: str | None = None


@dataclass
class TracedGraphBreak:
    frame_id: str  # the frame whose graph ended at the break
    filename: str | None
    lineno: int | None
    reason: str  # dynamo's one-line reason


@dataclass
class CompileTraceRecord:
    """What the trace holds of the compiles inside one `record_compile_trace` block."""

    trace_dir: Path
    logs: list[TraceLog] = field(default_factory=list)
    frames: list[TracedFrame] = field(default_factory=list)
    graph_breaks: list[TracedGraphBreak] = field(default_factory=list)
    records: int = 0  # structured records written during the block
    # torch's own count (compilation metrics) of the time its compiles spent writing this trace:
    # the cost of tracing, paid at compile time only; calls that do not compile write nothing
    logging_overhead_s: float = 0.0
    seconds_active: float = 0.0
    # torch._dynamo.reset() (as explain calls it) restarts frame ids at [0/0]: then one id
    # names two compiles in the log, and tlparse shows their detail under one id
    frame_ids_repeat: bool = False

    def frame_at(self, filename: str, lineno: int) -> str | None:
        """The frame id of the graph break at filename:lineno (as a graph-break probe found it)."""
        for found in self.graph_breaks:
            if found.lineno == lineno and same_file(found.filename, filename):
                return found.frame_id
        return None

    def frames_of(self, function: str, filename: str | None = None) -> list[str]:
        """The frame ids (every compile and recompile) of a function, by co_name and file."""
        return [
            frame.frame_id
            for frame in self.frames
            if frame.function == function
            and (filename is None or same_file(frame.filename, filename))
        ]


def same_file(found: str | None, wanted: str) -> bool:
    """Whether two paths name one file (the trace may hold it through a link)."""
    if found is None:
        return False
    if found == wanted:
        return True
    return os.path.realpath(found) == os.path.realpath(wanted)


# --- the tlparse report ------------------------------------------------------------------------


@dataclass
class ReportFrame:
    frame_id: str  # "[1/0]"
    attempts: list[str]  # the report's ids of each attempt: "[1/0]", "[1/0_1]"
    artifacts: list[str]  # file names of its build products, in report order
    function: str | None = None  # from the stack trie, when the frame appears there
    filename: str | None = None
    line: int | None = None
    status: str | None = None  # ok, break, empty, error, missing: the trie's colour


@dataclass
class ReportGraphBreak:
    frame_id: str  # "[1/0]"
    filename: str | None
    lineno: int | None
    reason: str
    artifact: Path  # the report's reason file


@dataclass
class TlparseReport:
    """Where the report is and what it lists, or the one line that says why there is none."""

    log: Path | None
    out_dir: Path
    index_html: Path | None = None
    frames: list[ReportFrame] = field(default_factory=list)
    graph_breaks: list[ReportGraphBreak] = field(default_factory=list)
    restarts_and_failures: int | None = None
    tlparse: str | None = None  # the executable used
    tlparse_version: str | None = None
    stats: str | None = None  # tlparse's own count of the records it read
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.index_html is not None

    def frame(self, frame_id: str) -> ReportFrame | None:
        return next((f for f in self.frames if f.frame_id == frame_id), None)


@dataclass
class CompileTracePhase:
    """One phase's entry of `probes["compile_trace"]`: its trace and the tlparse report of it."""

    trace_dir: Path
    logs: list[str]
    frames: list[TracedFrame]
    graph_breaks: list[TracedGraphBreak]
    logging_overhead_s: float
    frame_ids_repeat: bool
    tlparse: TlparseReport

    @classmethod
    def of(cls, record: CompileTraceRecord, report: TlparseReport) -> CompileTracePhase:
        return cls(
            trace_dir=record.trace_dir,
            logs=[str(log.path) for log in record.logs],
            frames=record.frames,
            graph_breaks=record.graph_breaks,
            logging_overhead_s=record.logging_overhead_s,
            frame_ids_repeat=record.frame_ids_repeat,
            tlparse=report,
        )
