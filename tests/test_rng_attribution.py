"""The attribution's verdict from the scenarios that ran (no torch compile: results as recorded).

The probe records each scenario's figures; `analyzer.rules.divergence_reading` reads the
verdicts from them, as it does from a `diagnosis.json`.
"""

from __future__ import annotations

from typing import Any

from analyzer.format import sci
from analyzer.rules.divergence_reading import (
    attribute,
    complete_divergence_record,
    read_divergence,
)
from probes.records.divergence import (
    ARITHMETIC,
    AS_IS,
    BOTH,
    DROPOUT_OFF,
    EVAL,
    FALLBACK_RANDOM,
    NONE,
    RNG,
    UNKNOWN,
    UNTESTED,
    DivergenceScenario,
    RngAttribution,
)
from probes.records.names import INFERENCE, TRAINING
from probes.records.serialize import to_jsonable


def scenario(
    name: str, passes: bool | None, loss_diff: float | None, rel_diff: float | None = None
) -> DivergenceScenario:
    return DivergenceScenario(
        name=name,
        entry_point=INFERENCE if name == EVAL else TRAINING,
        description=name,
        settings={},
        compiled_fresh=name != AS_IS,
        frames_compiled=1,
        passes=passes,
        primary="action" if name == EVAL else "loss",
        primary_max_abs_diff=loss_diff,
        max_rel_diff=loss_diff if rel_diff is None else rel_diff,
    )


def recorded(*scenarios: DivergenceScenario, training: bool = True) -> dict[str, Any]:
    """A divergence section as the probe records it: figures, no verdict."""
    trained = [s for s in scenarios if s.entry_point == TRAINING]
    attribution = RngAttribution(
        loss_diff={s.name: s.primary_max_abs_diff for s in trained},
        max_gradient_diff={s.name: s.max_gradient_abs_diff for s in trained},
        passes={s.name: s.passes for s in trained},
    )
    return to_jsonable(
        {"scenarios": list(scenarios), "attribution": attribution if training else None}
    )


def test_no_what_if_and_a_failing_training_step_is_untested() -> None:
    attribution = attribute(recorded(scenario(AS_IS, False, 4.6e-3)))
    assert attribution.verdict == UNTESTED
    assert "4.60e-03" in attribution.explanation


def test_no_what_if_and_a_passing_training_step_has_nothing_to_attribute() -> None:
    assert attribute(recorded(scenario(AS_IS, True, 1e-7))).verdict == NONE


def test_a_what_if_that_passes_attributes_the_difference_to_random_numbers() -> None:
    section = recorded(scenario(AS_IS, False, 4.6e-3), scenario(DROPOUT_OFF, True, 1e-7))
    attribution = attribute(section)
    assert attribution.verdict == RNG
    assert f"{DROPOUT_OFF} ({sci(1e-7)})" in attribution.explanation


def test_a_what_if_that_could_not_run_is_unknown_not_untested() -> None:
    section = recorded(scenario(AS_IS, False, 4.6e-3), scenario(DROPOUT_OFF, None, None))
    assert attribute(section).verdict == UNKNOWN


def test_what_ifs_that_fail_but_shrink_the_difference_tenfold_are_both() -> None:
    section = recorded(
        scenario(AS_IS, False, 4.6e-3, rel_diff=1e-2),
        scenario(FALLBACK_RANDOM, False, 1e-4, rel_diff=5e-4),
        scenario(DROPOUT_OFF, False, 1e-4, rel_diff=1e-3),
    )
    attribution = attribute(section)
    assert attribution.verdict == BOTH
    assert FALLBACK_RANDOM in attribution.explanation  # the what-if closest to eager


def test_what_ifs_that_fail_as_much_as_as_is_are_arithmetic() -> None:
    section = recorded(
        scenario(AS_IS, False, 4.6e-3, rel_diff=1e-2), scenario(DROPOUT_OFF, False, 4e-3)
    )
    assert attribute(section).verdict == ARITHMETIC


def test_without_training_nothing_is_attributed() -> None:
    section = recorded(scenario(EVAL, True, 1e-7), training=False)
    reading = read_divergence(section)
    assert (reading.attribution_verdict, reading.verdict) == (None, NONE)


def test_failing_inference_overrules_random_numbers() -> None:
    section = recorded(
        scenario(EVAL, False, 1e-2),
        scenario(AS_IS, False, 4.6e-3),
        scenario(DROPOUT_OFF, True, 1e-7),
    )
    reading = read_divergence(section)
    assert (reading.attribution_verdict, reading.verdict) == (RNG, BOTH)


def test_completed_record_holds_the_reading_and_keeps_the_figures() -> None:
    section = recorded(
        scenario(EVAL, True, 1e-7), scenario(AS_IS, False, 4.6e-3), scenario(DROPOUT_OFF, True, 0)
    )
    completed = complete_divergence_record(section)
    reading = read_divergence(section)
    assert (completed["verdict"], completed["summary"]) == (reading.verdict, reading.summary)
    assert completed["attribution"]["verdict"] == RNG
    assert completed["attribution"]["explanation"] == reading.attribution_explanation
    assert completed["attribution"]["loss_diff"] == section["attribution"]["loss_diff"]
    assert "verdict" not in section  # the recorded section is left as it was
