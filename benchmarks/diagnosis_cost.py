"""What a diagnosis costs against the work it cannot avoid, on this machine.

The bare cost: build the policy, compile each entry point once (the first call of inference and
of a training step) and time eager against compiled with the same iteration counts. A diagnosis
does that and more (graph breaks, kernel profiles and the time attribution, the what-ifs for
speed that the attribution points to, recompile scenarios, divergence what-ifs, traces). Each
side runs in a fresh process with an empty Inductor cache, one after the other, so both pay the
same cold compiles. Prints both wall times, the ratio, and the diagnosis's phases.

    .venv/bin/python benchmarks/diagnosis_cost.py [--preset cpu] [--device cpu] [--backend inductor]
                                                  [--rng-what-if] [--what-if auto]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BARE = """
import sys, torch
from probes.benchmark import BenchmarkProbe
from probes.records.benchmark import BenchmarkSettings
from probes.targets.lerobot.policy import PolicyRequest, build_target
from probes.targets.target import CompileSettings
from probes.timing import measure_interleaved

preset_name, device, backend = sys.argv[1:4]
target, preset = build_target(PolicyRequest("act", torch.device(device), preset=preset_name))
settings = BenchmarkSettings(preset.iters_inference, preset.iters_training, preset.warmup)
# The benchmark probe alone: one compile per entry point, correctness, interleaved timing.
BenchmarkProbe(target, CompileSettings(backend=backend), settings).run()
"""


def run_timed(command: list[str], cache: str) -> float:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="inductor")
    parser.add_argument(
        "--rng-what-if",
        action="store_true",
        help="the diagnosis also compiles the training step with dropout off (on a CPU it does "
        "not by default)",
    )
    parser.add_argument("--what-if", default="auto", help="the diagnosis's --what-if")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        bare_s = run_timed(
            [sys.executable, "-c", BARE, args.preset, args.device, args.backend],
            str(Path(work) / "cache-bare"),
        )
        out = Path(work) / "diagnosis"
        full_s = run_timed(
            [
                sys.executable,
                "-m",
                "analyzer.cli",
                "act",
                "--preset",
                args.preset,
                "--device",
                args.device,
                "--backend",
                args.backend,
                "--out",
                str(out),
                "--what-if",
                args.what_if,
                *(["--rng-what-if"] if args.rng_what_if else []),
            ],
            str(Path(work) / "cache-full"),
        )
        phases = json.loads((out / "diagnosis.json").read_text())["phase_seconds"]
    print(
        f"machine: {os.cpu_count()} CPUs; ACT preset {args.preset} on {args.device}, "
        f"backend {args.backend}, cold Inductor cache for each side"
        + f", the diagnosis with --what-if {args.what_if}"
        + (" and --rng-what-if" if args.rng_what_if else "")
    )
    print(f"bare compile + benchmark: {bare_s:7.1f} s")
    print(f"full diagnosis:           {full_s:7.1f} s")
    ratio = full_s / bare_s
    print(f"ratio:                    {ratio:7.2f}x  (target <= 2x with the default what-ifs)")
    print("diagnosis phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))


if __name__ == "__main__":
    main()
