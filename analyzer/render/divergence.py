"""Rich renderables for the divergence probe: scenarios, attribution, the per-module walk.

They read the recorded section (`probes["divergence"]`, laid out in `probes.records.divergence`),
its verdicts included as `analyzer.rules.divergence_reading.complete_divergence_record` writes
them in, so a live run and a `diagnosis.json` read back render alike. Below `WIDE_AT` columns
each table folds its numbers into one column so that nothing is cut at 80 columns. Differences
are absolute, in the unit of the output compared (the loss, an action, a gradient); "rel" is
relative to the output's largest magnitude; ratios are compiled's error against fp64 over eager's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

from analyzer.format import MISSING, sci, seconds, times
from analyzer.render.verdicts import passed_text
from probes.records.divergence import (
    ARITHMETIC,
    AS_IS,
    BACKEND_STATE,
    BISECT,
    BOTH,
    FIND_MAX_BOUNDS,
    NONE,
    RNG,
    RNG_FREE,
    TEST_DISABLE,
    UNKNOWN,
    UNTESTED,
)
from probes.records.serialize import as_number, to_jsonable

WIDE_AT = 120
AROUND_BEFORE, AROUND_AFTER = 3, 8  # walk rows shown around the first module that adds error
GRADIENT_ROWS = 10
TOP = "(top)"

VERDICT_STYLE = {
    NONE: "green",
    RNG: "cyan",
    ARITHMETIC: "bold red",
    BOTH: "bold yellow",
    UNTESTED: "yellow",
    UNKNOWN: "dim",
}


NOT_RUN = "not run"  # a comparison the probe did not make


def _criterion_text(passes: Any) -> Text:
    """A comparison against the fp64 criterion: PASS, FAIL or not run."""
    return passed_text(passes, NOT_RUN)


def _primary(item: Mapping[str, Any]) -> Mapping[str, Any]:
    name = item.get("primary")
    return next((o for o in item.get("outputs") or [] if o.get("name") == name), {})


def _gradients(item: Mapping[str, Any]) -> str:
    compared = int(item.get("gradients_compared") or 0)
    if not compared:
        return MISSING
    return f"{int(item.get('gradients_failing') or 0)} of {compared} fail"


def summary_lines(section: Mapping[str, Any]) -> Text:
    verdict = str(section.get("verdict") or UNKNOWN)
    text = Text("Divergence: ", style="bold")
    text.append(verdict, style=VERDICT_STYLE.get(verdict, ""))
    text.append(f" — {section.get('summary') or ''}\n")
    text.append(f"criterion: {section.get('criterion_rule') or MISSING}\n", style="dim")
    source = (section.get("criterion") or {}).get("source")
    if source:
        text.append(f"from {source}\n", style="dim")
    text.rstrip()
    return text


class ScenarioTable:
    """One row per scenario: the loss or action compared, gradients, and the criterion's verdict."""

    def __init__(self, section: Mapping[str, Any]) -> None:
        self.scenarios = list(to_jsonable(section).get("scenarios") or [])

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if not self.scenarios:
            return
        wide = options.max_width >= WIDE_AT
        table = Table(title="Eager vs compiled vs fp64", box=box.SIMPLE_HEAD, title_justify="left")
        if wide:
            table.add_column("scenario", no_wrap=True)
            table.add_column("output", no_wrap=True)
            table.add_column("|compiled−eager|", justify="right", no_wrap=True)
            table.add_column("eager noise", justify="right", no_wrap=True)
            table.add_column("eager vs fp64 (RMSE)", justify="right", no_wrap=True)
            table.add_column("compiled vs fp64 (RMSE)", justify="right", no_wrap=True)
            table.add_column("ratio", justify="right", no_wrap=True)
            table.add_column("gradients", no_wrap=True)
            table.add_column("verdict", no_wrap=True)
            table.add_column("time", justify="right", no_wrap=True)
        else:
            table.add_column("scenario", ratio=1, overflow="fold")
            table.add_column("measured", ratio=2, overflow="fold")
        for item in self.scenarios:
            table.add_row(*(_wide_row(item) if wide else _narrow_row(item)))
        yield table


def _wide_row(item: Mapping[str, Any]) -> Sequence[RenderableType]:
    primary = _primary(item)
    return (
        Text(str(item.get("name"))),
        str(item.get("primary") or MISSING),
        sci(primary.get("max_abs_diff")),
        sci(primary.get("eager_rerun_max_abs_diff")),
        sci(primary.get("eager_rmse_vs_fp64")),
        sci(primary.get("compiled_rmse_vs_fp64")),
        times(primary.get("error_ratio")),
        _gradients(item),
        Text("error", style="red") if item.get("error") else _criterion_text(item.get("passes")),
        seconds(item.get("seconds") or 0),
    )


