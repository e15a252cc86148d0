"""The diagnosis on several processes: launch the ranks, watch them, merge what they measured.

Two ways in:
- `--nproc N` (`diagnose_distributed`): this process starts PyTorch's own launcher,
  `python -m torch.distributed.run --standalone --nproc-per-node N -m probes.distributed.worker
  <out>/ranks/request.pkl` (standalone: a free port on this machine), watches it with a timeout,
  stops every rank when the launch runs past it or when a rank's file says it failed and the
  launcher has not stopped the others, then merges the rank files;
- started under `torchrun` / `accelerate launch` (`diagnose_as_rank`): each process measures
  as one rank; rank 0 then waits (with a timeout) for the other ranks' files to finish and
  merges them.

The merge is one `diagnosis.json`: its `distributed` section holds every rank's record (what it
measured before it finished, failed or was stopped) and how each process ended; target,
environment and compile settings are rank 0's. Every rank's profile goes into one Perfetto trace
(one process per rank) and, where tlparse is installed, its compile traces into one multi-rank
report (`tlparse --all-ranks-html`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer.diagnosis import Diagnosis
from analyzer.rules import run_rules
from analyzer.runner.writer import DiagnosisWriter
from probes.compile.tlparse import find_tlparse
from probes.distributed.request import DistributedRequest, RankEnvironment, rank_environment
from probes.distributed.worker import measure_rank
from probes.errors import error_line
from probes.kernels.perfetto import write_merged_trace
from probes.records.benchmark import BenchmarkSettings
from probes.records.compile_trace import LOG_PREFIX
from probes.records.compile_trace import TLPARSE_INSTALL_HINT as INSTALL_HINT
from probes.records.distributed import (
    COMPLETE,
    DEFAULT_TIMEOUT_S,
    DIED,
    DISTRIBUTED,
    FAILED,
    HUNG,
    LAUNCHED_BY_TOOL,
    LAUNCHER_LOG,
    MERGED_TRACE,
    MISSING,
    RANK_TRACES_DIR,
    RANKS_DIR,
    RANKS_REPORT_DIR,
    RUNNING,
    STOPPED,
    DdpSettings,
    DistributedSection,
    RankOutcome,
    rank_file,
)
from probes.records.serialize import to_jsonable
from probes.targets.target import CompileSettings, TargetRecipe

Progress = Callable[[str], None]
POLL_S = 0.5
# After a rank records a failure, how long the launcher has to stop the others itself.
STOP_GRACE_S = 30.0
KILL_GRACE_S = 10.0  # after SIGTERM, before SIGKILL
TLPARSE_TIMEOUT_S = 120.0
TLPARSE_FLAGS = ("--overwrite", "--no-browser")
# torchrun's failure summary: "rank      : 1 (local_rank: 1)" then "exitcode  : -9 (pid: 123)"
_FAILURE = re.compile(r"rank\s*:\s*(?P<rank>\d+).*?\n\s*exitcode\s*:\s*(?P<code>-?\d+)", re.S)
_ROOT_CAUSE = "Root Cause"
FINISHED = (COMPLETE, FAILED, STOPPED)


@dataclass
class LaunchResult:
    """How the launch ended, as this process saw it."""

    world_size: int
    exit_code: int | None = None
    timed_out: bool = False
    wall_s: float = 0.0
    outcomes: list[RankOutcome] = field(default_factory=list)


def diagnose_distributed(
    request: DistributedRequest,
    nproc: int,
    *,
    command: str,
    progress: Progress = lambda _text: None,
) -> Diagnosis:
    """Launch `nproc` ranks on `request` with torchrun, then merge what they measured."""
    out_dir = Path(request.out_dir)
    request_path = request.save()
    progress(f"running {nproc} ranks under torchrun")
    launch = launch_ranks(request_path, nproc, out_dir, request.timeout_s)
    progress("merging the ranks' records")
    return merge_ranks(request, launch, command=command)


def launch_ranks(request_path: Path, nproc: int, out_dir: Path, timeout_s: float) -> LaunchResult:
    """torchrun on this machine, watched: every rank stopped by `timeout_s` at the latest."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "probes.distributed.worker",
        str(request_path),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # the ranks import this tool
    log_path = out_dir / RANKS_DIR / LAUNCHER_LOG
    result = LaunchResult(world_size=nproc)
    started = time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            result.timed_out = _watch(process, out_dir, nproc, started + timeout_s)
        finally:
            if process.poll() is None:
                _stop(process)
    result.exit_code = process.returncode
    result.wall_s = time.perf_counter() - started
    result.outcomes = launcher_outcomes(log_path.read_text(encoding="utf-8", errors="replace"))
    return result


