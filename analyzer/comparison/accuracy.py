"""The action and loss differences and the fp64 verdicts of two diagnoses, side by side."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analyzer.comparison.changes import AccuracyChange, Fp64Change, NotCompared
from analyzer.comparison.sides import in_both, not_compared
from probes.records.names import BENCHMARK, DIVERGENCE
from probes.records.reference import (
    ACTION_DIFF_KEY,
    CORRECTNESS_KEY,
    INFERENCE_CORRECT_KEY,
    LOSS_DIFF_KEY,
    TRAINING_CORRECT_KEY,
)
from probes.records.serialize import as_number

Record = Mapping[str, Any]

# The benchmark's |compiled - eager| figures, in words, with the reference's pass of each.
DIFFERENCES = (
    ("action difference", ACTION_DIFF_KEY, INFERENCE_CORRECT_KEY),
    ("loss difference", LOSS_DIFF_KEY, TRAINING_CORRECT_KEY),
)


def accuracy_changes(before: Record, after: Record) -> list[AccuracyChange]:
    """The action and the loss difference where either run measured it."""
    changes = []
    for name, key, passed_key in DIFFERENCES:
        values = [as_number(_benchmark(d).get(key)) for d in (before, after)]
        if values == [None, None]:
            continue
        tolerances = [
            as_number(_benchmark(d).get("settings", {}).get("tolerance")) for d in (before, after)
        ]
        passes = [
            ((d.get("reference_metrics") or {}).get(CORRECTNESS_KEY) or {}).get(passed_key)
            for d in (before, after)
        ]
        changes.append(AccuracyChange(name, *values, *tolerances, *passes))
    return changes


def _benchmark(diagnosis: Record) -> Record:
    return (diagnosis.get("probes") or {}).get(BENCHMARK) or {}


def fp64_changes(before: Record, after: Record) -> tuple[list[Fp64Change], list[NotCompared]]:
    """Each divergence scenario both runs ran, with its fp64 verdict in each."""
    one, other = _scenario_passes(before), _scenario_passes(after)
    changes = [
        Fp64Change(name, entry_point, one[(name, entry_point)], other[(name, entry_point)])
        for name, entry_point in in_both(one, other)
    ]
    missing = not_compared("fp64 scenario", _by_label(one), _by_label(other))
    return changes, missing


def _scenario_passes(diagnosis: Record) -> dict[tuple[str, str], bool | None]:
    section = (diagnosis.get("probes") or {}).get(DIVERGENCE) or {}
    return {
        (str(s.get("name")), str(s.get("entry_point"))): s.get("passes")
        for s in section.get("scenarios") or []
    }


def _by_label(passes: Mapping[tuple[str, str], Any]) -> dict[str, Any]:
    """Scenarios keyed as a reader names one: "eval (inference)"."""
    return {f"{name} ({entry_point})": value for (name, entry_point), value in passes.items()}


def divergence_verdicts(before: Record, after: Record) -> tuple[str | None, str | None] | None:
    """What the divergence reading called each run's difference, where either recorded one."""
    verdicts = tuple(
        ((d.get("probes") or {}).get(DIVERGENCE) or {}).get("verdict") for d in (before, after)
    )
    return None if verdicts == (None, None) else (verdicts[0], verdicts[1])
