"""Speed rules: why a compiled call is not faster, and which measured setting makes it faster.

They read the speed record (`probes/records/speed.py`): `probes["speed"][entry point]`, where a
profiled call's time goes on each side and the ceiling the library kernels set, and
`probes["what_ifs"]`, each what-if compile timed against eager and against the default compile;
the speedup bar is the benchmark's (`probes["benchmark"]`). `recommend` reads the same record and
names, per entry point, the measured setting to use, or why none of those tried helps: the runner
stores it at the head of `diagnosis.json`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from analyzer.findings import Finding, Rule, Severity, code_block, make_finding, prose
from analyzer.format import ms, percent, speedup_range, times
from probes.records.names import BENCHMARK, SPEED, SPEED_WHAT_IFS
from probes.records.reference import REFERENCE_SPEEDUP
from probes.records.serialize import as_number
from probes.records.speed import (
    CATEGORY_LABELS,
    LIBRARY_KERNELS,
    LIBRARY_SLOWDOWN,
    WHAT_IF_ALL,
    WHAT_IF_FAILED,
    WHAT_IF_MEASURED,
    WHAT_IF_NOT_RUN,
    clearly_faster_than_default,
)

# --- the rules of this family, documented beside their checks --------------------

SPEEDUP_CEILING = Rule(
    code="CD205",
    name="speedup-ceiling",
    title="The compiled call is not faster: where its time goes, and the most it can gain",
    default_severity=Severity.WARNING,
    what_it_does=prose(
        "For an entry point whose speedup is at or below the bar, splits a profiled eager and",
        "compiled call into library kernels (GEMM, convolution, attention: cuBLAS, cuDNN,",
        "oneDNN), generated kernels, work outside compiled code, framework overhead (guards,",
        "launches, Python between ops) and, on a GPU, device idle time. It reports the largest",
        "parts of the compiled call against eager's, the ceiling Amdahl's law sets (eager's time",
        "over the library kernels' time: the speedup if everything else took no time), and",
        "what each what-if compile measured.",
    ),
    why_it_matters=prose(
        "Compiling fuses the pointwise, normalisation and reduction work around the library",
        "calls and calls the library kernels as they are. When those kernels take most of the",
        "call, fusion has little left to win: ACT inference on a 2-core CPU spent 72-76 % of the",
        "compiled call's host time in `aten::mkldnn_convolution`, and the default compile ran at",
        "0.63-0.97x eager. Only a setting that changes the library calls themselves can move",
        "such a call: `freezing` (the weights become constants, which oneDNN pre-packs) gave",
        "1.38x on the same model.",
    ),
    example=code_block(
        """
        policy.model.compile()  # convolutions and GEMMs run as before, 0.97x eager
        """
    ),
    use_instead=code_block(
        """
        import torch._inductor.config

        torch._inductor.config.freezing = True  # inference only: weights become constants
        policy.model.compile()
        with torch.no_grad():
            action = policy.select_action(batch)
        """
    ),
)


FASTER_COMPILE_SETTING = Rule(
    code="CD206",
    name="faster-compile-setting",
    title="A compile setting measured faster",
    default_severity=Severity.INFO,
    what_it_does=prose(
        "Reports each what-if compile (freezing, no graph breaks, a fused optimizer step,",
        '`mode="reduce-overhead"`, `mode="max-autotune-no-cudagraphs"`) that was timed clearly',
        "faster than the default compile, interleaved with it, even at the pessimistic end of",
        "the timing spread, and whose outputs still pass the fp64 criterion. It gives the lines",
        "to paste and the speedups over eager and over the default compile.",
    ),
    why_it_matters=prose(
        "The default compile is one point among several settings, and the one that pays off",
        "depends on where the time goes: freezing when library kernels dominate an inference",
        "call, a fused optimizer step when eager work outside the model dominates a training",
        "step, CUDA graphs when the GPU waits on launches. A setting that is faster but changes",
        "the outputs beyond the fp64 criterion is not reported.",
    ),
    example=code_block(
        """
        policy.model.compile()
        optimizer = torch.optim.Adam(policy.parameters(), lr=1e-4)  # a loop over the tensors
        """
    ),
    use_instead=code_block(
        """
        policy.model.compile()
        optimizer = torch.optim.Adam(policy.parameters(), lr=1e-4, fused=True)  # measured faster
        """
    ),
)

RULES: tuple[Rule, ...] = (SPEEDUP_CEILING, FASTER_COMPILE_SETTING)

# How many of the compiled call's categories a ceiling finding names, largest first.
NAMED_CATEGORIES = 3


def check(probes: Mapping[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    speed, bar = probes.get(SPEED) or {}, speedup_bar(probes)
    for entry_point, speedup in benchmark_speedups(probes).items():
        record = speed.get(entry_point)
        if isinstance(record, Mapping) and _misses_bar(speedup, bar):
            what_ifs = what_ifs_of(probes, entry_point)
            findings.append(speedup_ceiling(entry_point, record, speedup, what_ifs, bar))
    for what_if in what_ifs_of(probes):
        found = faster_compile_setting(what_if, probes)
        findings += [found] if found else []
    return findings


# --- reading the record ----------------------------------------------------------------------


def speedup_bar(probes: Mapping[str, Any]) -> float:
    """The speedup an entry point must beat: the benchmark's threshold, else the reference's."""
    settings = (probes.get(BENCHMARK) or {}).get("settings") or {}
    threshold = as_number(settings.get("speedup_threshold"))
    return REFERENCE_SPEEDUP if threshold is None else threshold


def benchmark_speedups(probes: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The benchmark's speedup ({"ratio", "low", "high"}) of each timed entry point."""
    timings = (probes.get(BENCHMARK) or {}).get("timings") or {}
    return {
        str(entry_point): timing.get("speedup") or {}
        for entry_point, timing in timings.items()
        if isinstance(timing, Mapping)
    }


