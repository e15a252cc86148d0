"""Graph breaks, recompiles and the compile figures of two diagnoses, matched.

A graph break is one reason at one source line of one entry point. Two runs' breaks match on
the file, the line and torch's GB id (the break's reason where it has none); a break whose line
moved (a line added above it) or whose checkout lives elsewhere matches on the file's name, the
function, the line's code and the GB id. A recompile matches on its scenario and failing guard.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from analyzer.comparison.changes import (
    ADDED,
    COUNT,
    FIXED,
    SECONDS,
    UNCHANGED,
    BreakChange,
    FigureChange,
    NotCompared,
    RecompileChange,
)
from analyzer.comparison.sides import in_both, not_compared, one_sided
from analyzer.format import short_path
from analyzer.rules.compile import RECOMPILATION
from probes.records.compile import RECOMPILES_KEY, entry_point_reports
from probes.records.names import BENCHMARK, COMPILE_TIME, GRAPH_BREAKS, KERNELS, SPEED_WHAT_IFS
from probes.records.serialize import as_number

Record = Mapping[str, Any]

# --- graph breaks ------------------------------------------------------------------------------


def break_kind(graph_break: Record) -> str:
    """What broke: torch's GB id, or its reason where torch gives no id."""
    return str(graph_break.get("gb_id") or graph_break.get("reason") or "")


def break_place(graph_break: Record) -> tuple[str, int, str]:
    """Where and what: the file as a reader knows it, the line, the GB id (or reason)."""
    location = graph_break.get("location") or {}
    filename = short_path(str(location.get("filename") or ""))
    return filename, int(location.get("lineno") or 0), break_kind(graph_break)


def _moved_place(graph_break: Record) -> tuple[str, str, str, str]:
    """The same break after its line moved or its checkout did: file name, function, code
    (the line number where no code was recorded)."""
    location = graph_break.get("location") or {}
    name = Path(str(location.get("filename") or "")).name
    code = str(location.get("code") or f"line {location.get('lineno')}")
    return name, str(location.get("function") or ""), code, break_kind(graph_break)


def graph_break_changes(
    before: Record, after: Record
) -> tuple[list[BreakChange], list[NotCompared]]:
    """Each entry point's breaks, fixed, added or unchanged; entry points one side lacks."""
    one = entry_point_reports(before.get(GRAPH_BREAKS) or {})
    other = entry_point_reports(after.get(GRAPH_BREAKS) or {})
    changes: list[BreakChange] = []
    for entry_point in in_both(one, other):
        changes += _entry_break_changes(
            entry_point,
            one[entry_point].get("breaks") or [],
            other[entry_point].get("breaks") or [],
        )
    return changes, not_compared("graph breaks", one, other)


def _entry_break_changes(
    entry_point: str, before: Sequence[Record], after: Sequence[Record]
) -> list[BreakChange]:
    unmatched = list(before)
    changes = []
    for graph_break in after:
        match = _take(unmatched, graph_break, break_place) or _take(
            unmatched, graph_break, _moved_place
        )
        status = ADDED if match is None else UNCHANGED
        changes.append(_break_change(entry_point, status, graph_break, match, graph_break))
    changes += [_break_change(entry_point, FIXED, b, b, None) for b in unmatched]
    return changes


def _take(
    candidates: list[Record], graph_break: Record, key: Callable[[Record], Any]
) -> Record | None:
    """The first candidate with the same key as `graph_break`, removed from `candidates`."""
    wanted = key(graph_break)
    for index, candidate in enumerate(candidates):
        if key(candidate) == wanted:
            return candidates.pop(index)
    return None


def _break_change(
    entry_point: str, status: str, shown: Record, before: Record | None, after: Record | None
) -> BreakChange:
    return BreakChange(
        entry_point=entry_point,
        status=status,
        gb_id=shown.get("gb_id"),
        reason=str(shown.get("reason") or ""),
        category=str(shown.get("category") or ""),
        location=shown.get("location"),
        hits_before=int(before.get("hits") or 0) if before else 0,
        hits_after=int(after.get("hits") or 0) if after else 0,
    )


# --- recompiles --------------------------------------------------------------------------------


def recompile_reports(probes: Record) -> dict[str, Record]:
    """The recompile probe's report of each entry point, as recorded."""
    section = (probes.get(GRAPH_BREAKS) or {}).get(RECOMPILES_KEY) or {}
    return {str(k): v for k, v in section.items() if isinstance(v, Mapping)}


