"""Rich renderables and Markdown for the compile-time record: where the seconds of a compile go,
what each cache answered, what a recompile costs, and what each lever on compile time gave.

Reads what `diagnosis.json` stores under `probes["compile_time"]`: per entry point the summary of
its first compiled call (`EntryCompileTime.summary()`: its stages, cache lookups and frames), the
recompiles' cost, the levers (`CompileLever`, field by field) and the compile threads; its
schema is `probes/records/compile_time.py`. Nothing here decides: which lever to take is not
said, only what each one measured. The stage bar draws each stage with its own colour and its own
character, so that it reads in a terminal without colour and in a copied text too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from analyzer.format import MISSING, count, ms, percent, seconds, short_path, times
from analyzer.render.bars import append_segments
from analyzer.render.grouping import by_entry_point
from analyzer.render.markdown_table import markdown_table
from probes.records.compile_time import (
    AOT_AUTOGRAD,
    AUTOTUNE,
    CACHE,
    CODE_GENERATION,
    CPU_ISA_CHECK,
    DYNAMO,
    GRAPH_PASSES,
    KERNEL_COMPILE,
    LEVER_FAILED,
    LEVER_MEASURED,
    LEVERS,
    LOWERING,
    STAGE_LABELS,
    STAGES,
)
from probes.records.names import COMPILE_TIME
from probes.records.serialize import as_number

# The record's key under "probes" (to move to probes/records/names.py with the runner's step).

# Digits of a compile's seconds: a stage of half a second beside one of fourteen reads as both.
DIGITS = 2
# Columns of the longest entry point's stage bar; the others are drawn to the same scale.
BAR_WIDTH = 64
STAGE_STYLE = {
    CPU_ISA_CHECK: "bright_black",
    DYNAMO: "yellow",
    AOT_AUTOGRAD: "magenta",
    GRAPH_PASSES: "cyan",
    LOWERING: "blue",
    CODE_GENERATION: "green",
    KERNEL_COMPILE: "red",
    AUTOTUNE: "bright_magenta",
    CACHE: "bright_cyan",
}
STAGE_GLYPH = {
    CPU_ISA_CHECK: "·",
    DYNAMO: "█",
    AOT_AUTOGRAD: "▓",
    GRAPH_PASSES: "▒",
    LOWERING: "░",
    CODE_GENERATION: "▚",
    KERNEL_COMPILE: "▄",
    AUTOTUNE: "▀",
    CACHE: "▌",
}
STATUS_LABEL = {LEVER_MEASURED: "measured", LEVER_FAILED: "failed"}
NOT_RUN_LABEL = "not run"
STAGE_COLUMNS = ("stage", "seconds", "share of compile")
FRAME_COLUMNS = ("frame", "part", "function", "seconds", "top stage")
LEVER_COLUMNS = ("lever", "status", "compile", "baseline", "x compile", "median", "default")
# The caches a compile looks up, as a user knows them, and the fields of their lookups.
CACHES = (
    ("FX graph cache", "fx_graph_hits", "fx_graph_misses"),
    ("AOTAutograd cache", "aot_autograd_hits", "aot_autograd_misses"),
    ("remote caches", "remote_hits", "remote_misses"),
)
# A detail's figure is read by the unit its key ends with, as findings' evidence is.
UNIT_SUFFIXES = (
    ("_s", lambda v: seconds(v, digits=DIGITS)),
    ("_ms", ms),
    ("_x", times),
    ("_count", count),
)


def _seconds(value: Any) -> str:
    return seconds(value, digits=DIGITS)


# --- the record, read back ---------------------------------------------------------------------


def has_compile_time_record(probes: Mapping[str, Any]) -> bool:
    """Whether the diagnosis recorded a compile-time section (the probe ran, and measured)."""
    return bool(probes.get(COMPILE_TIME))


def _record(probes: Mapping[str, Any]) -> Mapping[str, Any]:
    record = probes.get(COMPILE_TIME)
    return record if isinstance(record, Mapping) else {}


def _levers_by_entry_point(record: Mapping[str, Any]) -> dict[str, list[Mapping[str, Any]]]:
    """The levers per entry point, in the record's order of levers (`LEVERS`)."""
    return by_entry_point(record.get("levers"), LEVERS)


