"""The attribution's verdict from the scenarios that ran (no torch compile: results as recorded)."""

from __future__ import annotations

from probes.divergence.rng_attribution import attribute
from probes.divergence.scenarios import AS_IS, DROPOUT_OFF, ScenarioResult


def scenario(name: str, passes: bool | None, loss_diff: float | None) -> ScenarioResult:
    return ScenarioResult(
        name=name,
        entry_point="training",
        description=name,
        settings={},
        compiled_fresh=name != AS_IS,
        frames_compiled=1,
        passes=passes,
        primary="loss",
        primary_max_abs_diff=loss_diff,
        max_rel_diff=loss_diff,
    )


def test_no_what_if_and_a_failing_training_step_is_untested() -> None:
    attribution = attribute(scenario(AS_IS, False, 4.6e-3))
    assert attribution.verdict == "untested"
    assert "4.60e-03" in attribution.explanation


def test_no_what_if_and_a_passing_training_step_has_nothing_to_attribute() -> None:
    assert attribute(scenario(AS_IS, True, 1e-7)).verdict == "none"


def test_a_what_if_that_passes_attributes_the_difference_to_random_numbers() -> None:
    attribution = attribute(scenario(AS_IS, False, 4.6e-3), scenario(DROPOUT_OFF, True, 1e-7))
    assert attribution.verdict == "rng"


def test_a_what_if_that_could_not_run_is_unknown_not_untested() -> None:
    attribution = attribute(scenario(AS_IS, False, 4.6e-3), scenario(DROPOUT_OFF, None, None))
    assert attribution.verdict == "unknown"
