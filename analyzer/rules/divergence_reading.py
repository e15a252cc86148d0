"""The divergence record read as a whole: what the training difference comes from, the overall
verdict and its summary sentence, and whether TF32 explains a difference.

The divergence probe records figures and no judgement (`probes.records.divergence`); this reading
is the judgement, from the figures alone. `complete_divergence_record` writes it into the
section's `verdict`, `summary`, `attribution.verdict`, `attribution.explanation` and
`precision.tf32_explains` keys, which is how `diagnosis.json` holds it. The divergence rules
(`analyzer.rules.divergence`) build their findings on the same reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from analyzer.format import sci
from probes.records.divergence import (
    ARITHMETIC,
    AS_IS,
    BOTH,
    EVAL,
    NONE,
    RNG,
    RNG_FREE,
    TF32_OFF,
    TF32_ON,
    UNKNOWN,
    UNTESTED,
    failing_without_random_numbers,
)
from probes.records.serialize import as_number

# --- finding scenarios and outputs in the record ------------------------------------------


def scenario(section: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    for item in section.get("scenarios") or []:
        if isinstance(item, Mapping) and item.get("name") == name:
            return item
    return None


def output(item: Mapping[str, Any] | None, name: str) -> Mapping[str, Any] | None:
    for found in (item or {}).get("outputs") or []:
        if found.get("name") == name:
            return found
    return None


def arithmetic_failures(section: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Scenarios without random-number differences whose outputs fail the fp64 criterion."""
    scenarios = [s for s in section.get("scenarios") or [] if isinstance(s, Mapping)]
    failing = failing_without_random_numbers({s.get("name"): s.get("passes") for s in scenarios})
    return [s for s in scenarios if s.get("name") in failing]


# --- the probe's figures read as a whole: the verdicts --------------------------------------
# The as-is training scenario compares eager and compiled from the same seed; the what-ifs take
# random numbers out, with `fallback_random` (Inductor draws with eager's generator) and with
# every dropout off. If a what-if passes the fp64 criterion, random numbers explain the
# difference; if none does, the arithmetic differs, and when taking random numbers out still
# shrinks the difference RNG_SHARE-fold, both do.

RNG_SHARE = 10.0  # as is differing 10x more than with random numbers out: both causes

SUMMARIES = {
    NONE: "compiled is as close to fp64 as eager in every scenario",
    RNG: "the difference is random numbers: it vanishes when both sides draw the same",
    ARITHMETIC: "compiled arithmetic differs beyond the fp64 criterion",
    BOTH: "random numbers explain most of the difference; the arithmetic differs too",
    UNTESTED: "training differs, and no what-if without random numbers ran to say why",
    UNKNOWN: "some scenarios did not complete",
}


@dataclass(frozen=True)
class Attribution:
    """What the training difference as is comes from (a verdict), and the figures that say so."""

    verdict: str
    explanation: str


@dataclass(frozen=True)
class DivergenceReading:
    """What the recorded divergence figures say, as the record's verdict keys hold it."""

    verdict: str  # NONE, RNG, ARITHMETIC, BOTH, UNTESTED or UNKNOWN (probes.records.divergence)
    summary: str
    attribution_verdict: str | None  # None: no training entry point, nothing to attribute
    attribution_explanation: str | None
    tf32_explains: bool | None  # fails with TF32 on, passes with it off; None: not compared


def read_divergence(section: Mapping[str, Any]) -> DivergenceReading:
    """The verdicts of a recorded divergence section, from its figures alone."""
    attribution = attribute(section)
    verdict = overall_verdict(section, attribution.verdict if attribution else None)
    return DivergenceReading(
        verdict=verdict,
        summary=summary(verdict, section.get("localization")),
        attribution_verdict=attribution.verdict if attribution else None,
        attribution_explanation=attribution.explanation if attribution else None,
        tf32_explains=tf32_explains(section),
    )


def complete_divergence_record(section: Mapping[str, Any]) -> dict[str, Any]:
    """The section with its reading written in, as `diagnosis.json` keeps it; `section` as is.

    Fills `verdict`, `summary`, `attribution.verdict`, `attribution.explanation` (when the
    section has an attribution) and `precision.tf32_explains` (when it has a precision check).
    """
    reading = read_divergence(section)
    completed = {**section, "verdict": reading.verdict, "summary": reading.summary}
    attribution = section.get("attribution")
    if isinstance(attribution, Mapping):
        figures = {k: v for k, v in attribution.items() if k not in ("verdict", "explanation")}
        completed["attribution"] = {
            "verdict": reading.attribution_verdict,
            "explanation": reading.attribution_explanation,
            **figures,
        }
    precision = section.get("precision")
    if isinstance(precision, Mapping):
        completed["precision"] = {**precision, "tf32_explains": reading.tf32_explains}
    return completed


