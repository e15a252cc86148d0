"""The figures a threshold names, read from a recorded diagnosis or from a comparison.

Each reader returns a `Measured`: the value (None where the diagnosis did not measure it) and a
short account of what it counts, from the recorded figures (the breaks' lines, the guards, the
findings' codes), which the gate's failure line and the JUnit file show. A diagnosis merged
from several ranks (`--nproc`) has no one-process probes: its graph breaks and recompiles are
those of the ranks' compiled training step, counted across ranks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analyzer.comparison.changes import ADDED, APPEARED, FIXED, BreakChange, Comparison
from analyzer.comparison.compile import break_kind, break_place, recompile_reports
from analyzer.comparison.ranks import compiled_ranks, distinct_rank_breaks
from analyzer.comparison.speed import SLOWER, speedup_range, timings
from analyzer.findings import Severity
from analyzer.format import format_number, sci, seconds, short_path
from analyzer.format import speedup_range as speedup_text
from analyzer.gate.thresholds import Threshold
from analyzer.rules.compile import RECOMPILATION
from probes.records.compile import entry_point_reports
from probes.records.distributed import DISTRIBUTED, ORIGIN_LABELS
from probes.records.divergence import failing_without_random_numbers
from probes.records.names import BENCHMARK, DIVERGENCE, ENTRY_POINTS, GRAPH_BREAKS, TRAINING
from probes.records.reference import ACTION_DIFF_KEY, LOSS_DIFF_KEY, SUCCESS
from probes.records.serialize import as_number

Record = Mapping[str, Any]
SHOWN = 3  # items an account names before "and N more"


@dataclass(frozen=True)
class Measured:
    value: float | bool | None  # None: the diagnosis did not measure it
    detail: str = ""  # what the value counts, from the record


NOT_MEASURED = Measured(None)


def measure(diagnosis: Record, threshold: Threshold) -> Measured:
    """The figure `threshold` names, in one recorded diagnosis."""
    figure = threshold.figure
    head, _, rest = figure.partition(".")
    if head in _BY_ENTRY_POINT:
        entry_points = (rest,) if rest else None
        return _BY_ENTRY_POINT[head](diagnosis, entry_points)
    if head in _PER_ENTRY_POINT:
        entry_point, _, end = rest.partition(".")
        return _PER_ENTRY_POINT[head](diagnosis, entry_point, end)
    if figure in _WHOLE:
        return _WHOLE[figure](diagnosis)
    return _finding(diagnosis, figure)


def measure_comparison(
    comparison: Comparison, before: Record, after: Record, threshold: Threshold
) -> Measured:
    """The figure `threshold` names in a comparison: its own, a change, or AFTER's."""
    if threshold.change:
        one, other = measure(before, threshold), measure(after, threshold)
        if not _number(one.value) or not _number(other.value):
            return NOT_MEASURED
        change = float(other.value) - float(one.value)  # type: ignore[arg-type]
        return Measured(change, f"{_shown(one)} -> {_shown(other)}")
    reader = _COMPARING.get(threshold.figure)
    return reader(comparison) if reader else measure(after, threshold)


def _number(value: Any) -> bool:
    return value is not None and not isinstance(value, bool)


def _shown(measured: Measured) -> str:
    value = measured.value
    return format_number(value) if isinstance(value, (int, float)) else str(value)


# --- one diagnosis -----------------------------------------------------------------------------


def _graph_breaks(diagnosis: Record, entry_points: Sequence[str] | None) -> Measured:
    if _ranks(diagnosis) is not None:
        return _rank_breaks(diagnosis, entry_points)
    reports = entry_point_reports(_probes(diagnosis).get(GRAPH_BREAKS) or {})
    chosen = _chosen(reports, entry_points)
    if chosen is None:
        return NOT_MEASURED
    places: dict[tuple[str, int, str], list[str]] = {}
    for entry_point in chosen:
        for graph_break in reports[entry_point].get("breaks") or []:
            places.setdefault(break_place(graph_break), []).append(entry_point)
    accounts = [
        f"{path}:{line} {kind} ({', '.join(entry_points)})"
        for (path, line, kind), entry_points in places.items()
    ]
    return Measured(len(places), _listed(accounts))


def _recompiles(diagnosis: Record, entry_points: Sequence[str] | None) -> Measured:
    """Recompiles the recompilation rule does not call by design (an info finding)."""
    if _ranks(diagnosis) is not None:
        return _rank_recompiles(diagnosis, entry_points)
    chosen = _chosen(recompile_reports(_probes(diagnosis)), entry_points)
    if chosen is None:
        return NOT_MEASURED
    counted = [
        finding
        for finding in _findings(diagnosis)
        if finding.get("code") == RECOMPILATION.code
        and finding.get("severity") != Severity.INFO
        and (finding.get("evidence") or {}).get("entry_point") in chosen
    ]
    total = sum(int((f.get("evidence") or {}).get("recompile_count") or 1) for f in counted)
    accounts = [
        f"{e.get('entry_point')} '{e.get('scenario')}': {e.get('failing_guard')} "
        f"({e.get('recompile_count')}x)"
        for e in (f.get("evidence") or {} for f in counted)
    ]
    return Measured(total, _listed(accounts))


