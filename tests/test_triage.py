"""Triage of benchmark reports: the reference report's conclusions, and variants of it that must
neither crash nor be misread. Expected figures are taken from the fixture files themselves."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from rich.console import Console

from analyzer import cli
from analyzer.errors import InputFileError
from analyzer.reference_report import parse_report_text, read_report
from analyzer.render.triage import render_triage, triage_json
from analyzer.rules.triage import TriageResult, triage
from probes.records.reference import (
    ACTION_DIFF,
    CRITERIA,
    INFERENCE_SPEEDUP,
    LOSS_DIFF,
    REFERENCE_SPEEDUP,
    TRAINING_SPEEDUP,
)

REPORTS = Path(__file__).parent / "fixtures" / "reports"
REFERENCE = REPORTS / "act_needs_work_report.md"


def triaged(name: str) -> TriageResult:
    return triage(read_report(REPORTS / name))


def named(result: TriageResult, name: str):
    return [finding for finding in result.findings if finding.name == name]


def names(result: TriageResult) -> set[str]:
    return {finding.name for finding in result.findings}


def raw_data(name: str) -> dict:
    text = (REPORTS / name).read_text(encoding="utf-8")
    block = text.split("```json\n", 1)[1].split("\n```", 1)[0] if "```json" in text else text
    return json.loads(block)


def variant(**changes) -> TriageResult:
    """The reference report's JSON with some figures changed."""
    data = raw_data("act_needs_work_report.md")
    correctness = {**data["correctness"], **changes.pop("correctness", {})}
    return triage(parse_report_text(json.dumps({**data, **changes, "correctness": correctness})))


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cli, "COMMANDS", ("analyzer.commands.triage",))
    return cli.main


# --- the reference report -----------------------------------------------------------------


def test_reference_zero_action_diff_near_one_speedup_is_compiled_path_not_exercised():
    (finding,) = named(triaged(REFERENCE.name), "compiled-path-not-exercised")
    assert finding.severity == "error"
    assert finding.confidence == "high"
    assert any("compile-diagnose act --compile-how wrapper" in s for s in finding.next_steps)


def test_reference_loss_diff_is_rng_or_tolerance_not_a_miscompile():
    result = triaged(REFERENCE.name)
    assert {"rng-divergence", "tolerance-too-strict"} <= names(result)
    assert "numerical-divergence" not in names(result)
    for name in ("rng-divergence", "tolerance-too-strict"):
        (finding,) = named(result, name)
        assert "divergence probe" in finding.cause
        assert (
            finding.evidence["loss_diff_abs"]
            == raw_data(REFERENCE.name)["correctness"]["loss_diff"]
        )


def test_reference_consistency_metrics_are_benchmark_methodology():
    data = raw_data(REFERENCE.name)
    methodology = named(triaged(REFERENCE.name), "benchmark-methodology")
    consistency = [f for f in methodology if "loss_consistency_abs" in f.evidence]
    assert len(consistency) == 1
    assert consistency[0].evidence["loss_consistency_abs"] == data["loss_consistency"]
    assert consistency[0].evidence["grad_norm_consistency_abs"] == data["grad_norm_consistency"]
    assert "not compile error" in consistency[0].cause


def test_reference_verdict_is_recomputed_from_its_numbers():
    data = raw_data(REFERENCE.name)
    verdict = triaged(REFERENCE.name).verdict
    by_name = {criterion.name: criterion for criterion in verdict.criteria}
    assert by_name[INFERENCE_SPEEDUP].passed == (data["speedup_inference"] > REFERENCE_SPEEDUP)
    assert by_name[TRAINING_SPEEDUP].passed == (data["speedup_training"] > REFERENCE_SPEEDUP)
    assert by_name[LOSS_DIFF].passed == (data["correctness"]["loss_diff"] < 1e-5)
    assert by_name[ACTION_DIFF].passed == (data["correctness"]["action_diff"] < 1e-5)
    assert verdict.success is False and verdict.reported_success is data["success"]
    assert verdict.disagreements == []


def test_reference_verdict_rows_name_the_findings_that_explain_them():
    result = triaged(REFERENCE.name)
    by_name = {criterion.name: criterion for criterion in result.verdict.criteria}
    code = named(result, "compiled-path-not-exercised")[0].code
    assert code in by_name[INFERENCE_SPEEDUP].note
    assert code in by_name[ACTION_DIFF].note


def test_json_alone_gives_the_same_conclusions_as_the_markdown():
    from_markdown = triaged(REFERENCE.name)
    from_json = triaged("act_needs_work_raw_data.json")
    assert [f.code for f in from_json.findings] == [f.code for f in from_markdown.findings]
    assert from_json.verdict.label == from_markdown.verdict.label


