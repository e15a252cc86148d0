"""Divergence rules and their rendering, on probe results recorded from real runs (no torch).

Recorded on the CPU with `probes.divergence.probe.probe_divergence`:
- `divergence_act_rng.json`: tiny ACT (preset "tiny"), Inductor;
- `divergence_act_untested.json`: the same with no random-number what-if (`what_ifs=()`);
- `divergence_planted.json`: `planted_divergence.planted_target()`, aot_eager;
- `divergence_backward.json`: `planted_divergence.gradient_planted_target()`, aot_eager;
- `divergence_tolerance.json`: `planted_divergence.large_sums_target()`, Inductor.
`divergence_tf32.json` is the tiny ACT record with the two scenarios a CUDA run adds ("tf32-off"
passing, "tf32-on" failing) and its precision verdict written in, and its per-gradient rows left
out: no GPU was at hand to record one. Expected values are read from the fixtures, not written
here. The fixtures were recorded when the probe still wrote its own verdicts: the rules' reading
of the figures must give the same ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from analyzer.findings import Severity
from analyzer.render.divergence import (
    AttributionTable,
    GradientWalkTable,
    ModuleWalkTable,
    ScenarioTable,
    divergence_view,
)
from analyzer.rules import RULE_MODULES, run_rules
from analyzer.rules.divergence import check
from analyzer.rules.divergence_reading import (
    complete_divergence_record,
    read_divergence,
    scenario,
)

FIXTURES = Path(__file__).parent / "fixtures"
RECORDED = ["act_rng", "act_untested", "planted", "backward", "tolerance", "tf32"]


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"divergence_{name}.json").read_text(encoding="utf-8"))


def named(findings, name: str):
    return [f for f in findings if f.name == name]


def only(findings, name: str):
    found = named(findings, name)
    assert len(found) == 1, [f.name for f in findings]
    return found[0]


def render(renderable, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_divergence_rules_are_registered():
    assert "analyzer.rules.divergence" in {family.__name__ for family in RULE_MODULES}
    assert named(run_rules({"divergence": load("act_rng")}), "rng-divergence")


def test_no_divergence_record_no_finding():
    assert check({}) == []


# --- the reading: verdicts from the recorded figures --------------------------------------------


@pytest.mark.parametrize("name", RECORDED)
def test_reading_gives_the_verdicts_the_probe_recorded(name: str):
    section = load(name)
    reading = read_divergence(section)
    assert reading.verdict == section["verdict"]
    assert reading.summary == section["summary"]
    assert reading.attribution_verdict == section["attribution"]["verdict"]
    assert reading.tf32_explains == section["precision"]["tf32_explains"]


@pytest.mark.parametrize("name", RECORDED)
def test_reading_needs_no_recorded_verdict(name: str):
    recorded = load(name)
    section = {k: v for k, v in recorded.items() if k not in ("verdict", "summary")}
    section["attribution"] = {
        k: v for k, v in recorded["attribution"].items() if k not in ("verdict", "explanation")
    }
    section["precision"] = {k: v for k, v in recorded["precision"].items() if k != "tf32_explains"}
    completed = complete_divergence_record(section)
    assert set(completed) == set(recorded)
    assert set(completed["attribution"]) == set(recorded["attribution"])
    assert set(completed["precision"]) == set(recorded["precision"])
    assert completed["verdict"] == recorded["verdict"]
    assert check({"divergence": section}) == check({"divergence": recorded})


# --- rng-divergence ----------------------------------------------------------------------------


def test_rng_finding_carries_the_three_loss_differences():
    section = load("act_rng")
    finding = only(check({"divergence": section}), "rng-divergence")
    loss = section["attribution"]["loss_diff"]
    assert finding.evidence["loss_diff_as_is_abs"] == loss["as-is"]
    assert finding.evidence["loss_diff_fallback_random_abs"] == loss["fallback-random"]
    assert finding.evidence["loss_diff_dropout_off_abs"] == loss["dropout-off"]


def test_rng_finding_measured_fix_is_each_what_if():
    section = load("act_rng")
    finding = only(check({"divergence": section}), "rng-divergence")
    passes = section["attribution"]["passes"]
    assert (
        finding.measured_fix["fallback_random"]["passes_fp64_criterion"]
        is passes["fallback-random"]
    )
    assert finding.measured_fix["dropout_off"]["passes_fp64_criterion"] is passes["dropout-off"]


def test_rng_finding_explains_the_difference_random_numbers_remove():
    section = load("act_rng")
    finding = only(check({"divergence": section}), "rng-divergence")
    loss = section["attribution"]["loss_diff"]
    removed = loss["as-is"] - min(loss["fallback-random"], loss["dropout-off"])
    assert finding.impact_error == pytest.approx(removed)


def test_rng_alone_is_not_a_numerical_divergence():
    assert named(check({"divergence": load("act_rng")}), "numerical-divergence") == []


# --- numerical-divergence ----------------------------------------------------------------------


def test_numerical_finding_names_the_first_module_that_adds_error():
    section = load("planted")
    finding = only(check({"divergence": section}), "numerical-divergence")
    module = section["localization"]["first_divergent_module"]
    assert finding.evidence["first_divergent_module"] == module
    assert module in finding.title


def test_numerical_finding_is_certain_when_the_module_alone_reproduces_it():
    section = load("planted")
    finding = only(check({"divergence": section}), "numerical-divergence")
    assert section["localization"]["confirmation"]["reproduced"] is True
    assert (finding.severity, finding.confidence) == (Severity.ERROR, "high")


def test_numerical_finding_quotes_both_errors_against_fp64():
    section = load("planted")
    finding = only(check({"divergence": section}), "numerical-divergence")
    failing = scenario(section, finding.evidence["scenario"])
    compared = next(o for o in failing["outputs"] if o["name"] == finding.evidence["output"])
    assert finding.evidence["eager_rmse_vs_fp64_abs"] == compared["eager_rmse_vs_fp64"]
    assert finding.evidence["compiled_rmse_vs_fp64_abs"] == compared["compiled_rmse_vs_fp64"]


def test_backward_only_divergence_names_the_first_failing_gradient():
    section = load("backward")
    finding = only(check({"divergence": section}), "numerical-divergence")
    gradient = section["localization"]["first_divergent_gradient"]
    assert finding.evidence["first_divergent_gradient"] == gradient
    assert "backward" in finding.cause


def test_numerical_finding_without_localization_asks_for_it():
    section = load("planted")
    section["localization"] = None
    finding = only(check({"divergence": section}), "numerical-divergence")
    assert finding.confidence == "low"
    assert any("--localize" in step for step in finding.next_steps)


# --- tolerance-too-strict ----------------------------------------------------------------------


def test_tolerance_finding_when_compiled_is_as_close_to_fp64_as_eager():
    section = load("tolerance")
    finding = only(check({"divergence": section}), "tolerance-too-strict")
    action = next(o for o in scenario(section, "eval")["outputs"] if o["name"] == "action")
    assert finding.evidence["action_diff_abs"] == action["max_abs_diff"]
    assert action["compiled_rmse_vs_fp64"] <= action["bound"]


def test_tolerance_reads_the_benchmark_threshold():
    section = load("tolerance")
    action = next(o for o in scenario(section, "eval")["outputs"] if o["name"] == "action")
    looser = {"settings": {"tolerance": action["max_abs_diff"] * 2}}
    findings = check({"divergence": section, "benchmark": looser})
    assert named(findings, "tolerance-too-strict") == []


def test_no_tolerance_finding_when_differences_are_below_the_threshold():
    assert named(check({"divergence": load("act_rng")}), "tolerance-too-strict") == []


# --- precision-setting-mismatch ----------------------------------------------------------------


def test_precision_finding_when_tf32_off_passes_and_on_fails():
    section = load("tf32")
    finding = only(check({"divergence": section}), "precision-setting-mismatch")
    on = scenario(section, "tf32-on")
    assert finding.evidence["output"] in on["failing"]
    assert finding.measured_fix["tf32_off"]["passes_fp64_criterion"] is True


def test_no_precision_finding_on_cpu():
    section = load("act_rng")
    assert section["precision"]["ran"] is False
    assert named(check({"divergence": section}), "precision-setting-mismatch") == []


# --- rendering ---------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [80, 200])
@pytest.mark.parametrize("name", RECORDED)
def test_view_fits_the_terminal(name: str, width: int):
    text = render(divergence_view(load(name)), width)
    assert max(len(line) for line in text.splitlines()) <= width


@pytest.mark.parametrize("width", [80, 200])
def test_walk_table_shows_the_first_module_and_its_role(width: int):
    section = load("planted")
    text = render(ModuleWalkTable(section), width)
    assert section["localization"]["first_divergent_module"] in text
    assert "adds error" in text


@pytest.mark.parametrize("width", [80, 200])
def test_scenario_table_has_a_row_per_scenario(width: int):
    section = load("act_rng")
    text = render(ScenarioTable(section), width)
    for item in section["scenarios"]:
        assert item["name"] in text


def test_attribution_table_states_the_verdict():
    section = load("act_rng")
    text = render(AttributionTable(section), 100)
    assert f"attribution: {section['attribution']['verdict']}" in text


def test_gradient_table_starts_at_the_first_failing_gradient():
    section = load("backward")
    text = render(GradientWalkTable(section), 120)
    assert section["localization"]["first_divergent_gradient"] in text


# --- no what-if ran (a CPU diagnosis by default) ------------------------------------------------
# `divergence_act_untested.json`: tiny ACT, Inductor, `probe_divergence(..., what_ifs=())`.


def test_untested_training_difference_is_likely_random_numbers_with_medium_confidence():
    section = load("act_untested")
    assert section["attribution"]["verdict"] == "untested"
    finding = only(check({"divergence": section}), "rng-divergence")
    assert finding.confidence == "medium"
    assert finding.severity is Severity.INFO
    as_is = scenario(section, "as-is")
    assert finding.evidence["loss_diff_as_is_abs"] == as_is["primary_max_abs_diff"]
    assert finding.evidence["dropout_sites_count"] == len(section["dropout"]["modules"]) + len(
        section["dropout"]["attention"]
    )
    assert finding.evidence["rng_what_if"] == "not run"
    assert any("--rng-what-if" in step for step in finding.next_steps)


def test_untested_is_not_blamed_on_random_numbers_when_inference_fails_too():
    section = load("act_untested")
    scenario(section, "eval")["passes"] = False
    assert named(check({"divergence": section}), "rng-divergence") == []


def test_untested_is_not_blamed_on_random_numbers_without_dropout():
    section = load("act_untested")
    section["dropout"] = {"modules": [], "attention": [], "functional": []}
    assert named(check({"divergence": section}), "rng-divergence") == []
