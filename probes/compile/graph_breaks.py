"""Graph breaks: where dynamo splits an entry point into several graphs, and why.

`probe_graph_breaks` runs `torch._dynamo.explain` on one call of an entry point. Explain gives
the graphs (and their ops) and, for each graph that ended at a break, the reason and a user
stack. Gaps are filled from dynamo's own `graph_breaks` log, captured during the same run:
explain's reason is sometimes a placeholder ("generic_jump TensorVariable()",
"comprehension_graph_break") where the log holds the real one, and a break whose preceding
graph is empty (a `print` on the first line) compiles no graph, so explain never lists it; nor
does it list a second break type at a line it lists (the reconstruction failure, GB0092, a
`torch._dynamo.graph_break()`, GB0025, causes when a value alive across it cannot be rebuilt).

Each distinct break (same location, same reason) is reported once with its hit count, its
graph-break id (`GBnnnn`) and the explanation and hints of torch's own registry
(`torch/_dynamo/graph_break_registry.json`, read offline from the installed torch), a
category a person can act on, and the ops of the graphs on either side of it.

Both `probe_graph_breaks` and `probe_fullgraph` call `torch._dynamo.reset()`, which throws away
every compiled function in the process: run them before compiling anything that is timed.
Both run the entry point for real once: give them a copy whose state may change.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch._dynamo

from probes.logs import messages_logged
from probes.records.compile import (
    DATA_DEPENDENT_BRANCH,
    DYNAMIC_SHAPE,
    OTHER,
    PRINT_LOGGING,
    SCALAR_READ,
    UNSUPPORTED_CALL,
    FullgraphResult,
    GraphBreak,
    GraphBreakReport,
)
from probes.records.location import SourceLocation
from probes.stack import (
    code_location,
    frames_of_summaries,
    parse_stack_lines,
    user_code_stack,
)

_LOG_HEAD = re.compile(r"in user code at (?P<file>.+):(?P<line>\d+)\s*$")
_DOC_URL = re.compile(r"please visit: (?P<url>\S+)")
# Reasons dynamo gives a graph it compiled because of a break, without saying which break.
_PLACEHOLDER_REASONS = ("generic_jump", "comprehension_graph_break", "step_unsupported")
# Placeholder reasons whose break type dynamo raised under another name in the same place.
_PLACEHOLDER_GB_TYPE = {"generic_jump": "Data-dependent branching"}
# Lines dynamo puts before the break type when a break happened inside a call it traced.
_PREAMBLE = (
    "Encountered graph break",
    "*** While handling this graph break",
    "Failed to handle graph break gracefully",
)


@dataclass
class _Occurrence:
    """One break as one source saw it, before distinct breaks are merged."""

    text: str  # dynamo's full reason
    stack: list[SourceLocation]  # trimmed to user code, outermost first
    graph_index: int | None = None
    order: int = 1 << 30  # when dynamo met it during the call (its place in the log)


def probe_graph_breaks(
    entry_point: str, fn: Callable[..., Any], *args: Any, **kwargs: Any
) -> GraphBreakReport:
    """Explain one call `fn(*args, **kwargs)`: its graphs, ops and distinct graph breaks.

    Calls `torch._dynamo.reset()` (explain does, before and after), which discards every
    compiled function in the process: call this before compiling anything you time. `fn` runs
    once for real.
    """
    start = time.perf_counter()
    with graph_break_log() as logged:
        explained = torch._dynamo.explain(fn)(*args, **kwargs)
    seconds = time.perf_counter() - start

    graphs = list(explained.graphs)
    ops = [_ops_of(gm) for gm in graphs]
    occurrences = _explain_occurrences(explained.break_reasons, graphs)
    occurrences = _complete_from_log(occurrences, [_parse_log_record(m) for m in logged])
    groups = sorted(_group(occurrences), key=lambda g: min(o.order for o in g))
    breaks = [_describe(group, ops) for group in groups]
    return GraphBreakReport(
        entry_point=entry_point,
        graph_count=explained.graph_count,
        # not explain's graph_count - 1: a break followed by no tensor op opens no new graph
        break_count=sum(b.hits for b in breaks),
        op_count=sum(len(o) for o in ops),
        ops_per_graph=[len(o) for o in ops],
        breaks=breaks,
        seconds=seconds,
        torch_version=torch.__version__,
    )


def probe_fullgraph(
    entry_point: str,
    fn: Callable[..., Any],
    *args: Any,
    backend: str = "eager",
    **kwargs: Any,
) -> FullgraphResult:
    """Compile `fn` with `fullgraph=True` and call it once: does it compile as one graph?

    A cheap backend is enough to answer (dynamo decides, not the backend). Calls
    `torch._dynamo.reset()` afterwards to drop what it compiled, which also discards every
    other compiled function: call it before compiling anything you time. `fn` runs once for
    real; `backend` is this probe's, not passed to `fn`.
    """
    start = time.perf_counter()
    error: BaseException | None = None
    try:
        torch.compile(fn, backend=backend, fullgraph=True)(*args, **kwargs)
    except Exception as exc:  # any failure is the answer, not a crash of the probe
        error = exc
    finally:
        torch._dynamo.reset()
    return FullgraphResult(
        entry_point=entry_point,
        compiles=error is None,
        error=_first_line(str(error)) if error is not None else None,
        error_type=type(error).__name__ if error is not None else None,
        backend=backend,
        seconds=time.perf_counter() - start,
    )


# --- what explain and the log saw --------------------------------------------------------------


def _explain_occurrences(reasons: Sequence[Any], graphs: Sequence[Any]) -> list[_Occurrence]:
    index_of = {id(gm.compile_subgraph_reason): i for i, gm in enumerate(graphs)}
    return [
        _Occurrence(
            text=r.reason,
            stack=user_code_stack(frames_of_summaries(r.user_stack)),
            graph_index=index_of.get(id(r)),
        )
        for r in reasons
    ]


@dataclass
class _LogRecord:
    filename: str
    lineno: int
    text: str  # the reason
    stack: list[SourceLocation]


def _parse_log_record(message: str) -> _LogRecord | None:
    head, _, rest = message.partition("\n")
    match = _LOG_HEAD.search(head)
    if not match:
        return None
    reason, _, stack_text = rest.partition("\nUser code traceback:")
    reason = reason.removeprefix("Graph Break Reason: ")
    return _LogRecord(
        match["file"], int(match["line"]), reason, user_code_stack(parse_stack_lines(stack_text))
    )


_Place = tuple[str, int]  # (file, line) of the innermost user frame
_Kind = tuple[_Place, str]  # a place and a break type: one distinct break


def _complete_from_log(
    occurrences: list[_Occurrence], records: Sequence[_LogRecord | None]
) -> list[_Occurrence]:
    """Replace placeholder reasons and short stacks; add breaks explain did not list.

    The log is read by place and break type: two types at one line (a break and the
    reconstruction failure it causes) are two breaks, though explain may list only one.
    """
    by_kind = _logged_by_kind(records)
    order = {kind: i for i, kind in enumerate(by_kind)}
    by_place: dict[_Place, list[_LogRecord]] = {}
    place_order: dict[_Place, int] = {}
    for (place, gb_type), logged in by_kind.items():
        by_place.setdefault(place, []).extend(logged)
        place_order.setdefault(place, order[place, gb_type])

    seen: set[_Kind] = set()
    for occ in occurrences:
        if not occ.stack:
            continue
        place = (occ.stack[-1].filename, occ.stack[-1].lineno)
        logged = by_place.get(place, [])
        if logged and _is_placeholder(occ.text):
            occ.text = _best_logged_reason(logged, prefer=_gb_type(occ.text))
        kind = _logged_kind(place, _gb_type(occ.text), logged)
        seen.add(kind)
        occ.order = order.get(kind, place_order.get(place, occ.order))
        longest = max((r.stack for r in logged), key=len, default=[])
        if len(longest) > len(occ.stack):
            occ.stack = longest

    for kind, logged in by_kind.items():
        if kind in seen:
            continue
        place = kind[0]
        stack = max((r.stack for r in by_place[place]), key=len) or [code_location(*place)]
        occurrences.append(
            _Occurrence(text=_best_logged_reason(logged), stack=stack, order=order[kind])
        )
    return occurrences


def _logged_by_kind(records: Sequence[_LogRecord | None]) -> dict[_Kind, list[_LogRecord]]:
    """The log's records by place and break type, in the order dynamo first met each."""
    by_kind: dict[_Kind, list[_LogRecord]] = {}
    for record in records:
        if record is not None:
            place = (record.filename, record.lineno)
            by_kind.setdefault((place, _gb_type(record.text)), []).append(record)
    return by_kind


