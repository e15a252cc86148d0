"""Kernel-timing rules: launch-bound calls, and compiled calls whose time is spent outside
compiled code.

They read the recorded kernel-timing probe (`probes["kernels"]`, a `KernelTimingReport` as JSON)
and, through `check_trace`, a single `TraceSummary` as JSON (`compile-diagnose trace`); both
results, the launch-bound threshold and the profiler's words are in `probes/records/kernels.py`.
A launch-bound call's remedy, the reduce-overhead what-if, is read from `probes["what_ifs"]`
(`probes/records/speed.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analyzer.findings import Finding, Rule, Severity, code_block, make_finding, prose, rank
from analyzer.format import count, ms, percent, plural, times
from analyzer.rules.speed import saved_ms, what_if_fix, what_ifs_of
from probes.records.kernels import (
    COMPILED_REGION_PREFIX,
    KERNEL,
    LAUNCH_BOUND_BUSY,
    MEMCPY,
    MEMSET,
)
from probes.records.names import COMPILED, EAGER, KERNELS
from probes.records.reference import REFERENCE_SPEEDUP
from probes.records.serialize import as_number
from probes.records.speed import REDUCE_OVERHEAD, WHAT_IF_MEASURED

# --- the rules of this family, documented beside their checks --------------------

LAUNCH_BOUND = Rule(
    code="CD201",
    name="launch-bound",
    title="The GPU is idle most of a call",
    default_severity=Severity.WARNING,
    what_it_does=prose(
        "In a profiler trace of one call, compares the time the GPU spends in kernels (events",
        f"of category `{KERNEL}`, `{MEMCPY}` and `{MEMSET}`, never annotations) with the",
        "call's wall span, and counts the kernels launched and the host time in launch APIs.",
        "When the GPU is idle most of the call, it reports the speedup of",
        '`mode="reduce-overhead"` that a what-if run measured.',
    ),
    why_it_matters=prose(
        "When kernels are short the host cannot launch them as fast as the GPU finishes them,",
        "and the GPU waits. Default-mode Inductor fuses some kernels but still launches",
        "hundreds a call, so the speedup stays small: ACT inference on an H100 ran ~400",
        "kernels with the GPU busy about a quarter of the call, and compiled was 1.06x faster",
        "than eager. CUDA graphs record the launches once and replay them in one call: 2.79x",
        "on the same model.",
    ),
    example=code_block(
        """
        policy.model.compile()  # default mode: hundreds of kernel launches per call
        """
    ),
    use_instead=code_block(
        """
        policy.model.compile(mode="reduce-overhead")  # CUDA graphs: one replay per graph
        # keep input shapes fixed; if outputs are kept across calls, call
        # torch.compiler.cudagraph_mark_step_begin() before each step
        """
    ),
)


EAGER_WORK_OUTSIDE_COMPILED_REGION = Rule(
    code="CD202",
    name="eager-work-outside-compiled-region",
    title="Much of a compiled call runs outside compiled regions",
    default_severity=Severity.WARNING,
    what_it_does=prose(
        f"Measures how much of a compiled call's time falls outside `{COMPILED_REGION_PREFIX}`",
        "profiler events: eager code between graph breaks, the optimizer step, gradient",
        "clipping, loss bookkeeping.",
    ),
    why_it_matters=prose(
        "Only code inside a compiled region gets Inductor's fusion. When only the model's",
        "forward (and so its backward) is compiled, the optimizer step and `clip_grad_norm_`",
        "stay eager and launch several small kernels per parameter tensor every step, which",
        "caps the speedup of the whole step: ACT training on an H100 gained 1.10-1.18x while",
        "those ran eager.",
    ),
    example=code_block(
        """
        policy.forward = torch.compile(policy.forward)
        loss, _ = policy.forward(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 10.0)  # eager
        optimizer.step()  # eager: a loop over every parameter tensor
        """
    ),
    use_instead=code_block(
        """
        @torch.compile
        def clip_and_step():
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 10.0)
            optimizer.step()


        # or, on CUDA: torch.optim.AdamW(policy.parameters(), lr=1e-4, fused=True)
        """
    ),
)

# What a user changes to replay CUDA graphs (the launch-bound finding's next step).
REDUCE_OVERHEAD_CHANGE = 'torch.compile(model, mode="reduce-overhead")'

RULES: tuple[Rule, ...] = (
    LAUNCH_BOUND,
    EAGER_WORK_OUTSIDE_COMPILED_REGION,
)


# A compiled call with at least this share of its span, and this much time, outside compiled code.
OUTSIDE_SHARE = 0.3
OUTSIDE_MIN_MS = 0.5


def check(probes: Mapping[str, Any]) -> list[Finding]:
    report = probes.get(KERNELS)
    if not isinstance(report, Mapping):
        return []
    findings: list[Finding] = []
    for entry in report.get("entry_points") or []:
        name = str(entry.get("name", ""))
        compiled = entry.get(COMPILED) or {}
        found = launch_bound_call(entry, report, reduce_overhead_of(probes, name))
        findings += [found] if found else []
        found = outside_compiled_call(name, compiled)
        findings += [found] if found else []
    return findings


def reduce_overhead_of(probes: Mapping[str, Any], entry_point: str) -> Mapping[str, Any]:
    """The entry point's recorded reduce-overhead what-if (`probes["what_ifs"]`); {} if none."""
    found = (w for w in what_ifs_of(probes, entry_point) if w.get("name") == REDUCE_OVERHEAD)
    return next(found, {})


