"""Compile-time rules: where the compile's seconds went, and which measured lever cuts them most.

They read `probes["compile_time"]` (`probes/records/compile_time.py`): each entry point's first
compiled call by frame and stage, its cache lookups, the recompile scenarios' compiles, and the
levers tried, each one more compile; and the benchmark's warm timings (`probes["benchmark"]`), for
what compiling saves per call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from analyzer.findings import Finding, Rule, Severity, code_block, make_finding, prose
from analyzer.format import count, ms, percent, plural, seconds, times
from probes.records.compile import batch_size_scenario
from probes.records.compile_time import (
    CPU_ISA_CHECK,
    DYNAMIC_SHAPES,
    KERNEL_COMPILE,
    LEVER_MEASURED,
    PORTABLE_CACHE,
    REGIONAL,
    STAGE_LABELS,
)
from probes.records.names import BENCHMARK, COMPILE_TIME, COMPILED, EAGER, SPEED_WHAT_IFS
from probes.records.serialize import as_number

# --- the rules of this family, documented beside their checks --------------------

COMPILE_TIME_COST = Rule(
    code="CD203",
    name="compile-time-cost",
    title="Compile time: where it went, the calls to earn it back, the lever that cuts it most",
    default_severity=Severity.INFO,
    what_it_does=prose(
        "Splits each entry point's first-call compile by stage (dynamo, AOTAutograd, graph",
        "passes, lowering, code generation, kernel compile, autotuning, caches, Inductor's",
        "CPU check) from torch's own compile timers, reports the cache hits and misses, sets",
        "the compile against the time compiling saves per call (the calls needed to earn it",
        "back), and names the lever that, measured, cuts it most: a warm cache in a fresh",
        "process, the cache artifacts carried to another machine, regional compilation.",
    ),
    why_it_matters=prose(
        "A cold Inductor compile of ACT took 37 s on a 2-core CPU and 150-240 s on an H100. A",
        "compile that saves 1 ms a call after 60 s pays off after 60,000 calls: in a short",
        "evaluation, or a job that restarts often, it never does. Which stage holds the time",
        "decides the remedy: a warm cache skips code generation and kernel compiles but not",
        "dynamo's tracing; regional compilation compiles a repeated layer once.",
    ),
    example=code_block(
        """
        # each new machine or container compiles from scratch
        policy.model.compile()
        """
    ),
    use_instead=code_block(
        """
        import os

        os.environ["TORCHINDUCTOR_CACHE_DIR"] = "/persistent/inductor-cache"  # before compiling
        for layer in policy.model.encoder.layers:  # a repeated block: compiled once
            layer.compile()
        # or carry the cache along: torch.compiler.save_cache_artifacts() on one
        # machine, torch.compiler.load_cache_artifacts(blob) on the next
        """
    ),
)

RULES: tuple[Rule, ...] = (COMPILE_TIME_COST,)

# Stages named in the finding's sentence: the largest, down to this share of the compile.
STAGE_SHARE_NAMED = 0.1
# Inductor's CPU check worth a next step of its own (seconds).
CPU_ISA_CHECK_WORTH = 1.0
# Kernel compile worth a sentence on compile threads: this share of the compile.
KERNEL_SHARE_NAMED = 0.1
# A lever's warm call counts as slower than the default compile's beyond this ratio.
SLOWER_CALL = 1.05

_LEVER_LABELS = {
    "warm-cache": "the warm cache in a fresh process",
    PORTABLE_CACHE: "the cache artifacts loaded into an empty cache in a fresh process",
    REGIONAL: "regional compilation of the repeated blocks",
    DYNAMIC_SHAPES: "dynamic=True",
}


def check(probes: Mapping[str, Any]) -> list[Finding]:
    what_ifs = probes.get(SPEED_WHAT_IFS) or []
    benchmark = probes.get(BENCHMARK)
    if not benchmark or not benchmark.get("compilation_successful"):
        return []
    section = probes.get(COMPILE_TIME) or {}
    records = section.get("entry_points") or {}
    findings: list[Finding] = []
    for entry_point, timing in (benchmark.get("timings") or {}).items():
        if not timing.get(EAGER) or not timing.get(COMPILED):
            continue
        levers = [
            lever
            for lever in section.get("levers") or []
            if lever.get("entry_point") == entry_point
        ]
        findings.append(
            _compile_time_cost(
                entry_point,
                timing,
                records.get(entry_point) or {},
                levers,
                section,
                benchmark,
                what_ifs,
            )
        )
    return findings


def _compile_time_cost(
    entry_point: str,
    timing: Mapping[str, Any],
    record: Mapping[str, Any],
    levers: Sequence[Mapping[str, Any]],
    section: Mapping[str, Any],
    benchmark: Mapping[str, Any],
    probes_what_ifs: Sequence[Mapping[str, Any]],
) -> Finding:
    eager_ms = timing[EAGER]["median_ms"]
    compiled_ms = timing[COMPILED]["median_ms"]
    first_s = as_number(record.get("first_call_s")) or timing.get("compiled_first_call_s") or 0.0
    compile_s = as_number(record.get("compile_s"))
    if compile_s is None:  # a record without the breakdown: the first call less a warm one
        compile_s = max(first_s - compiled_ms / 1e3, 0.0)
    saved_ms = eager_ms - compiled_ms
    evidence: dict[str, Any] = {
        "entry_point": entry_point,
        "first_compiled_call_s": round(first_s, 3),
        "compile_s": round(compile_s, 3),
        "eager_median_ms": round(eager_ms, 3),
        "compiled_median_ms": round(compiled_ms, 3),
        "saved_per_call_ms": round(saved_ms, 3),
    }
    sentences = [_first_call_sentence(entry_point, first_s, compile_s, record)]
    stages = _named_stages(record, compile_s)
    if stages:
        evidence["stages_s"] = {name: round(s, 3) for name, s in stages}
        sentences.append("It went to " + _stage_list(stages, compile_s) + ".")
    threads_sentence = _threads_sentence(record, section, compile_s)
    if threads_sentence:
        evidence["compile_threads"] = section.get("compile_threads")
        sentences.append(threads_sentence)
    cache = record.get("cache") or {}
    cache_sentence = _cache_sentence(cache)
    if cache_sentence:
        evidence["cache"] = dict(cache)
        sentences.append(cache_sentence)
    if saved_ms > 0:
        calls = compile_s * 1e3 / saved_ms
        evidence["calls_to_break_even"] = round(calls)
        sentences.append(
            f"Each later call saves {ms(saved_ms)}, so compiling pays for itself after about "
            f"{count(round(calls))} calls."
        )
        severity = Severity.INFO
    else:
        sentences.append(
            f"Compiled calls are not faster than eager ({ms(compiled_ms)} against "
            f"{ms(eager_ms)}): at this size the compile never pays for itself."
        )
        severity = Severity.WARNING
    measured = [lv for lv in levers if lv.get("status") == LEVER_MEASURED and lv.get("compile_s")]
    best = _best_lever(measured)
    if measured:
        evidence["levers_compile_s"] = {lv["name"]: round(lv["compile_s"], 3) for lv in measured}
        sentences.append(
            "Measured, less Inductor's CPU check: "
            + "; ".join(_lever_text(lv, compiled_ms) for lv in measured)
        )
    if best is not None:
        evidence["best_lever"] = best["name"]
        call_ms = as_number(best.get("median_ms")) or compiled_ms
        if eager_ms > call_ms:
            # what a new process pays with it: the lever's compile and Inductor's CPU check
            paid_s = best["compile_s"] + (as_number(record.get("cpu_isa_check_s")) or 0.0)
            evidence["calls_to_break_even_with_best_lever"] = round(
                paid_s * 1e3 / (eager_ms - call_ms)
            )
            sentences[-1] += (
                f"; with {_LEVER_LABELS.get(best['name'], best['name'])} compiling pays for "
                f"itself after about {count(evidence['calls_to_break_even_with_best_lever'])} "
                "calls."
            )
        else:
            sentences[-1] += "."
    elif measured:
        sentences[-1] += "."
    tried = _speed_settings_compile_s(probes_what_ifs, entry_point)
    if tried:
        evidence["speed_settings_compile_s"] = {name: round(s, 3) for name, s in tried.items()}
        base_s = compile_s - (as_number(record.get("cpu_isa_check_s")) or 0.0)
        listed = ", ".join(f"{name} {seconds(s)}" for name, s in tried.items())
        sentences.append(
            f"The settings tried for speed took, on their first call: {listed} (the default "
            f"compiled in {seconds(base_s)} less Inductor's CPU check; they compiled after it, "
            "reusing its cached kernels where alike)."
        )
    scenarios = (section.get("recompiles") or {}).get(entry_point)
    recompile_sentence = _recompile_sentence(scenarios)
    if recompile_sentence:
        sentences.append(recompile_sentence)
    dynamic = _dynamic_worth_it(measured, scenarios)
    if dynamic is not None:
        evidence["dynamic_compile_s"] = round(dynamic["compile_s"], 3)
    frames = _tlparse_frames(record, benchmark, entry_point)
    if frames:  # the frame ids under which the tlparse report shows these compiles
        evidence["tlparse_frames"] = frames
    return make_finding(
        COMPILE_TIME_COST,
        severity=severity,
        confidence="high",
        cause=" ".join(sentences),
        evidence=evidence,
        next_steps=_next_steps(best, dynamic, record, section, compile_s),
    )


def _first_call_sentence(
    entry_point: str, first_s: float, compile_s: float, record: Mapping[str, Any]
) -> str:
    share = as_number(record.get("share_of_first_call"))
    if share is None:
        return f"The first {entry_point} call took {seconds(first_s)} (the compile)."
    return (
        f"The first {entry_point} call took {seconds(first_s)}, {seconds(compile_s)} of it "
        f"compiling ({percent(share)})."
    )


def _named_stages(record: Mapping[str, Any], compile_s: float) -> list[tuple[str, float]]:
    """The stages worth naming, largest first: down to `STAGE_SHARE_NAMED` of the compile."""
    stages = [
        (name, value)
        for name, raw in (record.get("stages") or {}).items()
        if (value := as_number(raw)) is not None and value > 0
    ]
    stages.sort(key=lambda item: -item[1])
    if compile_s <= 0:
        return []
    named = [item for item in stages if item[1] / compile_s >= STAGE_SHARE_NAMED]
    return named or stages[:1]


def _stage_list(stages: Sequence[tuple[str, float]], compile_s: float) -> str:
    return ", ".join(
        f"{STAGE_LABELS.get(name, name)} {seconds(value)} ({percent(value / compile_s)})"
        for name, value in stages
    )


def _threads_sentence(
    record: Mapping[str, Any], section: Mapping[str, Any], compile_s: float
) -> str | None:
    """Kernel compiles run on Inductor's compile threads: what more threads could give at most."""
    threads, cpus = section.get("compile_threads"), section.get("cpu_count")
    kernel_s = as_number((record.get("stages") or {}).get(KERNEL_COMPILE)) or 0.0
    if not threads or not cpus or compile_s <= 0 or kernel_s / compile_s < KERNEL_SHARE_NAMED:
        return None
    if threads >= cpus:
        return (
            f"The kernels compiled on {plural(threads, 'thread')}, one per CPU: more threads need "
            f"more cores, and could save at most the {seconds(kernel_s)} of kernel compile."
        )
    return (
        f"The kernels compiled on {threads} threads of {plural(cpus, 'CPU')}: "
        "TORCHINDUCTOR_COMPILE_THREADS sets more."
    )