def _narrow_row(item: Mapping[str, Any]) -> Sequence[RenderableType]:
    primary = _primary(item)
    name = Text(str(item.get("name")), style="bold")
    name.append(f"\n{item.get('description') or ''}", style="dim")
    if item.get("error"):
        return name, Text(str(item["error"]), style="red")
    measured = _criterion_text(item.get("passes"))
    measured.append(
        f" {item.get('primary')}: |compiled−eager| {sci(primary.get('max_abs_diff'))}\n"
        f"vs fp64 (RMSE): eager {sci(primary.get('eager_rmse_vs_fp64'))}, "
        f"compiled {sci(primary.get('compiled_rmse_vs_fp64'))} "
        f"({times(primary.get('error_ratio'))})"
    )
    if item.get("gradients_compared"):
        measured.append(f"\ngradients: {_gradients(item)}")
    measured.append(f"\n{seconds(item.get('seconds') or 0)}", style="dim")
    return name, measured


class AttributionTable:
    """The training loss and gradients as is, with fallback_random and with dropout off."""

    def __init__(self, section: Mapping[str, Any]) -> None:
        self.attribution = to_jsonable(section).get("attribution")

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        attribution = self.attribution
        if not isinstance(attribution, Mapping):
            return
        verdict = str(attribution.get("verdict"))
        table = Table(
            title="Random numbers or arithmetic (training)",
            box=box.SIMPLE_HEAD,
            title_justify="left",
        )
        table.add_column("scenario", no_wrap=True)
        table.add_column("loss |Δ|", justify="right", no_wrap=True)
        table.add_column("max gradient |Δ|", justify="right", no_wrap=True)
        table.add_column("fp64 criterion", no_wrap=True)
        for name in (AS_IS, *RNG_FREE):
            table.add_row(
                name,
                sci((attribution.get("loss_diff") or {}).get(name)),
                sci((attribution.get("max_gradient_diff") or {}).get(name)),
                _criterion_text((attribution.get("passes") or {}).get(name)),
            )
        line = Text("attribution: ", style="bold")
        line.append(verdict, style=VERDICT_STYLE.get(verdict, ""))
        line.append(f" — {attribution.get('explanation') or ''}")
        yield Group(table, line)


def rows_around[T](modules: Sequence[T], index: int) -> list[T]:
    """The module calls shown around the one at `index`: AROUND_BEFORE ahead, AROUND_AFTER on."""
    return list(modules[max(index - AROUND_BEFORE, 0) : index + AROUND_AFTER + 1])


def _walk_rows(
    modules: list[Mapping[str, Any]], focus: str | None
) -> tuple[list[Mapping[str, Any]], str]:
    """The rows around the module in focus, or, without one, those furthest from fp64."""
    index = next((i for i, m in enumerate(modules) if m.get("path") == focus), None)
    if index is not None:
        rows = rows_around(modules, index)
        return rows, f"{len(rows)} of {len(modules)} module calls, around {focus or TOP}"
    count = AROUND_BEFORE + AROUND_AFTER
    ranked = sorted(modules, key=lambda m: -(as_number(m.get("error_ratio")) or 0.0))[:count]
    rows = [m for m in modules if any(m is r for r in ranked)]
    return rows, f"the {len(rows)} of {len(modules)} module calls furthest from fp64 vs eager"


def module_label(module: Mapping[str, Any]) -> str:
    """A module call as the walk names it: its path, the top one's, and which call."""
    path = str(module.get("path") or "") or TOP
    call = int(module.get("call_index") or 0)
    return f"{path} (call {call + 1})" if call else path


def _role(module: Mapping[str, Any]) -> Text:
    if module.get("adds_error"):
        return Text("adds error", style="bold red")
    if not module.get("passes"):
        return Text("carries error", style="yellow")
    return Text("ok", style="green")