def test_reference_commands_rerun_the_reports_device_and_batch():
    report = read_report(REFERENCE)
    commands = [
        line
        for finding in triage(report).findings
        for step in finding.next_steps
        for line in step.splitlines()
        if line.startswith("compile-diagnose ")
    ]
    assert commands
    for command in commands:
        assert f"--device {report.device}" in command
        assert f"--batch-size {report.batch_size}" in command


# --- variants -----------------------------------------------------------------------------


def test_large_action_diff_is_divergence_never_not_compiled():
    result = triaged("act_severe_action_diff_report.md")
    assert "compiled-path-not-exercised" not in names(result)
    assert "numerical-divergence" in names(result)
    states = [
        f for f in named(result, "benchmark-methodology") if "max_action_diff_abs" in f.evidence
    ]
    assert states, "a comparison of different states must be offered as an explanation"


def test_large_action_diff_says_which_command_tells_miscompile_from_states():
    result = triaged("act_severe_action_diff_report.md")
    for finding in result.findings:
        if "max_action_diff_abs" in finding.evidence:
            assert any("--compile-how methods" in step for step in finding.next_steps)


def test_large_action_diff_leaves_the_inference_speedup_unread():
    result = triaged("act_severe_action_diff_report.md")
    insufficient = named(result, "insufficient-speedup")
    assert all("speedup_inference_x" not in f.evidence for f in insufficient)
    assert "launch-bound" not in names(result)


def test_action_diff_at_gpu_rounding_level_is_a_strict_tolerance():
    result = variant(correctness={"action_diff": 8.6e-5, "inference_correct": False})
    assert "tolerance-too-strict" in names(result)
    action = [f for f in result.findings if "max_action_diff_abs" in f.evidence]
    assert {f.name for f in action} <= {"tolerance-too-strict", "precision-setting-mismatch"}


def test_same_loss_diff_on_a_cpu_is_beyond_rounding():
    result = variant(device="cpu")
    assert "tolerance-too-strict" not in names(result)
    assert {"rng-divergence", "numerical-divergence"} <= names(result)


def test_a_missing_correctness_block_is_listed_once():
    missing = triaged("act_compile_error_report.md").report.missing
    assert "correctness" in missing
    assert not [key for key in missing if key.startswith("correctness.")]


def test_missing_keys_do_not_crash_and_are_listed():
    result = triaged("act_missing_keys_report.md")
    assert "device" in result.report.missing
    assert "time_compiled_inference" in result.report.missing
    assert "rng-divergence" in names(result)
    assert "compiled-path-not-exercised" not in names(result)
    by_name = {criterion.name: criterion for criterion in result.verdict.criteria}
    assert by_name[INFERENCE_SPEEDUP].passed is None


def test_compile_error_is_the_only_conclusion():
    data = raw_data("act_compile_error_report.md")
    result = triaged("act_compile_error_report.md")
    (finding,) = result.findings
    assert finding.name == "compilation-failed" and finding.severity == "error"
    assert finding.evidence["compilation_error"].startswith(
        data["compilation_error"].splitlines()[0]
    )
    # the line after "... raised:" is what went wrong
    assert data["compilation_error"].splitlines()[1] in finding.evidence["compilation_error"]
    assert "Inductor" in finding.cause
    assert any("--backend eager" in step for step in finding.next_steps)
    assert result.verdict.criteria[0].passed is False
    assert result.verdict.label == "NEEDS WORK"


def test_slowdown_with_compiled_code_running_is_insufficient_speedup():
    data = raw_data("act_slowdown_report.md")
    result = triaged("act_slowdown_report.md")
    assert "compiled-path-not-exercised" not in names(result)
    slow = {
        key: finding
        for finding in named(result, "insufficient-speedup")
        for key in finding.evidence
        if key.startswith("speedup_")
    }
    assert slow["speedup_inference_x"].evidence["speedup_inference_x"] == data["speedup_inference"]
    assert slow["speedup_training_x"].evidence["speedup_training_x"] == data["speedup_training"]
    assert all(finding.confidence == "high" for finding in slow.values())


def test_slowdown_that_adds_up_to_seconds_suggests_a_recompile():
    data = raw_data("act_slowdown_report.md")
    report = read_report(REPORTS / "act_slowdown_report.md")
    (finding,) = named(triage(report), "recompilation")
    extra_ms = data["time_compiled_inference"] - data["time_original_inference"]
    assert finding.evidence["extra_in_all_s"] == pytest.approx(
        extra_ms * report.inference_runs / 1000
    )


