"""The benchmark's compiles again, in a fresh Python process: what a warm cache gives.

A compile in a process that has compiled before is not what a user's next run pays: Inductor
keeps compiled code in memory, and some costs come once per process (its check of the CPU's
vector instructions, its compile workers' start). So the warm-cache levers start a new
interpreter (`python -m probes.compile_time.fresh_process REQUEST RESULT`) that builds the same
target from its recipe (`Target.recipe`), compiles it with the same settings and makes the same
first calls as the benchmark (`BenchmarkProbe.compile_by_first_calls`), and writes each entry
point's `EntryCompileTime` back as JSON.

- warm cache: the child uses the Inductor cache folder the diagnosis wrote (what the next run
  on this machine gets);
- portable cache: the child uses an empty cache folder and first loads the artifacts file that
  `torch.compiler.save_cache_artifacts()` wrote (what another machine gets from that file).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch._dynamo import config as dynamo_config
from torch._functorch import config as functorch_config
from torch._inductor import config as inductor_config

from probes.benchmark import BenchmarkProbe
from probes.errors import error_line
from probes.records.benchmark import BenchmarkSettings
from probes.records.environment import INDUCTOR_CACHE_DIR_VARIABLE
from probes.records.serialize import to_jsonable
from probes.targets.target import CompileSettings, Target, TargetRecipe

CACHE_DIR_VARIABLE = INDUCTOR_CACHE_DIR_VARIABLE


@dataclass
class ProcessSettings:
    """This process's settings that compiled code, and its cache keys, depend on.

    A user's script may set them (deterministic algorithms, an Inductor option) before the
    diagnosis: the child takes them over, so that its compile is the same compile and looks up
    the same cache entries. torch's configs are carried whole, as `save_config` writes them.
    """

    inductor: bytes  # each config as its save_config() writes it
    functorch: bytes
    dynamo: bytes
    deterministic: bool
    deterministic_warn_only: bool
    fill_uninitialized_memory: bool
    float32_matmul_precision: str
    # What Inductor's cache key reads of the matmul settings (`cuda_matmul_settings`): the
    # precision alone does not say it ("highest" is "none" until set, "ieee" after).
    cuda_matmul: tuple[str, bool, bool]

    @classmethod
    def current(cls) -> ProcessSettings:
        return cls(
            inductor=inductor_config.save_config(),
            functorch=functorch_config.save_config(),
            dynamo=dynamo_config.save_config(),
            deterministic=torch.are_deterministic_algorithms_enabled(),
            deterministic_warn_only=torch.is_deterministic_algorithms_warn_only_enabled(),
            fill_uninitialized_memory=torch.utils.deterministic.fill_uninitialized_memory,
            float32_matmul_precision=torch.get_float32_matmul_precision(),
            cuda_matmul=_cuda_matmul(),
        )

    def apply(self) -> None:
        inductor_config.load_config(self.inductor)
        functorch_config.load_config(self.functorch)
        dynamo_config.load_config(self.dynamo)
        torch.use_deterministic_algorithms(
            self.deterministic, warn_only=self.deterministic_warn_only
        )
        torch.utils.deterministic.fill_uninitialized_memory = self.fill_uninitialized_memory
        if torch.get_float32_matmul_precision() != self.float32_matmul_precision:
            torch.set_float32_matmul_precision(self.float32_matmul_precision)
        # Then the settings exactly as the parent's, which setting the precision may have moved
        # ("highest" set where it already was turns "none" into "ieee"): the cache key reads them.
        matmul = torch.backends.cuda.matmul
        if _cuda_matmul() != self.cuda_matmul:
            (
                matmul.fp32_precision,
                matmul.allow_fp16_reduced_precision_reduction,
                matmul.allow_bf16_reduced_precision_reduction,
            ) = self.cuda_matmul


def _cuda_matmul() -> tuple[str, bool, bool]:
    matmul = torch.backends.cuda.matmul
    return (
        matmul.fp32_precision,
        bool(matmul.allow_fp16_reduced_precision_reduction),
        bool(matmul.allow_bf16_reduced_precision_reduction),
    )


@dataclass
class FreshProcessRequest:
    """What the child builds and compiles, under which settings."""

    recipe: TargetRecipe
    settings: CompileSettings
    benchmark: BenchmarkSettings
    process: ProcessSettings
    artifacts: str | None = None  # a cache-artifacts file to load into the empty cache first


@dataclass
class FreshProcessResult:
    """What the child measured (or why it could not), read back by the parent."""

    entry_points: dict[str, dict[str, Any]] = field(default_factory=dict)  # summaries
    build_s: float | None = None
    load_artifacts_s: float | None = None
    process_s: float | None = None  # the child's whole life, as the parent timed it
    error: str | None = None


def save_cache_artifacts(path: Path) -> int | None:
    """Write what `torch.compiler.save_cache_artifacts()` holds to `path`; its size in bytes.

    None when torch holds none (nothing compiled in this process with the caches on).
    """
    saved = torch.compiler.save_cache_artifacts()
    if saved is None:
        return None
    data, _info = saved
    path.write_bytes(data)
    return len(data)


def run_fresh_process(
    target: Target,
    settings: CompileSettings,
    benchmark: BenchmarkSettings,
    *,
    cache_dir: str | None,
    artifacts: Path | None = None,
    timeout_s: float = 900.0,
) -> FreshProcessResult:
    """Compile `target` by its first calls in a new interpreter; `cache_dir` None: Inductor's."""
    if target.recipe is None:
        return FreshProcessResult(error="the target cannot be built in another process")
    if not isinstance(settings.backend, str):
        return FreshProcessResult(error=f"the backend {settings.backend_name} is an object")
    with tempfile.TemporaryDirectory(prefix="compile-diagnose-fresh-") as folder:
        request_path, result_path = Path(folder) / "request.pt", Path(folder) / "result.json"
        request = FreshProcessRequest(
            target.recipe,
            settings,
            benchmark,
            ProcessSettings.current(),
            None if artifacts is None else str(artifacts),
        )
        try:
            torch.save(request, request_path)
        except Exception as error:  # a model or input that does not pickle
            return FreshProcessResult(error=f"the target does not pickle: {error_line(error)}")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        if cache_dir is not None:
            env[CACHE_DIR_VARIABLE] = cache_dir
        command = [sys.executable, "-m", __name__, str(request_path), str(result_path)]
        started = time.perf_counter()
        try:
            completed = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            return FreshProcessResult(error=f"the fresh process ran past {timeout_s:.0f} s")
        process_s = time.perf_counter() - started
        if not result_path.exists():
            tail = (completed.stderr or completed.stdout or "").strip().splitlines()
            why = tail[-1] if tail else f"exit status {completed.returncode}"
            return FreshProcessResult(error=f"the fresh process failed: {why}", process_s=process_s)
        result = FreshProcessResult(**json.loads(result_path.read_text(encoding="utf-8")))
        result.process_s = process_s
        return result


