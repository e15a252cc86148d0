"""The findings renderer at 80 and 200 columns, and the Markdown form of the same findings."""

from __future__ import annotations

import pytest
from rich.console import Console

from analyzer.findings import SourceLocation, make_finding, rank
from analyzer.render.findings import WIDE_AT, format_quantity, render_findings
from analyzer.render.findings_markdown import findings_markdown
from analyzer.rules.compile import COMPILED_PATH_NOT_EXERCISED, GRAPH_BREAK
from analyzer.rules.kernels import LAUNCH_BOUND

COMMAND = "compile-diagnose act --compile-how wrapper --device cuda --batch-size 8"


def graph_break():
    return make_finding(
        GRAPH_BREAK,
        confidence="high",
        cause="Tensor.item() in the training forward ends the graph and waits for the device.",
        evidence={"graph_count": 2, "break_count": 1, "outside_compiled_ms": 3.25},
        location=SourceLocation(
            "lerobot/policies/act/modeling_act.py",
            150,
            "forward",
            'loss_dict = {"l1_loss": l1_loss.item()}',
        ),
        next_steps=['loss_dict = {"l1_loss": l1_loss.detach()}'],
        impact_ms=3.25,
    )


def not_exercised():
    return make_finding(
        COMPILED_PATH_NOT_EXERCISED,
        confidence="high",
        cause="The actions match eager bit for bit and the speedup is what eager twice gives.",
        evidence={"max_action_diff_abs": 0.0, "speedup_inference_x": 1.0393941353860157},
        next_steps=[f"# reproduce the report\n{COMMAND}"],
    )


def launch_bound():
    return make_finding(
        LAUNCH_BOUND,
        confidence="medium",
        cause="The GPU is busy a quarter of the call: hundreds of short kernels.",
        evidence={"gpu_busy_fraction": 0.26, "kernel_count": 404, "device_time_ms": 7.2},
        measured_fix={"reduce_overhead_speedup_x": 2.79, "reduce_overhead_ms": 5.2},
    )


def rendered(findings, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(render_findings(findings))
    return console.export_text()


@pytest.mark.parametrize("width", [80, 200])
def test_each_finding_shows_code_name_severity_confidence_and_title(width):
    text = rendered([graph_break(), not_exercised(), launch_bound()], width)
    for finding in (graph_break(), not_exercised(), launch_bound()):
        assert finding.code in text and finding.name in text
        assert finding.title in text
    assert "ERROR" in text and "WARNING" in text
    assert "confidence: medium" in text


@pytest.mark.parametrize("width", [80, 200])
def test_most_important_finding_comes_first(width):
    # the rules rank (`rank`, as run_rules does); the renderer keeps that order
    text = rendered(rank([launch_bound(), graph_break(), not_exercised()]), width)
    # the error, then the warning that explains more milliseconds, then the other warning
    assert text.index("CD101") < text.index("CD102") < text.index("CD201")


def test_findings_are_shown_in_the_order_given():
    text = rendered([launch_bound(), not_exercised()], 80)
    assert text.index("CD201") < text.index("CD101")


@pytest.mark.parametrize("width", [80, 200])
def test_no_line_is_wider_than_the_terminal(width):
    text = rendered([graph_break(), not_exercised(), launch_bound()], width)
    assert max(len(line) for line in text.splitlines()) <= width


@pytest.mark.parametrize("width", [80, 200])
def test_next_steps_stay_whole_lines_that_can_be_pasted(width):
    lines = [
        line.strip() for line in rendered([not_exercised(), graph_break()], width).splitlines()
    ]
    assert COMMAND in lines
    assert "# reproduce the report" in lines
    assert 'loss_dict = {"l1_loss": l1_loss.detach()}' in lines


@pytest.mark.parametrize("width", [80, 200])
def test_evidence_numbers_carry_their_units(width):
    text = rendered([graph_break(), not_exercised(), launch_bound()], width)
    assert "3.25 ms" in text
    assert "1.04x" in text
    assert "26%" in text
    assert "0.0 (absolute)" in text


@pytest.mark.parametrize("width", [80, 200])
def test_location_and_measured_fix_are_shown(width):
    text = rendered([graph_break(), launch_bound()], width)
    assert "lerobot/policies/act/modeling_act.py:150 in forward" in text
    assert "l1_loss.item()" in text
    assert "Measured fix" in text and "2.79x" in text and "5.2 ms" in text


def test_at_80_columns_evidence_is_stacked_below_the_cause():
    lines = rendered([graph_break()], 80).splitlines()
    cause = next(i for i, line in enumerate(lines) if "Tensor.item()" in line)
    evidence = next(i for i, line in enumerate(lines) if "Evidence" in line)
    assert evidence > cause
    assert "Evidence" not in lines[cause]


def test_at_200_columns_evidence_sits_beside_the_cause():
    assert WIDE_AT <= 200
    lines = rendered([graph_break()], 200).splitlines()
    title_line = next(line for line in lines if graph_break().title in line)
    assert "Evidence" in title_line


def test_no_findings_says_so():
    assert "No findings." in rendered([], 80)


@pytest.mark.parametrize(
    ("key", "value", "label", "text"),
    [
        ("time_compiled_inference_ms", 21.476867329329252, "time compiled inference", "21.48 ms"),
        ("speedup_training_x", 1.137200119502332, "speedup training", "1.14x"),
        ("loss_diff_abs", 8.934736251831055e-05, "loss diff", "8.93e-05 (absolute)"),
        ("gpu_busy_fraction", 0.26, "gpu busy", "26%"),
        ("compile_s", 153.0, "compile", "153 s"),
        ("inference_runs", 100, "inference runs", "100"),
        ("loss_diff_abs", float("nan"), "loss diff", "NaN (absolute)"),
        ("speedup_training_x", float("inf"), "speedup training", "inf x"),
        ("speedup_training_x", None, "speedup training", "not measured"),
    ],
)
def test_quantities_are_labelled_by_their_unit_suffix(key, value, label, text):
    assert format_quantity(key, value) == (label, text)


def test_markdown_has_a_section_per_finding_most_important_first():
    markdown = findings_markdown(rank([launch_bound(), not_exercised()]))
    first = markdown.index("CD101 `compiled-path-not-exercised`")
    assert first < markdown.index("CD201 `launch-bound`")
    assert markdown.startswith("### 1. CD101")


def test_markdown_puts_next_steps_in_fenced_blocks_with_their_language():
    markdown = findings_markdown([not_exercised(), graph_break()])
    assert f"```shell\n# reproduce the report\n{COMMAND}\n```" in markdown
    assert '```python\nloss_dict = {"l1_loss": l1_loss.detach()}\n```' in markdown


def test_markdown_evidence_is_a_table_with_units():
    markdown = findings_markdown([launch_bound()])
    assert "| evidence | value |" in markdown
    assert "| device time | 7.2 ms |" in markdown
    assert "| reduce overhead speedup | 2.79x |" in markdown