def what_ifs_of(
    probes: Mapping[str, Any], entry_point: str | None = None
) -> list[Mapping[str, Any]]:
    """The recorded what-ifs, all of them or one entry point's."""
    return [
        what_if
        for what_if in probes.get(SPEED_WHAT_IFS) or []
        if isinstance(what_if, Mapping)
        and (entry_point is None or what_if.get("entry_point") == entry_point)
    ]


def _misses_bar(speedup: Mapping[str, Any], bar: float) -> bool:
    ratio = as_number(speedup.get("ratio"))
    return ratio is not None and ratio <= bar


def clearly_faster(what_if: Mapping[str, Any]) -> bool:
    """Measured, passing the fp64 criterion, and faster than the default compile even at the
    pessimistic end of the timing spread."""
    return (
        what_if.get("status") == WHAT_IF_MEASURED
        and what_if.get("fp64_criterion_passed") is True
        and clearly_faster_than_default(as_number(what_if.get("speedup_vs_default_low")))
    )


def faster_but_unchecked(what_if: Mapping[str, Any]) -> bool:
    """Timed clearly faster than the default compile, its fp64 check not run (it costs a
    compile of its own, run when the what-if is asked for by name)."""
    return (
        what_if.get("status") == WHAT_IF_MEASURED
        and what_if.get("fp64_criterion_passed") is None
        and clearly_faster_than_default(as_number(what_if.get("speedup_vs_default_low")))
    )


def paste_lines(what_if: Mapping[str, Any]) -> list[str]:
    return [line for line in str(what_if.get("paste") or "").splitlines() if line.strip()]


def what_if_fix(what_if: Mapping[str, Any]) -> dict[str, Any]:
    """A measured what-if as a finding's `measured_fix`: the change and its figures."""
    fix: dict[str, Any] = {
        "what_if": what_if.get("name"),
        "change": "; ".join(paste_lines(what_if)) or what_if.get("name"),
        "speedup_vs_eager_x": as_number(what_if.get("speedup_vs_eager")),
        "speedup_vs_eager_low_x": as_number(what_if.get("speedup_low")),
        "speedup_vs_eager_high_x": as_number(what_if.get("speedup_high")),
        "speedup_vs_default_x": as_number(what_if.get("speedup_vs_default")),
        "speedup_vs_default_low_x": as_number(what_if.get("speedup_vs_default_low")),
        "speedup_vs_default_high_x": as_number(what_if.get("speedup_vs_default_high")),
        "median_ms": as_number(what_if.get("median_ms")),
        "eager_median_ms": as_number(what_if.get("eager_median_ms")),
        "default_median_ms": as_number(what_if.get("default_median_ms")),
        "compile_s": as_number(what_if.get("compile_s")),
        "fp64_criterion_passed": what_if.get("fp64_criterion_passed"),
    }
    if what_if.get("cudagraph_skips") is not None:
        fix["cudagraph_skip_count"] = what_if.get("cudagraph_skips")
        fix["cudagraph_skip_reasons"] = list(what_if.get("cudagraph_skip_reasons") or [])
    return fix