class ModuleWalkTable:
    """The recorded run's modules in finishing order, around the first one that adds error."""

    def __init__(self, section: Mapping[str, Any]) -> None:
        self.localization = to_jsonable(section).get("localization")

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        found = self.localization
        if not isinstance(found, Mapping):
            return
        modules = list(found.get("modules") or [])
        # a backward-only divergence has no first module: centre on the one confirmed alone
        focus = found.get("first_divergent_module") or (found.get("confirmation") or {}).get(
            "module_path"
        )
        rows, shown = _walk_rows(modules, focus)
        wide = options.max_width >= WIDE_AT
        table = Table(
            title=f"Where ({found.get('entry_point')}, modules in finishing order)",
            box=box.SIMPLE_HEAD,
            title_justify="left",
            caption=f"{shown}; {found.get('capture_note')}",
            caption_justify="left",
        )
        if wide:
            table.add_column("#", justify="right", no_wrap=True)
            table.add_column("module", ratio=3, overflow="fold")
            table.add_column("class", no_wrap=True)
            table.add_column("shape", no_wrap=True)
            table.add_column("max |Δ|", justify="right", no_wrap=True)
            table.add_column("max rel", justify="right", no_wrap=True)
            table.add_column("RMSE", justify="right", no_wrap=True)
            table.add_column("growth", justify="right", no_wrap=True)
            table.add_column("vs fp64", justify="right", no_wrap=True)
            table.add_column("role", no_wrap=True)
        else:
            table.add_column("module", ratio=3, overflow="fold")
            table.add_column("error", ratio=2, overflow="fold")
        for module in rows:
            table.add_row(*(_module_wide(module) if wide else _module_narrow(module)))
        yield Group(table, confirmation_line(found))


def _module_wide(module: Mapping[str, Any]) -> Sequence[RenderableType]:
    return (
        str(module.get("order")),
        module_label(module),
        str(module.get("module_class")),
        "×".join(str(n) for n in module.get("shape") or []) or "scalar",
        sci(module.get("max_abs_error")),
        sci(module.get("max_rel_error")),
        sci(module.get("rmse")),
        times(module.get("error_growth")),
        times(module.get("error_ratio")),
        _role(module),
    )


def _module_narrow(module: Mapping[str, Any]) -> Sequence[RenderableType]:
    where = Text(f"{module.get('order')}. {module_label(module)}\n")
    shape = "×".join(str(n) for n in module.get("shape") or []) or "scalar"
    where.append(f"{module.get('module_class')} {shape}", style="dim")
    error = _role(module)
    error.append(
        f"\nmax |Δ| {sci(module.get('max_abs_error'))}, rel {sci(module.get('max_rel_error'))}"
        f"\nRMSE {sci(module.get('rmse'))}, growth {times(module.get('error_growth'))}"
        f"\nvs fp64 {times(module.get('error_ratio'))}"
    )
    return where, error


def confirmation_line(found: Mapping[str, Any]) -> Text:
    text = Text()
    first = found.get("first_divergent_module")
    if first is not None:
        text.append("first module to add error: ", style="bold")
        text.append(f"{first or TOP} ({found.get('first_divergent_class')})\n")
    elif found.get("backward_only"):
        text.append("forward agrees; first gradient to fail (backward order): ", style="bold")
        text.append(f"{found.get('first_divergent_gradient')}\n")
    else:
        text.append("no module adds error on its own\n", style="bold")
    confirmation = found.get("confirmation")
    if isinstance(confirmation, Mapping):
        reproduced = confirmation.get("reproduced")
        text.append(f"compiled alone, the rest eager: {confirmation.get('module_path') or TOP} ")
        if confirmation.get("error"):
            text.append(f"failed to run ({confirmation['error']})", style="red")
        elif reproduced:
            text.append("reproduces the divergence", style="bold red")
        else:
            text.append("does not reproduce it", style="yellow")
        text.append(f" ({seconds(confirmation.get('seconds') or 0)})", style="dim")
    text.rstrip()
    return text


class GradientWalkTable:
    """Gradients in backward order, from the first one that fails."""

    def __init__(self, section: Mapping[str, Any]) -> None:
        found = to_jsonable(section).get("localization")
        self.gradients = list((found or {}).get("gradients") or [])

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        failing = [i for i, g in enumerate(self.gradients) if not g.get("passes")]
        if not failing:
            return
        rows = self.gradients[failing[0] : failing[0] + GRADIENT_ROWS]
        table = Table(
            title=f"Gradients in backward order ({len(failing)} of {len(self.gradients)} fail)",
            box=box.SIMPLE_HEAD,
            title_justify="left",
        )
        table.add_column("parameter", ratio=3, overflow="fold")
        table.add_column("max |Δ|", justify="right", no_wrap=True)
        table.add_column("vs fp64", justify="right", no_wrap=True)
        table.add_column("criterion", no_wrap=True)
        for gradient in rows:
            table.add_row(
                str(gradient.get("parameter")),
                sci(gradient.get("max_abs_error")),
                times(gradient.get("error_ratio")),
                _criterion_text(gradient.get("passes")),
            )
        yield table