def _build(recipe: TargetRecipe) -> Target:
    module_name, _, function = recipe.builder.partition(":")
    builder = getattr(importlib.import_module(module_name), function)
    return builder(*recipe.args, **recipe.kwargs)


def _child(request_path: Path, result_path: Path) -> None:
    result = FreshProcessResult()
    try:
        request: FreshProcessRequest = torch.load(request_path, weights_only=False)
        request.process.apply()
        if request.artifacts is not None:
            started = time.perf_counter()
            torch.compiler.load_cache_artifacts(Path(request.artifacts).read_bytes())
            result.load_artifacts_s = time.perf_counter() - started
        started = time.perf_counter()
        target = _build(request.recipe)
        result.build_s = time.perf_counter() - started
        probe = BenchmarkProbe(target, request.settings, request.benchmark)
        eager, compiled = target.fresh_copy(), target.compiled_copy(request.settings)
        probe.compile_by_first_calls(eager, compiled)
        result.entry_points = {
            name: to_jsonable(record.summary()) for name, record in probe.compile_time.items()
        }
        result.error = probe.result.compilation_error
    except Exception as error:  # reported to the parent as the lever's reason
        result.error = error_line(error)
    result_path.write_text(json.dumps(to_jsonable(result)), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    request_path, result_path = (Path(a) for a in (argv or sys.argv[1:]))
    _child(request_path, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