def _logged_kind(place: _Place, gb_type: str, logged: Sequence[_LogRecord]) -> _Kind:
    """The logged break that explain's break at `place` is.

    Its own type when the log has it there; else (explain and the log name the break
    differently, as an older torch without the registry may) the one the log would report.
    """
    if not logged or any(_gb_type(r.text) == gb_type for r in logged):
        return place, gb_type
    return place, _gb_type(_best_logged_reason(logged))


def _best_logged_reason(logged: Sequence[_LogRecord], prefer: str | None = None) -> str:
    """The first logged reason of type `prefer`, else the first the registry knows, or the first."""
    for record in logged:
        if prefer is not None and _gb_type(record.text) == prefer:
            return record.text
    for record in logged:
        if _gb_type(record.text) in _registry():
            return record.text
    return logged[0].text


def _is_placeholder(text: str) -> bool:
    return _first_line(text).startswith(_PLACEHOLDER_REASONS)


@contextmanager
def graph_break_log() -> Iterator[list[str]]:
    """Collect dynamo's `graph_breaks` log messages without printing them; restore the logger."""
    logger = logging.getLogger(_graph_break_logger_name())
    saved = (logger.level, logger.propagate)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # keep them off the user's terminal
    try:
        with messages_logged(logger, logging.DEBUG) as messages:
            yield messages
    finally:
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _graph_break_logger_name() -> str:
    from torch._dynamo import symbolic_convert

    log = getattr(symbolic_convert, "graph_break_log", None)
    return log.name if log is not None else "torch._dynamo.symbolic_convert.__graph_breaks"


