"""The levers on compile time: which to try (from the figures measured before), and trying them.

Each lever is one more compile, timed as the benchmark's first call was
(`probes/compile/breakdown.py`):
- the warm cache, and the portable cache, in a fresh process (`fresh_process.py`);
- regional compilation of the model's repeated blocks (`regional.py`), timed warm too, since a
  model compiled in pieces may run slower than one compiled whole;
- dynamic shapes (`dynamic.py`): one `dynamic=True` compile, called at another batch size too.

`auto` tries a lever where the figures point to it: a compile long enough to be worth cutting
(`MIN_COMPILE_S`), repeated blocks that hold a fair share of the model (`MIN_BLOCK_SHARE`). The
portable cache (a second fresh process) and dynamic shapes (a full compile) run when asked for
(`all`, or by name); the artifacts file the portable cache loads is written in every run.
Deciding what to measure is the probe's; what a figure means is the rules'.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probes.compile_time.dynamic import measure_dynamic
from probes.compile_time.fresh_process import FreshProcessResult, run_fresh_process
from probes.compile_time.regional import find_repeated_blocks, measure_regional
from probes.records.benchmark import BenchmarkSettings
from probes.records.compile_time import (
    DYNAMIC_SHAPES,
    LEVER_FAILED,
    LEVER_MEASURED,
    LEVERS,
    PORTABLE_CACHE,
    REGIONAL,
    WARM_CACHE,
    CacheLookups,
    CompileLever,
    EntryCompileTime,
    RepeatedBlock,
)
from probes.records.names import INFERENCE
from probes.records.speed import WHAT_IF_ALL, WHAT_IF_AUTO, WHAT_IF_NONE, requested_what_ifs
from probes.targets.target import CompileSettings, Target

# `auto` leaves a compile shorter than this alone: a lever costs a compile of its own.
MIN_COMPILE_S = 5.0
# `auto` tries regional compilation when the repeated blocks hold this share of the parameters.
MIN_BLOCK_SHARE = 0.25
# Levers `auto` never runs: a fresh process more than the warm cache's; a full compile more.
ASKED_FOR_ONLY = (PORTABLE_CACHE, DYNAMIC_SHAPES)

Call = Callable[[], Any]


@dataclass
class LeverPlan:
    """The levers to try per entry point, and the ones left out with the reason."""

    to_run: dict[str, list[str]] = field(default_factory=dict)  # lever -> entry points
    not_run: list[CompileLever] = field(default_factory=list)
    blocks: list[RepeatedBlock] = field(default_factory=list)


def plan_levers(
    requested: str | Sequence[str],
    target: Target,
    baselines: Mapping[str, EntryCompileTime],
) -> LeverPlan:
    mode, names = requested_what_ifs(requested, LEVERS, "compile lever")
    plan = LeverPlan(blocks=find_repeated_blocks(target.module))
    if mode == WHAT_IF_NONE:
        return plan
    wanted = LEVERS if mode == WHAT_IF_ALL else names or LEVERS
    for lever in wanted:
        for entry_point, baseline in baselines.items():
            why_not = _why_not(
                lever, entry_point, target, baseline, plan.blocks, auto=mode == WHAT_IF_AUTO
            )
            if why_not is None:
                plan.to_run.setdefault(lever, []).append(entry_point)
            else:
                plan.not_run.append(CompileLever(lever, entry_point, reason=why_not))
    return plan


def _why_not(
    lever: str,
    entry_point: str,
    target: Target,
    baseline: EntryCompileTime,
    blocks: Sequence[RepeatedBlock],
    *,
    auto: bool,
) -> str | None:
    """Why a lever is not tried for this entry point; None when it is."""
    if lever in (WARM_CACHE, PORTABLE_CACHE) and target.recipe is None:
        return "the target cannot be built again in a fresh process"
    if lever == REGIONAL and not blocks:
        return "the model has no repeated block (a submodule structure that recurs)"
    if lever == DYNAMIC_SHAPES and entry_point != INFERENCE:
        return "the other batch size is an inference call"
    if lever == DYNAMIC_SHAPES and target.other_batch is None:
        return "the inputs have no batch dimension to change"
    if not auto:
        return None
    if lever in ASKED_FOR_ONLY:
        cost = "a full compile" if lever == DYNAMIC_SHAPES else "a fresh process"
        return f"costs {cost} more: ask for it with --compile-lever {lever}"
    # Less Inductor's CPU check, which no lever changes (levers are compared less it too).
    compile_s = baseline.compile_s - baseline.cpu_isa_check_s
    if compile_s < MIN_COMPILE_S:
        return (
            f"the compile took {compile_s:.1f} s less Inductor's CPU check, under the "
            f"{MIN_COMPILE_S:.0f} s worth a lever's compile"
        )
    share = sum(b.share_of_parameters for b in blocks)
    if lever == REGIONAL and share < MIN_BLOCK_SHARE:
        return f"the repeated blocks hold {share:.0%} of the parameters"
    return None


def run_levers(
    plan: LeverPlan,
    target: Target,
    settings: CompileSettings,
    bench: BenchmarkSettings,
    baselines: Mapping[str, EntryCompileTime],
    *,
    calls: Mapping[str, tuple[Call, Call]],
    call_of: Mapping[str, Callable[[Any], Call]],
    artifacts: Path | None,
    on_phase: Callable[[str], None] = lambda _: None,
) -> list[CompileLever]:
    """Try the planned levers; every lever of the plan gets a result, tried or not."""
    results: list[CompileLever] = list(plan.not_run)
    if WARM_CACHE in plan.to_run:
        on_phase("compiling again in a fresh process (warm cache)")
        fresh = run_fresh_process(target, settings, bench, cache_dir=None)
        results += _fresh_levers(WARM_CACHE, fresh, plan.to_run[WARM_CACHE], baselines)
    if PORTABLE_CACHE in plan.to_run:
        results += _portable(plan, target, settings, bench, baselines, artifacts, on_phase)
    if INFERENCE in plan.to_run.get(DYNAMIC_SHAPES, []):
        on_phase("compiling with dynamic=True (dynamic shapes)")
        eager_call, default_call = calls[INFERENCE]
        results.append(
            measure_dynamic(target, settings, eager_call, default_call, baselines[INFERENCE], bench)
        )
    for entry_point in plan.to_run.get(REGIONAL, []):
        on_phase(f"compiling the repeated blocks alone ({entry_point})")
        eager_call, default_call = calls[entry_point]
        results.append(
            measure_regional(
                target,
                settings,
                plan.blocks,
                entry_point,
                call_of[entry_point],
                eager_call,
                default_call,
                baselines[entry_point],
                bench,
            )
        )
    return results


def _portable(
    plan: LeverPlan,
    target: Target,
    settings: CompileSettings,
    bench: BenchmarkSettings,
    baselines: Mapping[str, EntryCompileTime],
    artifacts: Path | None,
    on_phase: Callable[[str], None],
) -> list[CompileLever]:
    entry_points = plan.to_run[PORTABLE_CACHE]
    if artifacts is None or not artifacts.exists():
        reason = "no cache artifacts were saved (no output folder, or nothing compiled)"
        return [CompileLever(PORTABLE_CACHE, e, LEVER_FAILED, reason) for e in entry_points]
    on_phase("compiling again in a fresh process on an empty cache (portable cache)")
    with tempfile.TemporaryDirectory(prefix="compile-diagnose-empty-cache-") as empty:
        fresh = run_fresh_process(target, settings, bench, cache_dir=empty, artifacts=artifacts)
    levers = _fresh_levers(PORTABLE_CACHE, fresh, entry_points, baselines)
    for lever in levers:
        lever.detail["artifacts_file"] = artifacts.name
        lever.detail["artifacts_bytes"] = artifacts.stat().st_size
        lever.detail["load_artifacts_s"] = fresh.load_artifacts_s
    return levers


_PASTE = {
    WARM_CACHE: (
        'os.environ["TORCHINDUCTOR_CACHE_DIR"] = "/kept/folder"  # before compiling; kept '
        "between runs and containers (Inductor's default is under /tmp)"
    ),
    PORTABLE_CACHE: (
        "blob, _ = torch.compiler.save_cache_artifacts()  # after compiling, on one machine\n"
        "torch.compiler.load_cache_artifacts(blob)  # before compiling, on the next"
    ),
}


def _fresh_levers(
    name: str,
    fresh: FreshProcessResult,
    entry_points: Sequence[str],
    baselines: Mapping[str, EntryCompileTime],
) -> list[CompileLever]:
    levers = []
    for entry_point in entry_points:
        baseline = baselines[entry_point]
        lever = CompileLever(
            name,
            entry_point,
            baseline_compile_s=baseline.compile_s - baseline.cpu_isa_check_s,
        )
        lever.paste = _PASTE[name]
        measured = fresh.entry_points.get(entry_point)
        if measured is None:
            lever.status = LEVER_FAILED
            lever.reason = fresh.error or f"the fresh process did not reach {entry_point}"
            levers.append(lever)
            continue
        lever.status = LEVER_MEASURED
        # Both figures less Inductor's CPU check, which every new process pays (recorded apart)
        lever.compile_s = measured["compile_s"] - (measured.get("cpu_isa_check_s") or 0.0)
        lever.first_call_s = measured["first_call_s"]
        lever.stages = measured["stages"]
        lever.cache = CacheLookups(**measured["cache"])
        lever.detail = {
            "fresh_process": True,
            "process_s": fresh.process_s,
            "build_s": fresh.build_s,
            "cpu_isa_check_s": measured.get("cpu_isa_check_s"),
            "frames": len(measured.get("frames") or []),
        }
        levers.append(lever)
    return levers
