"""Run a diagnosis with progress on stderr, then show it (Rich) or write it (JSON)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from analyzer.commands.common import (
    progress_reporter,
    stderr_console,
    write_json_output,
    write_text_output,
)
from analyzer.diagnosis import Diagnosis
from analyzer.render.diagnosis import diagnosis_view
from analyzer.runner.run import DiagnosisRun
from probes.benchmark import BenchmarkSettings
from probes.targets.target import CompileSettings, Target

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


# torch's own warnings (e.g. "Graph break from `Tensor.item()`") repeat, unlocated, what the
# diagnosis reports with its source line; on a terminal they would interleave with the progress.
QUIET_LOGGERS = ("torch._dynamo", "torch._inductor")


@contextlib.contextmanager
def quiet_torch_warnings() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def inductor_cache(fresh: bool) -> Iterator[None]:
    """A throw-away Inductor cache for cold-start numbers; else Inductor's usual one."""
    if not fresh:
        yield
        return
    previous = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="compile-diagnose-inductor-") as folder:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = folder
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = previous


def diagnose_and_report(
    args: argparse.Namespace,
    build: Callable[[], tuple[Target, Any]],
    out_dir: Path,
    *,
    how: str,
) -> int:
    diagnosis = Diagnosis(command=args.command)
    fresh = getattr(args, "fresh_cache", False)
    with (
        quiet_torch_warnings(),
        inductor_cache(fresh),
        progress_reporter(stderr_console()) as progress,
    ):
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
            localize=getattr(args, "localize", None),
            rng_what_if=getattr(args, "rng_what_if", None),
        )
        run.run()
    show(diagnosis, args)
    return EXIT_ERROR_FINDING if diagnosis.has_errors else EXIT_HEALTHY


def show(diagnosis: Diagnosis, args: argparse.Namespace) -> None:
    from analyzer.render.report_markdown import report_markdown

    markdown = report_markdown(diagnosis.to_dict(), diagnosis.findings)
    if diagnosis.out_dir is not None:
        (Path(diagnosis.out_dir) / "report.md").write_text(markdown, encoding="utf-8")
    if getattr(args, "markdown", None):
        write_text_output(args.markdown, markdown, "--markdown")
    if args.json is not None:
        write_json_output(args.json, diagnosis.to_json())
        if args.json == "-":
            return
    console = Console()
    console.print(diagnosis_view(diagnosis.to_dict(), diagnosis.findings))