def _ranks(diagnosis: Record) -> list[Record] | None:
    """The ranks' records of a diagnosis merged from several processes; None for one process."""
    section = _probes(diagnosis).get(DISTRIBUTED)
    return None if section is None else list(section.get("ranks") or [])


def _compiled_ranks(diagnosis: Record, entry_points: Sequence[str] | None) -> list[Record]:
    """The ranks whose training step compiled; none where the figure is not the training's."""
    if entry_points is not None and list(entry_points) != [TRAINING]:
        return []  # the ranks measure the training step alone
    return compiled_ranks(_probes(diagnosis))


def _rank_breaks(diagnosis: Record, entry_points: Sequence[str] | None) -> Measured:
    """Distinct breaks (one reason at one line) of every rank's training step, with whose
    code each is in (the model's, DDP's or Accelerate's) and the ranks that met it."""
    ranks = _compiled_ranks(diagnosis, entry_points)
    if not ranks:
        return NOT_MEASURED
    places = distinct_rank_breaks(ranks)
    accounts = [
        f"{path}:{line} {kind} ({TRAINING}, "
        f"{ORIGIN_LABELS.get(first.get('origin'), first.get('origin'))}, "
        f"{_rank_list(seen, len(ranks))})"
        for (path, line, kind), (first, seen) in places.items()
    ]
    return Measured(len(places), _listed(accounts))


def _rank_recompiles(diagnosis: Record, entry_points: Sequence[str] | None) -> Measured:
    """Recompiles of every rank's training step, with the rank and the guard that failed."""
    ranks = _compiled_ranks(diagnosis, entry_points)
    if not ranks:
        return NOT_MEASURED
    recompiled = [
        (int(rank.get("rank") or 0), compiled)
        for rank in ranks
        for compiled in rank.get("compiles") or []
        if compiled.get("recompile_reason")
    ]
    accounts = [
        f"rank {rank} {compiled.get('function')}: {compiled.get('recompile_reason')}"
        for rank, compiled in recompiled
    ]
    return Measured(len(recompiled), _listed(accounts))


def _rank_list(ranks: list[int], of: int) -> str:
    """The ranks that met something: "every rank", or "rank 1" / "ranks 0, 2"."""
    distinct = sorted(set(ranks))
    if len(distinct) == of:
        return "every rank"
    return ("rank " if len(distinct) == 1 else "ranks ") + ", ".join(map(str, distinct))


def _chosen(recorded: Mapping[str, Any], entry_points: Sequence[str] | None) -> list[str] | None:
    """The entry points a figure sums over: all recorded, or the one named if recorded."""
    if entry_points is None:
        return list(recorded) if recorded else None
    return list(entry_points) if all(e in recorded for e in entry_points) else None


def _frames(diagnosis: Record, entry_point: str, _end: str) -> Measured:
    capture = (_benchmark(diagnosis).get("capture") or {}).get(entry_point) or {}
    frames = as_number(capture.get("frames_compiled"))
    if frames is None:
        return NOT_MEASURED
    functions = [str(f.get("function")) for f in capture.get("frames") or [] if f.get("function")]
    return Measured(frames, _listed(list(dict.fromkeys(functions))))


def _speedup(diagnosis: Record, entry_point: str, end: str) -> Measured:
    timing = timings(_probes(diagnosis)).get(entry_point)
    speedup = speedup_range(timing) if timing else None
    if speedup is None:
        return NOT_MEASURED
    value = {"": speedup.ratio, "low": speedup.low, "high": speedup.high}[end]
    shown = speedup_text(speedup.ratio, speedup.low, speedup.high)
    return NOT_MEASURED if value is None else Measured(value, shown)


def _first_call(diagnosis: Record, entry_point: str, _end: str) -> Measured:
    timing = timings(_probes(diagnosis)).get(entry_point) or {}
    value = as_number(timing.get("compiled_first_call_s"))
    return NOT_MEASURED if value is None else Measured(value, seconds(value))


def _difference(key: str) -> Callable[[Record], Measured]:
    def read(diagnosis: Record) -> Measured:
        value = as_number(_benchmark(diagnosis).get(key))
        return NOT_MEASURED if value is None else Measured(value, sci(value))

    return read


def _severity(*severities: str) -> Callable[[Record], Measured]:
    def read(diagnosis: Record) -> Measured:
        found = [f for f in _findings(diagnosis) if f.get("severity") in severities]
        return Measured(bool(found), _listed(_finding_accounts(found)))

    return read


def _needs_work(diagnosis: Record) -> Measured:
    verdict = diagnosis.get("verdict") or {}
    label = verdict.get("reference")
    if label is None:
        return NOT_MEASURED
    failed = [c.get("name") for c in verdict.get("criteria") or [] if c.get("passed") is not True]
    return Measured(label != SUCCESS, f"{label}" + (f": {', '.join(failed)}" if failed else ""))