def check_trace(summary: Mapping[str, Any]) -> list[Finding]:
    """The same rules over one trace's totals (`TraceSummary` as JSON), most important first."""
    findings = [launch_bound_trace(summary), outside_compiled_trace(summary)]
    return rank([f for f in findings if f is not None])


def launch_bound_call(
    entry: Mapping[str, Any], report: Mapping[str, Any], what_if: Mapping[str, Any]
) -> Finding | None:
    """`what_if`: the entry point's reduce-overhead what-if as recorded, {} where none was."""
    name = str(entry.get("name", ""))
    compiled = entry.get(COMPILED) or {}
    eager = entry.get(EAGER) or {}
    busy = as_number(compiled.get("gpu_busy_fraction"))
    # The probe's threshold (probes/records/kernels.py): below it, on CUDA, it timed the
    # reduce-overhead what-if that this finding reports.
    if busy is None or busy >= LAUNCH_BOUND_BUSY:
        return None
    kernels = as_number(compiled.get("kernels_per_call")) or 0.0
    kernel_ms = as_number(compiled.get("kernel_ms_per_call")) or 0.0
    wall_ms = as_number(compiled.get("wall_ms")) or 0.0
    idle_ms = as_number(compiled.get("gpu_idle_ms_per_call"))
    evidence = {
        "entry_point": name,
        "gpu_busy_pct": _percent_figure(busy),
        "kernels_per_call": kernels,
        "kernel_ms_per_call": kernel_ms,
        "wall_ms_per_call_under_profiler": wall_ms,
        "gpu_idle_ms_per_call": idle_ms,
        "launch_api_ms_per_call": as_number(compiled.get("launch_api_ms_per_call")),
        "eager_gpu_busy_pct": _percent_figure(eager.get("gpu_busy_fraction")),
        "eager_kernels_per_call": as_number(eager.get("kernels_per_call")),
        "traces": [p for p in (eager.get("trace_path"), compiled.get("trace_path")) if p],
    }
    fix = what_if_fix(what_if) if what_if.get("status") == WHAT_IF_MEASURED else None
    if fix is None:
        evidence["reduce_overhead_what_if"] = what_if.get("reason", "not run")
    helped = fix is not None and _fix_clears_the_bar(fix)
    return make_finding(
        LAUNCH_BOUND,
        confidence="high" if helped else "medium",
        cause=f"The GPU is busy {percent(busy)} of a compiled {name} call "
        f"({plural(round(kernels), 'kernel')}, {ms(kernel_ms)} of kernel time in {ms(wall_ms)} "
        "under the profiler): the host launches kernels more slowly than the GPU runs them.",
        evidence=evidence,
        next_steps=_launch_bound_steps(fix, what_if, report.get("tensorboard_command")),
        measured_fix=fix,
        impact_ms=saved_ms(what_if) if fix is not None else idle_ms,
    )


def launch_bound_trace(summary: Mapping[str, Any]) -> Finding | None:
    busy = as_number(summary.get("gpu_busy_fraction"))
    if busy is None or busy >= LAUNCH_BOUND_BUSY:
        return None
    kernels = as_number(summary.get("kernel_count")) or 0.0
    device_ms = as_number(summary.get("device_time_ms")) or 0.0
    span_ms = as_number(summary.get("span_ms")) or 0.0
    return make_finding(
        LAUNCH_BOUND,
        confidence="medium",
        cause=f"The GPU is busy {percent(busy)} of the trace's span "
        f"({plural(round(kernels), 'kernel')}, {ms(device_ms)} of device time in {ms(span_ms)}): "
        "the device waits on the host most of the time.",
        evidence={
            "trace": summary.get("source"),
            "gpu_busy_pct": _percent_figure(busy),
            "kernel_count": kernels,
            "device_time_ms": device_ms,
            "span_ms": span_ms,
            "gpu_idle_ms": as_number(summary.get("gpu_idle_ms")),
            "launch_api_ms": as_number(summary.get("launch_api_ms")),
            "cudagraph_replay_count": as_number(summary.get("cudagraph_replay_count")),
        },
        next_steps=_launch_bound_steps(None, {}, None),
        impact_ms=as_number(summary.get("gpu_idle_ms")),
    )


def _percent_figure(fraction: Any) -> float | None:
    """A recorded fraction as the percentage a finding's evidence holds: a number, not text."""
    number = as_number(fraction)
    return None if number is None else round(100 * number, 1)


