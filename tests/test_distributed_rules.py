"""The distributed rules and the launcher's reading, on recorded JSON: no torch, no process."""

from __future__ import annotations

from typing import Any

from analyzer.render.distributed import distributed_markdown
from analyzer.rules import distributed as rules
from analyzer.runner.distributed import launcher_outcomes
from probes.distributed.breaks import file_origin
from probes.records.distributed import (
    BREAK_IN_ACCELERATE,
    BREAK_IN_DDP,
    BREAK_IN_USER,
    COMPILE,
    COMPLETE,
    DISTRIBUTED,
    HUNG,
    SETUP,
    STEPS,
)


def compiled(function: str, phase: str = COMPILE, reason: str | None = None, s: float = 1.0):
    return {
        "phase": phase,
        "function": function,
        "filename": "model.py",
        "first_line": 10,
        "graph_ops": 5,
        "seconds": s,
        "recompile_reason": reason,
    }


def rank(number: int, **fields: Any) -> dict[str, Any]:
    record = {
        "rank": number,
        "status": COMPLETE,
        "phase": STEPS,
        "phases_done": [SETUP, COMPILE, STEPS],
        "settings": {"find_unused_parameters": True, "bucket_cap_mb": None},
        "compiles": [compiled("forward")],
        "first_step_s": 2.0,
        "step_ms": [10.0, 11.0],
        "breaks": [],
        "splits": [],
    }
    return record | fields


def names(ranks: list[dict[str, Any]], **section: Any) -> dict[str, Any]:
    found = rules.check({DISTRIBUTED: {"ranks": ranks, "outcomes": [], **section}})
    return {f.name: f for f in found}


def test_a_rank_that_recompiled_alone_is_divergent_and_named() -> None:
    guard = "0/0: L['batch'].size()[0] == 4  # model.py:12 in forward"
    odd = rank(1, compiles=[compiled("forward"), compiled("forward", STEPS, guard)])
    finding = names([rank(0), odd])["rank-divergent-compile"]
    assert finding.severity == "error"
    assert finding.evidence["divergent_ranks"] == [1]
    assert "Rank 1 compiled 2 frames (1 recompile)" in finding.cause
    assert "L['batch'].size()[0] == 4." in finding.cause and "model.py:12" not in finding.cause
    assert names([rank(0), rank(1)]).get("rank-divergent-compile") is None


def test_a_rank_that_never_reached_its_steps_is_not_compared() -> None:
    unfinished = rank(1, phases_done=[SETUP], compiles=[])
    assert "rank-divergent-compile" not in names([rank(0), unfinished])


def test_a_much_slower_compile_is_a_straggler_a_close_one_is_not() -> None:
    slow = rank(1, compiles=[compiled("forward", s=9.0)])
    finding = names([rank(0), slow])["compile-straggler"]
    assert finding.evidence["slow_rank"] == 1 and finding.evidence["ratio_x"] == 9.0
    assert "Rank 1 spent 9.0 s compiling its first step, 9.00x rank 0's 1.0 s" in finding.cause
    close = rank(1, compiles=[compiled("forward", s=1.4)])
    assert "compile-straggler" not in names([rank(0), close])


def test_exposed_communication_is_flagged_from_its_share_of_the_steps() -> None:
    comm = {"window_ms": 100.0, "steps": 2, "comm_ms": 40.0, "exposed_comm_ms": 30.0}
    finding = names([rank(0, comm={**comm, "collectives": 4}), rank(1)])["comm-not-overlapped"]
    assert finding.evidence["exposed_fraction_x"] == 0.3
    assert finding.impact_ms == 15.0
    assert "find_unused_parameters=False" in finding.next_steps[0]
    hidden = {**comm, "exposed_comm_ms": 5.0, "collectives": 4}
    assert "comm-not-overlapped" not in names([rank(0, comm=hidden)])


def test_a_hung_rank_is_named_with_what_it_measured() -> None:
    hung = rank(1, status=HUNG, phase=STEPS, phases_done=[SETUP, COMPILE], step_ms=[])
    finding = names([rank(0), hung], timeout_s=60.0)["rank-failed"]
    assert finding.evidence["first_failed_rank"] == 1
    assert finding.cause.startswith("Rank 1 hung during steps (phases done: setup, compile;")
    assert "timeout of 60.0 s" in finding.cause
    assert "rank-failed" not in names([rank(0), rank(1)])


def test_the_launchers_first_failure_is_the_rank_named_first() -> None:
    ranks = [rank(0, status="failed", error="RuntimeError: Connection closed by peer"), rank(1)]
    ranks[1] |= {"status": "died", "phases_done": [SETUP, COMPILE]}
    outcomes = [
        {"rank": 0, "exit_code": 1, "first_failure": False},
        {"rank": 1, "exit_code": -9, "signal": "SIGKILL", "first_failure": True},
    ]
    found = {f.name: f for f in rules.check({DISTRIBUTED: {"ranks": ranks, "outcomes": outcomes}})}
    cause = found["rank-failed"].cause
    assert cause.startswith("Rank 1 died (SIGKILL, exit code -9) during steps")
    assert "then rank 0 failed (exit code 1): RuntimeError: Connection closed by peer" in cause


def test_torchruns_failure_summary_is_read_rank_by_rank() -> None:
    log = """
Failures:
[1]:
  time      : 2026-12-01_06:56:16
  host      : localhost
  rank      : 0 (local_rank: 0)
  exitcode  : -15 (pid: 11247)
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-12-01_06:56:16
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 11248)
"""
    outcomes = launcher_outcomes(log)
    assert [(o.rank, o.exit_code, o.signal, o.first_failure) for o in outcomes] == [
        (0, -15, "SIGTERM", False),
        (1, -9, "SIGKILL", True),
    ]
    assert launcher_outcomes("all ranks finished") == []


def test_a_breaks_origin_is_the_code_it_happened_in() -> None:
    site = "/venv/lib/python3.12/site-packages"
    assert file_origin(f"{site}/torch/nn/parallel/distributed.py") == BREAK_IN_DDP
    assert file_origin(f"{site}/torch/distributed/utils.py") == BREAK_IN_DDP
    assert file_origin(f"{site}/accelerate/utils/operations.py") == BREAK_IN_ACCELERATE
    assert file_origin(f"{site}/lerobot/policies/act/modeling_act.py") == BREAK_IN_USER
    import contextlib

    import torch.nn.modules.module as torch_module

    assert file_origin(contextlib.__file__) is None  # says nothing: look further out
    assert file_origin(torch_module.__file__) is None


def test_the_section_says_why_a_figure_is_missing() -> None:
    unfinished = rank(1, status="died", phase=STEPS, phases_done=[SETUP, COMPILE], step_ms=[])
    lines = distributed_markdown(
        {"world_size": 2, "ranks": [rank(0), unfinished], "settings": {}, "launcher": "torchrun"}
    )
    row = next(line for line in lines if line.startswith("| 1 |"))
    assert "died in steps" in row and "not reached (steps)" in row
    assert any("no merged trace" in line for line in lines)
    assert distributed_markdown(None) == []
