"""Random numbers or arithmetic: what the training difference as is comes from.

The as-is training scenario compares eager and compiled from the same seed; the what-ifs take
random numbers out, with `fallback_random` (Inductor draws with eager's generator) and with every
dropout off. If a what-if passes the fp64 criterion, random numbers explain the difference; if
none does, the arithmetic differs, and when taking random numbers out still shrinks the
difference tenfold, both do.
"""

from __future__ import annotations

from dataclasses import dataclass

from probes.divergence.scenarios import ScenarioResult

RNG_SHARE = 10.0  # as is differing 10x more than with random numbers out: both causes


@dataclass
class RngAttribution:
    """What the training difference as is comes from, judged by the what-if scenarios."""

    verdict: str  # "rng" | "arithmetic" | "both" | "none" | "untested" | "unknown"
    explanation: str
    loss_diff: dict[str, float | None]  # scenario -> |compiled - eager| of the loss
    max_gradient_diff: dict[str, float | None]  # scenario -> largest |compiled - eager|
    passes: dict[str, bool | None]  # scenario -> every output passes the criterion


def attribute(as_is: ScenarioResult, *what_ifs: ScenarioResult) -> RngAttribution:
    """Judge the as-is difference by the what-ifs that ran (fallback_random, dropout off)."""
    scenarios = (as_is, *what_ifs)
    loss_diff = {s.name: s.primary_max_abs_diff for s in scenarios}
    gradient_diff = {s.name: s.max_gradient_abs_diff for s in scenarios}
    passes = {s.name: s.passes for s in scenarios}
    if not what_ifs and as_is.passes is False:
        verdict, explanation = (
            "untested",
            (
                f"the loss differs by {as_is.primary_max_abs_diff or 0.0:.2e} as is; no what-if "
                "taking random numbers out was run, so random numbers and arithmetic are not told "
                "apart"
            ),
        )
    else:
        verdict, explanation = _verdict(as_is, [s for s in what_ifs if s.passes is not None])
    return RngAttribution(verdict, explanation, loss_diff, gradient_diff, passes)


def _verdict(as_is: ScenarioResult, rng_free: list[ScenarioResult]) -> tuple[str, str]:
    if as_is.passes is None:
        return "unknown", "the as-is training run did not complete"
    diff = as_is.primary_max_abs_diff or 0.0
    if as_is.passes:  # nothing to attribute, with or without what-ifs
        return "none", (
            f"as is, compiled passes the fp64 criterion (loss differs by {diff:.2e}): "
            "there is no divergence to attribute"
        )
    if not rng_free:
        return "unknown", "the what-if training runs did not complete"
    cleared = [s for s in rng_free if s.passes]
    if cleared:
        named = " and ".join(f"{s.name} ({s.primary_max_abs_diff:.2e})" for s in cleared)
        return "rng", (
            f"the loss differs by {diff:.2e} as is and passes the fp64 criterion with {named}: "
            "eager and compiled drew different random numbers; the arithmetic agrees"
        )
    best = min(rng_free, key=lambda s: s.max_rel_diff or 0.0)
    before, after = as_is.max_rel_diff or 0.0, best.max_rel_diff or 0.0
    change = (
        f"the largest relative difference over loss and gradients is {before:.2e} as is and "
        f"{after:.2e} with {best.name}"
    )
    if before > RNG_SHARE * after:
        return "both", (
            f"{change}: random numbers explain most of it, but what remains fails the fp64 "
            "criterion too"
        )
    return "arithmetic", (
        f"{change}: taking random numbers out does not help; the arithmetic differs beyond "
        "the fp64 criterion"
    )


def overall_verdict(attribution: RngAttribution | None, eval_result: ScenarioResult) -> str:
    eval_fails = eval_result.passes is False
    if attribution is None:
        if eval_result.passes is None:
            return "unknown"
        return "arithmetic" if eval_fails else "none"
    if eval_fails:
        # Inference without random numbers already fails: the arithmetic differs, whatever the
        # random numbers add in training.
        either = {"none": "arithmetic", "rng": "both", "untested": "arithmetic"}
        return either.get(attribution.verdict, attribution.verdict)
    return attribution.verdict
