"""How a figure or a source path reads, wherever the analyzer shows one: one formatter for rules
and renderers.

Rules write figures into their cause sentences and renderers into tables; both take them from
here so that a loss difference reads the same in a finding, a table and the Markdown report, and
a source file reads the same in a finding and a graph-break table (`short_path`). Every number
function takes the recorded form too: None (not measured) and the markers "NaN", "Infinity" and
"-Infinity" that `probes.records.serialize` writes for non-finite floats.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from probes.records.serialize import as_number

MISSING = "—"  # a figure that was not measured, in a table cell
NOT_MEASURED = "not measured"  # the same in a sentence or a labelled line


def sci(value: Any, missing: str = MISSING) -> str:
    """An absolute difference or error as the reference report writes it: 8.93e-05, 0, NaN."""
    number = as_number(value)
    if number is None:
        return missing
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    return "0" if number == 0 else f"{number:.2e}"


def _finite(value: Any, missing: str, text: Callable[[float], str]) -> str:
    """A recorded figure through `text`; `missing` where it was not measured, NaN/inf as such."""
    number = as_number(value)
    if number is None:
        return missing
    return text(number) if math.isfinite(number) else sci(number)


def ms(value: Any, missing: str = MISSING) -> str:
    """A duration recorded in milliseconds: 12.34 ms, 1,234 ms, or 56.7 µs below 0.1 ms."""

    def text(number: float) -> str:
        if abs(number) < 0.1:
            return f"{number * 1e3:.1f} µs"
        return f"{number:,.0f} ms" if abs(number) >= 100 else f"{number:.2f} ms"

    return _finite(value, missing, text)


def seconds(value: Any, missing: str = MISSING, digits: int = 1) -> str:
    """A duration recorded in seconds (a compile, a probe's phase): 12.3 s."""
    return _finite(value, missing, lambda number: f"{number:.{digits}f} s")


GIB = 2**30


def byte_size(value: Any) -> str:
    """A number of bytes as a person reads it: 7.7 GiB, 512.0 MiB, 12 B."""
    number = as_number(value)
    if number is None:
        return "?"
    for unit, size in (("TiB", 2**40), ("GiB", GIB), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(number) >= size:
            return f"{number / size:.1f} {unit}"
    return f"{number:.0f} B"


def mebibytes(value: Any, missing: str = MISSING) -> str:
    """A memory figure recorded in MiB: 1234 MiB."""
    return _finite(value, missing, lambda number: f"{number:.0f} MiB")


def times(value: Any, missing: str = MISSING, digits: int = 2) -> str:
    """A speedup or a ratio of errors: 1.23x."""
    return _finite(value, missing, lambda number: f"{number:,.{digits}f}x")


def speedup_range(ratio: Any, low: Any, high: Any, missing: str = MISSING) -> str:
    """A speedup with the range its timing spread allows: 1.23x (1.10–1.40x)."""
    if as_number(ratio) is None:
        return missing
    if as_number(low) is None or as_number(high) is None:
        return times(ratio)
    return f"{times(ratio)} ({as_number(low):.2f}–{as_number(high):.2f}x)"


def percent(fraction: Any, missing: str = MISSING) -> str:
    """A fraction as a percentage: 0.257 -> 25.7 %."""
    number = as_number(fraction)
    return missing if number is None else f"{100 * number:.1f} %"


def file_link(path: Any) -> str:
    """A recorded file as a link a terminal opens: file:///abs/path (a relative path is read
    against the folder the command runs in)."""
    return Path(str(path)).absolute().as_uri()


def count(value: Any, missing: str = MISSING) -> str:
    """A count, or a count per call: 404, 12.5."""
    return _finite(value, missing, lambda n: f"{n:,.0f}" if n == int(n) else f"{n:,.1f}")


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def format_number(value: float | int) -> str:
    """Any figure as a person reads it: 22.32, 8.93e-05, 0.0, NaN, inf, 12,345."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0.0"
    if 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.2e}"  # as the reference report writes them: 8.93e-05


def short_path(filename: str) -> str:
    """A path as a reader knows it: from the package (`lerobot/...`) or the working folder."""
    marker = "site-packages/"
    if marker in filename:
        return filename.split(marker, 1)[1]
    path = Path(filename)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return filename
