"""One rank of a distributed diagnosis: the compiled DDP training step, measured phase by phase.

`python -m probes.distributed.worker <out>/ranks/request.pkl`, started by torchrun (the
launcher starts it with `--nproc`), or `measure_rank` called by the tool itself when torchrun or
`accelerate launch` started it. Each rank trains as LeRobot's trainer does through Accelerate:
its model wrapped in `DistributedDataParallel` (`find_unused_parameters`, `bucket_cap_mb`), the
wrapper compiled (`torch.compile(DDP(model))`; with `--ddp-compile model`, the model compiled
as `--compile-how` says before DDP wraps it), the forward under `torch.autocast` when asked,
then backward, gradient clipping and Adam (`probes.benchmark.TrainingLoop`).

Phases (`probes.records.distributed.PHASES`): setup, compile (the first step), steps (timed
warm steps), profile (steps under torch.profiler: communication against compute), and, when
every rank's compiled wrapper broke the graph in DDP's own code, the inside-DDP trial (the model
compiled before DDP wraps it, its steps timed: the lever CD806 names). The rank's
record is written to `<out>/ranks/rank<N>.json` when each phase starts and ends, so a rank
killed later keeps what it measured; a SIGTERM from the launcher is recorded as "stopped".
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from probes.benchmark import TrainingLoop
from probes.compile.capture import compile_seconds, compiles_during
from probes.compile.graph_breaks import graph_break_log
from probes.compile.tlparse import latest_trace_log
from probes.compile.trace import record_compile_trace
from probes.distributed.breaks import rank_breaks
from probes.distributed.comm import comm_time
from probes.distributed.group import init_group, leave_group, rank_device
from probes.distributed.request import (
    DistributedRequest,
    RankEnvironment,
    build_from_recipe,
    rank_environment,
)
from probes.distributed.splits import recording_splits
from probes.environment import current_environment
from probes.errors import compile_error_line
from probes.records.distributed import (
    COMPILE,
    COMPILE_AROUND_DDP,
    COMPLETE,
    FAILED,
    FRAMEWORK_ORIGINS,
    INSIDE_DDP_TRIAL,
    MODEL_COMPILED,
    PROFILE,
    SETUP,
    STEPS,
    STOPPED,
    WRAPPER_COMPILED,
    InsideDdpTrial,
    RankCompile,
    RankRecord,
    rank_file,
    rank_trace_dir,
)
from probes.records.serialize import to_jsonable, write_json_atomic
from probes.targets.target import Target
from probes.timing import synchronize

EXIT_FAILED = 1
EXIT_STOPPED = 128 + signal.SIGTERM
PROFILE_FILE = "profile.json"


class RankRun:
    """One rank's measurement, its record saved as it grows."""

    def __init__(self, request: DistributedRequest, env: RankEnvironment) -> None:
        self.request = request
        self.env = env
        self.out_dir = Path(request.out_dir)
        self.device = rank_device(torch.device(request.device), env.local_rank)
        self.record = RankRecord(
            rank=env.rank,
            world_size=env.world_size,
            local_rank=env.local_rank,
            pid=os.getpid(),
            host=socket.gethostname(),
            process_group="",
            device=str(self.device),
            settings=request.ddp,
        )
        self.loop: TrainingLoop | None = None
        self.ddp: DistributedDataParallel | None = None
        self.break_messages: list[str] = []

    # --- the record ---------------------------------------------------------------------------

    def save(self) -> None:
        write_json_atomic(rank_file(self.out_dir, self.env.rank), to_jsonable(self.record))

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self.record.phase = name
        self.save()
        yield
        self.record.phases_done.append(name)
        self.save()

    def run(self) -> int:
        """Every phase in turn; the exit status torchrun sees (non-zero stops the other ranks)."""
        previous = signal.signal(signal.SIGTERM, self._stopped)
        try:
            self._measure()
            self.record.status = COMPLETE
            return 0
        except Exception as error:  # recorded, then the rank exits non-zero
            self.record.status = FAILED
            self.record.error = compile_error_line(error)
            self.record.error_phase = self.record.phase
            return EXIT_FAILED
        finally:
            self._keep_breaks()
            self.save()
            signal.signal(signal.SIGTERM, previous)
            leave_group()

    def _stopped(self, _signum: int, _frame: FrameType | None) -> None:
        self.record.status = STOPPED
        self.record.error_phase = self.record.phase
        self._keep_breaks()
        self.save()
        os._exit(EXIT_STOPPED)  # the launcher stops us: no clean-up that could wait on a peer

    def _keep_trace_log(self, trace_dir: Path) -> None:
        log = latest_trace_log(trace_dir)
        self.record.compile_trace_log = None if log is None else str(log)

    def _keep_breaks(self) -> None:
        self.record.breaks = rank_breaks(self.break_messages)

    # --- the phases ---------------------------------------------------------------------------

    def _measure(self) -> None:
        with self.phase(SETUP):
            target = self._setup()
        trace_dir = rank_trace_dir(self.out_dir, self.env.rank)
        with (
            record_compile_trace(trace_dir),
            graph_break_log() as self.break_messages,
            recording_splits() as self.record.splits,
        ):
            with self.phase(COMPILE):
                self.record.first_step_s = self._timed_steps(COMPILE, 1)[0] / 1e3
                self._keep_breaks()
                self._keep_trace_log(trace_dir)
            with self.phase(STEPS):
                self.record.step_ms = self._timed_steps(STEPS, self.request.ddp.steps)
                self._keep_breaks()
        self._keep_trace_log(trace_dir)
        with self.phase(PROFILE):
            self._profile(target, trace_dir / PROFILE_FILE)
        if self._every_rank_broke_inside_ddp():
            with self.phase(INSIDE_DDP_TRIAL):
                self._try_inside_ddp(target)

    def _setup(self) -> Target:
        import torch._dynamo.config as dynamo_config

        record, request = self.record, self.request
        record.process_group = init_group(self.device, request.timeout_s)
        target = build_from_recipe(request.recipe)
        record.target = to_jsonable(target.description)
        record.environment = to_jsonable(current_environment(self.device))
        settings = request.compile_settings
        around = request.ddp.compile_where == COMPILE_AROUND_DDP
        how = WRAPPER_COMPILED if around else MODEL_COMPILED.format(how=settings.how)
        record.compile_settings = {**settings.describe(), "how": how}
        record.optimize_ddp = str(dynamo_config.optimize_ddp)
        if target.loss is None:
            raise ValueError("the target has no loss: nothing to train under DDP")
        copy = target.fresh_copy() if around else target.compiled_copy(settings)
        self.ddp = ddp = self._wrapped(copy)
        record.bucket_cap_bytes = int(ddp.bucket_bytes_cap)
        record.first_bucket_cap_bytes = int(torch.distributed._DEFAULT_FIRST_BUCKET_BYTES)
        compiled = torch.compile(ddp, **settings.compile_kwargs()) if around else ddp
        self.loop = self._training_loop(compiled, target)
        return target

    def _wrapped(self, copy: torch.nn.Module) -> DistributedDataParallel:
        """The copy on this rank's device, in DDP with LeRobot's trainer's arguments."""
        return DistributedDataParallel(copy.to(self.device), **self._ddp_kwargs())

    def _training_loop(self, model: torch.nn.Module, target: Target) -> TrainingLoop:
        """The training step as LeRobot's trainer runs it: Adam, clipping, autocast if asked."""
        return TrainingLoop(
            model, target.loss, self.request.benchmark, autocast=self.request.ddp.autocast
        )

    def _ddp_kwargs(self) -> dict[str, Any]:
        ddp = self.request.ddp
        kwargs: dict[str, Any] = {"find_unused_parameters": ddp.find_unused_parameters}
        if ddp.bucket_cap_mb is not None:
            kwargs["bucket_cap_mb"] = ddp.bucket_cap_mb
        if self.device.type == "cuda":
            kwargs["device_ids"] = [self.device.index]
        return kwargs

    def _timed_steps(self, phase: str, count: int) -> list[float]:
        """`count` training steps, each timed (ms); the frames they compiled and the losses
        recorded."""
        with compiles_during() as compiled:
            step_ms = self._time_steps(self.loop, count)
        self.record.losses.extend(float(loss) for loss in self.loop.losses[-count:])
        self.record.compiles.extend(_rank_compile(phase, metrics) for metrics in compiled)
        return step_ms

    def _time_steps(self, loop: TrainingLoop, count: int) -> list[float]:
        step_ms: list[float] = []
        for _ in range(count):
            started = time.perf_counter()
            loop.step()
            synchronize(self.device)
            step_ms.append((time.perf_counter() - started) * 1e3)
        return step_ms

    def _every_rank_broke_inside_ddp(self) -> bool:
        """Whether the compiled wrapper broke the graph in DDP's or Accelerate's own code on
        every rank: one all-reduce, so that the ranks decide alike (the trial wraps a new DDP,
        a collective every rank must join)."""
        ddp = self.request.ddp
        if ddp.compile_where != COMPILE_AROUND_DDP or not ddp.inside_ddp_trial:
            return False
        broke = any(b.origin in FRAMEWORK_ORIGINS for b in self.record.breaks)  # kept by STEPS
        flag = torch.tensor([int(broke)], device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
        return bool(flag.item())

    def _try_inside_ddp(self, target: Target) -> None:
        """The lever CD806 names, measured: the model compiled as `--compile-how` says, then
        wrapped in DDP, its first step and as many warm steps as the main run timed. The
        wrapper's copy and optimiser state are let go first: one model at a time, as before."""
        settings = self.request.compile_settings
        trial = self.record.inside_ddp = InsideDdpTrial(MODEL_COMPILED.format(how=settings.how))
        self.loop = self.ddp = None
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        try:
            with graph_break_log() as messages, compiles_during() as compiled:
                loop = self._training_loop(self._wrapped(target.compiled_copy(settings)), target)
                trial.first_step_s = self._time_steps(loop, 1)[0] / 1e3
                trial.step_ms = self._time_steps(loop, self.request.ddp.steps)
            trial.breaks = rank_breaks(messages)
            trial.frames = sum(1 for metrics in compiled if metrics.co_name)
        except Exception as error:  # the trial's failure is its own, not the rank's
            trial.error = compile_error_line(error)

    def _profile(self, target: Target, path: Path) -> None:
        activities = [torch.profiler.ProfilerActivity.CPU]
        if self.device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as profiler:
            for _ in range(self.request.ddp.profiled_steps):
                self.loop.step()
                synchronize(self.device)
                profiler.step()
        path.parent.mkdir(parents=True, exist_ok=True)
        profiler.export_chrome_trace(str(path))
        self.record.profile_trace = str(path)
        self.record.comm = comm_time(path, self.device.type)


def _rank_compile(phase: str, metrics: Any) -> RankCompile:
    return RankCompile(
        phase=phase,
        compile_id=str(metrics.compile_id),
        function=str(metrics.co_name),
        filename=str(metrics.co_filename or ""),
        first_line=metrics.co_firstlineno,
        seconds=compile_seconds(metrics),
        graph_ops=metrics.graph_op_count,
        recompile_reason=metrics.recompile_reason,
        fail_type=metrics.fail_type,
    )


def measure_rank(request: DistributedRequest, env: RankEnvironment) -> int:
    return RankRun(request, env).run()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m probes.distributed.worker REQUEST.pkl", file=sys.stderr)
        return 2
    env = rank_environment()
    if env is None:
        print("not started by torchrun: RANK and WORLD_SIZE are unset", file=sys.stderr)
        return 2
    return measure_rank(DistributedRequest.load(Path(args[0])), env)


if __name__ == "__main__":
    sys.exit(main())
