"""A whole diagnosis with --compile-how methods (LeRobot's script today), aot_eager, tiny ACT.

Compiling the bound methods puts `select_action`'s queue logic and `forward`'s `.item()` inside
the compiled code, so the real compile breaks and recompiles where the probes say it would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def methods_diagnosis(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict, Path]:
    out = tmp_path_factory.mktemp("methods")
    # n_action_steps 10: a rollout drains the queue through 9 lengths, past the limit of 8.
    args = ["act", "--preset", "tiny", "--device", "cpu", "--backend", "aot_eager"]
    args += ["--policy.n_action_steps=10"]
    from analyzer.cli import main

    code = main([*args, "--compile-how", "methods", "--out", str(out), "--json", str(out / "o")])
    return code, json.loads((out / "diagnosis.json").read_text()), out


def findings_named(diagnosis: dict, name: str) -> list[dict]:
    return [f for f in diagnosis["findings"] if f["name"] == name]


def test_item_break_is_found_in_the_installed_lerobot_source(methods_diagnosis) -> None:
    _, diagnosis, _ = methods_diagnosis
    (finding,) = findings_named(diagnosis, "graph-break")
    location = finding["location"]
    assert location["filename"].endswith("lerobot/policies/act/modeling_act.py")
    source = Path(location["filename"]).read_text().splitlines()
    assert ".item()" in source[location["lineno"] - 1]
    assert finding["evidence"]["category"] == "scalar-read"


def test_graph_break_names_the_tlparse_frame_that_shows_it(methods_diagnosis) -> None:
    _, diagnosis, out = methods_diagnosis
    (finding,) = findings_named(diagnosis, "graph-break")
    frame = finding["evidence"]["tlparse_frame"]
    report = diagnosis["probes"]["compile_trace"]["benchmark"]["tlparse"]
    assert report["error"] is None
    assert Path(report["index_html"]).is_file()
    listed = {(b["frame_id"], b["lineno"]) for b in report["graph_breaks"]}
    assert (frame, finding["location"]["lineno"]) in listed
    assert list((out / "torch_trace").glob("*.log"))


def test_stale_action_queue_recompiles_until_the_limit(methods_diagnosis) -> None:
    code, diagnosis, _ = methods_diagnosis
    stale = [
        f
        for f in findings_named(diagnosis, "recompilation")
        if "reset per episode" in f["evidence"]["scenario"]
    ]
    queue = [f for f in stale if "_action_queue" in f["evidence"]["failing_guard"]]
    # One recompile per queue length until the cache holds recompile_limit entries.
    limit_of = queue[0]["evidence"]["recompile_limit"]
    assert sum(f["evidence"]["recompile_count"] for f in queue) >= limit_of - 2
    limit = [f for f in queue if f["evidence"]["limit_hit"]]
    assert limit and limit[0]["severity"] == "error"
    assert code == 1  # an error-severity finding stands


def test_no_recompile_is_reported_for_the_diagnosis_own_backend_switch(methods_diagnosis) -> None:
    _, diagnosis, _ = methods_diagnosis
    for finding in findings_named(diagnosis, "recompilation"):
        assert "BACKEND_MATCH" not in finding["evidence"]["failing_guard"]


def test_both_entry_points_ran_compiled_code(methods_diagnosis) -> None:
    _, diagnosis, _ = methods_diagnosis
    capture = diagnosis["probes"]["benchmark"]["capture"]
    assert capture["inference"]["ran_compiled_code"] and capture["training"]["ran_compiled_code"]
    assert not findings_named(diagnosis, "compiled-path-not-exercised")


def test_recompiles_name_their_frames_in_a_report_of_their_own(methods_diagnosis) -> None:
    _, diagnosis, out = methods_diagnosis
    report = diagnosis["probes"]["compile_trace"]["recompiles"]["tlparse"]
    listed = {frame["frame_id"] for frame in report["frames"]}
    recompiles = findings_named(diagnosis, "recompilation")
    assert recompiles
    for finding in recompiles:
        assert finding["evidence"]["tlparse_report"] == report["index_html"]
        assert set(finding["evidence"]["tlparse_frames"]) <= listed
    assert Path(report["index_html"]).is_relative_to(out / "recompiles")


def test_compile_time_findings_name_frames_the_report_lists(methods_diagnosis) -> None:
    _, diagnosis, _ = methods_diagnosis
    report = diagnosis["probes"]["compile_trace"]["benchmark"]["tlparse"]
    listed = {frame["frame_id"] for frame in report["frames"]}
    costs = findings_named(diagnosis, "compile-time-cost")
    assert costs
    for finding in costs:
        assert set(finding["evidence"]["tlparse_frames"]) <= listed
