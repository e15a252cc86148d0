"""Divergence: eager's and compiled's error against fp64, per scenario and per module.

Reads `probes["divergence"]` (`probes.records.divergence.DivergenceReport`, with the analyzer's
verdict and summary written in). The first plot compares, for each scenario's main output (the
action, the loss), how far eager and compiled each are from the fp64 reference, with the
criterion's bound; the second walks the localization's module calls in the order they finished,
the same two errors at each output, and marks the first module that adds error. Errors are RMSE
against fp64, in the output's own unit, on a log scale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from analyzer.format import MISSING, sci, times
from analyzer.render.divergence import (
    AROUND_AFTER,
    AROUND_BEFORE,
    TOP,
    module_label,
    rows_around,
)
from analyzer.render.html.markup import (
    absent,
    badge,
    esc,
    figure,
    missing_probe,
    paragraph,
    passed_badge,
    section,
    subheading,
    table,
)
from analyzer.render.html.plot import (
    ALERT,
    INK,
    MUTED,
    SIDE_COLOUR,
    figure_legend,
    log_scale,
    new_figure,
    plotting,
    svg_markup,
)
from probes.records.divergence import ARITHMETIC, BOTH, NONE, RNG
from probes.records.names import COMPILED, DIVERGENCE, EAGER, SIDES
from probes.records.serialize import as_number

ANCHOR = "divergence"
TITLE = "Divergence from fp64"
SCENARIO_PLOT = "divergence-scenarios"
WALK_PLOT = "divergence-modules"
GRADIENT_PLOT = "divergence-gradients"
VERDICT_TONE = {NONE: "good", RNG: "info", ARITHMETIC: "bad", BOTH: "warn"}
SCENARIO_COLUMNS = (
    "scenario",
    "output",
    "|compiled−eager|",
    "eager vs fp64",
    "compiled vs fp64",
    "bound",
    "ratio",
    "fp64 criterion",
)
MODULE_COLUMNS = (
    "#",
    "module",
    "class",
    "eager vs fp64",
    "compiled vs fp64",
    "ratio",
    "growth",
    "",
)


def _positive(value: Any) -> float | None:
    number = as_number(value)
    return number if number is not None and math.isfinite(number) and number > 0 else None


def primary_output(scenario: Mapping[str, Any]) -> Mapping[str, Any]:
    name = scenario.get("primary")
    outputs = [o for o in scenario.get("outputs") or [] if isinstance(o, Mapping)]
    return next((o for o in outputs if o.get("name") == name), outputs[0] if outputs else {})


def _scenarios(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        s for s in record.get("scenarios") or [] if isinstance(s, Mapping) and primary_output(s)
    ]


# --- the plots ------------------------------------------------------------------------------


def _log_axis_note(ax: Any, values: Sequence[float | None], y: float) -> None:
    """Where a side's error is 0 or was not measured, say so at the axis (no bar on a log scale)."""
    for side, value in zip(SIDES, values, strict=True):
        if value is None:
            ax.annotate(
                f"{side}: 0 or not measured",
                xy=(0, y),
                xycoords=("axes fraction", "data"),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
                color=MUTED,
            )


def scenario_plot(scenarios: Sequence[Mapping[str, Any]]) -> str:
    """Per scenario, eager's and compiled's RMSE against fp64, and the criterion's bound."""
    height = 0.36
    with plotting():
        fig = new_figure(0.9 + 0.55 * len(scenarios))
        ax = fig.add_subplot()
        labels = []
        for index, scenario in enumerate(reversed(scenarios)):
            output = primary_output(scenario)
            values = [_positive(output.get(f"{side}_rmse_vs_fp64")) for side in SIDES]
            for offset, side, value in (
                (height / 2, EAGER, values[0]),
                (-height / 2, COMPILED, values[1]),
            ):
                if value is not None:
                    ax.barh(
                        index + offset,
                        value,
                        height,
                        color=SIDE_COLOUR[side],
                        label=side if index == 0 else None,
                    )
            bound = _positive(output.get("bound"))
            if bound is not None:
                ax.plot(
                    [bound, bound],
                    [index - 0.42, index + 0.42],
                    color=INK,
                    linewidth=1.6,
                    label="criterion's bound" if index == 0 else None,
                )
            if None in values:
                _log_axis_note(ax, values, index)
            labels.append(f"{scenario.get('name')} · {output.get('name')}")
        log_scale(ax, "x")
        ax.set_yticks(range(len(labels)), labels)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("RMSE against the fp64 reference (output's unit, log scale)")
        ax.set_title("Each scenario's main output: eager and compiled against fp64", color=INK)
        figure_legend(fig, 3)
        return svg_markup(fig, SCENARIO_PLOT)