def test_slow_gpu_inference_suggests_launch_bound():
    assert "launch-bound" in names(triaged("act_slowdown_report.md"))


def test_nan_and_infinity_are_read_as_floats_and_fail_their_criteria():
    result = triaged("act_non_finite_report.md")
    assert math.isnan(result.report.correctness.loss_diff)
    assert math.isinf(result.report.correctness.action_diff)
    by_name = {criterion.name: criterion for criterion in result.verdict.criteria}
    assert by_name[LOSS_DIFF].passed is False
    assert by_name[ACTION_DIFF].passed is False
    assert by_name[TRAINING_SPEEDUP].passed is False


def test_non_finite_outputs_are_numerical_divergence_and_timings_methodology():
    result = triaged("act_non_finite_report.md")
    divergent = named(result, "numerical-divergence")
    assert {key for f in divergent for key in f.evidence} >= {
        "loss_diff_abs",
        "max_action_diff_abs",
    }
    assert any("time_compiled_training_ms" in f.evidence for f in result.findings)


def test_a_verdict_the_numbers_contradict_is_reported():
    # The non-finite variant keeps "inference_correct": true beside an infinite action diff.
    disagreements = triaged("act_non_finite_report.md").verdict.disagreements
    assert any(line.startswith(ACTION_DIFF) for line in disagreements)


def test_healthy_report_has_no_error_and_succeeds():
    result = triaged("act_healthy_raw_data.json")
    assert not result.has_error
    assert result.verdict.label == "SUCCESS"


@pytest.mark.parametrize("path", sorted(p.name for p in REPORTS.glob("act_*")))
@pytest.mark.parametrize("width", [80, 200])
def test_every_report_renders_and_serialises(path, width):
    result = triaged(path)
    console = Console(width=width, record=True, color_system=None)
    console.print(render_triage(result))
    text = console.export_text()
    assert result.verdict.label in text
    assert max(len(line) for line in text.splitlines()) <= width
    document = json.loads(triage_json(result))
    assert [f["code"] for f in document["findings"]] == [f.code for f in result.findings]


# --- unreadable input ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["not_a_report.md", "unrelated.json", "no_such_report.md"])
def test_what_is_not_a_report_is_a_one_line_input_error(name):
    with pytest.raises(InputFileError) as error:
        read_report(REPORTS / name)
    assert "\n" not in str(error.value)
    assert name in str(error.value)


def test_a_directory_binary_or_broken_json_is_a_one_line_input_error(tmp_path):
    binary = tmp_path / "report.md"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    broken = tmp_path / "broken.md"
    broken.write_text('# Report\n\n## Raw Data\n\n```json\n{"success": false,\n```\n')
    for path in (tmp_path, binary, broken):
        with pytest.raises(InputFileError) as error:
            read_report(path)
        assert "\n" not in str(error.value)


# --- the command --------------------------------------------------------------------------


def test_triage_command_exits_1_when_an_error_finding_stands(run_cli, capsys):
    assert run_cli(["triage", str(REFERENCE)]) == 1
    out = capsys.readouterr().out
    assert "NEEDS WORK" in out
    assert "compiled-path-not-exercised" in out


def test_triage_command_exits_0_on_a_healthy_report(run_cli, capsys):
    assert run_cli(["triage", str(REPORTS / "act_healthy_raw_data.json")]) == 0


def test_triage_command_on_a_non_report_is_one_line_and_exit_2(run_cli, capsys):
    assert run_cli(["triage", str(REPORTS / "not_a_report.md")]) == 2
    captured = capsys.readouterr()
    assert re.fullmatch(r"compile-diagnose: error: .+\n", captured.err)


def test_triage_json_to_stdout_is_only_json(run_cli, capsys):
    run_cli(["triage", str(REFERENCE), "--json", "-"])
    document = json.loads(capsys.readouterr().out)
    assert document["schema_version"] == 1
    assert document["verdict"]["recomputed"] == "NEEDS WORK"
    assert "compiled-path-not-exercised" in {f["name"] for f in document["findings"]}


