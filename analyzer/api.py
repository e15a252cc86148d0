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
from probes.benchmark import BenchmarkSettings
from probes.errors import TargetError
from probes.targets.module import DEFAULT_COMPILE_HOW, ModuleRunDefaults, module_target
from probes.targets.target import CompileSettings, Target

# Probe names as `diagnosis.json` records them under "probes", in the order a run takes them.
PROBES = ("graph_breaks", "benchmark", "divergence", "kernels", "recompiles", "compile_trace")
# Probes that measure on the benchmark's compiled copies: selecting one runs the benchmark too.
NEEDS_BENCHMARK = ("kernels", "divergence", "recompiles")
MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


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
        probes: which probes run, by their names in `diagnosis.json` (`PROBES`); None runs them
            all. "kernels" and "recompiles" reuse the benchmark's compiled copies and bring
            "benchmark" with them (a note says so).
        out_dir: where `diagnosis.json`, the profiler traces and the compile traces go. None
            writes no diagnosis.json, compile trace or tlparse report; the kernels probe still
            writes its profiler traces, under ./compile-diagnose-out/tensorboard/.
        compile_how: "module" (`torch.compile(model)`, default) or "inplace" (`model.compile()`).
        benchmark: iteration counts and seed; `BenchmarkSettings(20, 10, 3)` when None.
        rng_what_if: compile the training step once more with dropout off, to tell random
            numbers from arithmetic in a training difference; None: on CUDA only.

    Returns:
        The `Diagnosis`: `findings` (each with `.code`, `.name`, `.severity`, `.evidence`,
        `.location`), `probes` (every probe's recorded result), `notes`, and `to_json()`.

    Raises:
        UsageError: one line, when the arguments do not fit (an unknown probe, mode or backend,
            inputs the model fails on, a loss that is not a scalar tensor).
    """
    selected, notes = _selected_probes(probes)
    compile_settings = _compile_settings(mode, backend, compile_how)
    benchmark = benchmark or _default_benchmark()
    try:
        target = module_target(
            model,
            inputs,
            loss_fn=loss_fn,
            train_inputs=train_inputs,
            device=device,
            seed=benchmark.seed,
        )
    except TargetError as error:
        raise UsageError(str(error)) from None
    return run_diagnosis(
        target,
        compile_settings,
        benchmark,
        command=f"diagnose_module({target.name})",
        out_dir=_out_dir(out_dir),
        probes=selected,
        notes=notes,
        rng_what_if=rng_what_if,
    )


def run_diagnosis(
    target: Target,
    compile_settings: CompileSettings,
    benchmark: BenchmarkSettings,
    *,
    command: str,
    out_dir: Path | None,
    probes: frozenset[str] | None = None,
    notes: list[str] | None = None,
    progress: Callable[[str], None] = lambda _text: None,
    rng_what_if: bool | None = None,
) -> Diagnosis:
    """Run the probes on a built target; what `diagnose_module` and the commands share."""
    from analyzer.runner.run import DiagnosisRun
    from analyzer.runner.session import quiet_torch_warnings

    diagnosis = Diagnosis(command=command)
    diagnosis.notes.extend(notes or [])
    run = DiagnosisRun(
        target,
        compile_settings,
        benchmark,
        diagnosis,
        out_dir,
        progress=progress,
        probes=probes,
        rng_what_if=rng_what_if,
    )
    with quiet_torch_warnings():  # the diagnosis reports its breaks, located; torch's repeat them
        return run.run()


def _selected_probes(probes: Iterable[str] | None) -> tuple[frozenset[str] | None, list[str]]:
    if probes is None:
        return None, []
    if isinstance(probes, str):  # probes="graph_breaks" means one probe, not eleven letters
        probes = [probes]
    selected = set(probes)
    unknown = sorted(selected - set(PROBES))
    if unknown:
        raise UsageError(f"unknown probe {', '.join(unknown)}; probes: {', '.join(PROBES)}")
    notes = []
    needing = sorted(name for name in selected & set(NEEDS_BENCHMARK))
    if needing and "benchmark" not in selected:
        selected.add("benchmark")
        notes.append(
            f"{', '.join(needing)} measure(s) the benchmark's compiled copies: benchmark ran too"
        )
    skipped = [name for name in PROBES if name not in selected]
    notes.append(
        f"probes selected: {', '.join(p for p in PROBES if p in selected)}; "
        f"not run: {', '.join(skipped) or 'none'}"
    )
    return frozenset(selected), notes


def _compile_settings(mode: str, backend: str, how: str) -> CompileSettings:
    if mode not in MODES:
        raise UsageError(f"mode {mode!r}: choose from {', '.join(MODES)}")
    import torch._dynamo

    known = set(torch._dynamo.list_backends(exclude_tags=())) | {"inductor", "eager", "aot_eager"}
    if backend not in known:
        raise UsageError(f"backend {backend!r}: unknown; known: {', '.join(sorted(known))}")
    return CompileSettings(mode=None if mode == "default" else mode, backend=backend, how=how)


def _default_benchmark() -> BenchmarkSettings:
    defaults = ModuleRunDefaults()
    return BenchmarkSettings(
        iters_inference=defaults.iters_inference,
        iters_training=defaults.iters_training,
        warmup=defaults.warmup,
    )


def _out_dir(out_dir: str | Path | None) -> Path | None:
    if out_dir is None:
        return None
    path = Path(out_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"out_dir {path}: cannot write there ({error.strerror})") from None
    return path
