"""LeRobot policies' tiny presets as targets, and the short diagnosis the policy tests share.

A diagnosis here runs the benchmark (and, when asked, the graph-break probe) with
backend="aot_eager": each compile costs seconds on a CPU, so the other probes, which are the same
code for every policy, are left to the ACT tests.
"""

from __future__ import annotations

import torch

from analyzer.diagnosis import Diagnosis
from analyzer.runner.diagnose import diagnose
from probes.records.benchmark import BenchmarkSettings
from probes.targets.lerobot.policy import PolicyRequest, build_target
from probes.targets.target import CompileSettings, Target

QUICK = BenchmarkSettings(iters_inference=2, iters_training=1, warmup=1)
# The reference report's Raw Data keys, which the benchmark must fill for every policy.
REFERENCE_KEYS = {
    "compilation_successful",
    "correctness",
    "speedup_inference",
    "speedup_training",
    "loss_consistency",
    "grad_norm_consistency",
}


def tiny(policy: str) -> Target:
    request = PolicyRequest(policy=policy, device=torch.device("cpu"), preset="tiny")
    return build_target(request)[0]


def quick_diagnosis(target: Target, probes: set[str]) -> Diagnosis:
    return diagnose(
        target,
        CompileSettings(backend="aot_eager", how="model"),
        QUICK,
        command=f"test {target.name}",
        out_dir=None,
        probes=frozenset(probes),
    )


def assert_benchmarked(diagnosis: Diagnosis) -> None:
    """The diagnosis completed, compiled, and filled the reference keys for both entry points."""
    assert diagnosis.status == "complete"
    assert diagnosis.probe_errors == {}
    assert set(diagnosis.reference_metrics) >= REFERENCE_KEYS
    assert diagnosis.reference_metrics["compilation_successful"] is True
    assert diagnosis.reference_metrics["training_benchmarked"] is True
