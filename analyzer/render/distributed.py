"""The diagnosis on several processes, for the terminal and the Markdown report: one row per
rank, the graph breaks by whose code they are in, DDPOptimizer's splits, how each process
ended, and where the merged trace and the multi-rank compile report are.

Reads `probes["distributed"]` (`probes/records/distributed.py`). Nothing here decides: what a
difference between ranks means is the findings'. A figure a rank did not reach says why.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from analyzer.format import MISSING, file_link, mebibytes, ms, percent, seconds, short_path
from analyzer.render.markdown_table import markdown_table
from probes.records.distributed import (
    BREAK_IN_ACCELERATE,
    BREAK_IN_DDP,
    BREAK_IN_USER,
    COMPILE,
    COMPILE_INSIDE_DDP,
    MODEL_COMPILED,
    ORIGIN_LABELS,
    PROFILE,
    STEPS,
    WRAPPER_COMPILED,
    is_frame,
)
from probes.records.serialize import as_number

COLUMNS = (
    "rank",
    "status",
    "first step",
    "compiling",
    "warm step",
    "frames (recompiles)",
    "breaks: DDP / Accelerate / model",
    "DDPOptimizer buckets",
    "communication (exposed)",
)


def settings_line(section: Mapping[str, Any]) -> str:
    settings = section.get("settings") or {}
    bucket = settings.get("bucket_cap_mb")
    line = (
        f"{section.get('world_size')} ranks, started by {section.get('launcher')}, process group "
        f"{section.get('process_group') or MISSING}; DDP find_unused_parameters="
        f"{settings.get('find_unused_parameters')}, bucket_cap_mb="
        f"{'25 (DDP default)' if bucket is None else bucket}, autocast "
        f"{settings.get('autocast') or 'off'}; {_compiled_how(section)}"
    )
    if as_number(section.get("wall_s")) is not None:
        line += f"; launch {seconds(section['wall_s'])}"
    return line


def _compiled_how(section: Mapping[str, Any]) -> str:
    """How the ranks compiled, as rank 0 recorded it (`--ddp-compile`)."""
    for rank in section.get("ranks") or []:
        how = (rank.get("compile_settings") or {}).get("how")
        if how:
            return str(how)
    where = (section.get("settings") or {}).get("compile_where")
    return (
        MODEL_COMPILED.format(how="the model") if where == COMPILE_INSIDE_DDP else WRAPPER_COMPILED
    )


def _not_reached(rank: Mapping[str, Any], phase: str) -> str:
    return "—" if phase in (rank.get("phases_done") or []) else f"not reached ({rank.get('phase')})"


def _compile_s(rank: Mapping[str, Any]) -> float | None:
    phase = [c for c in rank.get("compiles") or [] if c.get("phase") == COMPILE]
    return sum(as_number(c.get("seconds")) or 0.0 for c in phase) if phase else None


def _breaks(rank: Mapping[str, Any]) -> str:
    if COMPILE not in (rank.get("phases_done") or []) and not rank.get("breaks"):
        return _not_reached(rank, COMPILE)
    by_origin = [
        sum(b.get("hits", 1) for b in rank.get("breaks") or [] if b.get("origin") == origin)
        for origin in (BREAK_IN_DDP, BREAK_IN_ACCELERATE, BREAK_IN_USER)
    ]
    return " / ".join(str(n) for n in by_origin)


def _buckets(rank: Mapping[str, Any]) -> str:
    splits = rank.get("splits") or []
    if not splits:
        return "no split" if COMPILE in (rank.get("phases_done") or []) else MISSING
    return "; ".join(
        " + ".join(mebibytes((b or 0) / 2**20) for b in split.get("bucket_bytes") or [])
        for split in splits
    )


def _comm(rank: Mapping[str, Any]) -> str:
    comm = rank.get("comm")
    if not comm:
        return _not_reached(rank, PROFILE)
    window = as_number(comm.get("window_ms"))
    exposed = as_number(comm.get("exposed_comm_ms"))
    share = percent(exposed / window) if window and exposed is not None else MISSING
    return f"{ms(comm.get('comm_ms'))} ({ms(exposed)}, {share} of the steps)"


def _status(rank: Mapping[str, Any]) -> str:
    status = str(rank.get("status"))
    phase = rank.get("error_phase") or rank.get("phase")
    return status if status == "complete" else f"{status} in {phase}"


def rank_row(rank: Mapping[str, Any]) -> tuple[str, ...]:
    compiles = rank.get("compiles") or []
    frames = sum(1 for c in compiles if is_frame(c))
    recompiles = sum(1 for c in compiles if c.get("recompile_reason"))
    steps = [s for s in (as_number(v) for v in rank.get("step_ms") or []) if s is not None]
    first = as_number(rank.get("first_step_s"))
    compile_s = _compile_s(rank)
    return (
        str(rank.get("rank")),
        _status(rank),
        seconds(first) if first is not None else _not_reached(rank, COMPILE),
        seconds(compile_s) if compile_s is not None else MISSING,
        ms(statistics.median(steps)) if steps else _not_reached(rank, STEPS),
        f"{frames} ({recompiles})" if compiles else MISSING,
        _breaks(rank),
        _buckets(rank),
        _comm(rank),
    )


def break_lines(ranks: Sequence[Mapping[str, Any]]) -> list[str]:
    """The distinct breaks of the first rank that met any, by whose code they are in."""
    rank = next((r for r in ranks if r.get("breaks")), None)
    if rank is None:
        return []
    lines = [f"graph breaks on rank {rank['rank']} (DDPOptimizer splits are not breaks):"]
    for origin, label in ORIGIN_LABELS.items():
        for b in [b for b in rank["breaks"] if b.get("origin") == origin]:
            location = b.get("location") or {}
            where = f"{short_path(str(location.get('filename', '')))}:{location.get('lineno')}"
            hits = f" x{b['hits']}" if (b.get("hits") or 1) > 1 else ""
            lines.append(
                f"  {label}: {b.get('gb_id') or ''} {b.get('reason')} at {where}{hits}".replace(
                    ":  ", ": "
                )
            )
    return lines


def recompile_lines(ranks: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for rank in ranks:
        for c in rank.get("compiles") or []:
            if c.get("recompile_reason"):
                reason = str(c["recompile_reason"]).strip().splitlines()[0]
                lines.append(
                    f"rank {rank['rank']} recompiled {c.get('function')} ({c.get('phase')}): "
                    f"{reason}"
                )
    return lines


def ending_lines(section: Mapping[str, Any]) -> list[str]:
    """How the processes ended (torchrun's failure summary), the timeout, and the files."""
    lines = []
    for outcome in section.get("outcomes") or []:
        first = " (first failure)" if outcome.get("first_failure") else ""
        signal = f", {outcome['signal']}" if outcome.get("signal") else ""
        lines.append(
            f"rank {outcome.get('rank')} ended with exit code {outcome.get('exit_code')}"
            f"{signal}{first}"
        )
    if section.get("timed_out"):
        lines.append(f"the launch ran past its timeout of {seconds(section.get('timeout_s'))}")
    trace = section.get("merged_trace")
    lines.append(
        f"every rank's profile, one process per rank (Perfetto): {trace}"
        if trace
        else f"no merged trace: {section.get('merged_trace_error') or 'not written'}"
    )
    report = section.get("tlparse_report")
    lines.append(
        f"every rank's compiles (tlparse --all-ranks-html): {file_link(report)}"
        if report
        else f"no multi-rank compile report: {section.get('tlparse_error') or 'not written'}"
    )
    return lines


def _ranks(section: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in section.get("ranks") or [] if isinstance(r, Mapping)]


def distributed_view(section: Mapping[str, Any] | None) -> RenderableType | None:
    """The section in the terminal; None for a diagnosis on one process."""
    if not section:
        return None
    ranks = _ranks(section)
    table = Table(title="per rank", box=box.SIMPLE_HEAD, title_justify="left")
    for column in COLUMNS:
        table.add_column(column)
    for rank in ranks:
        table.add_row(*rank_row(rank))
    parts: list[RenderableType] = [
        Text("distributed", style="bold"),
        Text(settings_line(section)),
        table,
    ]
    if not ranks:
        parts.append(Text("no rank wrote a record", style="yellow"))
    other = [*break_lines(ranks), *recompile_lines(ranks), *ending_lines(section)]
    parts.extend(Text(line, style="dim" if line.startswith("every") else "") for line in other)
    return Group(*parts)


def distributed_markdown(section: Mapping[str, Any] | None) -> list[str]:
    """The section as Markdown lines; none for a diagnosis on one process."""
    if not section:
        return []
    ranks = _ranks(section)
    lines = ["## Distributed (per rank)", "", settings_line(section), ""]
    lines += markdown_table(COLUMNS, [rank_row(r) for r in ranks])
    other = [*break_lines(ranks), *recompile_lines(ranks), *ending_lines(section)]
    lines += [f"{'  ' if line.startswith(' ') else ''}- {line.strip()}" for line in other]
    return [*lines, ""]
