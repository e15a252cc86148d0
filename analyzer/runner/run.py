"""Run the probes on a target, in an order that keeps each measurement honest and cheap.

Order matters:
1. graph breaks (explain, fullgraph) on fresh copies: they reset dynamo, so they run before
   anything that will be timed is compiled;
2. the benchmark compiles each entry point once and times it;
3. the kernel profiles (and the time attribution read from them) reuse the benchmark's compiled
   copies; the what-ifs for speed compile twins of their own, each timed against those copies and
   chosen from the attribution; the levers on compile time (each one more compile, or a fresh
   process) are timed against the same copies; the recompile scenarios come last, since they
   reset dynamo, add cache entries and may make shapes dynamic.
Each probe's result is recorded as soon as it exists; a probe that raises is recorded as an error
and the others still run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import torch
from torch._inductor import config as inductor_config

from analyzer.diagnosis import Diagnosis
from analyzer.rules import run_rules
from analyzer.rules.divergence_reading import complete_divergence_record
from analyzer.rules.speed import recommend
from analyzer.runner.interrupt import InterruptWatch
from analyzer.runner.settings import DEFAULT_OUT_ROOT
from analyzer.runner.writer import DiagnosisWriter, PhaseClock
from analyzer.verdict import verdict_record
from probes.benchmark import BenchmarkProbe, TrainingLoop
from probes.compile.capture import compiles_during
from probes.compile.graph_breaks import probe_fullgraph, probe_graph_breaks
from probes.compile.recompiles import RecompileScenario, probe_recompiles
from probes.compile.tlparse import render_diagnosis_report
from probes.compile.trace import record_compile_trace
from probes.compile_time.fresh_process import save_cache_artifacts
from probes.compile_time.levers import plan_levers, run_levers
from probes.divergence.probe import probe_divergence
from probes.environment import current_environment
from probes.errors import error_line
from probes.kernels.profiling import profile_kernels
from probes.memory import plan_memory, what_ifs_that_fit
from probes.records.benchmark import BenchmarkSettings
from probes.records.compile import (
    SCALAR_READ,
    FullgraphResult,
    GraphBreakReport,
    RecompileReport,
    graph_breaks_section,
)
from probes.records.compile_time import (
    CACHE_ARTIFACTS_FILE,
    CompileLever,
    compile_time_section,
    scenario_compile_costs,
)
from probes.records.compile_trace import CompileTracePhase, CompileTraceRecord
from probes.records.divergence import DROPOUT_OFF, RNG_FREE
from probes.records.kernels import KernelTimingReport
from probes.records.memory import MEMORY_PLAN, MemoryPlan
from probes.records.names import (
    BENCHMARK,
    COMPILE_TIME,
    COMPILE_TRACE,
    DIVERGENCE,
    GRAPH_BREAKS,
    INFERENCE,
    KERNELS,
    RECOMPILES,
    SPEED,
    SPEED_WHAT_IFS,
    TRAINING,
)
from probes.records.serialize import to_jsonable
from probes.records.speed import WHAT_IF_AUTO, EntrySpeed, requested_what_ifs
from probes.records.target import BATCH_SIZE
from probes.speed.attribution import attribute_entry_point
from probes.speed.plan import WhatIfEvidence, entry_evidence, plan_what_ifs
from probes.speed.what_ifs import run_what_ifs
from probes.targets.target import CompileSettings, Target

Progress = Callable[[str], None]
# The recompile scenarios' backend: guards are dynamo's, whatever the backend compiles.
RECOMPILE_BACKEND = "eager"
PROFILED_CALLS = 3  # per side and entry point: the profiles are for kernel counts, not timing


class DiagnosisRun:
    def __init__(
        self,
        target: Target,
        compile_settings: CompileSettings,
        benchmark_settings: BenchmarkSettings,
        diagnosis: Diagnosis,
        out_dir: Path | None,
        progress: Progress = lambda _: None,
        localize: bool | None = None,
        bisect: bool | None = None,
        cosine: bool = False,
        probes: Collection[str] | None = None,
        rng_what_if: bool | None = None,
        what_if: str | Collection[str] = WHAT_IF_AUTO,
        compile_lever: str | Collection[str] = WHAT_IF_AUTO,
        memory_budget: int | None = None,
    ) -> None:
        self.target = target
        self.memory_budget = memory_budget  # bytes, in place of the memory measured free
        self.memory_plan: MemoryPlan | None = None  # which probes fit: made before the first
        self.what_if = what_if  # --what-if: auto, none, all or names
        self.compile_lever = compile_lever  # --compile-lever: auto, none, all or names
        self.compile_levers: list[CompileLever] = []
        self.artifacts: Path | None = None  # torch's cache artifacts, saved after the benchmark
        self.rng_what_if = rng_what_if  # None: on CUDA (or with localize), not on a CPU
        self.probes = probes  # the names of the probes to run; None runs them all
        self.localize = localize
        self.bisect = bisect  # None: when a localized module reproduces the divergence alone
        self.cosine = cosine  # the harness's --cosine instead of the fp64 check
        self.compile_settings = compile_settings
        self.benchmark_settings = benchmark_settings
        self.diagnosis = diagnosis
        self.out_dir = out_dir
        self.writer = DiagnosisWriter(diagnosis, out_dir)
        self.clock = PhaseClock(diagnosis)
        self.progress = progress
        self.benchmark: BenchmarkProbe | None = None
        self.break_reports: list[GraphBreakReport] = []
        self.fullgraph: list[FullgraphResult] = []
        self.recompiles: list[RecompileReport] = []
        self.compile_traces: dict[str, CompileTraceRecord] = {}
        self.kernels: KernelTimingReport | None = None
        self.speed: dict[str, EntrySpeed] = {}
        self.interrupt = InterruptWatch()

    def run(self) -> Diagnosis:
        diagnosis = self.diagnosis
        diagnosis.target = to_jsonable(self.target.description)
        diagnosis.environment = to_jsonable(current_environment(self.target.device))
        diagnosis.compile_settings = self.compile_settings.describe()
        diagnosis.notes.extend(self.target.notes)
        self._plan_memory()
        try:
            # RNG state is global: give it back as it was, whatever the probes seeded.
            with self.interrupt, torch.random.fork_rng(devices=self._cuda_devices()):
                self._probe(GRAPH_BREAKS, self._explain)
                with self._compile_trace(BENCHMARK):
                    self._probe(BENCHMARK, self._run_benchmark)
                if self._compiled_ok():
                    self._probe(KERNELS, self._run_kernels)
                    self._probe(SPEED_WHAT_IFS, self._run_what_ifs)
                    self._probe(COMPILE_TIME, self._run_compile_levers)
                    self._probe(DIVERGENCE, self._run_divergence)
                if self._compiled_ok() or self.benchmark is None:  # it compiles its own copy
                    with self._compile_trace(RECOMPILES):
                        self._probe(RECOMPILES, self._run_recompiles)
                self._probe(COMPILE_TRACE, self._render_compile_trace)
            diagnosis.status = "complete"
        except KeyboardInterrupt:
            diagnosis.status = "interrupted"
            raise
        finally:
            self.conclude()
        return diagnosis

    def conclude(self) -> None:
        """Findings from whatever was measured; then the final write."""
        diagnosis = self.diagnosis
        diagnosis.findings = run_rules(
            diagnosis.probes,
            diagnosis.probe_errors,
            self.target.description.get(BATCH_SIZE),
            memory_plan=diagnosis.memory_plan,
        )
        diagnosis.verdict = verdict_record(
            diagnosis.reference_metrics, diagnosis.probes.get(BENCHMARK), diagnosis.findings
        )
        diagnosis.recommendation = recommend(diagnosis.probes) or None
        self.diagnosis.phase_seconds["total"] = self.clock.total()
        self.writer.save()

    def _cuda_devices(self) -> list[int]:
        device = self.target.device
        return [device.index or 0] if device.type == "cuda" else []

    def _compiled_ok(self) -> bool:
        return self.benchmark is not None and self.benchmark.result.compilation_successful

    def _plan_memory(self) -> None:
        """Which probes fit in the memory free (or the stated budget), recorded at once."""
        try:
            self.memory_plan = plan_memory(
                self.target,
                self.probes,
                self.memory_budget,
                what_if=self.what_if,
                compile_lever=self.compile_lever,
            )
            self.diagnosis.memory_plan = to_jsonable(self.memory_plan)
        except Exception as error:  # without a plan every probe runs, as before
            self.writer.record_error(MEMORY_PLAN, error_line(error))
        self.writer.save()

    def _probe(self, name: str, measure: Callable[[], Any]) -> None:
        if self.probes is not None and name not in self.probes:
            return
        if self.memory_plan is not None and not self.memory_plan.runs(name):
            return  # skipped, not failed: the plan records why
        started = time.perf_counter()
        try:
            measure()
        except Exception as error:  # one probe failing must not lose the others
            self.interrupt.check()  # a Ctrl-C that a library turned into an ordinary error
            if isinstance(error, torch.OutOfMemoryError) and torch.cuda.is_available():
                torch.cuda.empty_cache()  # let the probes that follow have the memory back
            self.writer.record_error(name, error_line(error))
        finally:
            self.clock.add(name, time.perf_counter() - started)
        self.interrupt.check()  # a Ctrl-C that a library caught and dropped

    def _phase(self, text: str) -> None:
        self.progress(text)
        self.writer.save()

    # --- the compile trace beside the diagnosis -------------------------------------------------

    @contextlib.contextmanager
    def _compile_trace(self, phase: str) -> Iterator[None]:
        """Record torch's structured compile trace of the compiles of one phase.

        Each phase that follows a `torch._dynamo.reset()` gets a log (and a tlparse report) of
        its own, because a reset restarts frame ids at [0/0] and one log would then name two
        compiles with one id. The benchmark's log is `<out>/torch_trace/`, the recompile
        scenarios' is `<out>/recompiles/torch_trace/`.
        """
        if self.out_dir is None:
            yield
            return
        folder = self.out_dir if phase == BENCHMARK else self.out_dir / phase
        with record_compile_trace(folder) as record:
            try:
                yield
            finally:
                self.compile_traces[phase] = record

    def _render_compile_trace(self) -> None:
        if self.out_dir is None or not self.compile_traces:
            return
        self._phase("rendering the tlparse compile reports")
        section = {}
        for phase, record in self.compile_traces.items():
            folder = self.out_dir if phase == BENCHMARK else self.out_dir / phase
            section[phase] = CompileTracePhase.of(record, render_diagnosis_report(folder))
        self.writer.record_probe(COMPILE_TRACE, section)

    # --- graph breaks, before any timed compile ----------------------------------------------

    def _explain(self) -> None:
        target = self.target
        copy = target.fresh_copy()
        for entry_point, (fn, args) in target.entry_functions(copy).items():
            self._phase(f"finding graph breaks ({entry_point})")
            copy.train(entry_point == TRAINING)
            target.reset(copy)
            report = probe_graph_breaks(entry_point, fn, *args)
            self.break_reports.append(report)
            if report.break_count == 0 and report.graph_count == 1:
                continue  # one graph, no break: fullgraph=True has nothing to tell
            target.reset(copy)
            self.fullgraph.append(probe_fullgraph(entry_point, fn, *args))
        self._record_graph_breaks()

    def _record_graph_breaks(self) -> None:
        section = graph_breaks_section(self.break_reports, self.fullgraph, self.recompiles)
        self.writer.record_probe(GRAPH_BREAKS, section)

    # --- the benchmark: the one compile per entry point --------------------------------------

    def _run_benchmark(self) -> None:
        probe = BenchmarkProbe(
            self.target, self.compile_settings, self.benchmark_settings, on_phase=self._phase
        )
        self.benchmark = probe
        try:
            probe.run()
        finally:
            self.writer.record_probe(BENCHMARK, probe.result)
            self.diagnosis.reference_metrics = to_jsonable(probe.result.reference_metrics())
            self._save_cache_artifacts()
            self._record_compile_time()

    # --- compile time: the benchmark's compiles by stage, and the levers on them -----------------

    def _save_cache_artifacts(self) -> None:
        """What another machine would load to start warm (the portable-cache lever loads it)."""
        if self.out_dir is None or not self.benchmark or not self.benchmark.compile_time:
            return
        path = self.out_dir / CACHE_ARTIFACTS_FILE
        if save_cache_artifacts(path) is not None:
            self.artifacts = path

    def _record_compile_time(self) -> None:
        if not self.benchmark or not self.benchmark.compile_time:
            return
        artifacts = None
        if self.artifacts is not None:
            artifacts = {"file": self.artifacts.name, "bytes": self.artifacts.stat().st_size}
        section = compile_time_section(
            self.benchmark.compile_time,
            recompiles={
                r.entry_point: scenario_compile_costs(r, RECOMPILE_BACKEND) for r in self.recompiles
            },
            levers=self.compile_levers,
            compile_threads=inductor_config.compile_threads,
            cpu_count=os.cpu_count(),
            artifacts=artifacts,
        )
        self.writer.record_probe(COMPILE_TIME, section)

    def _run_compile_levers(self) -> None:
        """More compiles of the model, one per lever on compile time, each timed as the first."""
        baselines = self.benchmark.compile_time
        plan = plan_levers(self.compile_lever, self.target, baselines)
        calls = {INFERENCE: self._inference_call}
        if self.target.loss is not None:
            calls[TRAINING] = self._training_call
        eager, compiled = self.benchmark.eager, self.benchmark.compiled
        try:
            self.compile_levers = run_levers(
                plan,
                self.target,
                self.compile_settings,
                self.benchmark_settings,
                baselines,
                calls={name: (call(eager), call(compiled)) for name, call in calls.items()},
                call_of=calls,
                artifacts=self.artifacts,
                on_phase=self._phase,
            )
        finally:
            self._record_compile_time()

    # --- probes that reuse the benchmark's compiled copies -------------------------------------

    def _run_kernels(self) -> None:
        self._phase("profiling kernels")
        target, eager, compiled = self.target, self.benchmark.eager, self.benchmark.compiled
        entry_points = {INFERENCE: (self._inference_call(eager), self._inference_call(compiled))}
        if target.loss is not None:
            entry_points[TRAINING] = (self._training_call(eager), self._training_call(compiled))
        report = profile_kernels(
            entry_points,
            device=target.device,
            out_dir=self.out_dir or DEFAULT_OUT_ROOT,
            warmup=1,
            calls=PROFILED_CALLS,
        )
        self.kernels = report
        self.writer.record_probe(KERNELS, report)
        self._phase("attributing the time of each call")
        for entry in report.entry_points:
            self.speed[entry.name] = attribute_entry_point(
                entry.name,
                entry.eager.trace_path,
                entry.compiled.trace_path,
                device_type=target.device.type,
                compiled_frames=self._compiled_frames(entry.name),
            )
        self.writer.record_probe(SPEED, self.speed)

    def _compiled_frames(self, entry_point: str) -> list[dict[str, Any]]:
        """The frames the benchmark's first call of an entry point compiled, as recorded."""
        capture = self.benchmark.result.capture.get(entry_point) if self.benchmark else None
        return list(to_jsonable(capture or {}).get("frames") or [])

    def _run_what_ifs(self) -> None:
        """More compiles of the model, one per lever; by default those the attribution points to."""
        target = self.target
        plan = plan_what_ifs(self.what_if, self._what_if_evidence())
        plan = what_ifs_that_fit(self.memory_plan, plan)  # each one keeps a twin till checked
        calls = {INFERENCE: self._inference_call}
        if target.loss is not None:
            calls[TRAINING] = self._training_call
        eager, compiled = self.benchmark.eager, self.benchmark.compiled
        results = run_what_ifs(
            target,
            self.compile_settings,
            self.benchmark_settings,
            plan,
            {name: (call(eager), call(compiled)) for name, call in calls.items()},
            # checks that compile run for what-ifs asked for, not for auto's survey
            check_costly=requested_what_ifs(self.what_if)[0] != WHAT_IF_AUTO,
            on_phase=self._phase,
        )
        self.writer.record_probe(SPEED_WHAT_IFS, results)

    def _what_if_evidence(self) -> WhatIfEvidence:
        """The figures the what-if plan reads, per entry point: all measured earlier."""
        busy = {}
        if self.kernels is not None:
            busy = {e.name: e.compiled.gpu_busy_fraction for e in self.kernels.entry_points}
        scalar_reads = {
            report.entry_point: sum(1 for b in report.breaks if b.category == SCALAR_READ)
            for report in self.break_reports
        }
        entry_points = {
            name: entry_evidence(
                self.speed.get(name),
                scalar_read_breaks=scalar_reads.get(name, 0),
                frames=self._compiled_frames(name),
                gpu_busy=busy.get(name),
            )
            for name in self.target.entry_points
        }
        return WhatIfEvidence(self.target.device.type, self.compile_settings, entry_points)

    def _inference_call(self, copy: torch.nn.Module) -> Callable[[], Any]:
        def call() -> Any:
            with torch.no_grad():
                return self.target.infer(copy)

        return call

    def _training_call(self, copy: torch.nn.Module) -> Callable[[], Any]:
        return TrainingLoop(copy, self.target.loss, self.benchmark_settings).step

    def _run_divergence(self) -> None:
        """Eager and compiled against fp64, random numbers apart from arithmetic.

        Reuses the benchmark's compiled copy for the as-is comparisons; each random-number
        what-if is a fresh compile of the training step (after a dynamo reset). On CUDA, or
        with localisation, both run. On a CPU none runs unless asked (`rng_what_if`), and then
        only dropout-off: on the CPU preset it cost 36 s of a 3-minute budget (35 of its 111
        kernels differ from the as-is step's, so Inductor's cache saves little). Dropout-off is
        the one that removes every random draw: with `fallback_random` alone we measured (CPU
        preset) an identical loss but attention-bias gradients 1e4x further from fp64 than
        eager's, from the dropout inside scaled-dot-product attention's backward.
        """
        what_ifs: tuple[str, ...] = RNG_FREE
        if self.target.device.type != "cuda" and not self.localize:
            what_ifs = (DROPOUT_OFF,) if self.rng_what_if else ()
        if self.rng_what_if is False:
            what_ifs = ()
        report = probe_divergence(
            self.target,
            self.compile_settings,
            localize=self.localize,
            bisect=self.bisect,
            cosine=self.cosine,
            compiled=self.benchmark.compiled,
            seed=self.benchmark_settings.seed,
            what_ifs=what_ifs,
            on_phase=lambda name: self._phase(f"divergence: {name}"),
        )
        # the probe records figures; the rules' reading of them fills the verdict keys
        self.writer.record_probe(DIVERGENCE, complete_divergence_record(to_jsonable(report)))

    def _run_recompiles(self) -> None:
        """Call a compiled copy as users do and report what recompiles.

        Guards are dynamo's: the backend does not change which ones fail. The scenarios run on a
        copy compiled with backend="eager", because each recompile under Inductor is a full
        compile (a changed batch size alone cost 30 s on a 2-core CPU). Dynamo keeps its cache
        entries per code object, shared by every copy of the policy, and counts them all against
        the recompile limit: so this runs last, after `torch._dynamo.reset()`, and sees only
        the entries a user of one compiled policy would.
        """
        target = self.target
        if target.recompile_scenarios is None:
            return
        self._phase("calling a compiled copy as users do (recompiles)")
        torch._dynamo.reset()
        settings = dataclasses.replace(self.compile_settings, backend=RECOMPILE_BACKEND, mode=None)
        compiled = target.compiled_copy(settings)
        with compiles_during() as first_compiles:
            target.infer(compiled)  # the first compile (called as the scenarios call it)
        scenarios = [RecompileScenario(n, c) for n, c in target.recompile_scenarios(compiled)]
        entry_fn = target.entry_functions(compiled)[INFERENCE][0]
        report = probe_recompiles(INFERENCE, entry_fn, scenarios, len(first_compiles))
        self.recompiles.append(report)
        self._record_graph_breaks()
        self._record_compile_time()
