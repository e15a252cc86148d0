"""The compile-time section, rendered from a recorded fixture of the ACT cpu preset's compile
(`tests/fixtures/compile_time_act_cpu.json`): the stage bar and its legend, the cache lookups,
the frames, the recompiles and the levers, in the terminal (80 columns) and in Markdown. No
torch."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from analyzer.format import seconds
from analyzer.render.compile_time import (
    BAR_WIDTH,
    STAGE_GLYPH,
    compile_time_markdown,
    compile_time_view,
    has_compile_time_record,
)
from probes.records.compile_time import STAGE_LABELS, STAGES

FIXTURE = Path(__file__).parent / "fixtures" / "compile_time_act_cpu.json"
WIDTH = 80


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text())["probes"]


@pytest.fixture
def probes(recorded: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(recorded)


def lines_of(probes: dict[str, Any]) -> list[str]:
    console = Console(record=True, width=WIDTH, color_system=None)
    console.print(compile_time_view(probes))
    return [line.rstrip() for line in console.export_text().splitlines()]


def entries(probes: dict[str, Any]) -> dict[str, Any]:
    return probes["compile_time"]["entry_points"]


def stage_figures(entry: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(stage, label, seconds as shown) of each stage the entry point's compile spent time in."""
    return [
        (stage, STAGE_LABELS[stage], seconds(entry["stages"][stage], digits=2))
        for stage in STAGES
        if entry["stages"][stage] > 0
    ]


def line_with(lines: list[str], *parts: str) -> str:
    found = [line for line in lines if all(part in line for part in parts)]
    assert found, f"no line holds {parts}"
    return found[0]


def test_the_record_is_there_or_not(probes: dict[str, Any]) -> None:
    assert has_compile_time_record(probes)
    assert not has_compile_time_record({"benchmark": {}})
    assert compile_time_markdown({"benchmark": {}}) == []


def test_view_fits_80_columns_and_cuts_nothing(probes: dict[str, Any]) -> None:
    lines = lines_of(probes)
    assert max(cell_len(line) for line in lines) <= WIDTH
    assert not any("…" in line for line in lines)  # no cell cut short to fit
    line_with(lines, "lerobot/policies/act/modeling_act.py:120")  # the source line whole
    line_with(lines, "for layer in policy.model.encoder.layers:")
    line_with(lines, "compile threads: 2 of 2 CPUs")


def test_view_gives_each_entry_point_its_first_call_and_compile(probes: dict[str, Any]) -> None:
    lines = lines_of(probes)
    line_with(lines, "inference: first call 38.10 s, of which compile 36.96 s (97.0 %)")
    line_with(lines, "training: first call 53.80 s, of which compile 52.50 s (97.6 %)")


def test_view_legend_holds_each_stage_with_its_seconds(probes: dict[str, Any]) -> None:
    lines = lines_of(probes)
    for entry in entries(probes).values():
        for stage, label, shown in stage_figures(entry):
            line_with(lines, f"{STAGE_GLYPH[stage] * 2} {label}", shown)
    text = "\n".join(lines)
    # no stage of either compile spent time in autotuning or in the caches: left out
    assert STAGE_LABELS["autotune"] not in text
    assert STAGE_LABELS["cache"] not in text
    line_with(lines, STAGE_LABELS["cpu_isa_check"], "6.20 s", "16.8 %")


def test_bar_is_one_line_to_the_scale_of_the_longest_compile(probes: dict[str, Any]) -> None:
    lines = lines_of(probes)
    glyphs = set(STAGE_GLYPH.values())
    bars = {
        line.rsplit(" ", 2)[-2]: line
        for line in lines
        if line and line[0] in glyphs and line.endswith(" s")
    }
    assert set(bars) == {"36.96", "52.50"}

    def columns(bar: str, glyph: str | None = None) -> int:
        return sum(1 for c in bar if (c == glyph if glyph else c in glyphs))

    assert columns(bars["52.50"]) == BAR_WIDTH
    assert columns(bars["36.96"]) == round(BAR_WIDTH * 36.96 / 52.5)
    # code generation's 14.46 s of the 52.5 s scale, to a column's rounding
    scale = BAR_WIDTH / 52.5
    assert abs(columns(bars["36.96"], STAGE_GLYPH["code_generation"]) - 14.46 * scale) <= 1
    assert abs(columns(bars["52.50"], STAGE_GLYPH["kernel_compile"]) - 18.4 * scale) <= 1