def _entry_points(record: Mapping[str, Any]) -> list[str]:
    names = [
        *(record.get("entry_points") or {}),
        *(record.get("recompiles") or {}),
        *_levers_by_entry_point(record),
    ]
    return list(dict.fromkeys(names))


def stage_rows(entry: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(stage, seconds) of each stage the compile spent time in, in the order a compile passes
    them; a stage of zero seconds is left out."""
    stages = entry.get("stages") or {}
    rows = [(stage, as_number(stages.get(stage)) or 0.0) for stage in STAGES]
    rows += [(str(s), as_number(v) or 0.0) for s, v in stages.items() if s not in STAGES]
    return [(stage, value) for stage, value in rows if value > 0]


def stage_label(stage: str) -> str:
    return STAGE_LABELS.get(stage, stage.replace("_", " "))


def stage_table_rows(entry: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(stage, seconds, share of compile) per stage the compile spent time in."""
    total = as_number(entry.get("compile_s"))
    return [
        (stage_label(stage), _seconds(value), percent(value / total if total else None))
        for stage, value in stage_rows(entry)
    ]


def title_line(entry_point: str, entry: Mapping[str, Any]) -> str:
    """ "inference: first call 38.10 s, of which compile 36.96 s (97.0 %)"."""
    compile_s = _seconds(entry.get("compile_s"))
    if as_number(entry.get("first_call_s")) is None:
        return f"{entry_point}: compile {compile_s}"
    return (
        f"{entry_point}: first call {_seconds(entry.get('first_call_s'))}, of which compile "
        f"{compile_s} ({percent(entry.get('share_of_first_call'))})"
    )


def _lookups(hits: int, misses: int) -> str:
    parts = []
    if hits:
        parts.append(f"{hits} hit{'' if hits == 1 else 's'}")
    if misses:
        parts.append(f"{misses} miss{'' if misses == 1 else 'es'}")
    return ", ".join(parts)


def cache_line(cache: Mapping[str, Any] | None) -> str:
    """ "FX graph cache: 1 miss; AOTAutograd cache: 1 miss": each cache that was looked up."""
    cache = cache or {}
    parts = []
    for name, hits_key, misses_key in CACHES:
        hits, misses = int(cache.get(hits_key) or 0), int(cache.get(misses_key) or 0)
        if hits or misses:
            parts.append(f"{name}: {_lookups(hits, misses)}")
    return "; ".join(parts) if parts else "no cache lookups recorded"


def where(frame: Mapping[str, Any]) -> str:
    """ "forward lerobot/policies/act/modeling_act.py:120": the compiled function and its line."""
    location = ""
    if frame.get("filename"):
        location = short_path(str(frame["filename"]))
        if frame.get("first_line") is not None:
            location += f":{frame['first_line']}"
    return " ".join(str(p) for p in (frame.get("function"), location) if p) or MISSING


def top_stage(frame: Mapping[str, Any]) -> str:
    stages = [(as_number(v) or 0.0, str(s)) for s, v in (frame.get("stages") or {}).items()]
    best = max(stages, default=(0.0, ""))
    return stage_label(best[1]) if best[0] > 0 else MISSING


def frame_rows(entry: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(tlparse frame id, part, function and line, seconds, top stage) per compile."""
    return [
        (
            f"[{frame.get('compile_id')}]",
            str(frame.get("part") or MISSING),
            where(frame),
            _seconds(frame.get("seconds")),
            top_stage(frame),
        )
        for frame in entry.get("frames") or []
        if isinstance(frame, Mapping)
    ]


def recompile_reason_lines(entry: Mapping[str, Any]) -> list[str]:
    """Why a frame was compiled again, once per frame (its forward and backward share it)."""
    lines = [
        f"[{frame.get('compile_id')}] recompiled: {frame['recompile_reason'].strip()}"
        for frame in entry.get("frames") or []
        if isinstance(frame, Mapping) and frame.get("recompile_reason")
    ]
    return list(dict.fromkeys(lines))


def recompile_lines(recompiles: Sequence[Mapping[str, Any]]) -> list[str]:
    """ "batch size 8 -> 2: 1 compile, 0.31 s with backend eager" per scenario that compiled."""
    lines = []
    for recompile in recompiles:
        compiles = as_number(recompile.get("compiles"))
        if not compiles:
            continue
        word = "compile" if compiles == 1 else "compiles"
        backend = recompile.get("backend")
        lines.append(
            f"{recompile.get('scenario')}: {count(compiles)} {word}, "
            f"{_seconds(recompile.get('compile_s'))}"
            + (f" with backend {backend}" if backend else "")
        )
    return lines


def compile_threads_line(record: Mapping[str, Any]) -> str | None:
    """ "compile threads: 2 of 2 CPUs"; None where neither was recorded."""
    threads, cpus = record.get("compile_threads"), record.get("cpu_count")
    if threads is None and cpus is None:
        return None
    if cpus is None:
        return f"compile threads: {count(threads)}"
    return f"compile threads: {count(threads)} of {count(cpus)} CPU{'' if cpus == 1 else 's'}"


# --- the levers --------------------------------------------------------------------------------


def lever_row(lever: Mapping[str, Any]) -> tuple[str, ...]:
    """One lever as the table shows it: compile and call against the default compile's."""
    compile_s = as_number(lever.get("compile_s"))
    baseline = as_number(lever.get("baseline_compile_s"))
    faster = baseline / compile_s if baseline is not None and compile_s else None
    return (
        str(lever.get("name")),
        STATUS_LABEL.get(str(lever.get("status")), NOT_RUN_LABEL),
        _seconds(compile_s),
        _seconds(baseline),
        times(faster),
        ms(lever.get("median_ms")),
        ms(lever.get("baseline_median_ms")),
    )


def _detail_value(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return ""
    for suffix, text in UNIT_SUFFIXES:
        if key.endswith(suffix):
            return text(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(_detail_item(item) for item in value)
    return count(value) if as_number(value) is not None else str(value)


def _detail_key(key: str) -> str:
    name = next((key[: -len(s)] for s, _ in UNIT_SUFFIXES if key.endswith(s)), key)
    return STAGE_LABELS.get(name, name.replace("_", " "))


def _detail_item(item: Any) -> str:
    """A block a lever compiled, "ACTEncoderLayer x4 (3,200,000 parameters)", or any item."""
    if not isinstance(item, Mapping):
        return str(item)
    if "class_name" in item:
        short_name = str(item["class_name"]).rsplit(".", 1)[-1]
        text = f"{short_name} x{count(item.get('instances'))}"
        if item.get("parameters") is not None:
            text += f" ({count(item['parameters'])} parameters)"
        return text
    return " ".join(f"{_detail_key(str(k))} {_detail_value(str(k), v)}" for k, v in item.items())


def detail_summary(detail: Mapping[str, Any]) -> str:
    """What a lever did, in figures: "fresh process; CPU instruction-set check 6.00 s"."""
    parts = []
    for key, value in detail.items():
        if value is False or value is None or value == 0:
            continue
        text = _detail_value(str(key), value)
        parts.append(f"{_detail_key(str(key))} {text}".strip() if text else _detail_key(str(key)))
    return "; ".join(parts)


def lever_note(lever: Mapping[str, Any]) -> str:
    """Why a lever was not run or failed; what a measured one did and what its caches answered."""
    if lever.get("status") != LEVER_MEASURED:
        return str(lever.get("reason") or "")
    notes = [detail_summary(lever.get("detail") or {})]
    if lever.get("cache"):
        notes.append(cache_line(lever["cache"]))
    if as_number(lever.get("eager_ms")) is not None:
        notes.append(f"eager call {ms(lever.get('eager_ms'))}")
    return "; ".join(n for n in notes if n)


def paste_lines(lever: Mapping[str, Any]) -> list[str]:
    """The code a user writes to apply a measured lever."""
    if lever.get("status") != LEVER_MEASURED:
        return []
    return [line for line in str(lever.get("paste") or "").splitlines() if line.strip()]


# --- the terminal view -----------------------------------------------------------------------


def _look(stage: str) -> tuple[str, str]:
    """A stage's character and colour in the bar and its legend."""
    return STAGE_GLYPH.get(stage, "?"), STAGE_STYLE.get(stage, "")


def stage_bar(entry: Mapping[str, Any], longest_s: float) -> Text:
    """One bar, a segment per stage, to the scale of the longest compile of the diagnosis."""
    scale = BAR_WIDTH / max(longest_s, 1e-9)
    text = Text()
    segments = ((*_look(stage), value) for stage, value in stage_rows(entry))
    done_columns = append_segments(text, segments, scale)
    text.append(f"{' ' * (BAR_WIDTH - done_columns)} {_seconds(entry.get('compile_s'))}")
    return text


def stage_table(entry: Mapping[str, Any]) -> Table:
    """The legend of the bar, with each stage's seconds and share of the compile."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for i, column in enumerate(STAGE_COLUMNS):
        table.add_column(column, justify="left" if i == 0 else "right", no_wrap=True)
    for (stage, _), row in zip(stage_rows(entry), stage_table_rows(entry), strict=True):
        glyph, style = _look(stage)
        legend = Text(glyph * 2 + " ", style=style)
        legend.append(row[0])
        table.add_row(legend, *row[1:])
    return table


def frame_table(entry: Mapping[str, Any]) -> Table:
    """The compiles of the first call; the function's cell wraps (before its source path) where
    the row is wider than the terminal."""
    table = Table(
        title="Frames",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        padding=0,  # the box's divider is the one space between columns: a path fits 80
        pad_edge=False,
        show_edge=False,
    )
    for column in FRAME_COLUMNS:
        function = column == "function"
        table.add_column(
            column,
            justify="right" if column == "seconds" else "left",
            no_wrap=not function,
            overflow="fold" if function else "ellipsis",
        )
    for row in frame_rows(entry):
        table.add_row(*row)
    return table


def lever_table(levers: Sequence[Mapping[str, Any]], title: str) -> Table:
    """The figures of each lever; its note is a line below the table (`lever_notes`), since a
    sentence does not fit a column: so the table fits 80 columns with the longest name whole."""
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    for i, column in enumerate(LEVER_COLUMNS):
        table.add_column(column, justify="left" if i < 2 else "right", no_wrap=True)
    for lever in levers:
        table.add_row(*lever_row(lever))
    return table


def lever_notes(levers: Sequence[Mapping[str, Any]]) -> Group:
    """Below the table: why a lever did not run, what a measured one did; then the code that
    applies it, on lines of their own so that a line of code is not folded into a column."""
    name_width = max((len(str(lever.get("name"))) for lever in levers), default=0) + 3
    parts: list[RenderableType] = []
    for lever in levers:
        note = lever_note(lever)
        if note:
            grid = Table.grid(padding=(0, 1))
            grid.add_column(no_wrap=True, width=name_width)
            grid.add_column(overflow="fold")
            grid.add_row(f"  {lever.get('name')}:", Text(note, style="dim"))
            parts.append(grid)
        parts += [Text(f"    {line}", style="green") for line in paste_lines(lever)]
    return Group(*parts)


def entry_compile_time_view(
    entry_point: str,
    entry: Mapping[str, Any] | None,
    recompiles: Sequence[Mapping[str, Any]],
    levers: Sequence[Mapping[str, Any]],
    longest_s: float,
) -> RenderableType:
    parts: list[RenderableType] = []
    if entry:
        parts.append(Text(title_line(entry_point, entry), style="bold"))
        if stage_rows(entry):
            parts += [stage_bar(entry, longest_s), stage_table(entry)]
        parts.append(Text(cache_line(entry.get("cache"))))
        if entry.get("frames"):
            parts.append(frame_table(entry))
        else:
            parts.append(Text("no frame compiled during the first call", style="dim"))
        parts += [Text(line, style="dim") for line in recompile_reason_lines(entry)]
    if recompile_lines(recompiles or []):
        parts.append(Text(f"Recompiles: {entry_point}", style="bold"))
        parts += [Text(f"  {line}") for line in recompile_lines(recompiles)]
    if levers:
        parts.append(lever_table(levers, title=f"Levers on compile time: {entry_point}"))
        parts.append(lever_notes(levers))
    return Group(*parts)


def _longest_compile_s(record: Mapping[str, Any]) -> float:
    entries = (record.get("entry_points") or {}).values()
    return max((as_number(e.get("compile_s")) or 0.0 for e in entries), default=0.0)


def compile_time_view(probes: Mapping[str, Any]) -> RenderableType:
    """Per entry point: the title line, the stage bar and its legend, the cache lookups, the
    frames, the recompiles' cost and the levers; then the compile threads."""
    record = _record(probes)
    entries = record.get("entry_points") or {}
    recompiles = record.get("recompiles") or {}
    levers = _levers_by_entry_point(record)
    longest_s = _longest_compile_s(record)
    parts: list[RenderableType] = []
    for entry_point in _entry_points(record):
        if parts:
            parts.append(Text())
        parts.append(
            entry_compile_time_view(
                entry_point,
                entries.get(entry_point),
                recompiles.get(entry_point) or [],
                levers.get(entry_point, []),
                longest_s,
            )
        )
    threads = compile_threads_line(record)
    if threads:
        parts += [Text(), Text(threads)]
    return Group(*parts)


# --- Markdown ---------------------------------------------------------------------------------


def _entry_markdown(entry_point: str, entry: Mapping[str, Any]) -> list[str]:
    lines = [f"{title_line(entry_point, entry)}.", ""]
    if stage_rows(entry):
        lines += markdown_table(STAGE_COLUMNS, stage_table_rows(entry))
    lines += [f"{cache_line(entry.get('cache'))}.", ""]
    if entry.get("frames"):
        lines += markdown_table(FRAME_COLUMNS, frame_rows(entry))
    else:
        lines += ["No frame compiled during the first call.", ""]
    lines += [f"- {line}" for line in recompile_reason_lines(entry)]
    return lines + ([""] if recompile_reason_lines(entry) else [])


def _levers_markdown(entry_point: str, levers: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [f"Levers on compile time for {entry_point}:", ""]
    lines += markdown_table(
        (*LEVER_COLUMNS, "note"), [(*lever_row(lever), lever_note(lever)) for lever in levers]
    )
    for lever in levers:
        if paste_lines(lever):
            lines += [f"{lever.get('name')}:", "", "```python", *paste_lines(lever), "```", ""]
    return lines


def compile_time_markdown(probes: Mapping[str, Any]) -> list[str]:
    """The "Compile time" section's lines: a stage table per entry point, its frames, its
    recompiles and its levers, then the compile threads."""
    if not has_compile_time_record(probes):
        return []
    record = _record(probes)
    entries = record.get("entry_points") or {}
    recompiles = record.get("recompiles") or {}
    levers = _levers_by_entry_point(record)
    lines = ["## Compile time", ""]
    for entry_point in _entry_points(record):
        lines += [f"### {entry_point.capitalize()}", ""]
        if entries.get(entry_point):
            lines += _entry_markdown(entry_point, entries[entry_point])
        if recompile_lines(recompiles.get(entry_point) or []):
            lines += ["Recompiles:", ""]
            lines += [f"- {line}" for line in recompile_lines(recompiles[entry_point])] + [""]
        if levers.get(entry_point):
            lines += _levers_markdown(entry_point, levers[entry_point])
    threads = compile_threads_line(record)
    if threads:
        lines += [threads[0].upper() + threads[1:] + ".", ""]
    return lines
