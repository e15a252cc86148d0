"""Rules over the benchmark probe: whether a speedup is real.

Reads `probes["benchmark"]`, the recorded `probes.records.benchmark.BenchmarkResult`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analyzer.findings import Finding, Rule, Severity, code_block, make_finding, prose
from analyzer.format import times
from probes.records.names import BENCHMARK, COMPILED, EAGER
from probes.records.reference import REFERENCE_SPEEDUP
from probes.records.serialize import as_number

# --- the rules of this family, documented beside their checks --------------------

INSUFFICIENT_SPEEDUP = Rule(
    code="CD204",
    name="insufficient-speedup",
    title="Compiled code ran but is not faster than the threshold",
    default_severity=Severity.WARNING,
    what_it_does=prose(
        f"Flags a speedup at or below the success threshold ({REFERENCE_SPEEDUP}x) for an entry",
        "point whose compiled code did run, with the time per call of each side, and names the",
        "probes that tell its possible causes apart: graph breaks, recompiles, a launch-bound",
        "GPU, eager work outside the compiled region.",
    ),
    why_it_matters=prose(
        "A compile that does not pay off costs compile time and a second code path for",
        "nothing. The ratio alone does not say why, and the remedies differ: removing a",
        'break, marking a size dynamic, `mode="reduce-overhead"`, compiling the optimizer',
        "step. Measure which one applies before changing anything.",
    ),
    example=code_block(
        """
        policy.model.compile()
        # eager 22.3 ms, compiled 24.1 ms per call: 0.93x
        """
    ),
    use_instead=code_block(
        """
        compile-diagnose act  # breaks, recompiles, kernel timing and what-if runs
        """
    ),
)


BENCHMARK_METHODOLOGY = Rule(
    code="CD401",
    name="benchmark-methodology",
    title="A measurement cannot mean what it claims",
    default_severity=Severity.WARNING,
    what_it_does=prose(
        "Checks how each figure was measured against what its label claims: eager and",
        "compiled copies that share weights, buffers or an action queue; actions compared at",
        "different steps of a chunk (a stale queue); a consistency figure computed over two",
        "training runs in different states; timing without warm-up, without device",
        "synchronisation, one side after the other instead of interleaved, or without a",
        "spread.",
    ),
    why_it_matters=prose(
        "A figure measured the wrong way answers another question than its label. In the",
        "script that wrote LeRobot's reference report, `torch.compile(policy)` shared weights",
        "and the action queue with eager: an earlier report compared step 0 of a chunk with",
        "step 1 (5.6e-2, 'SEVERE'); the loss and grad-norm consistency compared eager's",
        "training run with a compiled run that went on training the already-trained weights",
        "with other random numbers; timing ran eager in full, then compiled, and quoted one",
        "mean without a spread.",
    ),
    example=code_block(
        """
        policy_compiled = torch.compile(policy)  # the same object: weights, queue shared
        eager_losses = [train_step(policy) for _ in range(50)]
        compiled_losses = [train_step(policy_compiled) for _ in range(50)]  # trains on
        loss_consistency = mean(abs(e - c) for e, c in zip(eager_losses, compiled_losses))
        """
    ),
    use_instead=code_block(
        """
        policy_compiled = copy.deepcopy(policy)  # same start, nothing shared
        policy_compiled.forward = torch.compile(policy_compiled.forward)
        policy.reset()
        policy_compiled.reset()  # same queue state before comparing actions
        # time eager and compiled interleaved, synchronise, quote median and IQR:
        print(torch.utils.benchmark.Timer("f()", globals={"f": f}).blocked_autorange())
        """
    ),
)

RULES: tuple[Rule, ...] = (
    INSUFFICIENT_SPEEDUP,
    BENCHMARK_METHODOLOGY,
)


def check(probes: Mapping[str, Any]) -> list[Finding]:
    benchmark = probes.get(BENCHMARK)
    if not benchmark or not benchmark.get("compilation_successful"):
        return []
    findings: list[Finding] = []
    for entry_point, timing in (benchmark.get("timings") or {}).items():
        if not timing.get(EAGER) or not timing.get(COMPILED):
            continue
        noise = _speedup_within_noise(entry_point, timing)
        if noise is not None:
            findings.append(noise)
    return findings


def _speedup_within_noise(entry_point: str, timing: Mapping[str, Any]) -> Finding | None:
    speedup = timing.get("speedup") or {}
    low, high, ratio = (as_number(speedup.get(key)) for key in ("low", "high", "ratio"))
    if low is None or high is None or ratio is None or not (low < 1.0 < high):
        return None
    return make_finding(
        BENCHMARK_METHODOLOGY,
        severity=Severity.INFO,
        confidence="medium",
        title=f"The {entry_point} speedup is within run-to-run noise",
        cause=(
            f"The measured {entry_point} speedup {times(ratio)} lies inside the range the timing "
            f"spread allows ({times(low)} to {times(high)}): it cannot tell compiled from eager."
        ),
        evidence={
            "entry_point": entry_point,
            "speedup": round(ratio, 3),
            "speedup_low": round(low, 3),
            "speedup_high": round(high, 3),
            "eager_iqr_ms": round(timing[EAGER]["iqr_ms"], 3),
            "compiled_iqr_ms": round(timing[COMPILED]["iqr_ms"], 3),
        },
        next_steps=["rerun with more iterations: --iters-inference 200 --iters-training 100"],
    )
