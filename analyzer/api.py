"""The Python API: diagnose torch.compile on any `nn.Module` from a script or a notebook.

    from analyzer import diagnose_module

    diagnosis = diagnose_module(model, (x,), loss_fn=lambda out: out.pow(2).mean(),
                                backend="aot_eager", out_dir="diagnosis-out")
    for finding in diagnosis.findings:
        print(finding.code, finding.severity, finding.location, finding.evidence)

It runs the same probes, in the same order, as `compile-diagnose act` and returns the same record
(`Diagnosis.to_json()` is what the command line writes to `diagnosis.json`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from analyzer.diagnosis import Diagnosis
from analyzer.errors import UsageError
from analyzer.runner.diagnose import diagnose
from analyzer.runner.settings import (
    benchmark_settings,
    compile_lever_request,
    compile_settings,
    memory_budget_request,
    selected_probes,
    what_if_request,
)
from analyzer.runner.settings import out_dir as resolve_out_dir
from probes.errors import TargetError
from probes.records.benchmark import BenchmarkSettings
from probes.records.names import DEFAULT_DTYPE
from probes.records.speed import WHAT_IF_AUTO
from probes.targets.module import DEFAULT_COMPILE_HOW, ModuleRunDefaults, module_target


def diagnose_module(
    model: nn.Module,
    inputs: tuple[Any, ...] | dict[str, Any],
    *,
    train_inputs: tuple[Any, ...] | dict[str, Any] | None = None,
    loss_fn: Callable[[Any], torch.Tensor] | None = None,
    device: str | torch.device = "cpu",
    mode: str = "default",
    backend: str = "inductor",
    probes: Iterable[str] | None = None,
    out_dir: str | Path | None = None,
    compile_how: str = DEFAULT_COMPILE_HOW,
    benchmark: BenchmarkSettings | None = None,
    rng_what_if: bool | None = None,
    what_if: str | Iterable[str] = WHAT_IF_AUTO,
    compile_lever: str | Iterable[str] = WHAT_IF_AUTO,
    bisect: bool | None = None,
    dtype: str = DEFAULT_DTYPE,
    cosine: bool = False,
    memory_budget: int | str | None = None,
) -> Diagnosis:
    """Diagnose `torch.compile` on `model` called with `inputs`; return the `Diagnosis`.

    Args:
        model: the module to diagnose. It is deep-copied and the copy moved to `device`; the
            model passed in is neither moved, compiled nor run.
        inputs: the example call: a tuple of positional arguments, or a dict of keyword
            arguments (`model(*inputs)` or `model(**inputs)`). Inference is one call in eval
            mode under `torch.no_grad()`; eager and compiled are compared on every tensor of
            its output.
        train_inputs: the call of a training step, when it differs from `inputs`.
        loss_fn: `loss_fn(output) -> scalar tensor`. Without it there is no training entry
            point: the training probes are skipped and `diagnosis.notes` says so.
        device: where the copies run ("cpu", "cuda", "cuda:1").
        mode, backend: the `torch.compile` arguments of the compiled copy.
        probes: which probes run, by their names in `diagnosis.json`
            (`probes.records.names.PROBES`); None runs them all. "kernels", "divergence",
            "what_ifs" and "compile_time" reuse the benchmark's compiled copies and bring
            "benchmark" with them (a note says so); "recompiles" compiles a copy of its own.
        out_dir: where `diagnosis.json`, the profiler traces and the compile traces go. None
            writes no diagnosis.json, compile trace or tlparse report; the kernels probe still
            writes its profiler traces, under ./compile-diagnose-out/tensorboard/.
        compile_how: "module" (`torch.compile(model)`, default) or "inplace" (`model.compile()`).
        benchmark: iteration counts and seed; `BenchmarkSettings(20, 10, 3)` when None.
        rng_what_if: compile the training step once more with dropout off, to tell random
            numbers from arithmetic in a training difference; None: on CUDA only.
        what_if: the what-ifs for speed (`probes.records.speed.WHAT_IFS`), each one more compile
            timed against eager and the default compile: "auto" (those the time attribution
            points to), "none", "all", or a list of names.
        compile_lever: the levers on compile time (`probes.records.compile_time.LEVERS`), each
            one more compile timed as the first: "auto" (those the compile's figures point to),
            "none", "all", or a list of names.
        bisect: run torch's CompilerBisector, with the fp64 criterion as its test, for the
            compiler stage that makes the outputs diverge. None: when the divergence probe's
            localized module reproduces the divergence compiled alone; True: also on the whole
            entry point when none does; False: never. Each test is one compile.
        dtype: "float32", "bfloat16" or "float16": the dtype the model copy and the
            floating-point tensors of its inputs are cast to. Outputs are compared with an fp64
            reference by the harness's criterion for that dtype (tolerance 1e-3 in low
            precision).
        cosine: pass compiled outputs on a cosine similarity of 0.99 with eager instead of the
            fp64 RMSE check (the harness's --cosine).
        memory_budget: the memory the probes may use beyond the built model, in bytes or as
            text ("24GiB", "24G", "512MiB", "1.5GB"), in place of the memory measured free on
            the device. Before the first probe, each probe's copies of the model, gradients and
            Adam state are counted from the parameters; a probe that does not fit (with a fifth
            kept for activations) is skipped, and `diagnosis.memory_plan` says what it needed.

    Returns:
        The `Diagnosis`: `findings` (each with `.code`, `.name`, `.severity`, `.evidence`,
        `.location`), `probes` (every probe's recorded result), `notes`, and `to_json()`.

    Raises:
        UsageError: one line, when the arguments do not fit (an unknown probe, mode or backend,
            inputs the model fails on, a loss that is not a scalar tensor).
    """
    selected, notes = selected_probes(probes)
    what_ifs = what_if_request(what_if)
    levers = compile_lever_request(compile_lever)
    budget = memory_budget_request(memory_budget)
    settings = compile_settings(mode, backend, compile_how)
    benchmark = benchmark or benchmark_settings(ModuleRunDefaults())
    try:
        target = module_target(
            model,
            inputs,
            loss_fn=loss_fn,
            train_inputs=train_inputs,
            device=device,
            seed=benchmark.seed,
            dtype=dtype,
        )
    except TargetError as error:
        raise UsageError(str(error)) from None
    return diagnose(
        target,
        settings,
        benchmark,
        command=f"diagnose_module({target.name})",
        out_dir=resolve_out_dir(out_dir),
        probes=selected,
        notes=notes,
        rng_what_if=rng_what_if,
        what_if=what_ifs,
        compile_lever=levers,
        bisect=bisect,
        cosine=cosine,
        memory_budget=budget,
    )
