"""Rules over the benchmark probe: what compiling costs, and whether a speedup is real.

Reads `probes["benchmark"]`, the recorded `probes.benchmark.BenchmarkResult`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analyzer.findings import Finding, Severity, make_finding


def check(probes: Mapping[str, Any]) -> list[Finding]:
    benchmark = probes.get("benchmark")
    if not benchmark or not benchmark.get("compilation_successful"):
        return []
    findings: list[Finding] = []
    for entry_point, timing in (benchmark.get("timings") or {}).items():
        if not timing.get("eager") or not timing.get("compiled"):
            continue
        cost = _compile_time_cost(entry_point, timing)
        capture = (benchmark.get("capture") or {}).get(entry_point) or {}
        frames = [
            f"[{f['compile_id']}]" for f in capture.get("frames") or [] if f.get("compile_id")
        ]
        if frames:  # the frame ids under which the tlparse report shows these compiles
            cost.evidence["tlparse_frames"] = frames
        findings.append(cost)
        noise = _speedup_within_noise(entry_point, timing)
        if noise is not None:
            findings.append(noise)
    return findings


def _compile_time_cost(entry_point: str, timing: Mapping[str, Any]) -> Finding:
    eager_ms = timing["eager"]["median_ms"]
    compiled_ms = timing["compiled"]["median_ms"]
    first_s = timing.get("compiled_first_call_s") or 0.0
    compile_s = max(first_s - compiled_ms / 1e3, 0.0)
    saved_ms = eager_ms - compiled_ms
    evidence: dict[str, Any] = {
        "entry_point": entry_point,
        "first_compiled_call_s": round(first_s, 3),
        "eager_median_ms": round(eager_ms, 3),
        "compiled_median_ms": round(compiled_ms, 3),
        "saved_per_call_ms": round(saved_ms, 3),
    }
    if saved_ms > 0:
        calls = compile_s * 1e3 / saved_ms
        evidence["calls_to_break_even"] = round(calls)
        cause = (
            f"The first {entry_point} call took {first_s:.1f} s (the compile); each later call "
            f"saves {saved_ms:.2f} ms, so compiling pays for itself after about "
            f"{calls:,.0f} calls."
        )
        severity = Severity.INFO
    else:
        cause = (
            f"The first {entry_point} call took {first_s:.1f} s (the compile), and compiled calls "
            f"are not faster than eager ({compiled_ms:.2f} ms against {eager_ms:.2f} ms): "
            "the compile never pays for itself at this size."
        )
        severity = Severity.WARNING
    return make_finding(
        "compile-time-cost",
        severity=severity,
        confidence="high",
        cause=cause,
        evidence=evidence,
        next_steps=[
            "export TORCHINDUCTOR_CACHE_DIR=$HOME/.cache/torchinductor  # keep compiled code "
            "between runs",
            "torch.compile(..., mode='reduce-overhead')  # on CUDA, when calls are launch-bound",
        ],
    )


def _speedup_within_noise(entry_point: str, timing: Mapping[str, Any]) -> Finding | None:
    speedup = timing.get("speedup") or {}
    low, high, ratio = speedup.get("low"), speedup.get("high"), speedup.get("ratio")
    if low is None or high is None or not (low < 1.0 < high):
        return None
    return make_finding(
        "benchmark-methodology",
        severity=Severity.INFO,
        confidence="medium",
        title=f"The {entry_point} speedup is within run-to-run noise",
        cause=(
            f"The measured {entry_point} speedup {ratio:.2f}x lies inside the range the timing "
            f"spread allows ({low:.2f}x to {high:.2f}x): it cannot tell compiled from eager."
        ),
        evidence={
            "entry_point": entry_point,
            "speedup": round(ratio, 3),
            "speedup_low": round(low, 3),
            "speedup_high": round(high, 3),
            "eager_iqr_ms": round(timing["eager"]["iqr_ms"], 3),
            "compiled_iqr_ms": round(timing["compiled"]["iqr_ms"], 3),
        },
        next_steps=["rerun with more iterations: --iters-inference 200 --iters-training 100"],
    )
