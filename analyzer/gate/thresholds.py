"""The gate's thresholds: what `--fail-on` and `[tool.compile-diagnose]` say, read and checked.

A threshold names when a run fails: `graph-breaks>0` fails when there is a graph break. It is a
figure, an operator and a number, or a yes/no check on its own (`error`). The figures
(`FIGURES`) are read from one diagnosis; those marked as comparisons (`.added`, `.change`, ...)
from `compile-diagnose compare`, where the others are read from AFTER. A threshold that does not
parse is a usage error, in one line, before anything runs.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from analyzer.errors import UsageError
from analyzer.rules.catalogue import lookup
from probes.records.names import ENTRY_POINTS

# The suffix that turns a figure into its change from BEFORE to AFTER (after - before).
CHANGE = "change"

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}

_EXPRESSION = re.compile(
    r"^(?P<figure>[A-Za-z][A-Za-z0-9_.\-]*)\s*(?:(?P<op>>=|<=|==|!=|>|<)\s*(?P<limit>\S+))?$"
)


@dataclass(frozen=True)
class Figure:
    """A figure a threshold can name, and what it counts."""

    name: str
    meaning: str
    comparison: bool = False  # only `compile-diagnose compare` has it
    check: bool = False  # a yes/no check, written alone (`error`)


def _figures() -> dict[str, Figure]:
    figures = [
        Figure("graph-breaks", "distinct graph breaks (one reason at one line), all entry points"),
        Figure("recompiles", "recompiles the scenarios caused that torch does not make by design"),
        Figure("action-diff", "the benchmark's max |compiled - eager| of the action"),
        Figure("loss-diff", "the benchmark's |compiled - eager| of the loss"),
        Figure("error", "an error-severity finding stands", check=True),
        Figure("warning", "a warning- or error-severity finding stands", check=True),
        Figure("needs-work", "the reference verdict is not SUCCESS", check=True),
        Figure("fp64", "an output fails the fp64 criterion with no random numbers", check=True),
        Figure("graph-breaks.added", "graph breaks in AFTER only", comparison=True),
        Figure("graph-breaks.fixed", "graph breaks in BEFORE only", comparison=True),
        Figure("recompiles.added", "failing guards that recompile in AFTER only", comparison=True),
        Figure("findings.appeared", "warnings and errors in AFTER only", comparison=True),
    ]
    for entry in ENTRY_POINTS:
        figures += [
            Figure(f"graph-breaks.{entry}", f"distinct graph breaks of {entry}"),
            Figure(f"recompiles.{entry}", f"recompiles of {entry}, not by design"),
            Figure(f"frames.{entry}", f"frames compiled in one {entry} call"),
            Figure(f"speedup.{entry}", f"{entry} speedup over eager, median"),
            Figure(f"speedup.{entry}.low", f"{entry} speedup, the pessimistic end of its range"),
            Figure(f"speedup.{entry}.high", f"{entry} speedup, the optimistic end of its range"),
            Figure(f"first-call.{entry}", f"seconds of the first compiled {entry} call"),
            Figure(
                f"speedup.{entry}.regressed",
                f"{entry} slower beyond the spread of both runs",
                comparison=True,
                check=True,
            ),
        ]
    return {figure.name: figure for figure in figures}


FIGURES = _figures()


@dataclass(frozen=True)
class Threshold:
    """One condition a run fails on."""

    text: str  # as written, without spaces: "speedup.inference<1.1"
    figure: str  # a name of FIGURES, or a finding's code ("CD102")
    op: str | None = None  # one of OPERATORS; None for a yes/no check
    limit: float | None = None
    change: bool = False  # the figure's change, after - before (`FIGURE.change`)

    @property
    def comparison(self) -> bool:
        """Read from a comparison only."""
        figure = FIGURES.get(self.figure)
        return self.change or bool(figure and figure.comparison)

    def holds(self, value: float) -> bool:
        """Whether the failing condition is true of a measured value."""
        assert self.op is not None and self.limit is not None
        return OPERATORS[self.op](value, self.limit)


def parse_thresholds(expressions: Iterable[str], *, where: str = "--fail-on") -> list[Threshold]:
    """Every threshold of comma-separated expressions; `none` alone means none.

    `where` names the source in a usage error: `--fail-on` or the pyproject key.
    """
    texts = [part.strip() for text in expressions for part in text.split(",")]
    if texts == ["none"]:
        return []
    thresholds = []
    for text in texts:
        if not text:
            raise UsageError(f"{where}: an empty threshold (two commas, or one at an end)")
        thresholds.append(parse_threshold(text, where=where))
    return thresholds


def parse_threshold(text: str, *, where: str = "--fail-on") -> Threshold:
    match = _EXPRESSION.match(text.strip())
    if match is None:
        raise UsageError(
            f"{where}: cannot read {text!r}: write FIGURE OP NUMBER (graph-breaks>0) or a check "
            "alone (error)"
        )
    name, op = match["figure"], match["op"]
    compact = re.sub(r"\s+", "", text)
    figure_name, change = _figure_name(name, where)
    finding_rule = None if figure_name in FIGURES else lookup(figure_name)
    check = finding_rule is not None or FIGURES[figure_name].check
    if check and change:
        raise UsageError(f"{where}: {text!r}: {figure_name} is a yes/no check, it has no change")
    if check and op is not None:
        raise UsageError(f"{where}: {text!r}: {figure_name} is a yes/no check: write it alone")
    if check:
        return Threshold(compact, finding_rule.code if finding_rule else figure_name)
    if op is None:
        raise UsageError(
            f"{where}: {text!r} is a figure: say when it fails, e.g. {name}>0 or {name}<1.1"
        )
    try:
        limit = float(match["limit"])
    except ValueError:
        raise UsageError(f"{where}: {text!r}: {match['limit']!r} is not a number") from None
    return Threshold(compact, figure_name, op, limit, change)


def _figure_name(name: str, where: str) -> tuple[str, bool]:
    """The figure a name reads, and whether it asks for its change; unknown ones refused."""
    base, dot, suffix = name.rpartition(".")
    change = bool(dot) and suffix == CHANGE
    figure = base if change else name
    if figure in FIGURES or (not change and lookup(figure) is not None):
        if change and FIGURES[figure].comparison:
            raise UsageError(f"{where}: {name!r}: {figure} compares already, it has no change")
        return figure, change
    raise UsageError(f"{where}: unknown figure {name!r}; {vocabulary()}")


def vocabulary() -> str:
    """The figures in one line, for a usage error."""
    entries = "|".join(ENTRY_POINTS)
    return (
        f"figures: graph-breaks[.{entries}], recompiles[.{entries}], frames.ENTRY, "
        "speedup.ENTRY[.low|.high], first-call.ENTRY, action-diff, loss-diff; checks: error, "
        "warning, needs-work, fp64, a finding's code or name (CD102, graph-break); comparing: "
        "FIGURE.change, graph-breaks.added, graph-breaks.fixed, recompiles.added, "
        "findings.appeared, speedup.ENTRY.regressed"
    )
