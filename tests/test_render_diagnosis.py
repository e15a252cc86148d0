"""The whole diagnosis as a user reads it, rendered from a recorded run (no torch needed).

The fixture is a real `compile-diagnose act --preset tiny` run with Inductor on the CPU; its
"verdict" key was computed once from its recorded findings by `analyzer.verdict.verdict_record`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from analyzer.findings import Finding
from analyzer.render.diagnosis import diagnosis_view
from analyzer.render.report_markdown import report_markdown
from analyzer.rules import run_rules
from analyzer.verdict import verdict_record
from probes.records.serialize import to_jsonable

FIXTURE = Path(__file__).parent / "fixtures" / "diagnosis_act_tiny_inductor.json"


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(FIXTURE.read_text())


def render(diagnosis: dict, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(diagnosis_view(diagnosis))
    return console.export_text()


def concluded(diagnosis: dict) -> dict:
    """The record with its findings and verdict concluded again from its probes, as a run's end
    concludes them."""
    findings = run_rules(diagnosis["probes"])
    verdict = verdict_record(
        diagnosis["reference_metrics"], diagnosis["probes"]["benchmark"], findings
    )
    return {**diagnosis, "findings": to_jsonable(findings), "verdict": verdict}


@pytest.mark.parametrize("width", [80, 200])
def test_diagnosis_fits_the_terminal_width(recorded: dict, width: int) -> None:
    text = render(recorded, width)
    assert max(len(line) for line in text.splitlines()) <= width


@pytest.mark.parametrize("width", [80, 200])
def test_diagnosis_reads_setting_verdict_findings_then_tables(recorded: dict, width: int) -> None:
    text = render(recorded, width)
    order = ["numerics", "Reference criteria", "findings", "Benchmark metrics", "Graph breaks"]
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions)


def test_failed_loss_criterion_is_explained_by_the_rng_finding(recorded: dict) -> None:
    text = render(recorded, 200)
    line = next(line for line in text.splitlines() if line.strip().startswith("loss diff"))
    assert "CD301 rng-divergence" in line and "not a fault of the compiled code" in line


def test_loss_criterion_excuse_is_only_probable_when_no_what_if_ran(recorded: dict) -> None:
    # The same run's divergence as a CPU default records it: no random-number what-if.
    untested = FIXTURE.parent / "divergence_act_untested.json"
    diagnosis = {**recorded, "probes": {**recorded["probes"]}}
    diagnosis["probes"]["divergence"] = json.loads(untested.read_text())
    diagnosis = concluded(diagnosis)
    text = render(diagnosis, 200)
    line = next(line for line in text.splitlines() if line.strip().startswith("loss diff"))
    assert "CD301 rng-divergence" in line
    assert "probably not a fault of the compiled code (not confirmed)" in line
    markdown = report_markdown(diagnosis)
    assert "probably not a fault of the compiled code" in markdown


def test_rules_on_the_recording_rank_warnings_before_info(recorded: dict) -> None:
    findings = run_rules(recorded["probes"])
    ranks = [finding.severity.rank for finding in findings]
    assert ranks == sorted(ranks)
    assert {"graph-break", "rng-divergence"} <= {finding.name for finding in findings}


def test_markdown_report_carries_the_findings_and_raw_data(recorded: dict) -> None:
    markdown = report_markdown(recorded)
    assert "`rng-divergence`" in markdown
    raw = markdown.split("## Raw Data")[1].split("```json")[1].split("```")[0]
    assert json.loads(raw) == recorded["reference_metrics"]


def test_recorded_verdict_is_what_the_recorded_findings_conclude(recorded: dict) -> None:
    findings = [Finding.from_record(f) for f in recorded["findings"]]
    assert to_jsonable(findings) == recorded["findings"]
    benchmark = recorded["probes"]["benchmark"]
    assert verdict_record(recorded["reference_metrics"], benchmark, findings) == recorded["verdict"]


def test_renderers_show_the_stored_verdict_and_decide_nothing(recorded: dict) -> None:
    # A stored verdict that no computation would give: the renderers must show it as stored.
    verdict = json.loads(json.dumps(recorded["verdict"]))
    verdict["reference"] = "UNDECIDED"
    loss = next(c for c in verdict["criteria"] if c["name"] == "loss diff")
    loss["excuse"] = "a stored excuse"
    speedup = next(c for c in verdict["criteria"] if c["name"] == "inference speedup")
    speedup["passed"] = None
    diagnosis = {**recorded, "verdict": verdict}
    text = render(diagnosis, 200)
    assert "Reference criteria: UNDECIDED" in text
    assert "a stored excuse" in text
    assert "inference speedup not measured" in text
    row = next(line for line in text.splitlines() if "inference time / call" in line)
    assert "not measured" in row and "FAIL" not in row
    markdown = report_markdown(diagnosis)
    assert "UNDECIDED" in markdown and "a stored excuse" in markdown


def test_a_run_without_benchmark_renders_without_a_verdict(recorded: dict) -> None:
    diagnosis = {**recorded, "reference_metrics": None, "verdict": None}
    diagnosis["probes"] = {k: v for k, v in recorded["probes"].items() if k != "benchmark"}
    text = render(diagnosis, 120)
    assert "Reference criteria" not in text
    # the recorded run completed: the benchmark was not selected, and the text says so
    assert "The benchmark was not run: it was not among the probes selected" in text
    markdown = report_markdown(diagnosis)
    assert "## Benchmark" in markdown and "Compilation Results" not in markdown
    skipped = {
        **diagnosis,
        "memory_plan": {"probes": [{"probe": "benchmark", "runs": False, "skipped": "memory"}]},
    }
    assert "does not fit in the memory left for the probes" in render(skipped, 120)
    assert "no verdict: the benchmark did not run" in report_markdown(diagnosis)