def saved_ms(what_if: Mapping[str, Any]) -> float | None:
    """Time per call the what-if saves against the default compile, timed together."""
    default = as_number(what_if.get("default_median_ms"))
    median = as_number(what_if.get("median_ms"))
    return None if default is None or median is None else default - median


def what_if_result(what_if: Mapping[str, Any]) -> str:
    """What one what-if gave, in words: "freezing 1.38x (1.30–1.45x) over eager, 1.42x
    (1.33–1.50x) over the default compile", "... but failed the fp64 criterion (...)",
    "no-graph-breaks not run: <why>"."""
    name, status = what_if.get("name"), what_if.get("status")
    if status != WHAT_IF_MEASURED:
        verb = "failed" if status == WHAT_IF_FAILED else "not run"
        return f"{name} {verb}: {what_if.get('reason')}"
    text = f"{name} {_over_eager(what_if)}, {_over_default(what_if)}"
    if what_if.get("fp64_criterion_passed") is False:
        detail = what_if.get("fp64_detail")
        return text + " but failed the fp64 criterion" + (f" ({detail})" if detail else "")
    if what_if.get("fp64_criterion_passed") is None:
        return text + ", fp64 criterion not checked"
    if not clearly_faster(what_if):
        return text + ": not clearly faster"
    return text


def _over_eager(what_if: Mapping[str, Any]) -> str:
    """Its speedup over eager with the range of the spreads, "... over eager"."""
    low, high = what_if.get("speedup_low"), what_if.get("speedup_high")
    return f"{speedup_range(what_if.get('speedup_vs_eager'), low, high)} over eager"


def _over_default(what_if: Mapping[str, Any]) -> str:
    """Its speedup over the default compile with its range, "... over the default compile"."""
    low, high = what_if.get("speedup_vs_default_low"), what_if.get("speedup_vs_default_high")
    return f"{speedup_range(what_if.get('speedup_vs_default'), low, high)} over the default compile"


def _speedup_text(speedup: Mapping[str, Any]) -> str:
    return speedup_range(speedup.get("ratio"), speedup.get("low"), speedup.get("high"))


# --- speedup-ceiling ---------------------------------------------------------------------------


def speedup_ceiling(
    entry_point: str,
    record: Mapping[str, Any],
    speedup: Mapping[str, Any],
    what_ifs: Sequence[Mapping[str, Any]],
    bar: float = REFERENCE_SPEEDUP,
) -> Finding:
    """Where the time of an entry point that misses the bar goes, its ceiling, what was tried."""
    eager_ms = as_number(record.get("eager_ms"))
    compiled_ms = as_number(record.get("compiled_ms"))
    ceiling = record.get("ceiling") or {}
    own = [w for w in what_ifs if w.get("entry_point") == entry_point]
    cause = (
        f"The {entry_point} speedup is {_speedup_text(speedup)}. Under the profiler a compiled "
        f"call takes {ms(compiled_ms)} against eager's {ms(eager_ms)}: "
        f"{_largest_categories(record)}.{_library_slowdown_sentence(record)} "
        f"{_ceiling_sentence(ceiling, bar)}"
    )
    cause += f" Tried: {tried_text(own)}."
    slower = None if eager_ms is None or compiled_ms is None else compiled_ms - eager_ms
    return make_finding(
        SPEEDUP_CEILING,
        confidence="high",
        cause=cause,
        evidence={
            "entry_point": entry_point,
            "speedup": {
                "ratio_x": as_number(speedup.get("ratio")),
                "low_x": as_number(speedup.get("low")),
                "high_x": as_number(speedup.get("high")),
            },
            "attribution": _attribution(record),
            "ceiling": {
                "speedup_x": as_number(ceiling.get("speedup")),
                "library_ms": as_number(ceiling.get("library_ms")),
                "library_share_fraction": as_number(ceiling.get("library_share")),
            },
            **_largest_library_op(record),
        },
        next_steps=_ceiling_steps(record, own),
        impact_ms=slower if slower is not None and slower > 0 else None,
    )


