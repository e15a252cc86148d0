"""The distributed rules and the launcher's reading, on recorded JSON: no torch, no process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analyzer.gate import check_diagnosis, gate_for_diagnosis
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


def test_the_multi_rank_report_is_a_link_a_terminal_opens_wherever_out_was_given() -> None:
    section = {"world_size": 1, "ranks": [rank(0)], "settings": {}, "launcher": "torchrun"}
    lines = distributed_markdown({**section, "tlparse_report": "run/tlparse_ranks/index.html"})
    link = (Path.cwd() / "run/tlparse_ranks/index.html").as_uri()
    assert any(
        f"every rank's compiles (tlparse --all-ranks-html): {link}" in line for line in lines
    )


def _merged(ranks: list[dict[str, Any]]) -> dict[str, Any]:
    section = {"world_size": len(ranks), "ranks": ranks, "outcomes": []}
    return {"probes": {DISTRIBUTED: section}, "findings": []}


def _break(origin: str, filename: str, lineno: int, gb_id: str) -> dict[str, Any]:
    location = {"filename": filename, "lineno": lineno, "function": "forward"}
    return {"origin": origin, "reason": "r", "location": location, "gb_id": gb_id, "hits": 1}


def test_the_gate_counts_the_ranks_breaks_and_recompiles_of_their_training_step() -> None:
    ddp = _break(BREAK_IN_DDP, "/torch/nn/parallel/distributed.py", 1566, "GB0156")
    item = _break(BREAK_IN_USER, "/src/model.py", 150, "GB0124")
    guard = "0/0: L['batch'].size()[0] == 4"
    ranks = [
        rank(0, breaks=[ddp, item]),
        rank(1, breaks=[ddp], compiles=[compiled("forward"), compiled("forward", STEPS, guard)]),
    ]
    gate = gate_for_diagnosis(
        ["graph-breaks>1,graph-breaks.training>2,recompiles>0,graph-breaks.inference>=0"],
        Path.cwd(),
    )
    result = check_diagnosis(gate, _merged(ranks), "module")
    breaks, breaks_training, recompiles, inference = result.checks
    assert (breaks.measured.value, breaks.violated) == (2, True)
    assert "distributed.py:1566 GB0156 (training, inside DDP, every rank)" in breaks.measured.detail
    assert "model.py:150 GB0124 (training, in the model, rank 0)" in breaks.measured.detail
    assert not breaks_training.violated  # the ranks' one entry point, named
    assert recompiles.measured.value == 1 and recompiles.violated
    assert recompiles.measured.detail == f"rank 1 forward: {guard}"
    assert inference.measured.value is None and inference.violated  # the ranks do not infer
    # A rank that never compiled is not counted; no rank compiled: nothing measured.
    unfinished = rank(2, phases_done=[SETUP], breaks=[item], compiles=[])
    assert check_diagnosis(gate, _merged([*ranks, unfinished]), "m").checks[0].measured.value == 2
    assert check_diagnosis(gate, _merged([unfinished]), "m").checks[0].measured.value is None


def test_the_ranks_of_one_launch_share_a_default_folder_name() -> None:
    from probes.distributed.request import launch_name

    assert launch_name({}) is None  # no launcher: the command's timestamped folder
    ranks = {"RANK": "1", "WORLD_SIZE": "2"}
    named = launch_name({**ranks, "TORCHELASTIC_RUN_ID": "5f0c1d2e-aaaa-bbbb"})
    assert named == "run-5f0c1d2e"
    assert launch_name({**ranks, "RANK": "0", "TORCHELASTIC_RUN_ID": "5f0c1d2e-cccc"}) == named
    # torchrun's default run id, "none", is every launch's: the launcher's process is not.
    assert launch_name({**ranks, "TORCHELASTIC_RUN_ID": "none"}).startswith("launcher-")


def test_the_inside_ddp_trial_is_told_against_the_wrapper_and_clearly_faster_warns() -> None:
    ddp = _break(BREAK_IN_DDP, "/torch/nn/parallel/distributed.py", 1566, "GB0156")
    item = _break(BREAK_IN_USER, "/src/model.py", 150, "GB0124")
    trial = {"how": "model, then DDP(model)", "first_step_s": 3.0, "breaks": [], "frames": 1}
    wrapper = {"breaks": [ddp, item], "first_step_s": 6.5, "step_ms": [180.0, 175.0, 190.0]}

    def finding(**trial_fields: Any):
        inside = {**trial, **trial_fields} if trial_fields else None
        return names([rank(0, **wrapper, inside_ddp=inside)])["ddp-internal-graph-breaks"]

    faster = finding(step_ms=[120.0, 125.0, 130.0])
    assert faster.severity == "warning"
    assert faster.impact_ms == 180.0 - 125.0
    assert (
        "Compiled before DDP wrapped it (model, then DDP(model)), the same rank met 0 breaks "
        "(0 in DDP's or Accelerate's code); its first, compiling step took 3.0 s against the "
        "wrapper's 6.5 s, and its warm step 125 ms against 180 ms (1.44x as fast; medians of "
        "3 steps each)." in faster.cause
    )
    assert faster.evidence["inside_ddp_step_ms"] == 125.0
    # Within the wrapper's spread: measured, said, and not a warning.
    close = finding(step_ms=[170.0, 185.0, 200.0])
    assert close.severity == "info" and close.impact_ms is None
    assert "(0.97x as fast;" in close.cause
    failed = finding(error="RuntimeError: boom")
    assert failed.cause.endswith("(model, then DDP(model)), it failed: RuntimeError: boom")
    assert finding().severity == "info" and "Compiled before" not in finding().cause


def test_two_runs_on_several_ranks_compare_break_by_break_and_figure_by_figure() -> None:
    from analyzer.comparison import compare
    from analyzer.comparison.changes import FIXED
    from analyzer.comparison.ranks import FIRST_STEP, FRAMES, RECOMPILES, WARM_STEP

    ddp = _break(BREAK_IN_DDP, "/torch/nn/parallel/distributed.py", 1566, "GB0156")
    item = _break(BREAK_IN_USER, "/src/model.py", 150, "GB0124")
    frames = [compiled("forward"), compiled("torch_dynamo_resume_in_forward_at_150")]
    backward = {**compiled("forward"), "function": "None", "graph_ops": None}

    def run(how: str, run_id: str, breaks: list, compiles: list, step_ms: list) -> dict:
        ranks = [
            rank(n, breaks=breaks, compiles=compiles, step_ms=step_ms, first_step_s=6.0 - n)
            for n in (0, 1)
        ]
        variables = {"TORCHELASTIC_RUN_ID": run_id, "TORCHELASTIC_ERROR_FILE": f"/tmp/{run_id}"}
        return {
            "target": {"policy": "act", "preset": "tiny"},
            "compile_settings": {"how": how},
            "environment": {"torch": "2.11.0", "torch_variables": variables},
            **_merged(ranks),
        }

    wrapper = run("torch.compile(DDP(model))", "a1", [ddp, item], [*frames, backward], [180.0])
    inside = run("model, then DDP(model)", "b2", [], [compiled("forward"), backward], [160.0])
    comparison = compare(wrapper, inside)
    assert [(c.status, c.entry_point, c.gb_id) for c in comparison.graph_breaks] == [
        (FIXED, "training", "GB0156"),
        (FIXED, "training", "GB0124"),
    ]
    figures = {f.name: (f.before, f.after) for f in comparison.compile_figures}
    assert figures[FIRST_STEP] == (6.0, 6.0)  # the slowest rank's
    assert figures[WARM_STEP] == (0.18, 0.16)
    assert figures[FRAMES] == (2, 1)  # the backward graph compiled for a frame is not one
    assert figures[RECOMPILES] == (0, 0)
    # torchrun's names for each launch are not settings that differ; how the ranks compiled is
    assert [s.name for s in comparison.settings] == ["compile.how"]