def recompile_changes(
    before: Record,
    after: Record,
    findings_before: Sequence[Record],
    findings_after: Sequence[Record],
) -> tuple[list[RecompileChange], list[NotCompared]]:
    """Each scenario's failing guards, with their recompiles before and after."""
    one, other = recompile_reports(before), recompile_reports(after)
    changes: list[RecompileChange] = []
    missing = not_compared("recompiles", one, other)
    for entry_point in in_both(one, other):
        scenarios_before = _scenarios(one[entry_point])
        scenarios_after = _scenarios(other[entry_point])
        missing += [
            NotCompared(f"recompile scenario '{name}'", entry_point, side)
            for name, side in one_sided(scenarios_before, scenarios_after)
        ]
        for scenario in in_both(scenarios_before, scenarios_after):
            guards_before = _guard_counts(scenarios_before[scenario])
            guards_after = _guard_counts(scenarios_after[scenario])
            for guard in dict.fromkeys([*guards_before, *guards_after]):
                count_before, count_after = guards_before[guard], guards_after[guard]
                changes.append(
                    RecompileChange(
                        entry_point=entry_point,
                        scenario=scenario,
                        guard=guard,
                        status=_status(count_before, count_after),
                        before=count_before,
                        after=count_after,
                        by_design=_by_design(
                            findings_after if count_after else findings_before,
                            entry_point,
                            scenario,
                            guard,
                        ),
                    )
                )
    return changes, missing


def _scenarios(report: Record) -> dict[str, Record]:
    return {str(s.get("name")): s for s in report.get("scenarios") or [] if isinstance(s, Mapping)}


def _guard_counts(scenario: Record) -> Counter[str]:
    return Counter(str(r.get("guard")) for r in scenario.get("recompiles") or [])


def _status(before: int, after: int) -> str:
    if before and not after:
        return FIXED
    if after and not before:
        return ADDED
    return UNCHANGED


def _by_design(
    findings: Sequence[Record], entry_point: str, scenario: str, guard: str
) -> bool | None:
    """The recompile rule's reading of this guard: a recompile torch makes by design, or not."""
    for finding in findings:
        evidence = finding.get("evidence") or {}
        guards = evidence.get("failing_guards") or [evidence.get("failing_guard")]
        if (
            finding.get("code") == RECOMPILATION.code
            and evidence.get("entry_point") == entry_point
            and evidence.get("scenario") == scenario
            and guard in guards
        ):
            return bool(evidence.get("by_design"))
    return None


# --- compile figures ---------------------------------------------------------------------------


def figure_changes(before: Record, after: Record) -> list[FigureChange]:
    """Frames, graphs, compiled regions, CUDA graphs and compile time, where either side has one."""
    one, other = dict(_figures(before)), dict(_figures(after))
    changes = []
    for key in dict.fromkeys([*one, *other]):
        name, entry_point, unit = key
        value_before, value_after = one.get(key), other.get(key)
        if value_before is not None or value_after is not None:
            changes.append(FigureChange(name, entry_point, value_before, value_after, unit))
    return changes


def _figures(probes: Record) -> Iterator[tuple[tuple[str, str, str], float | None]]:
    for entry_point, report in entry_point_reports(probes.get(GRAPH_BREAKS) or {}).items():
        yield ("graphs (explain)", entry_point, COUNT), as_number(report.get("graph_count"))
    for entry_point, report in recompile_reports(probes).items():
        yield ("recompiles", entry_point, COUNT), as_number(report.get("recompile_count"))
    benchmark = probes.get(BENCHMARK) or {}
    for entry_point, capture in (benchmark.get("capture") or {}).items():
        yield ("frames compiled", entry_point, COUNT), as_number(capture.get("frames_compiled"))
        yield ("graphs captured", entry_point, COUNT), as_number(capture.get("graphs_captured"))
        yield (
            ("compiled regions in a warm call", entry_point, COUNT),
            as_number(capture.get("compiled_region_events")),
        )
    for entry_point, timing in (benchmark.get("timings") or {}).items():
        yield (
            ("first compiled call", entry_point, SECONDS),
            as_number(timing.get("compiled_first_call_s")),
        )
    compile_time = (probes.get(COMPILE_TIME) or {}).get("entry_points") or {}
    for entry_point, record in compile_time.items():
        yield ("compile", entry_point, SECONDS), as_number(record.get("compile_s"))
        # a compile that found Inductor's cache warm is faster for that reason alone
        cache = record.get("cache") or {}
        yield ("FX graph cache hits", entry_point, COUNT), as_number(cache.get("fx_graph_hits"))
        yield (
            ("FX graph cache misses", entry_point, COUNT),
            as_number(cache.get("fx_graph_misses")),
        )
    for kernels in (probes.get(KERNELS) or {}).get("entry_points") or []:
        compiled = kernels.get("compiled") or {}
        yield (
            ("CUDA-graph replays per call", str(kernels.get("name")), COUNT),
            as_number(compiled.get("cudagraph_replays_per_call")),
        )
    for what_if in probes.get(SPEED_WHAT_IFS) or []:
        yield (
            (f"CUDA-graph skips ({what_if.get('name')})", str(what_if.get("entry_point")), COUNT),
            as_number(what_if.get("cudagraph_skips")),
        )
