"""The divergence probe on a tiny real ACT with Inductor: one probe run shared by every test.

The run compiles four times (inference; training as is, with fallback_random, with dropout
off): about 3.5 minutes with a cold Inductor cache on a 2-core CPU. Full-size ACT at 64x64
measured a loss difference of 1.75e-3 as is and 1.2e-7 with fallback_random or dropout off.
"""

from __future__ import annotations

import json

import pytest
from conftest import tiny_act
from rich.console import Console

from analyzer.render.divergence import divergence_view
from analyzer.rules.divergence import check
from analyzer.rules.divergence_reading import complete_divergence_record, read_divergence
from probes.divergence.probe import probe_divergence
from probes.records.divergence import (
    AS_IS,
    DROPOUT_OFF,
    EVAL,
    FALLBACK_RANDOM,
    GRAD_PREFIX,
    RNG,
)
from probes.records.serialize import dumps
from probes.targets.target import CompileSettings

pytestmark = pytest.mark.inductor


@pytest.fixture(scope="module")
def act(inductor_cache):
    target = tiny_act()
    return target, probe_divergence(target, CompileSettings())


def test_act_loss_difference_is_attributed_to_random_numbers(act):
    _, report = act
    assert read_divergence(json.loads(dumps(report))).attribution_verdict == RNG


def test_act_loss_fails_as_is_and_passes_without_random_numbers(act):
    _, report = act
    assert report.scenario(AS_IS).output("loss").passes is False
    assert report.scenario(FALLBACK_RANDOM).output("loss").passes
    assert report.scenario(DROPOUT_OFF).output("loss").passes


def test_act_gradients_are_compared_for_every_trained_parameter(act):
    target, report = act
    trained = {name for name, p in target.module.named_parameters() if p.requires_grad}
    for name in (AS_IS, FALLBACK_RANDOM, DROPOUT_OFF):
        compared = {
            o.name.removeprefix(GRAD_PREFIX)
            for o in report.scenario(name).outputs
            if o.name.startswith(GRAD_PREFIX)
        }
        assert compared == trained, name


def test_act_gradients_diverge_only_with_random_numbers(act):
    _, report = act
    assert report.scenario(AS_IS).gradients_failing > 0
    assert report.scenario(FALLBACK_RANDOM).gradients_failing == 0
    assert report.scenario(DROPOUT_OFF).gradients_failing == 0


def test_act_eval_actions_pass_the_fp64_criterion(act):
    _, report = act
    action = report.scenario(EVAL).output("action")
    assert action.passes
    assert action.compiled_rmse_vs_fp64 <= action.bound  # as close to fp64 as eager, not allclose


def test_act_dropout_off_disabled_every_dropout_and_attention(act):
    _, report = act
    assert report.dropout.modules and report.dropout.attention
    assert report.scenario(DROPOUT_OFF).settings["dropout_off"] is True


def test_act_is_not_localized_when_arithmetic_agrees(act):
    _, report = act
    assert report.localization is None
    assert report.localization_note.startswith("not run")


def test_act_recorded_report_yields_the_rng_finding(act):
    _, report = act
    names = {f.name for f in check({"divergence": json.loads(dumps(report))})}
    assert "rng-divergence" in names
    assert "numerical-divergence" not in names


def test_act_report_renders_every_scenario(act):
    _, report = act
    console = Console(width=80, record=True, color_system=None)
    console.print(divergence_view(complete_divergence_record(json.loads(dumps(report)))))
    text = console.export_text()
    for name in (EVAL, AS_IS, FALLBACK_RANDOM, DROPOUT_OFF):
        assert name in text
    assert f"Divergence: {RNG}" in text
