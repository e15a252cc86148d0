"""What both runs recorded, and what only one did: the keys the comparison walks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analyzer.comparison.changes import AFTER, BEFORE, NotCompared


def in_both(one: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    """The keys both sides recorded, in BEFORE's order."""
    return [key for key in one if key in other]


def one_sided(one: Mapping[str, Any], other: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The keys only one side recorded, each with the side that lacks it."""
    return [(key, AFTER) for key in one if key not in other] + [
        (key, BEFORE) for key in other if key not in one
    ]


def not_compared(what: str, one: Mapping[str, Any], other: Mapping[str, Any]) -> list[NotCompared]:
    """One `NotCompared` per entry point (the keys) that only one side recorded `what` for."""
    return [NotCompared(what, key, side) for key, side in one_sided(one, other)]
