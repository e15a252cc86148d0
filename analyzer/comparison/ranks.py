"""A diagnosis merged from several ranks, read as the comparison reads one process's.

The ranks train one step under DDP (`probes.records.distributed`): their distinct graph breaks
are the breaks of the training entry point, and their first step, warm step, frames,
recompiles and exposed communication are its figures. Two `--nproc` runs (say
`--ddp-compile wrapper` against `model`) then compare break by break and figure by figure.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from analyzer.comparison.changes import COUNT, SECONDS, FigureChange
from analyzer.comparison.compile import break_place
from probes.records.distributed import COMPILE, DISTRIBUTED, is_frame
from probes.records.names import GRAPH_BREAKS, TRAINING
from probes.records.serialize import as_number

Record = Mapping[str, Any]


def with_rank_breaks(probes: Record) -> Record:
    """`probes`, with the ranks' distinct breaks as the training entry point's graph-break
    report where the run was on several ranks (and has no one-process graph breaks)."""
    ranks = compiled_ranks(probes)
    if not ranks or probes.get(GRAPH_BREAKS):
        return probes
    breaks = [first for first, _ in distinct_rank_breaks(ranks).values()]
    return {**probes, GRAPH_BREAKS: {TRAINING: {"breaks": breaks}}}


def distinct_rank_breaks(
    ranks: Sequence[Record],
) -> dict[tuple[str, int, str], tuple[Record, list[int]]]:
    """Each distinct break the ranks met (one reason at one line, `break_place`): the first
    rank's record of it, and the ranks that met it."""
    places: dict[tuple[str, int, str], tuple[Record, list[int]]] = {}
    for rank in ranks:
        for graph_break in rank.get("breaks") or []:
            _, seen = places.setdefault(break_place(graph_break), (graph_break, []))
            seen.append(int(rank.get("rank") or 0))
    return places


def rank_figure_changes(before: Record, after: Record) -> list[FigureChange]:
    """The ranks' figures of the training step, where either run was on several ranks."""
    one, other = dict(_figures(before)), dict(_figures(after))
    return [
        FigureChange(name, TRAINING, one.get(name), other.get(name), unit)
        for name, unit in _NAMES
        if one.get(name) is not None or other.get(name) is not None
    ]


# What a rank figure is called, and its unit, in the order the comparison shows them.
FIRST_STEP = "first step, the slowest rank's"
WARM_STEP = "warm step, the median rank's median"
FRAMES = "frames compiled, the most of a rank"
RECOMPILES = "recompiles, all ranks"
EXPOSED_COMM = "communication with no compute beside it, per step, the most of a rank"
_NAMES = (
    (FIRST_STEP, SECONDS),
    (WARM_STEP, SECONDS),
    (FRAMES, COUNT),
    (RECOMPILES, COUNT),
    (EXPOSED_COMM, SECONDS),
)


def _figures(probes: Record) -> Iterator[tuple[str, float | None]]:
    ranks = compiled_ranks(probes)
    if not ranks:
        return
    yield FIRST_STEP, _most(as_number(r.get("first_step_s")) for r in ranks)
    medians = [statistics.median(r["step_ms"]) / 1e3 for r in ranks if r.get("step_ms")]
    yield WARM_STEP, statistics.median(medians) if medians else None
    compiles = [r.get("compiles") or [] for r in ranks]
    yield FRAMES, _most(sum(1 for c in rank if is_frame(c)) for rank in compiles)
    yield RECOMPILES, sum(1 for rank in compiles for c in rank if c.get("recompile_reason"))
    exposed = []
    for rank in ranks:
        comm = rank.get("comm") or {}
        steps, ms = as_number(comm.get("steps")), as_number(comm.get("exposed_comm_ms"))
        if steps and ms is not None:
            exposed.append(ms / steps / 1e3)
    yield EXPOSED_COMM, max(exposed) if exposed else None


def compiled_ranks(probes: Record) -> list[Record]:
    """The ranks whose training step compiled (none for a one-process run)."""
    section = probes.get(DISTRIBUTED) or {}
    return [r for r in section.get("ranks") or [] if COMPILE in (r.get("phases_done") or [])]


def _most(values: Iterator[float | int | None]) -> float | None:
    numbers = [v for v in values if v is not None]
    return max(numbers) if numbers else None
