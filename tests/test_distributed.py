"""The diagnosis on two gloo ranks on the CPU, end to end: `--nproc 2` starts torchrun itself.

Real DDP, real torch.compile (aot_eager), real processes: tiny ACT trained under DDP (one run,
shared by the tests that read it), a planted rank-dependent shape (rank 1 recompiles, rank 0
does not), the DDPOptimizer first-bucket assertion, a rank killed mid-run, and the tool started
under an outside torchrun with thresholds to check. The planted
models are in `distributed_planted.py`, which each rank loads by path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from analyzer.cli import main as cli_main
from probes.records.distributed import (
    BREAK_IN_DDP,
    BREAK_IN_USER,
    COMPILE,
    COMPLETE,
    DIED,
    DISTRIBUTED,
    FAILED,
    INSIDE_DDP_TRIAL,
    PROFILE,
    STEPS,
    STOPPED,
    rank_file,
)

PLANTED = Path(__file__).with_name("distributed_planted.py")
ROOT = Path(__file__).resolve().parent.parent
# Each launch is stopped, every rank with it, past this many seconds (a rank that hangs fails
# the test instead of holding it).
TIMEOUT = ["--rank-timeout", "150"]
QUICK = ["--device", "cpu", "--backend", "aot_eager", "--nproc", "2", *TIMEOUT]


def run_ranks(
    args: list[str], out: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict[str, Any]]:
    json_out = ["--json", str(out / "out.json")]
    code, _, _ = run_cli([*args, *QUICK, "--out", str(out), *json_out], capsys)
    return code, json.loads((out / "diagnosis.json").read_text(encoding="utf-8"))


def section(diagnosis: dict[str, Any]) -> dict[str, Any]:
    return diagnosis["probes"][DISTRIBUTED]


def findings(diagnosis: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in diagnosis["findings"]}


@pytest.fixture(scope="module")
def act_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any], Path]:
    """Tiny ACT on two ranks, read by every test of it (one torchrun launch)."""
    out = tmp_path_factory.mktemp("act-ddp")
    args = ["act", "--preset", "tiny", "--iters-training", "2", *QUICK, "--out", str(out)]
    code = cli_main([*args, "--json", str(out / "out.json")])
    return code, json.loads((out / "diagnosis.json").read_text(encoding="utf-8")), out


def test_act_every_rank_completes_its_phases(act_run) -> None:
    _, diagnosis, out = act_run
    ranks = section(diagnosis)["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    for rank in ranks:
        assert rank["status"] == COMPLETE, rank.get("error")
        # DDP's own code broke the graph on both ranks: the inside-DDP trial ran last
        assert rank["phases_done"][-2:] == [PROFILE, INSIDE_DDP_TRIAL]
        assert len(rank["step_ms"]) == 2 and rank["first_step_s"] > 0
        assert rank["comm"]["collectives"] > 0 and rank["comm"]["comm_ms"] > 0
        assert rank_file(out, rank["rank"]).is_file()
    assert diagnosis["target"]["policy"] == "act"


def test_act_ddp_breaks_are_told_apart_from_the_models(act_run) -> None:
    _, diagnosis, _ = act_run
    for rank in section(diagnosis)["ranks"]:
        by_origin: dict[str, set[str]] = {}
        for b in rank["breaks"]:
            by_origin.setdefault(b["origin"], set()).add(Path(b["location"]["filename"]).name)
        # DDP's own: its logging and the context manager around the model's call
        assert by_origin[BREAK_IN_DDP] == {"distributed.py"}
        # ACT's: the loss's .item() in modeling_act.py
        assert by_origin[BREAK_IN_USER] == {"modeling_act.py"}
    finding = findings(diagnosis)["ddp-internal-graph-breaks"]
    assert finding["evidence"]["internal_breaks_count"] >= 2
    assert finding["evidence"]["model_breaks_count"] == 1


def test_act_compiled_before_ddp_wraps_it_is_tried_and_timed(act_run) -> None:
    # The lever CD806 names, measured on every rank: ACT's network compiled (--compile-how
    # model), then wrapped: DDP's forward and the policy's loss dictionary stay eager.
    _, diagnosis, _ = act_run
    for rank in section(diagnosis)["ranks"]:
        trial = rank["inside_ddp"]
        assert trial["error"] is None
        assert trial["how"] == "model, then DDP(model)"
        assert trial["breaks"] == [] and trial["frames"] >= 1
        assert len(trial["step_ms"]) == len(rank["step_ms"]) and trial["first_step_s"] > 0
    evidence = findings(diagnosis)["ddp-internal-graph-breaks"]["evidence"]
    assert evidence["inside_ddp_breaks_count"] == 0
    assert evidence["inside_ddp_step_ms"] > 0 and evidence["wrapper_step_ms"] > 0


def test_act_ddp_optimizer_splits_are_recorded_with_bucket_sizes(act_run) -> None:
    _, diagnosis, _ = act_run
    rank = section(diagnosis)["ranks"][0]
    split = rank["splits"][0]
    assert len(split["bucket_bytes"]) > 1  # a split: several buckets, not a graph break
    assert split["bucket_cap_bytes"] == rank["bucket_cap_bytes"] == 25 * 2**20
    # together the buckets hold every trainable parameter's bytes the graph uses, no more
    parameters = diagnosis["target"]["parameters"]
    assert sum(split["bucket_bytes"]) <= parameters * 4


def test_act_ranks_agree_and_their_traces_merge(act_run) -> None:
    code, diagnosis, out = act_run
    assert "rank-divergent-compile" not in findings(diagnosis)
    assert "rank-failed" not in findings(diagnosis)
    trace = json.loads(Path(section(diagnosis)["merged_trace"]).read_text(encoding="utf-8"))
    processes = {e["args"]["name"] for e in trace["traceEvents"] if e.get("name") == "process_name"}
    assert processes == {"rank 0", "rank 1"}
    assert (out / "report.md").read_text(encoding="utf-8").count("## Distributed") == 1
    assert code == 0


def test_a_rank_dependent_shape_is_flagged_rank_divergent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    planted = ["module", f"{PLANTED}:rank_dependent_shape", "--no-inside-ddp-trial"]
    code, diagnosis = run_ranks(planted, tmp_path, capsys)
    ranks = {r["rank"]: r for r in section(diagnosis)["ranks"]}
    assert all(r["inside_ddp"] is None for r in ranks.values())  # asked not to, though DDP broke
    recompiled = {
        rank: [c for c in r["compiles"] if c["recompile_reason"]] for rank, r in ranks.items()
    }
    assert recompiled[0] == []
    assert [c["phase"] for c in recompiled[1]] == [STEPS]
    assert "ROWS" in recompiled[1][0]["recompile_reason"]
    finding = findings(diagnosis)["rank-divergent-compile"]
    assert finding["severity"] == "error"
    assert finding["evidence"]["divergent_ranks"] == [1]
    assert "ROWS" in finding["cause"]
    assert code == 1


def test_the_small_first_bucket_is_a_finding_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = ["--bucket-cap-mb", "0.5", "--out", str(tmp_path)]
    code, _, err = run_cli(["module", f"{PLANTED}:small_first_bucket", *QUICK, *small], capsys)
    diagnosis = json.loads((tmp_path / "diagnosis.json").read_text(encoding="utf-8"))
    assert "Traceback" not in err
    ranks = section(diagnosis)["ranks"]
    assert [r["status"] for r in ranks] == [FAILED, FAILED]
    assert all(r["error_phase"] == COMPILE for r in ranks)
    found = findings(diagnosis)
    finding = found["ddp-optimizer-first-bucket"]
    assert finding["evidence"]["bucket_cap_bytes"] == 2**19
    assert finding["evidence"]["first_bucket_cap_bytes"] == 2**20
    assert any("optimize_ddp = False" in step for step in finding["next_steps"])
    assert "rank-failed" not in found  # the one cause, said once
    assert code == 1


def test_a_killed_rank_stops_the_other_and_keeps_what_both_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, diagnosis = run_ranks(["module", f"{PLANTED}:killed_rank"], tmp_path, capsys)
    merged = section(diagnosis)
    ranks = {r["rank"]: r for r in merged["ranks"]}
    assert ranks[1]["status"] == DIED and ranks[1]["phase"] == STEPS
    assert ranks[0]["status"] in (FAILED, STOPPED)
    for rank in ranks.values():  # what each measured before: kept
        assert rank["phases_done"] == ["setup", COMPILE] and rank["first_step_s"] > 0
    assert merged["wall_s"] < merged["timeout_s"]
    killed = next(o for o in merged["outcomes"] if o["rank"] == 1)
    assert killed["signal"] == "SIGKILL" and killed["first_failure"]
    finding = findings(diagnosis)["rank-failed"]
    assert finding["evidence"]["first_failed_rank"] == 1
    assert finding["cause"].startswith("Rank 1 died (SIGKILL")
    assert code == 1


def test_under_an_outside_torchrun_the_ranks_share_a_folder_and_rank_0_gates(
    tmp_path: Path,
) -> None:
    # The README's `torchrun ... -m analyzer.cli`, without --out: the ranks must pick one folder.
    # The model is compiled before DDP wraps it (--ddp-compile model): DDP's forward stays eager,
    # so none of its breaks, and the thresholds hold.
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    gate = ["--fail-on", "graph-breaks>0,recompiles>0", "--junit", "gate.xml"]
    tool = ["-m", "analyzer.cli", "module", f"{PLANTED}:small_mlp", *QUICK[:4], *gate]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [*launch, *tool, "--ddp-compile", "model"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    said = done.stderr[-3000:]  # what the ranks printed, should an assertion fail
    assert done.returncode == 0, said
    folders = list((tmp_path / "compile-diagnose-out").iterdir())
    assert len(folders) == 1, (folders, said)
    folder = folders[0]
    assert folder.name.startswith("module-distributed_planted-run-")
    diagnosis = json.loads((folder / "diagnosis.json").read_text(encoding="utf-8"))
    ranks = section(diagnosis)["ranks"]
    assert [(r["rank"], r["status"]) for r in ranks] == [(0, COMPLETE), (1, COMPLETE)]
    for rank in ranks:
        assert rank["compile_settings"]["how"] == "module, then DDP(model)"
        assert rank["breaks"] == [], rank["breaks"]
        # One graph of the whole MLP (linear, relu, linear), and no recompile.
        assert [c["graph_ops"] for c in rank["compiles"] if c["graph_ops"]] == [3], rank
        assert not any(c["recompile_reason"] for c in rank["compiles"]), rank
    assert "compile-diagnose: fail-on (--fail-on): 2 of 2 thresholds hold" in done.stderr, said
    cases = ET.parse(tmp_path / "gate.xml").getroot().findall("./testsuite/testcase")
    assert [c.find("failure") is None for c in cases] == [True, True]