def _cache_sentence(cache: Mapping[str, Any]) -> str | None:
    fx_hits, fx_misses = cache.get("fx_graph_hits", 0), cache.get("fx_graph_misses", 0)
    aot_hits, aot_misses = cache.get("aot_autograd_hits", 0), cache.get("aot_autograd_misses", 0)
    hits, misses = fx_hits + aot_hits, fx_misses + aot_misses
    if hits == 0 and misses == 0:
        return None
    if hits == 0:
        return (
            f"Every cache lookup missed (FX graph cache {fx_misses}, AOTAutograd cache "
            f"{aot_misses}): a cold compile."
        )
    if misses == 0:
        return (
            f"It was served from the cache (FX graph cache {fx_hits} hits, AOTAutograd cache "
            f"{aot_hits}): what remains is what a cache cannot skip."
        )
    return f"The caches hit {hits} times and missed {misses} times."


def _best_lever(measured: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The measured lever that cuts the first compile most, if one cuts it at all (dynamic
    shapes cut the compiles that follow, not the first: `_dynamic_worth_it`)."""
    cutting = [
        lv
        for lv in measured
        if lv["name"] != DYNAMIC_SHAPES
        and (base := as_number(lv.get("baseline_compile_s"))) is not None
        and lv["compile_s"] < base
    ]
    return min(cutting, key=lambda lv: lv["compile_s"], default=None)


def _speed_settings_compile_s(
    what_ifs: Sequence[Mapping[str, Any]], entry_point: str
) -> dict[str, float]:
    """The first-call seconds of each what-if for speed measured on this entry point (a
    setting that changes the graph compiles it again; one that does not, like a fused
    optimizer, barely compiles)."""
    return {
        w["name"]: seconds_
        for w in what_ifs
        if w.get("entry_point") == entry_point
        and w.get("status") == LEVER_MEASURED
        and (seconds_ := as_number(w.get("compile_s"))) is not None
    }


def _dynamic_worth_it(
    measured: Sequence[Mapping[str, Any]], scenarios: Sequence[Mapping[str, Any]] | None
) -> Mapping[str, Any] | None:
    """The dynamic-shapes lever, where a batch-size change recompiled the default compile and
    the dynamic twin served the other size without compiling, no slower than the default."""
    dynamic = next((lv for lv in measured if lv["name"] == DYNAMIC_SHAPES), None)
    if dynamic is None:
        return None
    detail = dynamic.get("detail") or {}
    sizes = detail.get("batch_sizes") or []
    if len(sizes) != 2 or detail.get("other_size_frames"):
        return None
    name = batch_size_scenario(*sizes)
    if not any(s.get("scenario") == name and s.get("compiles") for s in scenarios or []):
        return None
    median, default = (
        as_number(dynamic.get("median_ms")),
        as_number(dynamic.get("baseline_median_ms")),
    )
    if median is None or default is None or median > default * SLOWER_CALL:
        return None
    return dynamic


def _lever_text(lever: Mapping[str, Any], compiled_ms: float) -> str:
    name = _LEVER_LABELS.get(lever["name"], lever["name"])
    compile_s, base = lever["compile_s"], as_number(lever.get("baseline_compile_s"))
    text = f"{name} compiled in {seconds(compile_s)}"
    if lever["name"] == DYNAMIC_SHAPES:
        detail = lever.get("detail") or {}
        sizes = detail.get("batch_sizes") or ["?", "?"]
        frames = detail.get("other_size_frames") or 0
        text += f" against {seconds(base)}" if base else ""
        text += (
            f", then served batch size {sizes[-1]} without compiling"
            if not frames
            else f", then compiled {plural(frames, 'frame')} again for batch size {sizes[-1]}"
        )
    elif base:
        text += f" against {seconds(base)} ({times(base / compile_s)} less)"
    kernel_s = as_number((lever.get("stages") or {}).get(KERNEL_COMPILE)) or 0.0
    if lever["name"] == PORTABLE_CACHE and compile_s > 0 and kernel_s / compile_s >= 0.5:
        text += f", {seconds(kernel_s)} of it compiling the kernels again"
    median = as_number(lever.get("median_ms"))
    default = as_number(lever.get("baseline_median_ms")) or compiled_ms
    if median is not None and default:
        slower = median > default * SLOWER_CALL
        text += f", and its calls take {ms(median)} against the whole compile's {ms(default)}" + (
            " (slower)" if slower else ""
        )
    return text


def _recompile_sentence(scenarios: Sequence[Mapping[str, Any]] | None) -> str | None:
    compiled = [s for s in scenarios or [] if s.get("compiles")]
    if not compiled:
        return None
    listed = ", ".join(f"{s['scenario']}: {s['compiles']}" for s in compiled)
    total = sum(s["compiles"] for s in compiled)
    return (
        f"Calling it as users do compiled {plural(total, 'more time')} ({listed}); each is a new "
        "compile of its frame, as costly as a first one under the same backend."
    )


def _tlparse_frames(
    record: Mapping[str, Any], benchmark: Mapping[str, Any], entry_point: str
) -> list[str]:
    frames = record.get("frames")
    if not frames:
        capture = (benchmark.get("capture") or {}).get(entry_point) or {}
        frames = capture.get("frames") or []
    ids = [f"[{f['compile_id']}]" for f in frames if f.get("compile_id")]
    return list(dict.fromkeys(ids))


def _next_steps(
    best: Mapping[str, Any] | None,
    dynamic: Mapping[str, Any] | None,
    record: Mapping[str, Any],
    section: Mapping[str, Any],
    compile_s: float,
) -> list[str]:
    steps: list[str] = []
    if best is not None and best.get("paste"):
        steps.append(best["paste"])
    if dynamic is not None and dynamic.get("paste"):
        steps.append(dynamic["paste"])
    stages = record.get("stages") or {}
    isa_s = as_number(stages.get(CPU_ISA_CHECK)) or 0.0
    if isa_s >= CPU_ISA_CHECK_WORTH:
        steps.append(
            "export TORCHINDUCTOR_VEC_ISA_OK=1  # skips Inductor's once-per-process check of "
            f"the CPU ({seconds(isa_s)} here); only where the CPU is known to run Inductor's code"
        )
    threads, cpus = section.get("compile_threads"), section.get("cpu_count")
    kernel_s = as_number(stages.get(KERNEL_COMPILE)) or 0.0
    if (
        threads
        and cpus
        and threads < cpus
        and compile_s > 0
        and kernel_s / compile_s >= KERNEL_SHARE_NAMED
    ):
        steps.append(
            f"export TORCHINDUCTOR_COMPILE_THREADS={cpus}  # kernels compiled on {threads} of "
            f"{cpus} CPUs ({seconds(kernel_s)} of kernel compile)"
        )
    if best is None:
        steps.append(
            "export TORCHINDUCTOR_CACHE_DIR=$HOME/.cache/torchinductor  # keep compiled code "
            "between runs"
        )
    return steps
