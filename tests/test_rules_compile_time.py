"""The compile-time rule on a recorded compile-time section: milliseconds, no torch."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from analyzer.findings import Severity
from analyzer.rules import compile_time
from probes.records.names import BENCHMARK, COMPILE_TIME

FIXTURE = Path(__file__).parent / "fixtures" / "compile_time_act_cpu.json"


def _timing(eager_ms: float, compiled_ms: float, first_s: float) -> dict[str, Any]:
    return {
        "eager": {"median_ms": eager_ms, "iqr_ms": 0.1},
        "compiled": {"median_ms": compiled_ms, "iqr_ms": 0.1},
        "compiled_first_call_s": first_s,
    }


def _probes(eager_ms: float = 20.0, compiled_ms: float = 14.0) -> dict[str, Any]:
    section = json.loads(FIXTURE.read_text())["probes"][COMPILE_TIME]
    return {
        BENCHMARK: {
            "compilation_successful": True,
            "timings": {"inference": _timing(eager_ms, compiled_ms, 38.1)},
        },
        COMPILE_TIME: section,
    }


def _finding(probes: dict[str, Any]):
    (finding,) = [f for f in compile_time.check(probes) if f.evidence["entry_point"] == "inference"]
    return finding


def test_names_the_largest_stages_the_cold_cache_and_the_break_even() -> None:
    finding = _finding(_probes())
    assert finding.severity == Severity.INFO
    assert finding.evidence["compile_s"] == pytest.approx(36.96)
    # the stages at or above a tenth of the compile, largest first
    assert list(finding.evidence["stages_s"]) == [
        "code_generation",
        "kernel_compile",
        "cpu_isa_check",
    ]
    assert "code generation 14.5 s (39.1 %)" in finding.cause
    assert "Every cache lookup missed" in finding.cause
    # 36.96 s over 6 ms saved per call
    assert finding.evidence["calls_to_break_even"] == round(36.96e3 / 6.0)
    assert finding.evidence["tlparse_frames"] == ["[0/0]"]


def test_the_lever_that_cuts_the_compile_most_gives_the_break_even_and_the_first_next_step() -> (
    None
):
    finding = _finding(_probes())
    assert finding.evidence["best_lever"] == "warm-cache"
    # each less Inductor's CPU check, which a new process pays whatever the lever
    assert finding.evidence["levers_compile_s"] == {
        "warm-cache": 3.1,
        "portable-cache": 21.3,
        "regional-compilation": 12.0,
    }
    # what a new process pays with it (its compile and the CPU check) over what a call saves
    assert finding.evidence["calls_to_break_even_with_best_lever"] == round(
        (3.1 + 6.2) * 1e3 / (20 - 14.2)
    )
    warm = next(lv for lv in _probes()[COMPILE_TIME]["levers"] if lv["name"] == "warm-cache")
    assert finding.next_steps[0] == warm["paste"]
    # regional compilation compiles faster but its calls are slower than the whole compile's
    assert "15.90 ms against the whole compile's 14.00 ms (slower)" in finding.cause


def test_inductors_cpu_check_gets_a_next_step_of_its_own() -> None:
    finding = _finding(_probes())
    assert any(
        "TORCHINDUCTOR_VEC_ISA_OK=1" in step and "6.2 s" in step for step in finding.next_steps
    )
    probes = _probes()
    probes[COMPILE_TIME]["entry_points"]["inference"]["stages"]["cpu_isa_check"] = 0.0
    assert not any("VEC_ISA_OK" in s for s in _finding(probes).next_steps)


def test_without_a_measured_lever_it_says_how_to_keep_the_cache() -> None:
    probes = _probes()
    probes[COMPILE_TIME]["levers"] = []
    finding = _finding(probes)
    assert "best_lever" not in finding.evidence
    assert "Measured:" not in finding.cause
    assert any(step.startswith("export TORCHINDUCTOR_CACHE_DIR=") for step in finding.next_steps)


def test_a_lever_that_does_not_cut_the_compile_is_not_the_best() -> None:
    probes = _probes()
    for lever in probes[COMPILE_TIME]["levers"]:
        if lever["compile_s"] is not None:
            lever["compile_s"] = lever["baseline_compile_s"] + 1.0
    assert "best_lever" not in _finding(probes).evidence


def test_a_compile_that_never_pays_off_is_a_warning() -> None:
    finding = _finding(_probes(eager_ms=13.1, compiled_ms=14.0))
    assert finding.severity == Severity.WARNING
    assert "never pays for itself" in finding.cause
    assert "calls_to_break_even" not in finding.evidence


def test_recompile_scenarios_say_how_many_more_compiles() -> None:
    finding = _finding(_probes())
    assert "compiled 1 more time (batch size 8 -> 2: 1)" in finding.cause


def test_a_warm_compile_says_what_the_cache_could_not_skip() -> None:
    probes = _probes()
    cache = probes[COMPILE_TIME]["entry_points"]["inference"]["cache"]
    cache.update(fx_graph_hits=1, fx_graph_misses=0, aot_autograd_hits=1, aot_autograd_misses=0)
    assert "served from the cache" in _finding(probes).cause


def test_an_older_record_without_the_breakdown_falls_back_to_the_first_call() -> None:
    probes = _probes()
    del probes[COMPILE_TIME]
    probes[BENCHMARK]["capture"] = {"inference": {"frames": [{"compile_id": "0/0"}]}}
    finding = _finding(probes)
    assert finding.evidence["compile_s"] == pytest.approx(38.1 - 0.014)
    assert "stages_s" not in finding.evidence
    assert finding.evidence["tlparse_frames"] == ["[0/0]"]


def test_no_finding_without_a_successful_compile() -> None:
    probes = copy.deepcopy(_probes())
    probes[BENCHMARK]["compilation_successful"] = False
    assert compile_time.check(probes) == []


def _with_dynamic(other_size_frames: int = 0, median_ms: float = 14.1) -> dict[str, Any]:
    probes = _probes()
    levers = [lv for lv in probes[COMPILE_TIME]["levers"] if lv["name"] != "dynamic-shapes"]
    levers.append(
        {
            "name": "dynamic-shapes",
            "entry_point": "inference",
            "status": "measured",
            "compile_s": 2.0,  # shorter than any lever: still not the first compile's cut
            "baseline_compile_s": 30.76,
            "median_ms": median_ms,
            "baseline_median_ms": 14.0,
            "detail": {"batch_sizes": [8, 2], "other_size_frames": other_size_frames},
            "paste": "torch.compile(model, dynamic=True)  # one graph for every batch size",
        }
    )
    probes[COMPILE_TIME]["levers"] = levers
    return probes


def test_dynamic_shapes_are_advised_where_a_batch_size_change_recompiled() -> None:
    finding = _finding(_with_dynamic())
    assert finding.evidence["best_lever"] == "warm-cache"  # dynamic cuts the later compiles
    assert finding.evidence["dynamic_compile_s"] == 2.0
    assert "then served batch size 2 without compiling" in finding.cause
    assert any("dynamic=True" in step for step in finding.next_steps)


def test_dynamic_shapes_are_not_advised_when_they_recompile_or_run_slower() -> None:
    for probes in (_with_dynamic(other_size_frames=1), _with_dynamic(median_ms=16.0)):
        finding = _finding(probes)
        assert "dynamic_compile_s" not in finding.evidence
        assert not any("dynamic=True" in step for step in finding.next_steps)
    probes = _with_dynamic()
    probes[COMPILE_TIME]["recompiles"] = {}  # no scenario showed a size change recompiling
    assert "dynamic_compile_s" not in _finding(probes).evidence


def test_compile_threads_say_what_more_threads_could_give() -> None:
    finding = _finding(_probes())  # 2 threads on 2 CPUs, 11.7 s of kernel compile
    assert "one per CPU" in finding.cause and "at most the 11.7 s" in finding.cause
    probes = _probes()
    probes[COMPILE_TIME]["cpu_count"] = 8
    finding = _finding(probes)
    assert "2 threads of 8 CPUs" in finding.cause
    assert any("TORCHINDUCTOR_COMPILE_THREADS=8" in step for step in finding.next_steps)


def test_a_portable_cache_that_compiles_the_kernels_again_says_so() -> None:
    probes = _probes()
    portable = next(lv for lv in probes[COMPILE_TIME]["levers"] if lv["name"] == "portable-cache")
    portable["stages"] = {"dynamo": 1.0, "kernel_compile": 18.0}
    portable["compile_s"] = 20.0
    assert "18.0 s of it compiling the kernels again" in _finding(probes).cause
    portable["stages"] = {"dynamo": 1.0, "kernel_compile": 0.1}
    assert "compiling the kernels again" not in _finding(probes).cause


def test_the_speed_settings_first_calls_are_set_beside_the_default_compile() -> None:
    probes = _probes()
    probes["what_ifs"] = [
        {"name": "freezing", "entry_point": "inference", "status": "measured", "compile_s": 13.3},
        {"name": "no-graph-breaks", "entry_point": "inference", "status": "not-run"},
        {"name": "freezing", "entry_point": "training", "status": "measured", "compile_s": 1.0},
    ]
    finding = _finding(probes)
    assert finding.evidence["speed_settings_compile_s"] == {"freezing": 13.3}
    assert "freezing 13.3 s (the default compiled in 30.8 s" in finding.cause
