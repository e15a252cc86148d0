"""Memory rules: the probes the memory plan skipped, and an out-of-memory the plan could not see.

They read the memory plan (`diagnosis.json["memory_plan"]`, `probes/records/memory.py`): per
probe the bytes it holds item by item, what earlier probes keep, whether it ran; the memory
available and where the figure came from. The out-of-memory rule reads the probes' errors too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from analyzer.findings import Finding, Rule, Severity, code_block, make_finding, prose
from analyzer.format import GIB, byte_size, percent
from probes.records.memory import (
    SKIP_REASONS,
    SKIPPED_MEMORY,
    SKIPPED_NO_BENCHMARK,
    SOURCE_BUDGET,
    SOURCE_LABELS,
    SOURCE_UNKNOWN,
    free_bytes_needed,
)
from probes.records.names import BENCHMARK
from probes.records.serialize import as_number

# --- the rules of this family, documented beside their checks --------------------

PROBE_SKIPPED_FOR_MEMORY = Rule(
    code="CD701",
    name="probe-skipped-for-memory",
    title="A probe was skipped: the copies it makes do not fit in the memory free",
    default_severity=Severity.WARNING,
    what_it_does=prose(
        "Reports each probe the memory plan skipped before it ran: the bytes it would hold",
        "at once, item by item (eager, compiled and fp64 copies of the model, gradients,",
        "Adam state, a fresh process that builds the target again) on top of what earlier",
        "probes keep, against the memory available and where that figure came from; and the",
        "free memory, and the GPU size, that would run it. The probes that reuse the",
        "benchmark's copies are named in the benchmark's finding when it was skipped.",
    ),
    why_it_matters=prose(
        "A warning, not information: the diagnosis is incomplete, and a clean-looking",
        "report may only lack the probe that would have found the problem. Not an error",
        "either: nothing is wrong with the model or its compile, and the probes that fit",
        "ran. pi0 at its smallest is 1.8 billion parameters, 7.7 GB a copy in float32: the",
        "benchmark's eager and compiled copies with their gradients and Adam state hold",
        "46 GB, more than a 24 GB GPU or a 32 GB laptop has. Planned from the parameter",
        "count, the skip costs nothing; an out-of-memory error costs the minutes spent",
        "building and compiling before it, and may take the machine's other work with it.",
    ),
    example=code_block(
        """
        compile-diagnose policy pi0  # on a 24 GB GPU: the benchmark needs 46 GB
        """
    ),
    use_instead=code_block(
        """
        compile-diagnose policy pi0 --dtype bfloat16  # half the bytes per copy
        # or the whole diagnosis on a machine with the free memory the finding names
        """
    ),
)

OUT_OF_MEMORY_UNPLANNED = Rule(
    code="CD702",
    name="out-of-memory-unplanned",
    title="A probe ran out of memory where the free memory could not be read",
    default_severity=Severity.WARNING,
    what_it_does=prose(
        "Fires when the free memory of the device could not be read (so the memory plan",
        "skipped nothing) and a probe then failed with an out-of-memory error; it names what",
        "that probe holds by the plan's count, and the option that states the free memory.",
    ),
    why_it_matters=prose(
        "Without a figure for the free memory every probe runs, and one that does not fit",
        "fails after the time spent on the probes before it. With the free memory stated the",
        "plan skips it up front and says which machine would run it.",
    ),
    example=code_block(
        """
        compile-diagnose module model.py:make  # no /proc/meminfo: the benchmark runs out
        """
    ),
    use_instead=code_block(
        """
        compile-diagnose module model.py:make --memory-budget 24GiB
        """
    ),
)

RULES: tuple[Rule, ...] = (PROBE_SKIPPED_FOR_MEMORY, OUT_OF_MEMORY_UNPLANNED)

# Nominal memory sizes of common GPUs, in GiB as the cards count it (T4 16, L4 24, A10 24,
# V100 32, A100 40/80, L40S 48, H100 80, H100 NVL 96, H200 141, B200 192).
GPU_MEMORY_GIB = (8, 12, 16, 24, 32, 40, 48, 80, 96, 141, 192)
# The error text an out-of-memory error carries (`torch.OutOfMemoryError`, a CPU's
# "DefaultCPUAllocator: can't allocate memory").
OUT_OF_MEMORY_MARKERS = ("OutOfMemoryError", "out of memory", "can't allocate memory")


def smallest_gpu_gib(total_bytes: int) -> int | None:
    """The smallest common GPU memory size that holds `total_bytes`; None above them all."""
    return next((size for size in GPU_MEMORY_GIB if size * GIB >= total_bytes), None)


# --- the checks ------------------------------------------------------------------------------


def check(plan: Mapping[str, Any] | None, probe_errors: Mapping[str, str]) -> list[Finding]:
    """The findings of the memory plan (`diagnosis.json["memory_plan"]`) and the probes'
    errors: one per probe skipped for memory, one per out-of-memory the plan could not see."""
    if not plan:
        return []
    entries = [e for e in plan.get("probes") or [] if isinstance(e, Mapping)]
    if plan.get("source") == SOURCE_UNKNOWN:
        return _unplanned_out_of_memory(plan, entries, probe_errors)
    following = [e["probe"] for e in entries if e.get("skipped") == SKIPPED_NO_BENCHMARK]
    return [
        _skipped(plan, entry, following)
        for entry in entries
        if entry.get("skipped") == SKIPPED_MEMORY
    ]


def _skipped(
    plan: Mapping[str, Any],
    entry: Mapping[str, Any],
    following: Sequence[str],
) -> Finding:
    probe = str(entry.get("probe"))
    reserve = as_number(plan.get("reserve_fraction")) or 0.0
    peak = int(entry.get("needed_bytes", 0)) + int(entry.get("resident_bytes", 0))
    free_needed = free_bytes_needed(peak, reserve)
    model = int((plan.get("footprint") or {}).get("parameter_bytes", 0)) + int(
        (plan.get("footprint") or {}).get("buffer_bytes", 0)
    )
    gpu = smallest_gpu_gib(model + free_needed)
    whole = free_bytes_needed(int(plan.get("required_bytes") or 0), reserve)
    with_it = list(following) if probe == BENCHMARK else []
    evidence: dict[str, Any] = {
        "probe": probe,
        "needed_bytes": entry.get("needed_bytes"),
        "resident_bytes": entry.get("resident_bytes"),
        "items_bytes": {i["what"]: i["bytes"] for i in entry.get("items") or []},
        "available_bytes": plan.get("available_bytes"),
        "usable_bytes": plan.get("usable_bytes"),
        "source": plan.get("source"),
        "reserve_fraction": reserve,
        "free_needed_bytes": free_needed,
        "whole_diagnosis_free_bytes": whole,
        "gpu_gib": gpu,
        "parameter_count": (plan.get("footprint") or {}).get("parameter_count"),
        "dtype": plan.get("dtype"),
        "skipped_with_it": with_it,
    }
    return make_finding(
        PROBE_SKIPPED_FOR_MEMORY,
        confidence="medium",  # counted from the parameters; activations are in the reserve
        title=f"The {probe} probe was skipped: it needs {byte_size(peak)} at once",
        cause=_cause(plan, entry, peak, free_needed, gpu, with_it),
        evidence=evidence,
        next_steps=_next_steps(plan, free_needed, gpu, whole),
    )


def _cause(
    plan: Mapping[str, Any],
    entry: Mapping[str, Any],
    peak: int,
    free_needed: int,
    gpu: int | None,
    with_it: Sequence[str],
) -> str:
    probe = entry.get("probe")
    items = ", ".join(f"{i['what']} {byte_size(i['bytes'])}" for i in entry.get("items") or [])
    resident = int(entry.get("resident_bytes", 0))
    kept = f" on top of the {byte_size(resident)} earlier probes keep" if resident else ""
    footprint = plan.get("footprint") or {}
    source = SOURCE_LABELS.get(str(plan.get("source")), str(plan.get("source")))
    machine = f"a machine with at least {byte_size(free_needed)} free once the model is built"
    machine += f", or a GPU of {gpu} GB or more" if gpu else " (more than any common GPU holds)"
    sentence = (
        f"The {probe} probe was skipped: for a model of {footprint.get('parameter_count', 0):,} "
        f"parameters in {plan.get('dtype')} it holds {byte_size(peak)} at once ({items}){kept}, "
        f"and the plan leaves {byte_size(plan.get('usable_bytes'))} of the "
        f"{byte_size(plan.get('available_bytes'))} available ({source}; "
        f"{percent(plan.get('reserve_fraction'))} kept for activations and the allocator). "
        f"It would run on {machine}."
    )
    if with_it:
        sentence += (
            f" Skipped with it, since they reuse its copies: {', '.join(with_it)} "
            f"({SKIP_REASONS[SKIPPED_NO_BENCHMARK]})."
        )
    return sentence


def _next_steps(
    plan: Mapping[str, Any], free_needed: int, gpu: int | None, whole: int
) -> list[str]:
    steps = [
        f"run it on a machine with at least {byte_size(free_needed)} free"
        + (f" (a GPU of {gpu} GB or more)" if gpu else "")
        + f"; the whole diagnosis needs {byte_size(whole)} free"
    ]
    if plan.get("dtype") == "float32":
        steps.append("--dtype bfloat16 halves the bytes of every copy but the fp64 reference")
    if plan.get("source") == SOURCE_BUDGET:
        steps.append(
            "the budget was stated (--memory-budget): leave it out to measure what is free"
        )
    return steps


def _unplanned_out_of_memory(
    plan: Mapping[str, Any], entries: Sequence[Mapping[str, Any]], probe_errors: Mapping[str, str]
) -> list[Finding]:
    by_probe = {str(e.get("probe")): e for e in entries}
    findings = []
    for probe, error in probe_errors.items():
        if not any(marker in error for marker in OUT_OF_MEMORY_MARKERS):
            continue
        entry = by_probe.get(probe) or {}
        peak = int(entry.get("needed_bytes", 0)) + int(entry.get("resident_bytes", 0))
        reserve = as_number(plan.get("reserve_fraction")) or 0.0
        free_needed = free_bytes_needed(peak, reserve)
        findings.append(
            make_finding(
                OUT_OF_MEMORY_UNPLANNED,
                confidence="high",
                title=f"The {probe} probe ran out of memory; the free memory was unknown",
                cause=(
                    f"The free memory of {plan.get('device')} could not be read, so the memory "
                    f"plan skipped nothing; the {probe} probe then ran out of memory. By the "
                    f"plan's count it holds {byte_size(peak)} at once, and runs with "
                    f"{byte_size(free_needed)} free."
                ),
                evidence={
                    "probe": probe,
                    "error": error,
                    "needed_bytes": entry.get("needed_bytes"),
                    "resident_bytes": entry.get("resident_bytes"),
                    "free_needed_bytes": free_needed,
                    "device": plan.get("device"),
                },
                next_steps=[
                    "state the memory free with --memory-budget SIZE (e.g. 24GiB): the probes "
                    "that do not fit are then skipped, with what they need"
                ],
            )
        )
    return findings