def _walk(
    ax: Any, rows: Sequence[Mapping[str, Any]], first: float | None, first_label: str, xlabel: str
) -> None:
    orders = [as_number(r.get("order")) or 0.0 for r in rows]
    # compiled under eager: where they agree, eager's line shows; where they part, both do
    for side, width, size in ((COMPILED, 2.2, 4.5), (EAGER, 1.2, 3.0)):
        ys = [_positive(r.get(f"{side}_rmse_vs_fp64")) for r in rows]
        ax.plot(
            orders,
            [y if y is not None else math.nan for y in ys],
            color=SIDE_COLOUR[side],
            marker="o",
            markersize=size,
            linewidth=width,
            label=f"{side} vs fp64",
        )
    failing = [
        (o, _positive(r.get("compiled_rmse_vs_fp64")))
        for o, r in zip(orders, rows, strict=True)
        if r.get("passes") is False
    ]
    failing = [(o, y) for o, y in failing if y is not None]
    if failing:
        ax.scatter(
            *zip(*failing, strict=True),
            s=40,
            facecolors="none",
            edgecolors=ALERT,
            linewidths=1.0,
            zorder=4,
            label="fails the criterion",
        )
    if first is not None:
        ax.axvline(first, color=ALERT, linestyle="--", linewidth=1.2)
        right_half = first > (min(orders) + max(orders)) / 2  # the label goes where there is room
        ax.annotate(
            first_label,
            xy=(first, 0.5),
            xycoords=("data", "axes fraction"),
            xytext=(-6 if right_half else 6, 0),
            textcoords="offset points",
            ha="right" if right_half else "left",
            va="center",
            fontsize=9,
            color=ALERT,
            fontweight="bold",
            bbox={
                "boxstyle": "round,pad=0.3",
                "facecolor": "white",
                "edgecolor": ALERT,
                "linewidth": 0.8,
            },
        )
    log_scale(ax, "y")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("RMSE against fp64")


def walk_plot(
    rows: Sequence[Mapping[str, Any]],
    first: float | None,
    first_label: str,
    title: str,
    xlabel: str,
    name: str,
) -> str:
    with plotting():
        fig = new_figure(3.4)
        ax = fig.add_subplot()
        _walk(ax, rows, first, first_label, xlabel)
        ax.set_title(title, color=INK)
        figure_legend(fig, 3)
        return svg_markup(fig, name)


# --- the tables and the section -------------------------------------------------------------


def scenario_rows(scenarios: Sequence[Mapping[str, Any]]) -> list[Sequence[str]]:
    rows = []
    for scenario in scenarios:
        output = primary_output(scenario)
        rows.append(
            (
                str(scenario.get("name")),
                str(output.get("name") or MISSING),
                sci(output.get("max_abs_diff")),
                sci(output.get("eager_rmse_vs_fp64")),
                sci(output.get("compiled_rmse_vs_fp64")),
                sci(output.get("bound")),
                times(output.get("error_ratio")),
                badge("error", "bad")
                if scenario.get("error")
                else passed_badge(scenario.get("passes"), "not run"),
            )
        )
    return rows


def _role(module: Mapping[str, Any]) -> str:
    if module.get("adds_error"):
        return badge("adds error", "bad")
    if module.get("passes") is False:
        return badge("carries error", "warn")
    return badge("ok", "good")


def _around(modules: Sequence[Mapping[str, Any]], focus: str | None) -> list[Mapping[str, Any]]:
    """The module calls around the first divergent one (the terminal's window), else the first."""
    index = next(
        (i for i, m in enumerate(modules) if focus is not None and m.get("path") == focus), None
    )
    if index is None:
        return list(modules[: AROUND_BEFORE + AROUND_AFTER + 1])
    return rows_around(modules, index)


def module_tables(modules: Sequence[Mapping[str, Any]], first: str | None) -> str:
    """The calls around the first divergent module, then every call on request."""
    shown = _around(modules, first)
    window = module_table(shown, first)
    if len(shown) == len(modules):
        return window
    every = f'<div class="scroll">{module_table(modules, first)}</div>'
    return f"{window}<details><summary>all {len(modules)} module calls</summary>{every}</details>"


def module_table(modules: Sequence[Mapping[str, Any]], first: str | None) -> str:
    rows = [
        (
            str(m.get("order")),
            module_label(m),
            str(m.get("module_class")),
            sci(m.get("eager_rmse_vs_fp64")),
            sci(m.get("compiled_rmse_vs_fp64")),
            times(m.get("error_ratio")),
            times(m.get("error_growth")),
            _role(m),
        )
        for m in modules
    ]
    marked = [
        "first" if first is not None and m.get("path") == first and not m.get("call_index") else ""
        for m in modules
    ]
    return table(
        MODULE_COLUMNS, rows, numeric=(0, 3, 4, 5, 6), raw_columns=(7,), row_classes=marked
    )


def _first_index(
    rows: Sequence[Mapping[str, Any]], key: str, name: str | None
) -> Mapping[str, Any] | None:
    if name is None:
        return None
    return next((r for r in rows if r.get(key) == name), None)


