"""Compile rules and their rendering, on probe results recorded from real runs (no torch).

The fixtures were recorded on the CPU from a small ACT (`graph_breaks_act.json`,
`graph_breaks_wrapper.json`, `graph_breaks_limit.json`) and from `planted_breaks.py`
(`graph_breaks_planted.json`). Expected values are read from the fixtures, not written here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from analyzer.findings import Severity
from analyzer.format import short_path
from analyzer.render.graph_breaks import GraphBreakTable, RecompileTable, graph_breaks_view
from analyzer.rules import RULE_MODULES, run_rules
from analyzer.rules.compile import check

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).parent.parent


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"graph_breaks_{name}.json").read_text(encoding="utf-8"))


def named(findings, name: str):
    return [f for f in findings if f.name == name]


def render(renderable, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


# --- graph-break ------------------------------------------------------------------------------


def test_one_graph_break_finding_per_recorded_break_location():
    probes = load("act")
    recorded = {
        (b["location"]["filename"], b["location"]["lineno"])
        for report in (probes["graph_breaks"]["inference"], probes["graph_breaks"]["training"])
        for b in report["breaks"]
    }
    findings = named(check(probes), "graph-break")
    assert {(f.location.filename, f.location.lineno) for f in findings} == recorded
    assert len(findings) == len(recorded)


def test_graph_break_finding_carries_category_id_hits_and_ops():
    probes = load("act")
    brk = probes["graph_breaks"]["training"]["breaks"][0]
    (finding,) = [
        f
        for f in named(check(probes), "graph-break")
        if f.location.lineno == brk["location"]["lineno"]
    ]
    assert finding.code == "CD102"
    assert finding.evidence["entry_point"] == "training"
    assert finding.evidence["category"] == brk["category"]
    assert finding.evidence["graph_break_id"] == brk["gb_id"]
    assert finding.evidence["hit_count"] == brk["hits"]
    assert finding.evidence["ops_in_graph_before"] == brk["ops_before"]
    assert finding.location.code == brk["location"]["code"]


def test_graph_break_next_steps_start_with_the_fix_then_torch_hints_then_the_doc_link():
    probes = load("act")
    brk = probes["graph_breaks"]["training"]["breaks"][0]
    finding = named(check(probes), "graph-break")[0]
    assert ".item()" in finding.next_steps[0]
    assert brk["hints"][0] in finding.next_steps
    assert finding.next_steps[-1].endswith(brk["doc_url"])


def test_two_break_types_at_one_line_are_one_finding_naming_both():
    # As the probe records `two_breaks_one_line.BreaksWithAMethodAlive` on torch 2.11.
    place = {"filename": "/src/model.py", "lineno": 47, "function": "forward", "code": "..."}
    breaks = [
        {"reason": reason, "gb_id": gb_id, "hits": 1, "category": "other", "location": place}
        for reason, gb_id in [
            ("Call to `torch._dynamo.graph_break()`", "GB0025"),
            ("Reconstruction failure", "GB0092"),
        ]
    ]
    report = {"graph_count": 0, "breaks": breaks}
    (finding,) = named(check({"graph_breaks": {"inference": report}}), "graph-break")
    assert finding.evidence["graph_break_id"] == "GB0025; GB0092"
    assert finding.evidence["reason"] == "; ".join(b["reason"] for b in breaks)
    assert finding.evidence["hit_count"] == 2


def test_entry_point_with_no_graph_at_all_is_an_error():
    probes = load("planted")
    assert probes["graph_breaks"]["inference"]["graph_count"] == 0
    (finding,) = [
        f for f in named(check(probes), "graph-break") if f.evidence["entry_point"] == "inference"
    ]
    assert finding.severity == Severity.ERROR
    assert "no graph was captured" in finding.cause


def test_entry_point_that_still_has_graphs_gets_a_warning():
    probes = load("planted")
    (finding,) = [
        f for f in named(check(probes), "graph-break") if f.evidence["entry_point"] == "training"
    ]
    assert finding.severity == Severity.WARNING
    assert finding.evidence["category"] == "unsupported-call"


# --- recompilation -----------------------------------------------------------------------------


def test_one_recompilation_finding_per_recorded_recompile():
    probes = load("act")
    scenarios = probes["graph_breaks"]["recompiles"]["inference"]["scenarios"]
    guards = [r["guard"] for s in scenarios for r in s["recompiles"]]
    findings = named(check(probes), "recompilation")
    assert [f.evidence["failing_guard"] for f in findings] == guards
    # Recorded before the probe measured symbolic sizes: nothing shows a recompile by design.
    assert all("symbolic_sizes" not in r for s in scenarios for r in s["recompiles"])
    assert all(f.severity == Severity.WARNING for f in findings)


def test_recompilation_finding_points_at_the_guarded_line():
    probes = load("act")
    (stale,) = [
        s
        for s in probes["graph_breaks"]["recompiles"]["inference"]["scenarios"]
        if s["name"] == "stale action queue"
    ]
    (finding,) = [
        f for f in named(check(probes), "recompilation") if f.evidence["scenario"] == stale["name"]
    ]
    assert finding.location.lineno == stale["recompiles"][0]["location"]["lineno"]
    assert any("reset()" in step for step in finding.next_steps)


def test_recompile_limit_hit_is_an_error_on_the_guard_that_reached_it():
    probes = load("limit")
    report = probes["graph_breaks"]["recompiles"]["inference"]
    assert report["limit_hit"]
    findings = named(check(probes), "recompilation")
    errors = [f for f in findings if f.severity == Severity.ERROR]
    (refused,) = [r for r in report["scenarios"][0]["recompiles"] if r["limit_hit"]]
    assert len(errors) == 1
    assert refused["guard"] in errors[0].evidence["failing_guards"]
    assert errors[0].evidence["recompile_limit"] == report["recompile_limit"]


def test_recompiles_that_differ_only_in_a_number_are_one_finding():
    probes = load("limit")
    recompiles = probes["graph_breaks"]["recompiles"]["inference"]["scenarios"][0]["recompiles"]
    queue_lengths = [r for r in recompiles if r["guard"].startswith("len(")]
    (finding,) = [
        f
        for f in named(check(probes), "recompilation")
        if f.evidence["failing_guard"].startswith("len(")
    ]
    assert finding.evidence["recompile_count"] == len(queue_lengths) > 1


# --- compiled-path-not-exercised ---------------------------------------------------------------


def test_wrapper_that_compiled_nothing_is_reported():
    probes = load("wrapper")
    capture = probes["benchmark"]["capture"]["inference"]
    (finding,) = named(check(probes), "compiled-path-not-exercised")
    assert finding.code == "CD101"
    assert finding.severity == Severity.ERROR
    assert finding.evidence["frames_compiled"] == capture["frames_compiled"] == 0


def test_captures_that_ran_compiled_code_give_no_finding():
    probes = load("act")
    assert all(c["ran_compiled_code"] for c in probes["benchmark"]["capture"].values())
    assert named(check(probes), "compiled-path-not-exercised") == []


def test_no_recorded_probe_no_finding():
    assert check({}) == []


# --- registration and independence from torch --------------------------------------------------


def test_compile_rules_run_with_the_other_rule_families():
    assert "analyzer.rules.compile" in {family.__name__ for family in RULE_MODULES}
    codes = {f.code for f in run_rules(load("act"))}
    assert {"CD102", "CD103"} <= codes


def test_rules_and_renderers_do_not_import_torch():
    code = (
        "import sys, analyzer.rules.compile, analyzer.render.graph_breaks, "
        "analyzer.render.tlparse; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# --- rendering ---------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [80, 200])
def test_break_table_shows_every_break_within_the_width(width):
    section = load("act")["graph_breaks"]
    text = render(GraphBreakTable(section), width)
    assert all(len(line) <= width for line in text.splitlines())
    for brk in section["training"]["breaks"]:
        where = f"{short_path(brk['location']['filename'])}:{brk['location']['lineno']}"
        assert where in text.replace("\n", "") or where in text
        assert brk["gb_id"] in text


@pytest.mark.parametrize("width", [80, 200])
def test_recompile_table_shows_each_guard_and_the_limit(width):
    section = load("limit")["graph_breaks"]
    text = render(RecompileTable(section), width)
    flat = " ".join(text.split())
    assert all(len(line) <= width for line in text.splitlines())
    for recompile in section["recompiles"]["inference"]["scenarios"][0]["recompiles"]:
        assert recompile["guard"] in flat
    assert "recompile_limit" in flat


def test_summary_names_graphs_ops_and_fullgraph_per_entry_point():
    section = load("act")["graph_breaks"]
    text = render(graph_breaks_view(section), 100)
    for name, report in (("inference", section["inference"]), ("training", section["training"])):
        assert f"{name}: {report['graph_count']} graph" in text
    assert "fullgraph=True compiles" in text


def test_a_compiled_copy_whose_first_call_compiled_nothing_is_said_without_a_benchmark():
    # pi0_fast's config switch compiles sample_actions_fast; its inference decodes with
    # sample_actions_fast_kv_cache: the compiled copy's first call compiled 0 frames
    report = {"function": "PI0FastPolicy.select_action", "first_call_frames": 0, "scenarios": []}
    (found,) = named(
        check({"graph_breaks": {"recompiles": {"inference": report}}}),
        "compiled-path-not-exercised",
    )
    assert found.evidence["frames_compiled"] == 0
    assert "PI0FastPolicy.select_action" in found.cause
    ran = {**report, "first_call_frames": 10}
    assert not named(
        check({"graph_breaks": {"recompiles": {"inference": ran}}}), "compiled-path-not-exercised"
    )
    # with a benchmark, its capture of the timed calls is the one that speaks
    capture = {"inference": {"ran_compiled_code": True, "frames_compiled": 4}}
    probes = {
        "graph_breaks": {"recompiles": {"inference": report}},
        "benchmark": {"capture": capture},
    }
    assert not named(check(probes), "compiled-path-not-exercised")
