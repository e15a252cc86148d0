"""Recompile severities on recorded JSON (no torch): info only for what torch does by design.

The fixtures were recorded on the CPU by `python tests/test_recompile_severity.py`: the
recompile probe on a healthy MLP with dropout (`recompiles_healthy.json`) and on a module that
loops over its batch (`recompiles_specialised.json`), each called as the diagnosis calls a
module, and the healthy MLP from a batch of 2, which the diagnosis halves to 1
(`recompiles_batch_of_one.json`). Variants of a scenario are built from the fixture here;
expected values are read from the fixtures.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from analyzer.findings import Severity
from analyzer.rules.compile import check, recompilation_findings

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"recompiles_{name}.json").read_text(encoding="utf-8"))


def scenarios(probes: dict[str, Any]) -> list[dict[str, Any]]:
    return probes["graph_breaks"]["recompiles"]["inference"]["scenarios"]


def scenario(probes: dict[str, Any], part: str) -> dict[str, Any]:
    (found,) = [s for s in scenarios(probes) if part in s["name"]]
    return found


def findings_of(probes: dict[str, Any], part: str | None = None):
    found = [f for f in check(probes) if f.name == "recompilation"]
    return [f for f in found if part is None or part in f.evidence["scenario"]]


def only(probes: dict[str, Any], part: str):
    (finding,) = findings_of(probes, part)
    return finding


def test_every_recompile_of_the_healthy_model_is_info():
    probes = load("healthy")
    recorded = sum(len(s["recompiles"]) for s in scenarios(probes))
    findings = findings_of(probes)
    assert len(findings) == recorded > 0
    assert all(f.severity == Severity.INFO for f in findings)
    assert all(f.evidence["by_design"] for f in findings)


def test_info_for_a_batch_size_names_the_symbol_torch_recorded():
    probes = load("healthy")
    (recompile,) = scenario(probes, "batch size")["recompiles"]
    symbols = list(recompile["symbolic_sizes"].values())
    finding = only(probes, "batch size")
    assert finding.evidence["symbolic_sizes"] == symbols
    assert f"the symbol {symbols[0]}" in finding.cause
    assert "dynamic" in finding.cause


def test_info_for_a_mode_switch_says_it_recompiled_once():
    probes = load("healthy")
    for part in ("grad enabled", "train then eval"):
        finding = only(probes, part)
        assert finding.evidence["recompile_count"] == 1
        assert "recompiled once" in finding.cause
        assert "one graph per value" in finding.cause


def test_a_batch_of_one_is_info_though_its_graph_holds_numbers():
    probes = load("batch_of_one")
    (recompile,) = scenario(probes, "batch size")["recompiles"]
    assert recompile["symbolic_sizes"] == {}
    assert recompile["guard"].endswith("actual 1")
    finding = only(probes, "batch size")
    assert finding.severity == Severity.INFO
    assert "a size of 1 by design" in finding.cause
    assert all(f.severity == Severity.INFO for f in findings_of(probes))


def test_a_size_recorded_as_a_number_is_a_warning_that_says_so():
    probes = load("specialised")
    (recompile,) = scenario(probes, "batch size")["recompiles"]
    assert recompile["symbolic_sizes"] == {}
    finding = only(probes, "batch size")
    assert finding.severity == Severity.WARNING
    assert "holds every size as a number" in finding.cause


def test_the_same_guard_failing_twice_in_a_scenario_is_a_warning():
    probes = load("healthy")
    grad = scenario(probes, "grad enabled")
    grad["recompiles"].append(copy.deepcopy(grad["recompiles"][0]))
    finding = only(probes, "grad enabled")
    assert finding.evidence["recompile_count"] == 2
    assert finding.severity == Severity.WARNING


def test_a_size_guard_without_the_symbol_figure_is_a_warning():
    # A record from before the probe measured symbolic sizes: nothing shows torch generalised.
    probes = load("healthy")
    for recompile in scenario(probes, "batch size")["recompiles"]:
        del recompile["symbolic_sizes"]
    finding = only(probes, "batch size")
    assert finding.severity == Severity.WARNING
    assert "symbolic_sizes" not in finding.evidence
    assert "as a number" not in finding.cause


def test_the_limit_hit_is_an_error_even_on_a_by_design_guard():
    probes = load("healthy")
    batch = scenario(probes, "batch size")
    batch["recompiles"][0]["limit_hit"] = True
    finding = only(probes, "batch size")
    assert finding.severity == Severity.ERROR
    assert "recompile limit" in finding.cause


def test_a_guard_on_a_python_value_is_a_warning_even_once():
    probes = load("healthy")
    (recompile,) = scenario(probes, "train then eval")["recompiles"]
    recompile["guard"] = "len(self._action_queue) == 4"
    assert only(probes, "train then eval").severity == Severity.WARNING


def test_a_grad_switch_recompiling_each_frame_of_a_broken_function_once_is_by_design():
    # a graph break splits the function into frames 0 and 1; the grad switch recompiles each once
    guard = "GLOBAL_STATE changed: grad_mode"
    report = {
        "recompile_limit": 8,
        "scenarios": [
            {
                "name": "with and without grad",
                "recompiles": [
                    {"compile_id": "0/1", "guard": guard, "function": "forward"},
                    {"compile_id": "1/1", "guard": guard, "function": "torch_dynamo_resume_in"},
                ],
            }
        ],
    }
    (found,) = recompilation_findings("inference", report)
    assert found.severity == Severity.INFO and found.evidence["by_design"]
    report["scenarios"][0]["recompiles"].append({"compile_id": "0/2", "guard": guard})
    (again,) = recompilation_findings("inference", report)
    assert again.severity == Severity.WARNING