def _library_slowdown_sentence(record: Mapping[str, Any]) -> str:
    """ " The same library calls take ... in the compiled call", where they run markedly slower
    there than in eager (the threshold from which the no-layout-optimization what-if is tried)."""
    library = next(
        (s for s in record.get("attribution") or [] if s.get("category") == LIBRARY_KERNELS), {}
    )
    eager, compiled = as_number(library.get("eager_ms")), as_number(library.get("compiled_ms"))
    if not eager or not compiled or compiled / eager < LIBRARY_SLOWDOWN:
        return ""
    return (
        f" The same library calls take {ms(compiled)} in the compiled call against {ms(eager)} "
        f"in eager ({times(compiled / eager)})."
    )


def _largest_categories(record: Mapping[str, Any]) -> str:
    """The compiled call's largest categories with their share, each against eager's time."""
    compiled_ms = as_number(record.get("compiled_ms")) or 0.0
    shares = [
        (str(s.get("category")), as_number(s.get("compiled_ms")), as_number(s.get("eager_ms")))
        for s in record.get("attribution") or []
    ]
    largest = sorted((s for s in shares if s[1]), key=lambda s: s[1] or 0.0, reverse=True)
    parts = []
    for category, compiled, eager in largest[:NAMED_CATEGORIES]:
        share = percent(compiled / compiled_ms) if compiled_ms else percent(None)
        against = "none in eager" if eager is None else f"eager {ms(eager)}"
        parts.append(
            f"{CATEGORY_LABELS.get(category, category)} {ms(compiled)} ({share}; {against})"
        )
    return ", ".join(parts) if parts else "no time was attributed"