def localization_parts(record: Mapping[str, Any]) -> list[str]:
    found = record.get("localization")
    if not isinstance(found, Mapping):
        note = record.get("localization_note") or "the probe did not walk the modules"
        return [subheading("Where it starts"), absent(f"No module walk: {note}.")]
    modules = [m for m in found.get("modules") or [] if isinstance(m, Mapping)]
    gradients = [g for g in found.get("gradients") or [] if isinstance(g, Mapping)]
    first = found.get("first_divergent_module")
    parts = [subheading(f"Where it starts ({found.get('entry_point')}, module by module)")]
    parts.append(paragraph(str(found.get("reason") or "")))
    if modules:
        first_row = _first_index(modules, "path", first)
        label = f"first to add error: {first or TOP} ({found.get('first_divergent_class')})"
        plot = walk_plot(
            modules,
            as_number(first_row.get("order")) if first_row else None,
            label,
            "Each module call's output: eager and compiled against fp64",
            "module call, in the order the calls finished",
            WALK_PLOT,
        )
        caption = (
            f"{len(modules)} module calls of one recorded compiled run with a hook on every "
            f"submodule ({found.get('capture_note')}). "
            + (
                f"The dashed line marks {first or TOP}, the first module whose output fails the "
                "criterion while its inputs pass."
                if first is not None
                else "No module adds error on its own."
            )
        )
        parts += [figure(plot, caption, WALK_PLOT), module_tables(modules, first)]
    gradient = found.get("first_divergent_gradient")
    if gradients and (found.get("backward_only") or first is None):
        first_row = _first_index(gradients, "parameter", gradient)
        plot = walk_plot(
            gradients,
            as_number(first_row.get("order")) if first_row else None,
            f"first gradient to fail: {gradient}",
            "Each parameter's gradient: eager and compiled against fp64",
            "gradient, in backward order",
            GRADIENT_PLOT,
        )
        parts.append(figure(plot, "Gradients in the order backward computes them.", GRADIENT_PLOT))
    parts.append(paragraph(_confirmation(found)))
    return parts


def _confirmation(found: Mapping[str, Any]) -> str:
    confirmation = found.get("confirmation")
    if not isinstance(confirmation, Mapping):
        return "No module was compiled alone to confirm it."
    where = confirmation.get("module_path") or TOP
    if confirmation.get("error"):
        return f"Compiled alone, the rest eager, {where} failed to run ({confirmation['error']})."
    reproduced = confirmation.get("reproduced")
    said = {True: "reproduces the divergence", False: "does not reproduce it"}.get(
        reproduced, "could not run"
    )
    return f"Compiled alone, the rest eager: {where} {said}."


def bisection_part(record: Mapping[str, Any]) -> str:
    found = record.get("bisection")
    if not isinstance(found, Mapping):
        note = record.get("bisection_note")
        return paragraph(f"Compiler stage: not bisected ({note})." if note else "")
    if found.get("error"):
        return paragraph(f"Compiler stage: the bisection stopped ({found['error']}).")
    if not found.get("backend"):
        return paragraph("Compiler stage: no backend fails the criterion.")
    named = [f"backend {found['backend']}"]
    named += [f"subsystem {found['subsystem']}"] if found.get("subsystem") else []
    named += (
        [f"application {found['bisect_number']}"] if found.get("bisect_number") is not None else []
    )
    env = " ".join(f"{k}={v}" for k, v in (found.get("reproduce_env") or {}).items())
    by_hand = f"; by hand: {env}" if env else ""
    return paragraph(f"Compiler stage (torch's CompilerBisector): {', '.join(named)}{by_hand}.")


def divergence_section(diagnosis: Mapping[str, Any]) -> str:
    record = (diagnosis.get("probes") or {}).get(DIVERGENCE)
    if not isinstance(record, Mapping) or not record:
        return section(ANCHOR, TITLE, missing_probe(diagnosis, DIVERGENCE, "divergence figures"))
    verdict = str(record.get("verdict") or "unknown")
    head = (
        f"<p>{badge(verdict, VERDICT_TONE.get(verdict, 'muted'))} "
        f"{esc(record.get('summary') or '')}</p>"
        + paragraph(f"Criterion: {record.get('criterion_rule') or MISSING}", "note")
    )
    scenarios = _scenarios(record)
    parts = [head]
    if scenarios:
        caption = (
            "RMSE of each side's output against an fp64 run of the same eager model; the black "
            "line is the criterion's bound for compiled (a multiple of eager's error, plus a "
            "floor)."
        )
        parts += [
            figure(scenario_plot(scenarios), caption, SCENARIO_PLOT),
            table(
                SCENARIO_COLUMNS,
                scenario_rows(scenarios),
                numeric=(2, 3, 4, 5, 6),
                raw_columns=(7,),
            ),
        ]
    else:
        parts.append(absent("No scenario compared outputs."))
    parts += localization_parts(record)
    parts.append(bisection_part(record))
    return section(ANCHOR, TITLE, *parts)