def _marks(label: str, steps: Sequence[Mapping[str, Any]], name: str) -> Text:
    """One line of the bisector's walk: each test's name and whether it passed."""
    text = Text(f"  {label}: ", style="dim")
    for i, step in enumerate(steps):
        passed = step.get("passes")
        text.append(" · " if i else "")
        text.append(f"{step.get(name)} ", style="")
        text.append("pass" if passed else "FAIL", style="green" if passed else "red")
    text.append("\n")
    return text


def _walk_lines(steps: Sequence[Mapping[str, Any]]) -> Text:
    """The walk in its three parts: the backends, subsystems switched off, the binary search."""
    text = Text()
    backends = [s for s in steps if s.get("state") == BACKEND_STATE]
    switched_off = [s for s in steps if s.get("state") == TEST_DISABLE]
    searched = [s for s in steps if s.get("state") in (FIND_MAX_BOUNDS, BISECT)]
    if backends:
        text.append_text(_marks("backends", backends, "backend"))
    if switched_off:
        text.append_text(_marks("subsystem off", switched_off, "subsystem"))
    if searched:
        text.append(f"  applications of {searched[0].get('subsystem')} searched: ", style="dim")
        text.append(f"{len(searched)} compiles\n")
    return text


def bisection_lines(section: Mapping[str, Any]) -> Text:
    """The compiler bisection as recorded: the stage torch's bisector named and its walk."""
    found = section.get("bisection")
    if not isinstance(found, Mapping):
        return Text()
    text = Text()
    text.append("compiler stage (torch's CompilerBisector, fp64 criterion): ", style="bold")
    text.append(f"{found.get('module_path') or 'the whole model'} ({found.get('entry_point')})\n")
    if found.get("error"):
        text.append(f"stopped: {found['error']}\n", style="red")
    elif found.get("backend"):
        parts = [f"backend {found['backend']}"]
        parts += [f"subsystem {found['subsystem']}"] if found.get("subsystem") else []
        if found.get("bisect_number") is not None:
            parts.append(f"application {found['bisect_number']}")
        parts += [f"debug info {found['debug_info']}"] if found.get("debug_info") else []
        change = found.get("config_change")
        if isinstance(change, Mapping):
            parts.append(
                f"fixed by {change.get('config')}.{change.get('field')}={change.get('value')}"
            )
        text.append(", ".join(parts) + "\n", style="bold red")
    else:
        text.append("no backend fails the criterion\n", style="green")
    env = found.get("reproduce_env") or {}
    if env:
        text.append("by hand: " + " ".join(f"{k}={v}" for k, v in env.items()) + "\n")
    text.append_text(_walk_lines(list(found.get("steps") or [])))
    text.append(
        f"{found.get('compiles')} compiles, {found.get('reused_answers') or 0} answers reused, "
        f"{seconds(found.get('seconds') or 0)}",
        style="dim",
    )
    return text


def notes_lines(section: Mapping[str, Any]) -> Text:
    text = Text(style="dim")
    precision = section.get("precision") or {}
    if precision:
        text.append(f"TF32: {precision.get('note')}")
        if precision.get("tf32_explains") is not None:
            text.append(f"; TF32 explains the difference: {bool(precision['tf32_explains'])}")
        text.append("\n")
    text.append(f"localization: {section.get('localization_note') or MISSING}\n")
    text.append(f"bisection: {section.get('bisection_note') or MISSING}\n")
    phases = section.get("phase_seconds") or {}
    if phases:
        text.append(
            "probe time: " + ", ".join(f"{k} {seconds(v)}" for k, v in phases.items()) + "\n"
        )
    text.append(f"dynamo resets: {section.get('dynamo_resets', 0)}")
    return text


def divergence_view(section: Mapping[str, Any]) -> Group:
    """Everything the probe recorded: `Console().print(divergence_view(section))`."""
    section = to_jsonable(section)
    return Group(
        summary_lines(section),
        ScenarioTable(section),
        AttributionTable(section),
        ModuleWalkTable(section),
        GradientWalkTable(section),
        bisection_lines(section),
        notes_lines(section),
    )
