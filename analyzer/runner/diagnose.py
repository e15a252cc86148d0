"""The one way a diagnosis runs, for the Python API and every command.

`diagnose` takes a built target and its settings and runs the probes in order (`DiagnosisRun`),
with torch's duplicate warnings quiet and, when asked, an empty Inductor cache; it returns the
`Diagnosis`, already written to `<out>/diagnosis.json` when there is an out folder.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

from torch._inductor import select_algorithm
from torch._inductor.runtime.cache_dir_utils import temporary_cache_dir

from analyzer.diagnosis import Diagnosis
from analyzer.runner.run import DiagnosisRun
from probes.records.benchmark import BenchmarkSettings
from probes.records.speed import WHAT_IF_AUTO
from probes.targets.target import CompileSettings, Target

# torch's own warnings (e.g. "Graph break from `Tensor.item()`") repeat, unlocated, what the
# diagnosis reports with its source line; on a terminal they would interleave with the progress.
QUIET_LOGGERS = ("torch._dynamo", "torch._inductor")


def diagnose(
    target: Target,
    compile_settings: CompileSettings,
    benchmark: BenchmarkSettings,
    *,
    command: str,
    out_dir: Path | None,
    probes: Collection[str] | None = None,
    notes: list[str] | None = None,
    progress: Callable[[str], None] = lambda _text: None,
    localize: bool | None = None,
    bisect: bool | None = None,
    cosine: bool = False,
    rng_what_if: bool | None = None,
    what_if: str | Collection[str] = WHAT_IF_AUTO,
    compile_lever: str | Collection[str] = WHAT_IF_AUTO,
    fresh_cache: bool = False,
    memory_budget: int | None = None,
) -> Diagnosis:
    """Run the probes on a built target and return what they measured and concluded.

    `memory_budget`: the bytes the probes may use beyond the built target, in place of the
    memory measured free on its device (`probes.memory.plan_memory`).
    """
    diagnosis = Diagnosis(command=command)
    diagnosis.notes.extend(notes or [])
    run = DiagnosisRun(
        target,
        compile_settings,
        benchmark,
        diagnosis,
        out_dir,
        progress=progress,
        localize=localize,
        bisect=bisect,
        cosine=cosine,
        probes=probes,
        rng_what_if=rng_what_if,
        what_if=what_if,
        compile_lever=compile_lever,
        memory_budget=memory_budget,
    )
    with quiet_torch_warnings(), inductor_cache(fresh_cache):
        return run.run()


@contextlib.contextmanager
def quiet_torch_warnings() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    # max-autotune writes each GEMM's candidate timings straight to stderr
    print_autotune = select_algorithm.PRINT_AUTOTUNE
    select_algorithm.PRINT_AUTOTUNE = False
    try:
        with warnings.catch_warnings():
            # dynamo's own UserWarnings ("Dynamo does not know how to trace the builtin ...")
            # say what the graph-break finding says with the user's line
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\._dynamo")
            yield
    finally:
        select_algorithm.PRINT_AUTOTUNE = print_autotune
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def inductor_cache(fresh: bool) -> Iterator[None]:
    """A throw-away Inductor cache for cold-start numbers; else Inductor's usual one.

    torch's own switch of cache folder: it also clears the caches Inductor keeps in memory,
    which in a process that compiled before would still serve (and write to) the old folder.
    A fresh process started meanwhile (the warm-cache lever) inherits the folder.
    """
    if not fresh:
        yield
        return
    with (
        tempfile.TemporaryDirectory(prefix="compile-diagnose-inductor-") as folder,
        temporary_cache_dir(folder),
    ):
        yield
