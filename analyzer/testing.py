"""`assert_compiles_cleanly`: keep a model compile-healthy in a project's own test suite.

    import torch
    from analyzer.testing import assert_compiles_cleanly

    def test_model_compiles_cleanly():
        health = assert_compiles_cleanly(MyModel(), (torch.randn(8, 16),))
        assert health.graph_break_count == 0

It runs only the cheap probes of a diagnosis, on a copy compiled with the "eager" backend by
default (dynamo decides the breaks and the guards, whatever the backend): graph breaks
(`torch._dynamo.explain`, and `fullgraph=True` on an entry point that breaks), the recompile
scenarios of `compile-diagnose module` (called with grad enabled, train then eval, half the
batch) and proof that compiled code ran. It counts what the diagnosis counts:
- a graph break is one distinct break (one reason at one line of the user's code), however
  many entry points or calls hit it;
- a recompile counts unless the recompilation rule (CD103) calls it one torch makes by design
  (a size then left symbolic, a size of 0 or 1, a switch of grad mode or `training`); those
  are in the returned report, not in the count;
- an entry point whose call ran no compiled code fails, as CD101 says.
A failure is an `AssertionError` (pytest shows its message) that lists each break with its
file:line, source line, graph-break id and reason, and each counted recompile with its guard
and line. Bad arguments raise `UsageError` in one line, as `diagnose_module` does.

Global state: the caller's model is deep-copied and never moved, compiled or run; the random
state (CPU, and the CUDA device used) is restored; `torch._dynamo.reset()` runs before the
probes and after them, as the graph-break probes do, which discards every function compiled
so far in the process (it compiles again on its next call).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from analyzer.errors import UsageError
from analyzer.findings import Finding
from analyzer.format import plural, short_path
from analyzer.rules.compile import compiled_path_not_exercised, recompilation_findings
from analyzer.runner.settings import compile_settings
from probes.compile.capture import count_compiled_regions, record_compiles
from probes.compile.graph_breaks import probe_fullgraph, probe_graph_breaks
from probes.compile.recompiles import RecompileScenario, probe_recompiles
from probes.errors import TargetError
from probes.records.compile import (
    Capture,
    CompiledFrame,
    FullgraphResult,
    GraphBreak,
    GraphBreakReport,
    RecompileReport,
)
from probes.records.location import SourceLocation
from probes.records.names import DEFAULT_DTYPE, INFERENCE, TRAINING
from probes.records.serialize import to_jsonable
from probes.targets.module import COMPILE_HOW, DEFAULT_COMPILE_HOW, module_target
from probes.targets.target import CompileSettings, Target

Inputs = tuple[Any, ...] | dict[str, Any] | torch.Tensor


@dataclass(frozen=True)
class DistinctBreak:
    """One graph break as the helper counts it: one reason at one line, in every entry point
    that hits it (the record of the first)."""

    graph_break: GraphBreak
    entry_points: tuple[str, ...]


@dataclass
class CompileHealth:
    """What `assert_compiles_cleanly` measured: returned when it passes, and on the
    `health` of its `CompileHealthError` when it fails."""

    model: str  # the model's class name
    backend: str  # of the compiled copy that is captured and recompiled
    breaks: list[DistinctBreak]
    graph_breaks: dict[str, GraphBreakReport]  # explain's record, by entry point
    fullgraph: dict[str, FullgraphResult]  # the entry points that break, with fullgraph=True
    recompiles: RecompileReport  # every recompile of the inference scenarios
    recompile_findings: list[Finding]  # the recompilation rule's reading: one per guard
    captures: dict[str, Capture]  # what a first and a warm call of each entry point ran
    not_compiled: list[Finding] = field(default_factory=list)  # CD101: ran no compiled code
    seconds: float = 0.0  # the helper's wall time

    @property
    def graph_break_count(self) -> int:
        return len(self.breaks)

    @property
    def counted_recompiles(self) -> list[Finding]:
        """The recompile findings that count: those not by design."""
        return [f for f in self.recompile_findings if not f.evidence.get("by_design")]

    @property
    def recompile_count(self) -> int:
        return _recompiles_in(self.counted_recompiles)

    @property
    def by_design_recompile_count(self) -> int:
        return _recompiles_in(self.recompile_findings) - self.recompile_count

    @property
    def ran_compiled_code(self) -> bool:
        return not self.not_compiled


class CompileHealthError(AssertionError):
    """The model did not compile cleanly; the message says where, `health` holds the figures."""

    def __init__(self, message: str, health: CompileHealth) -> None:
        super().__init__(message)
        self.health = health


def assert_compiles_cleanly(
    model: nn.Module,
    inputs: Inputs,
    *,
    max_graph_breaks: int = 0,
    max_recompiles: int = 0,
    loss_fn: Callable[[Any], torch.Tensor] | None = None,
    train_inputs: Inputs | None = None,
    device: str | torch.device = "cpu",
    backend: str = "eager",
    compile_how: str = DEFAULT_COMPILE_HOW,
    dtype: str = DEFAULT_DTYPE,
) -> CompileHealth:
    """Assert that `model` called with `inputs` compiles with few enough breaks and recompiles.

    Args:
        model: the module; a deep copy is compiled, the model itself is left as it was.
        inputs: the example call, a tuple of positional arguments or a dict of keyword
            arguments (a lone tensor is a 1-tuple), as `diagnose_module` takes them. Its
            batched tensors are halved for the batch-size recompile scenario.
        max_graph_breaks: distinct graph breaks allowed (one reason at one line of code).
        max_recompiles: recompiles allowed, besides those torch makes by design.
        loss_fn: `loss_fn(output) -> scalar tensor`; with it the training call is checked too.
        train_inputs: the training call's inputs, when they differ from `inputs`.
        device, dtype: where and in which floating-point dtype the copy runs.
        backend, compile_how: how the copy is compiled ("module": `torch.compile(model)`,
            "inplace": `model.compile()`).

    Returns:
        The `CompileHealth` measured, for further asserts.

    Raises:
        CompileHealthError: an `AssertionError` listing every break, counted recompile or
            entry point that ran no compiled code, when the limits are exceeded.
        UsageError: one line, when the arguments do not fit (bad inputs, unknown backend).
    """
    _check_limit("max_graph_breaks", max_graph_breaks)
    _check_limit("max_recompiles", max_recompiles)
    health = measure_compile_health(
        model,
        inputs,
        loss_fn=loss_fn,
        train_inputs=train_inputs,
        device=device,
        backend=backend,
        compile_how=compile_how,
        dtype=dtype,
    )
    message = failure_message(health, max_graph_breaks, max_recompiles)
    if message is not None:
        raise CompileHealthError(message, health)
    return health


def measure_compile_health(
    model: nn.Module,
    inputs: Inputs,
    *,
    loss_fn: Callable[[Any], torch.Tensor] | None = None,
    train_inputs: Inputs | None = None,
    device: str | torch.device = "cpu",
    backend: str = "eager",
    compile_how: str = DEFAULT_COMPILE_HOW,
    dtype: str = DEFAULT_DTYPE,
) -> CompileHealth:
    """Run the cheap probes and return what they measured, asserting nothing (the arguments
    are `assert_compiles_cleanly`'s)."""
    if compile_how not in COMPILE_HOW:
        raise UsageError(f"compile_how {compile_how!r}: choose from {', '.join(COMPILE_HOW)}")
    settings = compile_settings("default", backend, compile_how)
    start = time.perf_counter()
    with _torch_state_restored(device):
        target = _target(model, inputs, loss_fn, train_inputs, device, dtype)
        reports, fullgraph = _graph_breaks(target)
        recompiles, captures = _recompiles_and_capture(target, settings)
        if target.loss is not None:
            captures[TRAINING] = _training_capture(target, settings)
    findings = recompilation_findings(INFERENCE, to_jsonable(recompiles))
    return CompileHealth(
        model=target.name,
        backend=settings.backend_name,
        breaks=distinct_breaks(reports),
        graph_breaks={r.entry_point: r for r in reports},
        fullgraph={r.entry_point: r for r in fullgraph},
        recompiles=recompiles,
        recompile_findings=findings,
        captures=captures,
        not_compiled=_not_compiled(captures),
        seconds=time.perf_counter() - start,
    )


# --- the probes --------------------------------------------------------------------------------


@contextmanager
def _torch_state_restored(device: str | torch.device) -> Iterator[None]:
    """The caller's random state kept; dynamo reset before and after (see the module's doc)."""
    torch._dynamo.reset()
    try:
        with torch.random.fork_rng(devices=_cuda_devices(device)):
            yield
    finally:
        torch._dynamo.reset()


def _cuda_devices(device: str | torch.device) -> list[torch.device]:
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        return []  # module_target refuses it in one line
    return [resolved] if resolved.type == "cuda" and torch.cuda.is_available() else []


def _target(
    model: nn.Module,
    inputs: Inputs,
    loss_fn: Callable[[Any], torch.Tensor] | None,
    train_inputs: Inputs | None,
    device: str | torch.device,
    dtype: str,
) -> Target:
    try:
        return module_target(
            model, inputs, loss_fn=loss_fn, train_inputs=train_inputs, device=device, dtype=dtype
        )
    except TargetError as error:
        raise UsageError(str(error)) from None


def _graph_breaks(target: Target) -> tuple[list[GraphBreakReport], list[FullgraphResult]]:
    """Explain each entry point, and try fullgraph=True on those that break (as the runner)."""
    copy = target.fresh_copy()
    reports, fullgraph = [], []
    for entry_point, (fn, args) in target.entry_functions(copy).items():
        copy.train(entry_point == TRAINING)
        target.reset(copy)
        report = probe_graph_breaks(entry_point, fn, *args)
        reports.append(report)
        if report.break_count or report.graph_count != 1:
            target.reset(copy)
            fullgraph.append(probe_fullgraph(entry_point, fn, *args))
    return reports, fullgraph


def _recompiles_and_capture(
    target: Target, settings: CompileSettings
) -> tuple[RecompileReport, dict[str, Capture]]:
    """One compiled copy: its first inference call (the capture), then the recompile scenarios."""
    torch._dynamo.reset()
    compiled = target.compiled_copy(settings)
    capture = _capture(INFERENCE, lambda: target.infer(compiled))
    ways = target.recompile_scenarios(compiled) if target.recompile_scenarios else []
    scenarios = [RecompileScenario(name, call) for name, call in ways]
    entry_fn = target.entry_functions(compiled)[INFERENCE][0]
    return probe_recompiles(INFERENCE, entry_fn, scenarios), {INFERENCE: capture}


def _training_capture(target: Target, settings: CompileSettings) -> Capture:
    """A training step (forward and backward) on a fresh compiled copy, after a reset, so that
    the recompile scenarios before it saw the inference copy alone."""
    loss = target.loss
    assert loss is not None
    torch._dynamo.reset()
    compiled = target.compiled_copy(settings)
    compiled.train()

    def step() -> None:
        loss(compiled).backward()

    return _capture(TRAINING, step)


def _capture(entry_point: str, call: Callable[[], Any]) -> Capture:
    """The first call (what it compiled), then a warm one under the profiler (what it ran)."""
    capture, _ = record_compiles(entry_point, call)
    capture.compiled_region_events = count_compiled_regions(call)
    return capture


# --- what counts -------------------------------------------------------------------------------


def distinct_breaks(reports: Sequence[GraphBreakReport]) -> list[DistinctBreak]:
    """Every break of the reports once per reason and line, with the entry points that hit it."""
    first: dict[tuple[Any, ...], GraphBreak] = {}
    entry_points: dict[tuple[Any, ...], list[str]] = {}
    for report in reports:
        for brk in report.breaks:
            where = (brk.location.filename, brk.location.lineno) if brk.location else None
            key = (where, brk.reason)
            first.setdefault(key, brk)
            entry_points.setdefault(key, []).append(report.entry_point)
    return [DistinctBreak(first[key], tuple(dict.fromkeys(entry_points[key]))) for key in first]


def _not_compiled(captures: Mapping[str, Capture]) -> list[Finding]:
    """CD101's findings on the captures, read as the diagnosis records them."""
    found = (
        compiled_path_not_exercised(entry_point, to_jsonable(capture.summary()))
        for entry_point, capture in captures.items()
    )
    return [finding for finding in found if finding is not None]


def _recompiles_in(findings: Sequence[Finding]) -> int:
    return sum(int(f.evidence.get("recompile_count") or 0) for f in findings)


def _check_limit(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"{name} must be a whole number of 0 or more, not {value!r}")


# --- the failure message -----------------------------------------------------------------------


def failure_message(
    health: CompileHealth, max_graph_breaks: int, max_recompiles: int
) -> str | None:
    """What the assertion says, or None when the health is within the limits."""
    lines: list[str] = []
    if health.graph_break_count > max_graph_breaks:
        lines.append(
            f"{plural(health.graph_break_count, 'graph break')} "
            f"(max_graph_breaks={max_graph_breaks}):"
        )
        lines += [line for brk in health.breaks for line in _break_lines(brk)]
    if health.recompile_count > max_recompiles:
        lines.append(_recompiles_heading(health, max_recompiles))
        frames = health.captures[INFERENCE].frames if INFERENCE in health.captures else []
        for finding in health.counted_recompiles:
            lines += _recompile_lines(finding, frames)
    lines += [_not_compiled_line(f) for f in health.not_compiled]
    if not lines:
        return None
    heading = f"{health.model} does not compile cleanly (backend={health.backend!r}):"
    return "\n".join([heading, *lines])


def _break_lines(brk: DistinctBreak) -> list[str]:
    graph_break = brk.graph_break
    entry_points = ", ".join(brk.entry_points)
    lines = [f"  {_where(graph_break.location)} [{entry_points}]"]
    if graph_break.location is not None and graph_break.location.code:
        lines.append(f"      {graph_break.location.code}")
    lines.append(f"      {graph_break.gb_id or 'no GB id'}: {graph_break.reason}")
    return lines


def _recompiles_heading(health: CompileHealth, max_recompiles: int) -> str:
    heading = f"{plural(health.recompile_count, 'recompile')} (max_recompiles={max_recompiles})"
    by_design = health.by_design_recompile_count
    if by_design:
        heading += f"; {by_design} more by design, not counted"
    return heading + ":"


def _recompile_lines(finding: Finding, frames: Sequence[CompiledFrame]) -> list[str]:
    """The guard's line where torch names one, else where the recompiled function starts."""
    evidence = finding.evidence
    times = plural(int(evidence.get("recompile_count") or 0), "recompile")
    frame = _frame_of(str(evidence.get("function")), frames)
    if finding.location is None and frame is not None:
        where = f"{_where(frame)} (the recompiled function; torch names no line for the guard)"
    else:
        where = _where(finding.location)
    lines = [
        f"  {where}: under '{evidence.get('scenario')}', "
        f"guard `{evidence.get('failing_guard')}` failed ({times})"
    ]
    code = (finding.location.code if finding.location else "") or evidence.get("guarded_line")
    if code:
        lines.append(f"      {code}")
    if evidence.get("limit_hit"):
        lines.append(f"      the recompile limit ({evidence.get('recompile_limit')}) was reached")
    return lines


def _frame_of(function: str, frames: Sequence[CompiledFrame]) -> SourceLocation | None:
    """Where the one compiled frame named `function` starts, as the capture recorded it."""
    places = {
        (f.filename, f.first_line)
        for f in frames
        if f.function == function and f.filename and f.first_line
    }
    if len(places) != 1:
        return None
    filename, first_line = places.pop()
    return SourceLocation(str(filename), int(first_line or 0), function)


def _not_compiled_line(finding: Finding) -> str:
    evidence = finding.evidence
    return (
        f"{evidence.get('entry_point')}: no compiled code ran "
        f"({plural(int(evidence.get('frames_compiled') or 0), 'frame')} compiled, "
        f"{evidence.get('compiled_region_events')} compiled-region events in a warm call)"
    )


def _where(location: SourceLocation | None) -> str:
    if location is None:
        return "(no line of your code recorded)"
    where = f"{short_path(location.filename)}:{location.lineno}"
    return f"{where} in {location.function}" if location.function else where