def _watch(process: subprocess.Popen[bytes], out_dir: Path, nproc: int, deadline: float) -> bool:
    """Wait for the launch; True when it ran past `deadline` (then the caller stops it)."""
    failed_at: float | None = None
    while process.poll() is None:
        now = time.perf_counter()
        if now >= deadline:
            return True
        if failed_at is None and _any_rank_failed(out_dir, nproc):
            failed_at = now
        if failed_at is not None and now - failed_at > STOP_GRACE_S:
            return False  # the launcher did not stop the others: the caller does
        time.sleep(POLL_S)
    return False


def _any_rank_failed(out_dir: Path, nproc: int) -> bool:
    return any((read_rank(out_dir, rank) or {}).get("status") == FAILED for rank in range(nproc))


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the launch's session (torchrun and every rank it started), then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=KILL_GRACE_S)
            return
        except subprocess.TimeoutExpired:
            continue


def launcher_outcomes(log: str) -> list[RankOutcome]:
    """How each failed rank ended, from torchrun's failure summary (the first failure marked)."""
    others, _, root = log.rpartition(_ROOT_CAUSE) if _ROOT_CAUSE in log else (log, "", "")
    outcomes = [_outcome(match, first=True) for match in _FAILURE.finditer(root)]
    failures = others.rpartition("Failures:")[2] if "Failures:" in others else ""
    outcomes += [_outcome(match, first=False) for match in _FAILURE.finditer(failures)]
    return sorted(outcomes, key=lambda o: o.rank)


def _outcome(match: re.Match[str], *, first: bool) -> RankOutcome:
    code = int(match["code"])
    name = None
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
    return RankOutcome(rank=int(match["rank"]), exit_code=code, signal=name, first_failure=first)


# --- the merge ----------------------------------------------------------------------------------


def read_rank(out_dir: Path, rank: int) -> dict[str, Any] | None:
    path = rank_file(out_dir, rank)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def rank_records(out_dir: Path, launch: LaunchResult) -> list[dict[str, Any]]:
    """Every rank's record as it wrote it, its status settled: a rank that never finished is
    hung when the launch timed out, else it died; a rank with no file is missing."""
    records = []
    for rank in range(launch.world_size):
        record = read_rank(out_dir, rank) or {"rank": rank, "status": MISSING}
        if record.get("status") == RUNNING:
            record["status"] = HUNG if launch.timed_out else DIED
        records.append(record)
    return records


def merge_ranks(request: DistributedRequest, launch: LaunchResult, *, command: str) -> Diagnosis:
    out_dir = Path(request.out_dir)
    records = rank_records(out_dir, launch)
    first = next((r for r in records if r.get("target")), {})
    section = DistributedSection(
        world_size=launch.world_size,
        launcher=request.launcher,
        process_group=str(first.get("process_group") or ""),
        settings=request.ddp,
        ranks=records,
        outcomes=launch.outcomes,
        timeout_s=request.timeout_s,
        timed_out=launch.timed_out,
        wall_s=launch.wall_s,
        launcher_exit_code=launch.exit_code,
    )
    _merge_traces(section, out_dir, records)
    _all_ranks_report(section, out_dir, records)
    diagnosis = Diagnosis(command=command)
    diagnosis.target = dict(first.get("target") or {})
    diagnosis.environment = dict(first.get("environment") or {})
    diagnosis.compile_settings = dict(first.get("compile_settings") or {})
    diagnosis.probes[DISTRIBUTED] = to_jsonable(section)
    diagnosis.findings = run_rules(diagnosis.probes)
    complete = all(r.get("status") == COMPLETE for r in records)
    diagnosis.status = "complete" if complete else "failed"
    DiagnosisWriter(diagnosis, out_dir).save()
    return diagnosis


def _merge_traces(
    section: DistributedSection, out_dir: Path, records: list[dict[str, Any]]
) -> None:
    """Every rank's profile in one Perfetto trace, one process per rank."""
    traces = {
        f"rank {r['rank']}": r["profile_trace"]
        for r in records
        if r.get("profile_trace") and Path(r["profile_trace"]).is_file()
    }
    if not traces:
        section.merged_trace_error = "no rank finished its profiled steps"
        return
    try:
        section.merged_trace = str(write_merged_trace(traces, out_dir / MERGED_TRACE))
    except Exception as error:  # a trace that does not read: the diagnosis keeps the rest
        section.merged_trace_error = error_line(error)


