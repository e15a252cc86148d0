"""Checks on whether the report measured compiled code: a compile that raised, or compiled
actions equal to eager's bit for bit (the inference path ran no compiled code)."""

from __future__ import annotations

from analyzer.findings import Finding, make_finding
from analyzer.format import sci, times
from analyzer.rules.compile import COMPILATION_FAILED, COMPILED_PATH_NOT_EXERCISED
from analyzer.rules.triage.reading import Reading, finite, near_one
from probes.records.names import INFERENCE


def check(reading: Reading) -> list[Finding]:
    if reading.compilation_failed:
        return [_compilation_failed(reading)]
    if reading.inference_not_exercised():
        return [_not_exercised(reading)]
    return []


def _compilation_failed(reading: Reading) -> Finding:
    error = (reading.report.compilation_error or "").strip()
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    first_line = lines[0] if lines else "no error message in the report"
    if first_line.endswith(":") and len(lines) > 1:
        # "BackendCompilerFailed: backend='inductor' raised:" says what follows matters.
        first_line = f"{first_line} {lines[1]}"
    stage = _failing_stage(error)
    where = f" The error points at {stage}." if stage else ""
    return make_finding(
        COMPILATION_FAILED,
        confidence="high",
        cause=f"torch.compile raised, so no figure of this report measures compiled code.{where}",
        evidence={"compilation_error": first_line},
        next_steps=[
            "# the same compile through dynamo alone, then with AOTAutograd\n"
            + reading.command("--backend", "eager")
            + "\n"
            + reading.command("--backend", "aot_eager"),
        ],
    )


def _failing_stage(error: str) -> str:
    """The compiler stage an error message names, in the order the words are most telling."""
    lowered = error.lower()
    if "outofmemory" in lowered or "out of memory" in lowered:
        return "memory: the compile or its autotuning ran out of memory"
    if "backendcompilerfailed" in lowered or "inductor" in lowered or "triton" in lowered:
        return "the backend (Inductor's code generation)"
    if "aot" in lowered and "autograd" in lowered:
        return "AOTAutograd (the backward graph)"
    if "_dynamo" in lowered or "unsupported" in lowered:
        return "dynamo (tracing the Python code)"
    return ""


def _not_exercised(reading: Reading) -> Finding:
    speedup = reading.speedup_inference
    speedup_near_one = near_one(speedup)
    if speedup is None:
        timing = "The report holds no inference speedup to check this against."
    elif speedup_near_one:
        timing = f"The inference speedup, {times(speedup)}, is what timing eager twice gives."
    else:
        timing = (
            f"The inference speedup, {times(speedup)}, is not near 1.0x, so timing disagrees; "
            "a rerun tells which figure to trust."
        )
    loss = reading.report.correctness.loss_diff
    training = ""
    if finite(loss) and loss > 0:
        training = (
            f" The training loss did differ ({sci(loss)}): `forward`, which "
            "`torch.compile(policy)` does compile, ran compiled code."
        )
    elif loss == 0.0:
        training = (
            " The training loss matches bit for bit too: no compiled code ran anywhere, or the "
            "backend kept eager numerics."
        )
    cause = (
        f"The compiled actions match eager bit for bit (max difference exactly 0.0), which a "
        f"real backend almost never achieves on {reading.facts.network}: the inference path most "
        f"likely ran no compiled code (`torch.compile(policy)` compiles `forward` only and "
        f"`select_action` stays eager), or ran a backend that keeps eager numerics such as "
        f"`eager` or `aot_eager`. {timing}{training}"
    )
    evidence: dict[str, object] = {"max_action_diff_abs": 0.0}
    if speedup is not None:
        evidence["speedup_inference_x"] = speedup
    evidence.update(reading.timing_evidence(INFERENCE))
    return make_finding(
        COMPILED_PATH_NOT_EXERCISED,
        confidence="high" if speedup_near_one else "medium",
        cause=cause,
        evidence=evidence,
        next_steps=[
            "# reproduce the report: no frame captured in select_action\n"
            + reading.command("--compile-how", "wrapper"),
            "# compiled code that runs, and its real inference speedup\n"
            + reading.command("--compile-how", "methods"),
            "policy_c = copy.deepcopy(policy)\n"
            "policy_c.select_action = torch.compile(policy_c.select_action)",
        ],
    )
