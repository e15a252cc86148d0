"""Plots as inline SVG: matplotlib's `Figure` (no pyplot, no global state), one look for all.

Every plot of the report is drawn inside `plotting()` (matplotlib's settings for the report,
restored afterwards) and turned into markup by `svg_markup`. The SVG keeps its text as text
(`svg.fonttype` "none": searchable, copyable, a tenth of the size of glyphs as paths; the browser
draws it in its own sans-serif, no font is loaded), carries no date, and its ids come from a salt
of the plot's own name, so that the same record renders to the same bytes and two plots on one
page never share an id. Text is never read as mathtext (`text.parse_math` off): a `$` in a
module path stays a `$`.

Eager and compiled have one colour each on every plot.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from collections.abc import Iterator
from typing import Any

import matplotlib
from matplotlib import ticker
from matplotlib.figure import Figure

from probes.records.names import COMPILED, EAGER

EAGER_COLOUR = "#3a6fb0"  # blue
COMPILED_COLOUR = "#e07b24"  # orange
SIDE_COLOUR = {EAGER: EAGER_COLOUR, COMPILED: COMPILED_COLOUR}
INK = "#222222"
MUTED = "#8a8a8a"
ALERT = "#c0392b"  # a marked place: the first module to diverge, a failed check

WIDTH_IN = 10.0  # 720 pt: the report's column, drawn at about one to one
DPI = 72

STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10,
    "axes.labelcolor": INK,
    "axes.edgecolor": "#b0b0b0",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e6e6e6",
    "grid.linewidth": 0.8,
    "xtick.color": INK,
    "ytick.color": INK,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
}

_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.DOTALL)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
_IDS = re.compile(r'(\bid="|url\(#|href="#)([^")]+)')
_SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


@contextlib.contextmanager
def plotting() -> Iterator[None]:
    """matplotlib's settings for the report's plots, restored on the way out."""
    with matplotlib.rc_context(STYLE):
        yield


def new_figure(height_in: float, width_in: float = WIDTH_IN) -> Figure:
    """A figure of the report's width (call inside `plotting()`)."""
    return Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")


def log_scale(ax: Any, axis: str = "x") -> None:
    """A log axis whose ticks read 10⁻⁵ (matplotlib writes them as mathtext, which is off)."""
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(ticker.LogLocator(base=10))
    target.set_major_formatter(ticker.FuncFormatter(lambda value, _: power_of_ten(value)))
    target.set_minor_formatter(ticker.NullFormatter())


def power_of_ten(value: float) -> str:
    """10⁻⁵, 10⁰, 10³; a value between powers as the report writes figures (2.5e-05)."""
    if value <= 0 or not math.isfinite(value):
        return ""
    exponent = math.log10(value)
    if abs(exponent - round(exponent)) > 1e-9:
        return f"{value:.1e}"
    return "10" + str(round(exponent)).translate(_SUPERSCRIPTS)


def figure_legend(figure: Figure, columns: int, where: str = "outside upper center") -> None:
    """One legend for the whole figure (above its plots by default), each label once, in the
    order the labels were first drawn."""
    seen: dict[str, Any] = {}
    for ax in figure.axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if seen:
        figure.legend(seen.values(), seen.keys(), loc=where, ncol=columns)


def svg_markup(figure: Figure, name: str) -> str:
    """The figure as an `<svg>` element to inline in the page: no XML prologue, no metadata,
    every id prefixed with `name` (a word: the plot's anchor)."""
    buffer = io.StringIO()
    with matplotlib.rc_context({**STYLE, "svg.hashsalt": name}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = _METADATA.sub("", _PROLOGUE.sub("", buffer.getvalue(), count=1), count=1)
    return _IDS.sub(lambda m: f"{m.group(1)}{name}-{m.group(2)}", svg).strip()