def _all_ranks_report(
    section: DistributedSection, out_dir: Path, records: list[dict[str, Any]]
) -> None:
    """tlparse's multi-rank report over the ranks' compile traces, named as TORCH_TRACE does."""
    tlparse = find_tlparse()
    if tlparse is None:
        section.tlparse_error = f"tlparse is not installed ({INSTALL_HINT})"
        return
    logs = {r["rank"]: r.get("compile_trace_log") for r in records}
    logs = {rank: Path(log) for rank, log in logs.items() if log and Path(log).is_file()}
    if not logs:
        section.tlparse_error = "no rank wrote a compile trace"
        return
    folder = out_dir / RANK_TRACES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for rank, log in logs.items():
        shutil.copyfile(log, folder / f"{LOG_PREFIX}rank_{rank}_{log.stem}.log")
    report = out_dir / RANKS_REPORT_DIR
    try:
        done = subprocess.run(
            [tlparse, str(folder), "--all-ranks-html", "-o", str(report), *TLPARSE_FLAGS],
            capture_output=True,
            text=True,
            timeout=TLPARSE_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        section.tlparse_error = f"tlparse did not finish: {error_line(error)}"
        return
    if done.returncode != 0 or not (report / "index.html").is_file():
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        section.tlparse_error = f"tlparse failed (exit {done.returncode}): " + (
            lines[-1] if lines else "no message"
        )
        return
    section.tlparse_report = str(report / "index.html")


# --- started under torchrun / accelerate launch ------------------------------------------------


def diagnose_as_rank(
    request: DistributedRequest,
    env: RankEnvironment,
    *,
    command: str,
    progress: Progress = lambda _text: None,
) -> Diagnosis | None:
    """Measure as this rank; rank 0 then waits for the others' files and merges them.

    Ranks other than 0 return None once their record is written.
    """
    progress(f"rank {env.rank} of {env.world_size}: measuring")
    started = time.perf_counter()
    code = measure_rank(request, env)
    if env.rank != 0:
        return None
    progress("rank 0: waiting for the other ranks' records")
    deadline = started + request.timeout_s
    timed_out = not _wait_for_ranks(Path(request.out_dir), env.world_size, deadline)
    launch = LaunchResult(
        world_size=env.world_size,
        exit_code=code,
        timed_out=timed_out,
        wall_s=time.perf_counter() - started,
    )
    return merge_ranks(request, launch, command=command)


def _wait_for_ranks(out_dir: Path, world_size: int, deadline: float) -> bool:
    """True once every rank's file says it finished; False at the deadline."""
    while time.perf_counter() < deadline:
        statuses = [(read_rank(out_dir, r) or {}).get("status") for r in range(world_size)]
        if all(status in FINISHED for status in statuses):
            return True
        time.sleep(POLL_S)
    return False


def distributed_requested(nproc: int | None) -> bool:
    """`--nproc` was given, or torchrun / `accelerate launch` started this process."""
    return nproc is not None or rank_environment() is not None


def diagnose_across_ranks(
    recipe: TargetRecipe,
    compile_settings: CompileSettings,
    ddp: DdpSettings,
    benchmark: BenchmarkSettings,
    *,
    nproc: int | None,
    out_dir: Path,
    command: str,
    progress: Progress = lambda _text: None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Diagnosis | None:
    """The one entry for commands: launch `nproc` ranks, or be a rank of the launch that
    started this process. None on a rank other than 0 (rank 0 merges)."""
    env = rank_environment()
    launcher = LAUNCHED_BY_TOOL if env is None else env.launcher
    request = DistributedRequest(
        recipe=recipe,
        compile_settings=compile_settings,
        ddp=ddp,
        benchmark=benchmark,
        out_dir=str(out_dir),
        device=_device_of(recipe),
        timeout_s=timeout_s,
        launcher=launcher,
    )
    if env is None:
        return diagnose_distributed(request, nproc or 1, command=command, progress=progress)
    return diagnose_as_rank(request, env, command=command, progress=progress)


def _device_of(recipe: TargetRecipe) -> str:
    """The device the recipe builds on (a policy request's, or a module recipe's third arg)."""
    for value in [*recipe.args, *recipe.kwargs.values()]:
        device = getattr(value, "device", None)
        if device is not None:
            return str(device)
    text = [str(a) for a in recipe.args if str(a).split(":")[0] in ("cpu", "cuda")]
    return text[0] if text else "cpu"