def _fp64(diagnosis: Record) -> Measured:
    section = _probes(diagnosis).get(DIVERGENCE)
    if not section:
        return NOT_MEASURED
    passes = {str(s.get("name")): s.get("passes") for s in section.get("scenarios") or []}
    failing = failing_without_random_numbers(passes)
    return Measured(bool(failing), ", ".join(failing))


def _finding(diagnosis: Record, code: str) -> Measured:
    found = [f for f in _findings(diagnosis) if f.get("code") == code]
    return Measured(bool(found), _listed(_finding_accounts(found)))


def _finding_accounts(findings: Sequence[Record]) -> list[str]:
    accounts = []
    for finding in findings:
        entry_point = (finding.get("evidence") or {}).get("entry_point")
        where = f" ({entry_point})" if entry_point else ""
        accounts.append(f"{finding.get('code')} {finding.get('name')}{where}")
    return accounts


_BY_ENTRY_POINT: dict[str, Callable[[Record, Sequence[str] | None], Measured]] = {
    "graph-breaks": _graph_breaks,
    "recompiles": _recompiles,
}
_PER_ENTRY_POINT: dict[str, Callable[[Record, str, str], Measured]] = {
    "frames": _frames,
    "speedup": _speedup,
    "first-call": _first_call,
}
_WHOLE: dict[str, Callable[[Record], Measured]] = {
    "action-diff": _difference(ACTION_DIFF_KEY),
    "loss-diff": _difference(LOSS_DIFF_KEY),
    "error": _severity(Severity.ERROR),
    "warning": _severity(Severity.ERROR, Severity.WARNING),
    "needs-work": _needs_work,
    "fp64": _fp64,
}


# --- a comparison ------------------------------------------------------------------------------


def _breaks_with(status: str) -> Callable[[Comparison], Measured]:
    def read(comparison: Comparison) -> Measured:
        places: dict[tuple[str, int, str], list[str]] = {}
        for change in comparison.breaks_with(status):
            places.setdefault(_change_place(change), []).append(change.entry_point)
        accounts = [f"{p}:{line} {kind} ({', '.join(e)})" for (p, line, kind), e in places.items()]
        return Measured(len(places), _listed(accounts))

    return read


def _change_place(change: BreakChange) -> tuple[str, int, str]:
    location = change.location or {}
    kind = break_kind({"gb_id": change.gb_id, "reason": change.reason})
    return short_path(str(location.get("filename") or "")), int(location.get("lineno") or 0), kind


def _recompiles_added(comparison: Comparison) -> Measured:
    added = comparison.recompiles_with(ADDED)
    accounts = [f"{c.entry_point} '{c.scenario}': {c.guard} ({c.after}x)" for c in added]
    return Measured(sum(c.after for c in added), _listed(accounts))


def _findings_appeared(comparison: Comparison) -> Measured:
    appeared = [
        c
        for c in comparison.findings_with(APPEARED)
        if c.severity in (Severity.ERROR, Severity.WARNING)
    ]
    accounts = [
        f"{c.code} {c.name}" + (f" ({c.entry_point})" if c.entry_point else "") for c in appeared
    ]
    return Measured(len(appeared), _listed(accounts))


def _regressed(entry_point: str) -> Callable[[Comparison], Measured]:
    """Slower beyond the spread: the comparison's call on the entry point's speedup."""

    def read(comparison: Comparison) -> Measured:
        change = comparison.speedup(entry_point)
        if change is None or change.call is None or not change.before or not change.after:
            return NOT_MEASURED
        before, after = change.before, change.after
        shown = (
            f"{speedup_text(before.ratio, before.low, before.high)} -> "
            f"{speedup_text(after.ratio, after.low, after.high)}: {change.call}"
        )
        return Measured(change.call == SLOWER, shown)

    return read


_COMPARING: dict[str, Callable[[Comparison], Measured]] = {
    "graph-breaks.added": _breaks_with(ADDED),
    "graph-breaks.fixed": _breaks_with(FIXED),
    "recompiles.added": _recompiles_added,
    "findings.appeared": _findings_appeared,
    **{f"speedup.{entry}.regressed": _regressed(entry) for entry in ENTRY_POINTS},
}


# --- shared ------------------------------------------------------------------------------------


def _probes(diagnosis: Record) -> Record:
    return diagnosis.get("probes") or {}


def _benchmark(diagnosis: Record) -> Record:
    return _probes(diagnosis).get(BENCHMARK) or {}


def _findings(diagnosis: Record) -> list[Record]:
    return list(diagnosis.get("findings") or [])


def _listed(accounts: Sequence[str]) -> str:
    shown = "; ".join(accounts[:SHOWN])
    more = len(accounts) - SHOWN
    return f"{shown}; and {more} more" if more > 0 else shown
