"""Diagnose torch.compile on LeRobot's ACT from Python, as `compile-diagnose act` does.

    .venv/bin/python examples/diagnose_act.py [--preset tiny|cpu|reference] [--backend inductor]

Builds ACT from its config with random weights and synthetic batches (offline), runs every probe
on it and prints the findings and the reference report's figures. The default, the `tiny`
preset with the aot_eager backend, takes one to four minutes on a 2-core CPU;
`--preset cpu --backend inductor` is what `compile-diagnose act` runs on a machine without CUDA.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from analyzer.runner.diagnose import diagnose
from analyzer.runner.settings import benchmark_settings
from probes.targets.lerobot.policy import PolicyRequest, build_target
from probes.targets.target import CompileSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", choices=("tiny", "cpu", "reference"))
    parser.add_argument("--backend", default="aot_eager")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("compile-diagnose-out/act-example"))
    args = parser.parse_args()

    request = PolicyRequest(policy="act", device=torch.device(args.device), preset=args.preset)
    target, preset = build_target(request)
    diagnosis = diagnose(
        target,
        CompileSettings(backend=args.backend, how="model"),  # policy.model.compile() on a copy
        benchmark_settings(preset),  # the preset's iteration counts
        command=f"examples/diagnose_act.py --preset {args.preset}",
        out_dir=args.out,
    )

    for finding in diagnosis.findings:
        where = f" at {finding.location}" if finding.location else ""
        print(f"{finding.code} {finding.severity:<7} {finding.title}{where}")
    metrics = diagnosis.reference_metrics or {}
    for key in ("compilation_successful", "correctness", "speedup_inference", "speedup_training"):
        print(f"{key}: {metrics.get(key)}")
    print(f"everything measured: {args.out / 'diagnosis.json'}")


if __name__ == "__main__":
    main()