def attribute(section: Mapping[str, Any]) -> Attribution | None:
    """What the training difference as is comes from, and why: None without a training run.

    Judged by the what-ifs that ran; "untested" when none was asked for.
    """
    if not isinstance(section.get("attribution"), Mapping):
        return None
    as_is = scenario(section, AS_IS)
    if as_is is None or as_is.get("passes") is None:
        return Attribution(UNKNOWN, "the as-is training run did not complete")
    what_ifs = [item for item in (scenario(section, n) for n in RNG_FREE) if item is not None]
    diff = sci(as_is.get("primary_max_abs_diff") or 0.0)
    if as_is.get("passes"):  # nothing to attribute, with or without what-ifs
        because = f"as is, compiled passes the fp64 criterion (loss differs by {diff})"
        return Attribution(NONE, f"{because}: there is no divergence to attribute")
    if not what_ifs:
        return Attribution(
            UNTESTED,
            f"the loss differs by {diff} as is; no what-if taking random numbers out was run, "
            "so random numbers and arithmetic are not told apart",
        )
    rng_free = [item for item in what_ifs if item.get("passes") is not None]
    if not rng_free:
        return Attribution(UNKNOWN, "the what-if training runs did not complete")
    cleared = [item for item in rng_free if item.get("passes")]
    if cleared:
        named = " and ".join(
            f"{item.get('name')} ({sci(item.get('primary_max_abs_diff'))})" for item in cleared
        )
        return Attribution(
            RNG,
            f"the loss differs by {diff} as is and passes the fp64 criterion with {named}: "
            "eager and compiled drew different random numbers; the arithmetic agrees",
        )
    best = min(rng_free, key=lambda item: as_number(item.get("max_rel_diff")) or 0.0)
    before = as_number(as_is.get("max_rel_diff")) or 0.0
    after = as_number(best.get("max_rel_diff")) or 0.0
    change = (
        f"the largest relative difference over loss and gradients is {sci(before)} as is and "
        f"{sci(after)} with {best.get('name')}"
    )
    if before > RNG_SHARE * after:
        return Attribution(
            BOTH,
            f"{change}: random numbers explain most of it, but what remains fails the fp64 "
            "criterion too",
        )
    return Attribution(
        ARITHMETIC,
        f"{change}: taking random numbers out does not help; the arithmetic differs beyond the "
        "fp64 criterion",
    )


def overall_verdict(section: Mapping[str, Any], attribution: str | None) -> str:
    """The training attribution, overruled where inference without random numbers fails."""
    eval_passes = (scenario(section, EVAL) or {}).get("passes")
    if attribution is None:
        if eval_passes is None:
            return UNKNOWN
        return ARITHMETIC if eval_passes is False else NONE
    if eval_passes is False:
        # Inference without random numbers already fails: the arithmetic differs, whatever the
        # random numbers add in training.
        return {NONE: ARITHMETIC, RNG: BOTH, UNTESTED: ARITHMETIC}.get(attribution, attribution)
    return attribution


def summary(verdict: str, localization: Any) -> str:
    """One sentence: the verdict, and where the localization found the first divergence."""
    text = SUMMARIES.get(verdict, verdict)
    if not isinstance(localization, Mapping):
        return text
    if localization.get("first_divergent_module"):
        text += f"; first module to add error: {localization['first_divergent_module']}"
    elif localization.get("backward_only"):
        gradient = localization.get("first_divergent_gradient")
        text += f"; only in the backward pass, first at the gradient of {gradient}"
    confirmed = localization.get("confirmation")
    if isinstance(confirmed, Mapping) and confirmed.get("reproduced") is not None:
        path = confirmed.get("module_path")
        text += (
            f" (compiled alone, {path} reproduces it)"
            if confirmed["reproduced"]
            else f" (compiled alone, {path} does not reproduce it)"
        )
    return text


def tf32_explains(section: Mapping[str, Any]) -> bool | None:
    """True when training fails with TF32 on for both sides and passes with it off."""
    off, on = scenario(section, TF32_OFF), scenario(section, TF32_ON)
    if off is None or on is None or off.get("passes") is None or on.get("passes") is None:
        return None
    return bool(off["passes"] and not on["passes"])