# --- what a break means ------------------------------------------------------------------------


def _group(occurrences: Sequence[_Occurrence]) -> list[list[_Occurrence]]:
    groups: dict[tuple[Any, ...], list[_Occurrence]] = {}
    for occ in occurrences:
        where = (occ.stack[-1].filename, occ.stack[-1].lineno) if occ.stack else None
        groups.setdefault((where, _gb_type(occ.text)), []).append(occ)
    return list(groups.values())


def _describe(group: Sequence[_Occurrence], ops: Sequence[list[str]]) -> GraphBreak:
    first = min(group, key=lambda o: o.graph_index if o.graph_index is not None else 1 << 30)
    gb_type = _gb_type(first.text)
    gb_id = _registry_id(gb_type)
    entry = _registry().get(gb_type, {})
    index = first.graph_index
    before = ops[index] if index is not None else []
    after = ops[index + 1] if index is not None and index + 1 < len(ops) else []
    return GraphBreak(
        reason=gb_type,
        category=categorize(first.text),
        hits=sum(1 for o in group if o.graph_index is not None) or 1,
        location=first.stack[-1] if first.stack else None,
        user_stack=first.stack,
        gb_id=gb_id,
        explanation=_field(first.text, "Explanation") or entry.get("Explanation"),
        hints=_fields(first.text, "Hint") or list(entry.get("Hints", [])),
        doc_url=_doc_url(first.text),
        graph_index=index,
        ops_before=len(before) if index is not None else None,
        ops_after=len(after) if index is not None and index + 1 < len(ops) else None,
        last_ops_before=before[-3:],
        first_ops_after=after[:3],
    )


