"""Recompiles: what makes an already-compiled entry point compile again under ordinary use.

A scenario calls the compiled entry point the way users do (a second batch size, train then
eval, with and without grad, several `select_action` calls without `reset()`). Every compile it
triggers is read from `torch._dynamo.utils.get_compilation_metrics()`: a recompile carries
`recompile_reason`, the guard of the newest cache entry that failed; dynamo's
`guard_failures` record holds the failing guard of every cache entry it tried.

Past `torch._dynamo.config.recompile_limit` compiles of one function, dynamo stops compiling
it: the compile attempt fails with "Dynamo recompile limit exceeded" (recorded in the metrics,
with a warning in the log), and from then on calls whose guards match no cache entry run eager,
silently. `limit_hit` reports that attempt.

Scenarios add cache entries (and may make shapes dynamic): run them on a compiled twin that is
not timed, or after timing.
"""

from __future__ import annotations

import ast
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch._dynamo
import torch._dynamo.utils as dynamo_utils

from probes.compile.capture import compile_seconds, compiles_during
from probes.errors import error_line
from probes.records.compile import Recompile, RecompileReport, ScenarioRecompiles
from probes.records.location import SourceLocation
from probes.stack import (
    code_location,
    is_torch_file,
    parse_stack_lines,
    user_code_stack,
)

_COMPILE_ID = re.compile(r"^\s*\d+/\d+:\s*")
_GUARD_SOURCE = re.compile(r"#\s*(?P<file>[^#]+?):(?P<line>\d+) in (?P<func>\S+)\s*$")
_LIMIT_EXCEEDED = "recompile limit exceeded"
# A symbol in a size the graph leaves symbolic ("s77", "2*s77"); a specialised size reads "3".
_SYMBOL = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class RecompileScenario:
    """A way users call the compiled entry point: a name and a call with no arguments."""

    name: str  # e.g. "batch size 8 -> 2", "stale action queue"
    call: Callable[[], Any]


def probe_recompiles(
    entry_point: str,
    compiled_fn: Callable[..., Any],
    scenarios: Sequence[RecompileScenario],
    first_call_frames: int | None = None,
) -> RecompileReport:
    """Run each scenario in turn and report what it recompiled and why.

    `compiled_fn` is the compiled entry point the scenarios call (it names the report); it
    should have been called once already, so that the first scenario's compiles are
    recompiles. Scenarios run in order and see each other's cache entries.
    """
    name = _callable_name(compiled_fn)
    results = [_run(scenario, name) for scenario in scenarios]
    return RecompileReport(
        entry_point=entry_point,
        function=name,
        recompile_limit=int(torch._dynamo.config.recompile_limit),
        scenarios=results,
        recompile_count=sum(len(r.recompiles) for r in results),
        limit_hit=any(r.limit_hit for r in results),
        torch_version=torch.__version__,
        first_call_frames=first_call_frames,
    )


def _run(scenario: RecompileScenario, function: str) -> ScenarioRecompiles:
    failures_before = {code: len(v) for code, v in dynamo_utils.guard_failures.items()}
    start = time.perf_counter()
    error = None
    with compiles_during() as new:
        try:
            scenario.call()
        except Exception as exc:  # a failing scenario is reported, the others still run
            error = error_line(exc)
    seconds = time.perf_counter() - start
    recompiles = [_recompile(m, function) for m in new if _is_recompile(m)]
    failures: list[str] = []
    for code, reasons in dynamo_utils.guard_failures.items():
        for reason in reasons[failures_before.get(code, 0) :]:
            guard = _guard_of(reason)[0]
            if guard not in failures:
                failures.append(guard)
    return ScenarioRecompiles(
        name=scenario.name,
        recompiles=recompiles,
        new_frames=sum(1 for m in new if not _is_recompile(m) and not m.fail_type),
        guard_failures=failures,
        limit_hit=any(r.limit_hit for r in recompiles) or any(_is_limit(m) for m in new),
        seconds=seconds,
        error=error,
        compile_s=sum(compile_seconds(m) for m in new),
    )


