"""The whole diagnosis as a user reads it, rendered from a recorded run (no torch needed).

The fixture is a real `compile-diagnose act --preset tiny` run with Inductor on the CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from analyzer.render.diagnosis import diagnosis_view
from analyzer.render.report_markdown import report_markdown
from analyzer.rules import run_rules

FIXTURE = Path(__file__).parent / "fixtures" / "diagnosis_act_tiny_inductor.json"


@pytest.fixture(scope="module")
def recorded() -> dict:
    return json.loads(FIXTURE.read_text())


def render(diagnosis: dict, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(diagnosis_view(diagnosis, run_rules(diagnosis["probes"])))
    return console.export_text()


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
    text = render(diagnosis, 200)
    line = next(line for line in text.splitlines() if line.strip().startswith("loss diff"))
    assert "CD301 rng-divergence" in line
    assert "probably not a fault of the compiled code (not confirmed)" in line
    markdown = report_markdown(diagnosis, run_rules(diagnosis["probes"]))
    assert "probably not a fault of the compiled code" in markdown


def test_rules_on_the_recording_rank_warnings_before_info(recorded: dict) -> None:
    findings = run_rules(recorded["probes"])
    ranks = [finding.severity.rank for finding in findings]
    assert ranks == sorted(ranks)
    assert {"graph-break", "rng-divergence"} <= {finding.name for finding in findings}


def test_markdown_report_carries_the_findings_and_raw_data(recorded: dict) -> None:
    markdown = report_markdown(recorded, run_rules(recorded["probes"]))
    assert "`rng-divergence`" in markdown
    raw = markdown.split("## Raw Data")[1].split("```json")[1].split("```")[0]
    assert json.loads(raw) == recorded["reference_metrics"]