_CATEGORY_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # Order matters: a `print` is a "builtin operator" too, and numpy calls reach scalar reads.
    (PRINT_LOGGING, re.compile(r"`print`|builtin print|logging\.|Logger|warnings?\.warn", re.I)),
    (
        DATA_DEPENDENT_BRANCH,
        re.compile(r"generic_jump|data-dependent branching|data-dependent assertion|guard_scalar"),
    ),
    (UNSUPPORTED_CALL, re.compile(r"numpy|Ndarray|np\.random", re.I)),
    (
        SCALAR_READ,
        re.compile(r"Tensor\.item|\.item\(\)|tolist|to_list|_local_scalar_dense|int\(tensor"),
    ),
    (
        DYNAMIC_SHAPE,
        re.compile(r"dynamic shape|symbolic shape|SymInt|unbacked|dynamic slicing", re.I),
    ),
    (
        UNSUPPORTED_CALL,
        re.compile(r"skipped|builtin|C extension|not supported|unsupported|cannot trace", re.I),
    ),
)


_EXAMPLE = re.compile(r"\(e\.g\.[^)]*\)")


def categorize(reason: str) -> str:
    """The kind of break, from what dynamo says about it (never from its hints)."""
    said = "\n".join(
        [_gb_type(reason), _field(reason, "Explanation") or "", _field(reason, "context") or ""]
    )
    # Dynamo's explanations give examples, "(e.g. _warnings.warn)": they name no real call.
    said = _EXAMPLE.sub("", said)
    for category, pattern in _CATEGORY_PATTERNS:
        if pattern.search(said):
            return category
    return OTHER


def _gb_type(reason: str) -> str:
    """The break type: the reason's first line, after any "while tracing a call" preamble."""
    lines = [line.strip() for line in reason.splitlines()]
    for line in lines:
        if not line or line.startswith(_PREAMBLE):
            continue
        for placeholder, gb_type in _PLACEHOLDER_GB_TYPE.items():
            if line.startswith(placeholder):
                return gb_type
        if line in _registry():
            return line
    return next((line for line in lines if line and not line.startswith(_PREAMBLE)), "")


def _field(reason: str, name: str) -> str | None:
    """The first field dynamo writes as `  Explanation: ...` (continued on indented lines)."""
    values = _fields(reason, name)
    return values[0] if values else None


def _fields(reason: str, name: str) -> list[str]:
    """Every field `name` of a reason (`Hint` repeats), each joined from its continuation lines."""
    heads = (f"{name}:", f"Developer debug {name}:")
    values: list[list[str]] = []
    current: list[str] | None = None
    for line in reason.splitlines():
        stripped = line.strip()
        if stripped.startswith(heads):
            current = [stripped.partition(":")[2].strip()]
            values.append(current)
        elif current is not None and line.startswith("    ") and stripped:
            current.append(stripped)  # dynamo indents the rest of a multi-line field
        else:
            current = None
    return [" ".join(v).strip() for v in values if " ".join(v).strip()]


def _doc_url(reason: str) -> str | None:
    match = _DOC_URL.search(reason)
    return match["url"] if match else None


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


@functools.cache
def _registry() -> Mapping[str, Mapping[str, Any]]:
    """Torch's graph-break registry by break type: {"GB id", "Explanation", "Hints"}."""
    path = Path(torch._dynamo.__file__).parent / "graph_break_registry.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # older torch: no registry, breaks keep their reasons only
        return {}
    by_type: dict[str, dict[str, Any]] = {}
    for gb_id, entries in raw.items():
        for entry in entries:
            by_type.setdefault(entry["Gb_type"], {**entry, "GB id": gb_id})
    return by_type


def _registry_id(gb_type: str) -> str | None:
    entry = _registry().get(gb_type)
    return entry["GB id"] if entry else None


# --- ops of a graph ----------------------------------------------------------------------------

_COMPUTING_NODES = ("call_function", "call_method", "call_module")


def _ops_of(gm: torch.fx.GraphModule) -> list[str]:
    """Names of the nodes of a graph that compute (not inputs, outputs or attributes)."""
    return [_op_name(n.target) for n in gm.graph.nodes if n.op in _COMPUTING_NODES]


def _op_name(target: Any) -> str:
    if isinstance(target, str):
        return target
    return getattr(target, "__name__", None) or str(target)