def test_triage_json_without_a_path_is_stdout_only_json(run_cli, capsys):
    # `--json` alone is `--json -`, as on every other command.
    assert run_cli(["triage", str(REFERENCE), "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["verdict"]["reported"] == "NEEDS WORK"
    assert [c["name"] for c in document["verdict"]["criteria"]] == list(CRITERIA)


def test_triage_writes_json_and_markdown_files(run_cli, capsys, tmp_path):
    json_path, markdown_path = tmp_path / "triage.json", tmp_path / "out" / "triage.md"
    run_cli(["triage", str(REFERENCE), "--json", str(json_path), "--markdown", str(markdown_path)])
    assert "NEEDS WORK" in capsys.readouterr().out
    codes = [f["code"] for f in json.loads(json_path.read_text())["findings"]]
    markdown = markdown_path.read_text()
    assert all(code in markdown for code in codes)
    assert "| criterion |" in markdown


# --- TF32-sized differences ---------------------------------------------------------------

# A report of LeRobot's December 2025 script on an RTX 4090, run with --disable-dropout and cuDNN
# TF32 allowed; the script records no setting, so they stand here as its options' names.
TF32_REPORT = {
    "success": False,
    "policy": "act",
    "device": "cuda",
    "pytorch_version": "2.9.1+cu128",
    "device_name": "NVIDIA GeForce RTX 4090",
    "disable_dropout": True,
    "disable_cudnn_tf32": False,
    "compilation_successful": True,
    "compilation_error": None,
    "correctness": {
        "inference_correct": False,
        "training_correct": False,
        "action_diff": 1.95e-3,
        "loss_diff": 1.11e-4,
    },
    "correctness_passed": False,
    "inference_benchmarked": True,
    "training_benchmarked": True,
    "time_original_inference": 12.5,
    "time_compiled_inference": 10.0,
    "speedup_inference": 1.25,
    "time_original_training": 48.0,
    "time_compiled_training": 40.0,
    "speedup_training": 1.2,
}
# The same run with cuDNN TF32 disabled.
TF32_OFF = {
    "disable_cudnn_tf32": True,
    "success": True,
    "correctness_passed": True,
    "correctness": {
        "inference_correct": True,
        "training_correct": True,
        "action_diff": 2e-6,
        "loss_diff": 0.0,
    },
}
SCRIPT_SETTINGS = ("device_name", "disable_dropout", "disable_cudnn_tf32")


def tf32_report(**changes) -> dict:
    correctness = {**TF32_REPORT["correctness"], **changes.pop("correctness", {})}
    report = {**TF32_REPORT, **changes, "correctness": correctness}
    return {key: value for key, value in report.items() if value is not None}


def triage_data(data: dict) -> TriageResult:
    return triage(parse_report_text(json.dumps(data)))


def action_findings(result: TriageResult, name: str):
    return [f for f in named(result, name) if "max_action_diff_abs" in f.evidence]


def test_tf32_sized_differences_rank_a_precision_warning_first():
    result = triage_data(TF32_REPORT)
    first = result.findings[0]
    assert first.name == "precision-setting-mismatch"
    assert first.severity == "warning"
    assert not result.has_error
    assert "numerical-divergence" not in names(result)
    correctness = TF32_REPORT["correctness"]
    assert first.evidence["max_action_diff_abs"] == correctness["action_diff"]
    assert first.evidence["loss_diff_abs"] == correctness["loss_diff"]
    by_name = {criterion.name: criterion for criterion in result.verdict.criteria}
    assert first.code in by_name[ACTION_DIFF].note
    assert first.code in by_name[LOSS_DIFF].note


def test_tf32_finding_names_the_settings_and_the_confirming_run():
    (finding,) = named(triage_data(TF32_REPORT), "precision-setting-mismatch")
    for setting in (
        "torch.backends.cudnn.allow_tf32",
        "torch.backends.cuda.matmul.allow_tf32",
        "torch.set_float32_matmul_precision",
    ):
        assert setting in finding.cause
    steps = "\n".join(finding.next_steps)
    assert "torch.backends.cudnn.allow_tf32 = False" in steps
    assert "torch.backends.cuda.matmul.allow_tf32 = False" in steps
    assert "compile-diagnose act --device cuda" in steps
    assert TF32_REPORT["device_name"] in finding.cause


def test_tf32_finding_says_what_the_report_states_and_what_was_assumed():
    (finding,) = named(triage_data(TF32_REPORT), "precision-setting-mismatch")
    assert finding.evidence["cudnn_allow_tf32"] is (not TF32_REPORT["disable_cudnn_tf32"])
    assert finding.evidence["dropout_disabled"] is TF32_REPORT["disable_dropout"]
    assert finding.evidence["cuda_matmul_allow_tf32"] is False
    assumed = " ".join(finding.evidence["assumed"])
    assert "matmul" in assumed and "float32" in assumed
    assert "cuDNN" not in assumed and "dropout" not in assumed
    # With dropout off ACT draws no random numbers: the loss is not rng-divergence.
    assert "rng-divergence" not in names(triage_data(TF32_REPORT))


def test_a_report_without_settings_still_ranks_tf32_first_and_says_it_assumed_them():
    result = triage_data(tf32_report(**dict.fromkeys(SCRIPT_SETTINGS)))
    first = result.findings[0]
    assert first.name == "precision-setting-mismatch"
    assert "loss_diff_abs" not in first.evidence  # dropout may have drawn random numbers
    assert "rng-divergence" in names(result)
    assumed = " ".join(first.evidence["assumed"])
    assert "cuDNN TF32 on" in assumed and "dropout" in assumed
    assert not result.has_error


def test_matmul_tf32_alone_is_enough_to_explain_the_difference():
    result = triage_data(tf32_report(disable_cudnn_tf32=True, matmul_precision="high"))
    assert result.findings[0].name == "precision-setting-mismatch"
    assert result.findings[0].evidence["cuda_matmul_allow_tf32"] is True


def test_the_tf32_off_run_passes_with_no_correctness_finding():
    result = triage_data(tf32_report(**TF32_OFF))
    by_name = {criterion.name: criterion for criterion in result.verdict.criteria}
    assert by_name[ACTION_DIFF].passed is True
    assert by_name[LOSS_DIFF].passed is True
    assert not [
        f for f in result.findings if {"max_action_diff_abs", "loss_diff_abs"} & f.evidence.keys()
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {"correctness": {"action_diff": 0.5}},
        {"device": "cpu"},
        {"dtype": "float64"},
        {"disable_cudnn_tf32": True, "matmul_precision": "highest"},
    ],
    ids=["much-larger", "cpu", "float64", "tf32-off"],
)
def test_differences_tf32_cannot_explain_stay_numerical_divergence(changes):
    result = triage_data(tf32_report(**changes))
    (divergence,) = action_findings(result, "numerical-divergence")
    assert divergence.severity == "error"
    assert result.findings[0] is divergence
    assert not action_findings(result, "precision-setting-mismatch")
    if changes.get("device") != "cpu":
        assert divergence.evidence["tf32_cannot_explain"]


def test_a_tf32_sized_action_difference_leaves_the_inference_speedup_readable():
    result = triage_data(tf32_report(time_compiled_inference=12.0, speedup_inference=12.5 / 12.0))
    slow = [f for f in named(result, "insufficient-speedup") if "speedup_inference_x" in f.evidence]
    assert len(slow) == 1
    assert slow[0].confidence == "high"  # the actions differ: compiled code ran


def test_settings_are_read_from_the_scripts_command_line_in_the_markdown():
    data = tf32_report(**dict.fromkeys(SCRIPT_SETTINGS))
    command = (
        "python benchmarks/policies_compilation/benchmark_inference_compile_lerobot.py "
        "--policy act --device cuda --disable-dropout --matmul-precision high"
    )
    text = f"# Report\n\n    {command}\n\n## Raw Data\n\n```json\n{json.dumps(data)}\n```\n"
    settings = parse_report_text(text).settings
    assert settings.dropout_disabled is True
    assert settings.cudnn_allow_tf32 is True  # no --disable-cudnn-tf32 on the command line
    assert settings.matmul_precision == "high"
    # The Raw Data's own keys win over the command line's; unknown values are malformed.
    data.update(disable_cudnn_tf32=True, matmul_precision="fastest")
    text = f"# Report\n\n    {command}\n\n## Raw Data\n\n```json\n{json.dumps(data)}\n```\n"
    report = parse_report_text(text)
    assert report.settings.cudnn_allow_tf32 is False
    assert report.settings.matmul_precision == "high"
    assert "matmul_precision" in report.malformed


def test_settings_a_report_lacks_are_not_missing_figures():
    report = parse_report_text(json.dumps(tf32_report(**dict.fromkeys(SCRIPT_SETTINGS))))
    settings_keys = {*SCRIPT_SETTINGS, "dtype", "matmul_precision"}
    assert not settings_keys & set(report.missing)
    assert "loss_consistency" in report.missing  # a reference key it lacks still is
    assert report.settings.dropout_disabled is None
    assert report.settings.cudnn_allow_tf32 is None


def test_a_tf32_report_renders_and_serialises_its_settings():
    result = triage_data(TF32_REPORT)
    console = Console(width=80, record=True, color_system=None)
    console.print(render_triage(result))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "precision-setting-mismatch" in text
    document = json.loads(triage_json(result))
    assert document["report"]["settings"]["device_name"] == TF32_REPORT["device_name"]
    assert document["findings"][0]["evidence"]["cudnn_allow_tf32"] is True
