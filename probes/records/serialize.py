"""Turn probe results into JSON and back without losing non-finite floats.

Probe results are dataclasses of numbers, strings and source locations. JSON has no NaN or
infinity, and a diagnosis must be able to say "the loss was NaN", so non-finite floats are
written as the strings "NaN", "Infinity" and "-Infinity" and read back as floats.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from pathlib import Path
from typing import Any

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def to_jsonable(value: Any) -> Any:
    """A structure of dicts, lists, strings, numbers, booleans and None that json can write."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return to_jsonable(value.item())
    return str(value)


def dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), indent=2, allow_nan=False)


def finite_or_marker(value: Any) -> Any:
    """Read back a float that `to_jsonable` wrote as a marker string."""
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    return value


def non_finite_constant(name: str) -> float:
    """The float of a bare NaN, Infinity or -Infinity, as Python's `json` writes them (outside
    strict JSON): `json.loads(text, parse_constant=non_finite_constant)` reads such a file."""
    return _NON_FINITE[name]


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON so that a reader (or a crash) never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps(value) + "\n", encoding="utf-8")
    tmp.replace(path)


def as_number(value: Any) -> float | None:
    """A recorded figure as a float; None where it is missing or not a number.

    Reads the markers `to_jsonable` writes for non-finite floats ("NaN", "Infinity") back as
    floats; a boolean is not a figure.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except ValueError:
        return None
