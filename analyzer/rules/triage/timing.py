"""Checks on the report's timings: speedups within noise of the bar, times that cannot be
measurements, and speedups that miss the bar with what could explain each.

A speedup row is read as compiled against eager only where the correctness figures say that
compiled code ran in the same state (`Reading.inference_comparable`).
"""

from __future__ import annotations

import math

from analyzer.findings import Finding, make_finding
from analyzer.format import ms, percent, sci, seconds, times
from analyzer.rules.benchmark import BENCHMARK_METHODOLOGY, INSUFFICIENT_SPEEDUP
from analyzer.rules.compile import RECOMPILATION
from analyzer.rules.kernels import EAGER_WORK_OUTSIDE_COMPILED_REGION, LAUNCH_BOUND
from analyzer.rules.triage.reading import Reading, finite
from probes.records.names import INFERENCE, TRAINING
from probes.records.reference import REFERENCE_SPEEDUP

# Timed one side after the other with a mean and no spread, a ratio moves by a few percent from
# run to run; a speedup this close to the threshold could fall on either side of it.
SEQUENTIAL_TIMING_NOISE = 0.05
# One warm-cache Inductor compile of ACT took ~8 s on CPU, a cold one 28-153 s: a slowdown that
# adds up to this much over a timed loop can be a compile inside it.
RECOMPILE_SCALE_S = 1.0

_BAR = times(REFERENCE_SPEEDUP, digits=1)  # "1.1x", as the cause sentences say it


def check(reading: Reading) -> list[Finding]:
    return [
        *_timing_near_threshold(reading),
        *_unusable_timings(reading),
        *_insufficient_speedups(reading),
    ]


def _rows_compiled(reading: Reading) -> list[tuple[str, float | None]]:
    """The speedup rows that can be read as compiled against eager."""
    rows: list[tuple[str, float | None]] = [(TRAINING, reading.speedup_training)]
    if reading.inference_comparable():
        rows.insert(0, (INFERENCE, reading.speedup_inference))
    return rows


def _timing_near_threshold(reading: Reading) -> list[Finding]:
    findings = []
    margin = SEQUENTIAL_TIMING_NOISE * REFERENCE_SPEEDUP
    for entry, speedup in _rows_compiled(reading):
        if not finite(speedup) or abs(speedup - REFERENCE_SPEEDUP) > margin:
            continue
        side = "passes" if speedup > REFERENCE_SPEEDUP else "fails"
        evidence: dict[str, object] = {f"speedup_{entry}_x": speedup}
        evidence.update(reading.timing_evidence(entry))
        findings.append(
            make_finding(
                BENCHMARK_METHODOLOGY,
                title=f"The {entry} speedup is within timing noise of the {_BAR} bar",
                confidence="medium",
                cause=(
                    f"The {entry} speedup, {times(speedup)}, {side} the {_BAR} bar by less than "
                    f"{percent(SEQUENTIAL_TIMING_NOISE)}; the reference script timed eager in "
                    "full, then compiled, and quoted a mean without a spread, so a rerun can "
                    "land on the other side."
                ),
                evidence=evidence,
                next_steps=["# interleaved timing, median and IQR\n" + reading.command()],
            )
        )
    return findings


def _unusable_timings(reading: Reading) -> list[Finding]:
    report = reading.report
    bad = {}
    for key in (
        "time_original_inference",
        "time_compiled_inference",
        "time_original_training",
        "time_compiled_training",
    ):
        value = getattr(report, key)
        if value is not None and (not math.isfinite(value) or value <= 0):
            bad[f"{key}_ms"] = value
    for key, value in (
        ("speedup_inference_x", reading.speedup_inference),
        ("speedup_training_x", reading.speedup_training),
    ):
        if value is not None and (not math.isfinite(value) or value <= 0):
            bad[key] = value
    if not bad:
        return []
    return [
        make_finding(
            BENCHMARK_METHODOLOGY,
            title="A timing cannot be a measured call",
            confidence="high",
            cause=(
                "A time per call or a speedup that is NaN, infinite, zero or negative is not a "
                "measurement: a run that failed or was never timed was reported as a number."
            ),
            evidence=bad,
            next_steps=["# timing with warm-up, synchronisation and spread\n" + reading.command()],
        )
    ]


def _insufficient_speedups(reading: Reading) -> list[Finding]:
    findings: list[Finding] = []
    for entry, speedup in _rows_compiled(reading):
        if not finite(speedup) or speedup <= 0 or speedup > REFERENCE_SPEEDUP:
            continue
        findings.append(_insufficient(reading, entry, speedup))
        findings.extend(_slow_hypotheses(reading, entry, speedup))
    return findings