def _recompile(metrics: Any, entry_function: str) -> Recompile:
    guard, source, location = _guard_of(metrics.recompile_reason)
    in_torch = is_torch_file(metrics.co_filename or "")
    return Recompile(
        compile_id=str(metrics.compile_id) if metrics.compile_id is not None else None,
        # torch wraps some callables (no_grad methods) in a frame of its own: name the user's
        function=entry_function if in_torch or metrics.co_name is None else metrics.co_name,
        guard=guard,
        guard_source=source,
        location=location,
        reason=metrics.recompile_reason.strip().splitlines()[0],
        limit_hit=_is_limit(metrics),
        compile_s=compile_seconds(metrics),
        symbolic_sizes=_symbolic_sizes(metrics),
    )


def _symbolic_sizes(metrics: Any) -> dict[str, str]:
    """The sizes a compile's graph leaves symbolic: {"l_x_[0]": "s77"}, one tensor per symbol.

    Dynamo records every graph tensor's size as `str({name: [size, ...]})`, in graph order
    (inputs first), a symbolic size as its expression. After a size guard failed, automatic
    dynamic shapes compile the frame again with that size as a symbol, unless the code
    specialises on it (a loop over the batch): then the size reads as a number again.
    """
    try:
        shapes = ast.literal_eval(getattr(metrics, "graph_node_shapes", None) or "{}")
    except (ValueError, SyntaxError):  # another torch's format: no figure rather than a wrong one
        return {}
    found: dict[str, str] = {}
    if not isinstance(shapes, dict):
        return found
    for name, sizes in shapes.items():
        for dim, size in enumerate(sizes if isinstance(sizes, (list, tuple)) else []):
            for symbol in _SYMBOL.findall(size if isinstance(size, str) else ""):
                if symbol not in found.values():
                    found[f"{name}[{dim}]"] = symbol
    return found


def _is_recompile(metrics: Any) -> bool:
    """A compile caused by a failed guard of the user's code, not by a backend switch.

    A code object compiled before under another backend (the diagnosis's own twins share code
    objects) fails only BACKEND_MATCH: that is a first compile for this backend, not a recompile
    a user of one compiled policy would see.
    """
    reason = metrics.recompile_reason or ""
    lines = [line for line in reason.splitlines() if line.strip()]
    return bool(lines) and not all("BACKEND_MATCH" in line for line in lines)


def _is_limit(metrics: Any) -> bool:
    return _LIMIT_EXCEEDED in (metrics.fail_reason or "").lower()


def _guard_of(reason: str) -> tuple[str, str | None, SourceLocation | None]:
    """Split dynamo's guard failure into the guard, the user's line and where that line is.

    Dynamo writes `0/1: <guard>   # <source line>  # <file>:<line> in <function>`, then
    optionally "User stack trace:" with the frames that created the guard.
    """
    first, _, rest = reason.strip().partition("\n")
    first = _COMPILE_ID.sub("", first, count=1)
    parts = [p.strip() for p in first.split("  # ")]
    guard = parts[0].split("#")[0].strip() or parts[0]
    source = parts[1].lstrip("# ").strip() if len(parts) > 2 else None
    stack = user_code_stack(parse_stack_lines(rest))
    location = stack[-1] if stack else None
    if location is None:
        match = _GUARD_SOURCE.search(first)
        if match:  # a path relative to site-packages; no stack to make it absolute
            location = code_location(match["file"].strip(), int(match["line"]), match["func"])
    return guard, source, location


def _callable_name(fn: Callable[..., Any]) -> str:
    inner = getattr(fn, "_torchdynamo_orig_callable", fn)
    inner = getattr(inner, "_orig_mod", inner)  # an OptimizedModule
    name = getattr(inner, "__qualname__", None) or type(inner).__qualname__
    return str(name)
