"""`compile-diagnose act` end to end on the CPU: bad input, real inputs, and the output folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli
from tiny_lerobot import CAMERA, write_tiny_act_checkpoint, write_tiny_dataset

from probes.targets.lerobot.dataset import read_dataset

QUICK = ["--preset", "tiny", "--device", "cpu", "--backend", "aot_eager"]
# The tests below read the benchmark's figures only: the other probes are tested on their own.
BENCHMARK_ONLY = [*QUICK, "--probes", "benchmark"]


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("compile-diagnose")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["acts"], "invalid choice: 'acts'"),
        (["act", "--device", "cuda"], "CUDA is not available"),
        (["act", "--batch-size", "0"], "must be at least 1"),
        (["act", "--iters-inference", "-3"], "must be at least 1"),
        (["act", "--mode", "fastest"], "invalid choice: 'fastest'"),
        (["act", "--backend", "no_such_backend"], "unknown backend"),
        (["act", "--what-if", "freezing,warp-speed"], "unknown what-if warp-speed"),
        (["act", "--compile-how", "config", *QUICK], "has no compile switch"),
        (["act", "--policy.not_a_field=1", *QUICK], "no field 'not_a_field'"),
        (["act", "--policy.use_vae=maybe", *QUICK], "--policy.use_vae=maybe"),
        (["act", "--dataset-root", "/nonexistent/dataset", *QUICK], "/nonexistent/dataset"),
        (["act", "--pretrained", "/nonexistent/checkpoint", *QUICK], "/nonexistent/checkpoint"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run_cli([*args, "--out", str(tmp_path / "out")], capsys)
    assert code == 2
    assert expected in one_error_line(err)


def test_unknown_policy_error_lists_the_known_policies(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["diffusionz"], capsys)
    assert code == 2 and "'act'" in one_error_line(err)


def test_unwritable_out_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = run_cli(["act", *QUICK, "--out", str(blocker / "out")], capsys)
    assert code == 2
    assert "cannot write there" in one_error_line(err)


def test_dataset_root_gives_real_normalised_batches(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    dataset = write_tiny_dataset(tmp_path)
    out = tmp_path / "out"
    code, stdout, _ = run_cli(
        ["act", *BENCHMARK_ONLY, "--dataset-root", str(dataset.root), "--out", str(out), "--json"],
        capsys,
    )
    assert code in (0, 1)
    diagnosis = json.loads(stdout)
    assert diagnosis == json.loads((out / "diagnosis.json").read_text())
    assert "local dataset" in diagnosis["target"]["batch_source"]
    assert diagnosis["target"]["input_features"][CAMERA] == [3, 32, 32]
    assert diagnosis["reference_metrics"]["compilation_successful"] is True


def test_pretrained_folder_loads_offline_and_is_diagnosed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    dataset = read_dataset(write_tiny_dataset(tmp_path).root)
    folder = tmp_path / "checkpoint"
    write_tiny_act_checkpoint(
        folder, dataset.input_features, dataset.output_features, dataset.stats
    )
    out = tmp_path / "out"
    code, _, _ = run_cli(
        ["act", *BENCHMARK_ONLY, "--pretrained", str(folder), "--out", str(out)], capsys
    )
    diagnosis = json.loads((out / "diagnosis.json").read_text())
    assert code in (0, 1)
    assert diagnosis["target"]["weights"] == str(folder)
    assert diagnosis["target"]["config"]["dim_model"] == 32  # the checkpoint's, not the preset's
    assert diagnosis["reference_metrics"]["training_benchmarked"] is True


def test_wrapper_compile_reproduces_the_reference_reports_exact_zero(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run_cli(["act", *BENCHMARK_ONLY, "--compile-how", "wrapper", "--out", str(out)], capsys)
    diagnosis = json.loads((out / "diagnosis.json").read_text())
    assert diagnosis["reference_metrics"]["correctness"]["action_diff"] == 0.0
    assert diagnosis["probes"]["benchmark"]["capture"]["inference"]["ran_compiled_code"] is False


def test_output_to_a_pipe_has_no_progress_spinner(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _, stdout, err = run_cli(["act", *BENCHMARK_ONLY, "--out", str(out)], capsys)
    assert "Reference criteria" in stdout
    assert not any(ch in err for ch in "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
    # The Markdown report is written beside diagnosis.json, its Raw Data the reference keys.
    report = (out / "report.md").read_text()
    raw = report.split("## Raw Data")[1].split("```json")[1].split("```")[0]
    assert json.loads(raw) == json.loads((out / "diagnosis.json").read_text())["reference_metrics"]
    for section in ("## Correctness Results", "## Performance Results", "## Diagnosis"):
        assert section in report