def _insufficient(reading: Reading, entry: str, speedup: float) -> Finding:
    correctness = reading.report.correctness
    diff = correctness.action_diff if entry == INFERENCE else correctness.loss_diff
    # An output that differs from eager's is the proof that compiled code ran.
    if finite(diff) and diff > 0 and (entry == TRAINING or reading.inference_comparable()):
        ran, confidence = f"its output differs from eager's by {sci(diff)}, so it ran", "high"
    else:
        ran, confidence = "the report cannot show it ran", "medium"
    slower = "slower than" if speedup < 1.0 else f"not {_BAR} faster than"
    evidence: dict[str, object] = {f"speedup_{entry}_x": speedup}
    evidence.update(reading.timing_evidence(entry))
    extra = reading.extra_ms(entry)
    return make_finding(
        INSUFFICIENT_SPEEDUP,
        title=f"Compiled {entry} is {slower} eager",
        confidence=confidence,
        cause=(
            f"Compiled {entry} code ({ran}) gave {times(speedup)}, not above {_BAR}. The figures "
            "alone do not say why: graph breaks, recompiles, a launch-bound GPU or eager work "
            "outside the compiled region each can; the probes tell them apart."
        ),
        evidence=evidence,
        next_steps=["# breaks, recompiles, kernel timing, what-if runs\n" + reading.command()],
        impact_ms=extra if extra and extra > 0 else None,
    )


def _slow_hypotheses(reading: Reading, entry: str, speedup: float) -> list[Finding]:
    """What could explain a speedup below the bar, from what the report shows."""
    findings = []
    recompile = _recompile_in_timing(reading, entry, speedup)
    if recompile is not None:
        findings.append(recompile)
    if entry == INFERENCE and reading.device_kind == "cuda":
        findings.append(
            make_finding(
                LAUNCH_BOUND,
                confidence="medium" if reading.policy == "act" else "low",
                cause=(
                    f"On an H100, ACT inference launched ~400 kernels a call with the GPU busy "
                    f"about a quarter of it: default-mode compile gave 1.06x, reduce-overhead "
                    f"(CUDA graphs) 2.79x. A {times(speedup)} on CUDA fits that pattern."
                ),
                evidence={"speedup_inference_x": speedup, "device": reading.report.device},
                next_steps=[
                    "# GPU busy fraction, kernel count, reduce-overhead what-if\n"
                    + reading.command()
                ],
            )
        )
    if entry == TRAINING:
        findings.append(
            make_finding(
                EAGER_WORK_OUTSIDE_COMPILED_REGION,
                confidence="medium",
                cause=(
                    "The reference script compiles the policy's forward; its optimizer step runs "
                    "eager, a few small kernels per parameter tensor, and caps the speedup of "
                    f"the whole step ({times(speedup)} here; ACT on an H100 gained 1.10-1.18x)."
                ),
                evidence={"speedup_training_x": speedup},
                next_steps=[
                    "# time inside and outside compiled regions\n" + reading.command(),
                    "optimizer.step = torch.compile(optimizer.step)",
                ],
            )
        )
    return findings


def _recompile_in_timing(reading: Reading, entry: str, speedup: float) -> Finding | None:
    """A slowdown that adds up to a compile's cost over the timed loop: a recompile inside it."""
    extra = reading.extra_ms(entry)
    runs = getattr(reading.report, f"{entry}_runs")
    if speedup >= 1.0 or extra is None or extra <= 0:
        return None
    evidence: dict[str, object] = {f"speedup_{entry}_x": speedup, "extra_per_call_ms": extra}
    if runs:
        total_s = extra * runs / 1000
        if total_s < RECOMPILE_SCALE_S:
            return None
        evidence[f"{entry}_runs"] = runs
        evidence["extra_in_all_s"] = total_s
        amount = f"{seconds(total_s)} over {runs} timed calls"
    elif speedup >= 0.5:
        return None
    else:
        amount = f"{ms(extra)} a call"
    return make_finding(
        RECOMPILATION,
        confidence="medium" if speedup < 0.5 else "low",
        cause=(
            f"Compiled {entry} took {amount} more than eager: as much as a compile costs "
            "(seconds with a warm cache), more than slower kernels would. A recompile inside "
            "the timed loop, on a guard such as a changing shape or a filled action queue, "
            "would do it."
        ),
        evidence=evidence,
        next_steps=[
            "# calls the entry point as users do, lists each recompile\n" + reading.command()
        ],
        impact_ms=extra,
    )
