"""The graph-break, fullgraph and recompile probes on small modules that plant one break each.

Lines are found by their marker comment in `planted_breaks.py`; GB ids by torch's own registry.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
import torch._dynamo
from planted_breaks import (
    FILE,
    Branches,
    CallsNumpy,
    Logs,
    LoopsOverBatch,
    Prints,
    PrintsFirst,
    ReadsInLoop,
    ReadsList,
    ReadsScalar,
    ReadsThrice,
    Scales,
    planted_line,
)
from two_breaks_one_line import FILE as TWO_BREAKS_FILE
from two_breaks_one_line import BreaksWithAMethodAlive, CallsIt
from two_breaks_one_line import planted_line as two_breaks_line

from probes.compile.graph_breaks import categorize, probe_fullgraph, probe_graph_breaks
from probes.compile.recompiles import RecompileScenario, probe_recompiles
from probes.records.compile import GraphBreakReport, graph_breaks_section
from probes.records.serialize import dumps

TORCH_DIR = str(Path(torch.__file__).resolve().parent)
PROBES_DIR = str(Path(__file__).resolve().parent.parent / "probes")
REGISTRY = json.loads(
    (Path(torch._dynamo.__file__).parent / "graph_break_registry.json").read_text()
)


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def explain(module: torch.nn.Module, batch: int = 3) -> GraphBreakReport:
    return probe_graph_breaks("inference", module, torch.randn(batch, 4))


def only_break(report: GraphBreakReport):
    assert len(report.breaks) == 1, [b.reason for b in report.breaks]
    return report.breaks[0]


def registry_id(gb_type: str) -> str:
    ids = [gb for gb, entries in REGISTRY.items() for e in entries if e["Gb_type"] == gb_type]
    assert ids, gb_type
    return ids[0]


@pytest.mark.parametrize(
    ("module", "marker", "category"),
    [
        (Prints(), "print", "print-logging"),
        (Logs(), "logging", "print-logging"),
        (Branches(), "branch", "data-dependent-branch"),
        (ReadsList(), "tolist", "scalar-read"),
        (ReadsScalar(), "item", "scalar-read"),
        (CallsNumpy(), "numpy", "unsupported-call"),
    ],
)
def test_planted_break_gets_its_category_and_line(module, marker, category):
    brk = only_break(explain(module))
    assert brk.category == category
    assert brk.location.filename == str(FILE)
    assert brk.location.lineno == planted_line(marker)
    assert brk.location.function == "forward"
    assert f"# PLANTED: {marker}" in brk.location.code


def test_break_on_the_first_line_is_reported_though_explain_lists_no_graph_for_it():
    report = explain(PrintsFirst())
    brk = only_break(report)
    assert brk.location.lineno == planted_line("print-first")
    assert brk.category == "print-logging"
    assert brk.graph_index is None  # no graph ended there: the graph before it was empty


def test_break_carries_the_registry_id_of_its_reason():
    brk = only_break(explain(ReadsList()))
    assert brk.gb_id == registry_id(brk.reason)
    assert brk.doc_url and brk.gb_id[2:] in brk.doc_url


def test_data_dependent_branch_is_named_by_its_break_type_not_dynamos_placeholder():
    brk = only_break(explain(Branches()))
    assert not brk.reason.startswith("generic_jump")
    assert brk.gb_id == registry_id(brk.reason)
    assert brk.hints  # torch's hints for the break type


def test_ops_on_each_side_of_a_break_are_those_of_the_graphs_around_it():
    report = explain(ReadsScalar())
    brk = only_break(report)
    assert report.graph_count == 2
    assert brk.ops_before == report.ops_per_graph[brk.graph_index]
    assert brk.ops_after == report.ops_per_graph[brk.graph_index + 1]
    assert brk.ops_before > 0 and brk.ops_after > 0


def test_user_stack_holds_no_torch_or_probe_frames():
    brk = only_break(explain(ReadsThrice()))
    files = [frame.filename for frame in brk.user_stack]
    assert files and all(not f.startswith((TORCH_DIR, PROBES_DIR)) for f in files)
    assert [frame.lineno for frame in brk.user_stack] == [
        planted_line("helper-call"),
        planted_line("helper-item"),
    ]


def test_a_break_hit_from_three_call_sites_is_one_break_with_three_hits():
    report = explain(ReadsThrice())
    brk = only_break(report)
    assert brk.location.lineno == planted_line("helper-item")
    assert brk.hits == 3
    assert report.break_count == 3


def test_a_break_inside_a_loop_leaves_the_call_with_no_graph():
    report = explain(ReadsInLoop())
    brk = only_break(report)
    assert report.graph_count == 0
    assert report.break_count == 1
    assert brk.location.lineno == planted_line("loop-item")
    assert brk.category == "scalar-read"


def test_shape_loop_does_not_break_but_unrolls_into_one_graph_per_batch_size():
    small, large = explain(LoopsOverBatch(), batch=2), explain(LoopsOverBatch(), batch=5)
    assert small.breaks == [] and large.breaks == []
    assert small.graph_count == large.graph_count == 1
    assert large.op_count - small.op_count == 3  # one add per extra row


def test_shape_loop_recompiles_for_every_new_batch_size():
    compiled = torch.compile(LoopsOverBatch(), backend="eager")
    compiled(torch.randn(2, 4))
    scenarios = [
        RecompileScenario(f"batch size -> {n}", lambda n=n: compiled(torch.randn(n, 4)))
        for n in (3, 4, 5)
    ]
    report = probe_recompiles("inference", compiled, scenarios)
    assert [len(s.recompiles) for s in report.scenarios] == [1, 1, 1]
    for scenario in report.scenarios:
        assert "size mismatch at index 0" in scenario.recompiles[0].guard


def test_loop_free_module_stops_recompiling_once_the_batch_is_dynamic():
    compiled = torch.compile(Scales(), backend="eager")
    compiled(torch.randn(2, 4))
    scenarios = [
        RecompileScenario(f"batch size -> {n}", lambda n=n: compiled(torch.randn(n, 4)))
        for n in (3, 4, 5)
    ]
    report = probe_recompiles("inference", compiled, scenarios)
    assert [len(s.recompiles) for s in report.scenarios] == [1, 0, 0]


def test_recompile_limit_hit_is_reported_and_the_limit_restored():
    limit = torch._dynamo.config.recompile_limit
    compiled = torch.compile(LoopsOverBatch(), backend="eager")
    with torch._dynamo.config.patch(recompile_limit=2):
        compiled(torch.randn(2, 4))
        scenarios = [
            RecompileScenario(f"batch size -> {n}", lambda n=n: compiled(torch.randn(n, 4)))
            for n in (3, 4)
        ]
        report = probe_recompiles("inference", compiled, scenarios)
    assert torch._dynamo.config.recompile_limit == limit
    assert report.recompile_limit == 2
    assert [s.limit_hit for s in report.scenarios] == [False, True]
    assert report.limit_hit


def test_failing_scenario_is_reported_and_the_next_still_runs():
    compiled = torch.compile(Scales(), backend="eager")
    compiled(torch.randn(2, 4))

    def wrong_width():
        compiled(torch.randn(2, 4)) @ torch.randn(5, 5)

    scenarios = [
        RecompileScenario("wrong width", wrong_width),
        RecompileScenario("batch size -> 3", lambda: compiled(torch.randn(3, 4))),
    ]
    report = probe_recompiles("inference", compiled, scenarios)
    assert report.scenarios[0].error and report.scenarios[0].error.startswith("RuntimeError")
    assert len(report.scenarios[1].recompiles) == 1


def test_fullgraph_fails_with_the_first_break_in_one_line():
    result = probe_fullgraph("inference", Prints(), torch.randn(3, 4))
    assert not result.compiles
    assert result.error and "\n" not in result.error
    assert result.error == only_break(explain(Prints())).reason


def test_fullgraph_captures_a_scalar_read_that_explain_reports_as_a_break():
    # torch turns on capture_scalar_outputs under fullgraph=True: .item() stays in the graph.
    assert only_break(explain(ReadsScalar())).category == "scalar-read"
    assert probe_fullgraph("inference", ReadsScalar(), torch.randn(3, 4)).compiles


def test_probe_leaves_the_graph_break_logger_as_it_found_it():
    logger = logging.getLogger("torch._dynamo.symbolic_convert.__graph_breaks")
    before = (logger.level, logger.propagate, list(logger.handlers))
    explain(Prints())
    assert (logger.level, logger.propagate, list(logger.handlers)) == before


def test_section_is_json_with_entry_points_fullgraph_and_recompiles():
    report = explain(Branches())
    fullgraph = probe_fullgraph("inference", Branches(), torch.randn(3, 4))
    section = json.loads(dumps(graph_breaks_section([report], [fullgraph])))
    assert section["inference"]["breaks"][0]["category"] == "data-dependent-branch"
    assert section["fullgraph"]["inference"]["compiles"] is False
    assert section["recompiles"] == {}


def test_an_example_in_dynamos_explanation_does_not_decide_the_category():
    # As torch 2.11 reports `info.update({...})` in lerobot's tdmpc: the explanation's example
    # names `_warnings.warn`, the call it could not trace is dict.update.
    reason = (
        "Attempted to call function marked as skipped\n"
        "  Explanation: Dynamo does not know how to trace the builtin "
        "`<unknown module>.dict.update.` This function is either a Python builtin "
        "(e.g. _warnings.warn) or a third-party C/C++ Python extension (perhaps created with "
        "pybind).\n"
    )
    assert categorize(reason) == "unsupported-call"
    assert categorize(reason.replace("dict.update", "_warnings.warn")) == "print-logging"


# --- two break types at one line ---------------------------------------------------------------


@pytest.mark.parametrize("module", [BreaksWithAMethodAlive(), CallsIt()])
def test_two_break_types_at_one_line_are_two_breaks_each_with_its_own_id(module):
    report = explain(module)
    assert len(report.breaks) == 2, [b.reason for b in report.breaks]
    assert {(b.location.filename, b.location.lineno) for b in report.breaks} == {
        (str(TWO_BREAKS_FILE), two_breaks_line("two-breaks"))
    }
    assert len({b.reason for b in report.breaks}) == 2
    assert [b.gb_id for b in report.breaks] == [registry_id(b.reason) for b in report.breaks]
    assert len({b.gb_id for b in report.breaks}) == 2
    assert len({b.explanation for b in report.breaks}) == 2
    assert all(b.hits >= 1 for b in report.breaks)
    assert report.break_count == sum(b.hits for b in report.breaks)


def test_the_break_explain_lists_keeps_its_graph_and_the_logged_one_its_full_stack():
    report = explain(CallsIt())
    listed, logged = report.breaks  # in the order dynamo met them
    assert listed.graph_index is not None and listed.ops_before == report.ops_per_graph[0]
    assert logged.graph_index is None  # no graph ended at it: only the log names it
    lines = [two_breaks_line("calls-inner"), two_breaks_line("two-breaks")]
    assert [f.lineno for f in listed.user_stack] == [f.lineno for f in logged.user_stack] == lines