def _fix_clears_the_bar(fix: Mapping[str, Any]) -> bool:
    """A measured speedup is a fix when even its pessimistic end clears the reference bar."""
    return (as_number(fix.get("speedup_vs_default_low_x")) or 0) > REFERENCE_SPEEDUP


def _launch_bound_steps(
    fix: Mapping[str, Any] | None, what_if: Mapping[str, Any], tensorboard: Any
) -> list[str]:
    steps: list[str] = []
    if fix is None:
        steps.append(f"{REDUCE_OVERHEAD_CHANGE}  # CUDA graphs: one launch")
        if what_if.get("reason"):
            steps.append(f"not measured here: {what_if['reason']}")
    elif _fix_clears_the_bar(fix):
        steps.append(
            f"{REDUCE_OVERHEAD_CHANGE}  # measured "
            f"{times(fix['speedup_vs_eager_x'], '?x')} over eager, "
            f"{times(fix['speedup_vs_default_x'], '?x')} over default"
        )
    else:
        steps.append(
            "reduce-overhead was measured and did not clearly help "
            f"({times(fix['speedup_vs_default_x'], '?x')} over default): look for the host work "
            "between kernels in the trace"
        )
    for reason in (fix or {}).get("cudagraph_skip_reasons") or []:
        steps.append(f"remove the cause of the cudagraph skip: {reason}")
    if tensorboard:
        steps.append(f"{tensorboard}  # see the gaps between kernels")
    return steps


def outside_compiled_call(name: str, compiled: Mapping[str, Any]) -> Finding | None:
    inside = as_number(compiled.get("compiled_region_ms_per_call"))
    outside = as_number(compiled.get("outside_compiled_region_ms_per_call"))
    span = as_number(compiled.get("span_ms_per_call"))
    if not _mostly_outside(inside, outside, span):
        return None
    regions = as_number(compiled.get("compiled_regions_per_call")) or 0.0
    return _outside_finding(
        f"compiled {name} call",
        outside,
        span,
        regions,
        evidence={
            "entry_point": name,
            "outside_compiled_ms_per_call": outside,
            "compiled_region_ms_per_call": inside,
            "span_ms_per_call": span,
            "compiled_regions_per_call": regions,
            "compiled_regions": list(compiled.get("compiled_region_names") or []),
            "trace": compiled.get("trace_path"),
        },
    )


def outside_compiled_trace(summary: Mapping[str, Any]) -> Finding | None:
    """Per ProfilerStep when the trace has steps, so the time floor means the same per call."""
    steps = as_number(summary.get("step_count")) or 1.0
    inside, outside, span = (
        None if value is None else value / steps
        for value in (
            as_number(summary.get("compiled_region_ms")),
            as_number(summary.get("outside_compiled_region_ms")),
            as_number(summary.get("span_ms")),
        )
    )
    if not _mostly_outside(inside, outside, span):
        return None
    regions = (as_number(summary.get("compiled_region_count")) or 0.0) / steps
    return _outside_finding(
        "traced step" if summary.get("step_count") else "traced span",
        outside,
        span,
        regions,
        evidence={
            "trace": summary.get("source"),
            "steps": summary.get("step_count"),
            "outside_compiled_ms_per_step": outside,
            "compiled_region_ms_per_step": inside,
            "span_ms_per_step": span,
            "compiled_regions": list(summary.get("compiled_region_names") or []),
            "compiled_regions_per_step": regions,
        },
    )


def _mostly_outside(inside: float | None, outside: float | None, span: float | None) -> bool:
    if inside is None or outside is None or not span:
        return False
    return outside / span >= OUTSIDE_SHARE and outside >= OUTSIDE_MIN_MS


def _outside_finding(
    what: str,
    outside: float | None,
    span: float | None,
    regions: float,
    evidence: dict[str, Any],
) -> Finding:
    assert outside is not None and span  # checked by _mostly_outside
    share = outside / span
    evidence["outside_pct"] = round(100 * share, 1)
    steps = [
        f"profile the call and read what runs between '{COMPILED_REGION_PREFIX}' events",
        "optimizer.step = torch.compile(optimizer.step)  # or a fused optimizer (fused=True)",
        "read losses with .detach() and call .item() after the step, not inside it",
    ]
    if regions > 1:
        steps.insert(
            0,
            f"{count(round(regions))} compiled regions per call: find the graph breaks "
            "between them (TORCH_LOGS=graph_breaks) and remove them",
        )
    return make_finding(
        EAGER_WORK_OUTSIDE_COMPILED_REGION,
        confidence="medium",
        cause=f"{percent(share)} of a {what} ({ms(outside)} of {ms(span)}) runs outside "
        "compiled regions, as eager code that compiling does not speed up.",
        evidence=evidence,
        next_steps=steps,
        impact_ms=outside,
    )
