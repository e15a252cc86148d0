"""Run a diagnosis with progress on stderr, then show it (Rich) or write it (JSON)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from analyzer.commands.common import progress_reporter, stderr_console, write_json_output
from analyzer.diagnosis import Diagnosis
from analyzer.render.diagnosis import diagnosis_view
from analyzer.run import DiagnosisRun
from probes.benchmark import BenchmarkSettings
from probes.target import CompileSettings, Target

EXIT_HEALTHY = 0
EXIT_ERROR_FINDING = 1


def benchmark_settings(args: argparse.Namespace, defaults: Any) -> BenchmarkSettings:
    """Iteration counts from the command line, else from the preset."""
    return BenchmarkSettings(
        iters_inference=args.iters_inference or defaults.iters_inference,
        iters_training=args.iters_training or defaults.iters_training,
        warmup=args.warmup or defaults.warmup,
        seed=args.seed,
    )


def diagnose_and_report(
    args: argparse.Namespace,
    build: Callable[[], tuple[Target, Any]],
    out_dir: Path,
    *,
    how: str,
) -> int:
    diagnosis = Diagnosis(command=args.command)
    with progress_reporter(stderr_console()) as progress:
        progress("building the target and its inputs")
        target, defaults = build()
        compile_settings = CompileSettings(
            mode=None if args.mode == "default" else args.mode, backend=args.backend, how=how
        )
        run = DiagnosisRun(
            target,
            compile_settings,
            benchmark_settings(args, defaults),
            diagnosis,
            out_dir,
            progress=progress,
        )
        run.run()
    show(diagnosis, args)
    return EXIT_ERROR_FINDING if diagnosis.has_errors else EXIT_HEALTHY


def show(diagnosis: Diagnosis, args: argparse.Namespace) -> None:
    if args.json is not None:
        write_json_output(args.json, diagnosis.to_json())
        if args.json == "-":
            return
    console = Console()
    console.print(diagnosis_view(diagnosis.to_dict(), diagnosis.findings))