def test_view_gives_cache_lookups_frames_and_recompiles(probes: dict[str, Any]) -> None:
    lines = lines_of(probes)
    line_with(lines, "FX graph cache: 1 miss; AOTAutograd cache: 1 miss")
    line_with(lines, "FX graph cache: 2 misses; AOTAutograd cache: 1 miss")
    line_with(lines, "[0/0]", "forward", "30.76 s", "code generation")
    line_with(lines, "[1/0]", "forward", "40.20 s", "code generation")
    line_with(lines, "[1/0]", "backward", "12.30 s", "code generation")
    line_with(lines, "batch size 8 -> 2: 1 compile, 31.20 s")


def test_view_gives_each_lever_its_status_and_figures(probes: dict[str, Any]) -> None:
    lines = lines_of(probes)
    # compile against the default compile's, "x compile" = baseline / compile, call medians
    line_with(lines, "warm-cache", "measured", "3.10 s", "30.76 s", "9.92x", "14.20 ms", "14.00 ms")
    line_with(lines, "portable-cache", "measured", "21.30 s", "1.44x", "14.10 ms")
    line_with(lines, "regional-compilation", "measured", "12.00 s", "2.56x", "15.90 ms")
    line_with(lines, "dynamic-shapes", "not run")
    line_with(lines, "dynamic-shapes:", "no recompile scenario changed a size")
    line_with(lines, "warm-cache:", "fresh process")
    line_with(lines, "regional-compilation:", "ACTEncoderLayer x4")


def test_markdown_holds_the_same_figures(probes: dict[str, Any]) -> None:
    lines = compile_time_markdown(probes)
    assert lines[0] == "## Compile time"
    for entry in entries(probes).values():
        for _, label, shown in stage_figures(entry):
            assert f"| {label} | {shown} |" in "\n".join(lines)
    line_with(lines, "inference: first call 38.10 s, of which compile 36.96 s (97.0 %)")
    line_with(lines, "FX graph cache: 1 miss; AOTAutograd cache: 1 miss")
    line_with(lines, "| [0/0] | forward |", "modeling_act.py:120 | 30.76 s | code generation |")
    line_with(lines, "| [1/0] | backward |", "12.30 s")
    line_with(lines, "- batch size 8 -> 2: 1 compile, 31.20 s")
    line_with(lines, "| warm-cache | measured | 3.10 s | 30.76 s | 9.92x | 14.20 ms | 14.00 ms |")
    line_with(lines, "| dynamic-shapes | not run |", "no recompile scenario changed a size |")
    line_with(lines, "    layer.compile()")
    assert "Compile threads: 2 of 2 CPUs." in lines


def test_an_entry_point_without_frames_renders(probes: dict[str, Any]) -> None:
    training = entries(probes)["training"]
    training.update(
        frames=[],
        compile_s=0.0,
        share_of_first_call=0.0,
        stages=dict.fromkeys(STAGES, 0.0),
        cache={},
    )
    lines = lines_of(probes)
    line_with(lines, "training: first call 53.80 s, of which compile 0.00 s (0.0 %)")
    line_with(lines, "no frame compiled during the first call")
    assert max(cell_len(line) for line in lines) <= WIDTH
    markdown = compile_time_markdown(probes)
    line_with(markdown, "No frame compiled during the first call.")
    assert not any("[1/0]" in line for line in markdown)