def _attribution(record: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Each category with its time per call on the sides that can have it."""
    attribution = {}
    for share in record.get("attribution") or []:
        sides = {key: as_number(share.get(key)) for key in ("eager_ms", "compiled_ms")}
        present = {key: value for key, value in sides.items() if value is not None}
        if present:
            attribution[str(share.get("category"))] = present
    return attribution


def _largest_library_op(record: Mapping[str, Any]) -> dict[str, Any]:
    """The library op (CPU) or kernel (CUDA) that takes the most of a compiled call."""
    ops = [op for op in record.get("library_ops") or [] if isinstance(op, Mapping)]
    largest = max(ops, key=lambda op: as_number(op.get("compiled_ms")) or 0.0, default=None)
    if largest is None:
        return {}
    return {
        "largest_library_op": largest.get("name"),
        "largest_library_op_compiled_ms": as_number(largest.get("compiled_ms")),
    }


def _ceiling_sentence(ceiling: Mapping[str, Any], bar: float) -> str:
    limit = as_number(ceiling.get("speedup"))
    if limit is None:
        return f"No ceiling from library kernels: {ceiling.get('reason')}."
    sentence = (
        f"While the library kernels stay as they are it cannot beat {times(limit)} over eager: "
        f"{ceiling.get('reason')}."
    )
    if limit <= bar:
        sentence += (
            f" That is below the {times(bar)} bar: only a setting that changes them can clear it."
        )
    return sentence


def _ceiling_steps(record: Mapping[str, Any], what_ifs: Sequence[Mapping[str, Any]]) -> list[str]:
    """The lines of each clearly faster setting; else the what-ifs still to time; the traces."""
    steps = [line for w in what_ifs if clearly_faster(w) for line in paste_lines(w)]
    steps += [
        f"compile-diagnose ... --what-if {w.get('name')}  # {_over_default(w)}, "
        "not yet checked against fp64"
        for w in what_ifs
        if faster_but_unchecked(w)
    ]
    not_run = [str(w.get("name")) for w in what_ifs if w.get("status") == WHAT_IF_NOT_RUN]
    if not steps and not_run:
        steps.append(
            f"compile-diagnose ... --what-if {WHAT_IF_ALL}  # also time {', '.join(not_run)}"
        )
    traces = record.get("traces") or []
    if traces:
        steps.append(f"open the profiled calls in Perfetto: {', '.join(str(t) for t in traces)}")
    return list(dict.fromkeys(steps))


# --- faster-compile-setting ---------------------------------------------------------------------


def faster_compile_setting(what_if: Mapping[str, Any], probes: Mapping[str, Any]) -> Finding | None:
    if not clearly_faster(what_if):
        return None
    entry_point = str(what_if.get("entry_point"))
    name = what_if.get("name")
    bar = speedup_bar(probes)
    default = benchmark_speedups(probes).get(entry_point) or {}
    default_misses = _misses_bar(default, bar)
    clears = (as_number(what_if.get("speedup_low")) or 0.0) > bar
    cause = (
        f"Compiling {entry_point} with {name} ran {_over_eager(what_if)} and "
        f"{_over_default(what_if)} "
        f"({ms(what_if.get('median_ms'))} against "
        f"{ms(what_if.get('default_median_ms'))} per call, timed interleaved), and its outputs "
        "pass the fp64 criterion."
    )
    if default_misses and clears:
        cause += f" The default compile misses the {times(bar)} bar; this setting clears it."
    return make_finding(
        FASTER_COMPILE_SETTING,
        title=f"{FASTER_COMPILE_SETTING.title}: {name} for {entry_point}",
        severity=Severity.WARNING if default_misses and clears else Severity.INFO,
        confidence="high",
        cause=cause,
        evidence={
            "entry_point": entry_point,
            "what_if": name,
            "settings": ", ".join(f"{k}={v}" for k, v in (what_if.get("settings") or {}).items()),
            "compile_s": as_number(what_if.get("compile_s")),
            "default_speedup_x": as_number(default.get("ratio")),
        },
        next_steps=paste_lines(what_if) or [str(name)],
        measured_fix=what_if_fix(what_if),
        impact_ms=saved_ms(what_if),
    )


# --- the recommendation -------------------------------------------------------------------------


def recommend(probes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per timed entry point: the best measured setting, or why none of those tried helps.

    The best is the clearly faster what-if (`clearly_faster`: fp64 passed, faster than the
    default even at the low end of the spread) with the highest speedup over eager; a what-if
    that fails the fp64 criterion is never recommended, however fast.
    """
    recommendation: dict[str, dict[str, Any]] = {}
    for entry_point, speedup in benchmark_speedups(probes).items():
        what_ifs = what_ifs_of(probes, entry_point)
        best = _best(what_ifs)
        if best is None:
            reason = _why_none_helps(entry_point, speedup, what_ifs, probes)
            recommendation[entry_point] = {"what_if": None, "reason": reason}
            continue
        recommendation[entry_point] = {
            "what_if": best.get("name"),
            "speedup": as_number(best.get("speedup_vs_eager")),
            "speedup_low": as_number(best.get("speedup_low")),
            "speedup_high": as_number(best.get("speedup_high")),
            "paste": str(best.get("paste") or ""),
            "speedup_vs_default": as_number(best.get("speedup_vs_default")),
            "reason": _against_eager(best),
        }
    return recommendation


def _against_eager(what_if: Mapping[str, Any]) -> str:
    """The best setting's gain over the default compile, and where it leaves eager."""
    text = _over_default(what_if)
    high, low = as_number(what_if.get("speedup_high")), as_number(what_if.get("speedup_low"))
    if high is not None and high < 1.0:
        return f"{text}; eager is still faster: the best measured is not to compile this call"
    if low is not None and low <= 1.0:
        return f"{text}; not clearly faster than eager"
    return text


def _best(what_ifs: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    faster = [w for w in what_ifs if clearly_faster(w)]
    return max(faster, key=lambda w: as_number(w.get("speedup_vs_eager")) or 0.0, default=None)


def _why_none_helps(
    entry_point: str,
    speedup: Mapping[str, Any],
    what_ifs: Sequence[Mapping[str, Any]],
    probes: Mapping[str, Any],
) -> str:
    bar = speedup_bar(probes)
    tried = tried_text(what_ifs)
    if not _misses_bar(speedup, bar) and as_number(speedup.get("ratio")) is not None:
        return (
            f"the default compile already clears the {times(bar)} bar at {_speedup_text(speedup)} "
            f"over eager, and no setting tried beat it ({tried})"
        )
    reason = f"the default compile gives {_speedup_text(speedup)} over eager; {tried}"
    ceiling = ((probes.get(SPEED) or {}).get(entry_point) or {}).get("ceiling") or {}
    limit = as_number(ceiling.get("speedup"))
    if limit is not None:
        reason += (
            f"; while the library kernels stay as they are, the call cannot beat {times(limit)} "
            "over eager"
        )
    return reason


def tried_text(what_ifs: Sequence[Mapping[str, Any]]) -> str:
    """What each what-if that ran gave; the ones not run by name (the table says why)."""
    ran = [what_if_result(w) for w in what_ifs if w.get("status") != WHAT_IF_NOT_RUN]
    not_run = [str(w.get("name")) for w in what_ifs if w.get("status") == WHAT_IF_NOT_RUN]
    parts = ["; ".join(ran)] if ran else ["no what-if compile ran"]
    if not_run:
        parts.append(f"not run: {', '.join(not_run)}")
    return "; ".join(parts)
