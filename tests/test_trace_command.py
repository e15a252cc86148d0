"""`compile-diagnose trace FILE`, run through the real command line."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import pytest
import torch
from rich.console import Console

from analyzer.cli import main
from analyzer.render.kernels import trace_summary_view
from probes.kernels.kineto import load_trace
from probes.kernels.trace_summary import summarize

TRACES = Path(__file__).parent / "data" / "traces"
EAGER = TRACES / "a100_alexnet_eager.pt.trace.json.gz"
COMPILED = TRACES / "a100_compiled_triton.pt.trace.json.gz"
DOCUMENTED_KEYS = {
    "kernel_count",
    "device_time_ms",
    "gpu_busy_fraction",
    "span_ms",
    "launch_api_ms",
    "compiled_region_ms",
    "top_kernels",
    "findings",
}


@pytest.fixture(scope="module")
def cpu_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = torch.nn.Linear(8, 8)
    activities = [torch.profiler.ProfilerActivity.CPU]
    with warnings.catch_warnings():  # "Profiler clears events ...": one cycle, nothing lost
        warnings.simplefilter("ignore", UserWarning)
        with torch.profiler.profile(activities=activities) as profiler:
            model(torch.randn(4, 8))
    path = tmp_path_factory.mktemp("cpu") / "cpu.pt.trace.json"
    profiler.export_chrome_trace(str(path))
    return path


def run_json(path: Path, capsys: pytest.CaptureFixture[str]) -> dict:
    assert main(["trace", str(path), "--json", "-"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_holds_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_json(COMPILED, capsys).keys() >= DOCUMENTED_KEYS


def test_json_counts_the_kernels_in_the_trace(capsys: pytest.CaptureFixture[str]) -> None:
    raw = json.loads(gzip.decompress(EAGER.read_bytes()))["traceEvents"]
    record = run_json(EAGER, capsys)
    assert record["kernel_count"] == sum(1 for e in raw if e.get("cat") == "kernel")


def test_idle_gpu_in_the_compiled_fixture_is_reported_launch_bound(
    capsys: pytest.CaptureFixture[str],
) -> None:
    record = run_json(COMPILED, capsys)
    assert record["gpu_busy_fraction"] < 0.5
    assert [f["name"] for f in record["findings"]] == ["launch-bound"]


def test_json_file_matches_what_is_printed_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "summary.json"
    assert main(["trace", str(COMPILED), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert json.loads(out.read_text()) == run_json(COMPILED, capsys)
    assert "triton_poi_fused_add_cos_sin_0" in printed


def test_json_path_in_a_folder_not_made_yet_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "not" / "made" / "summary.json"
    assert main(["trace", str(COMPILED), "--json", str(out)]) == 0
    capsys.readouterr()
    assert json.loads(out.read_text()) == run_json(COMPILED, capsys)


def test_json_path_that_cannot_be_written_is_a_one_line_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["trace", str(COMPILED), "--json", str(blocker / "summary.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--json" in err and "cannot write" in err


@pytest.mark.parametrize("argv", [["--json"], ["--json", "-"]], ids=["no value", "dash"])
def test_json_without_a_path_writes_only_json_to_stdout(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # FILE first: `--json` takes an optional value, as on `compile-diagnose act`.
    assert main(["trace", str(COMPILED), *argv]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out)  # the whole of stdout is one JSON document
    assert record.keys() >= DOCUMENTED_KEYS
    assert captured.err == ""


def test_summary_names_the_compiled_region(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", str(COMPILED)]) == 0
    assert "Torch-Compiled Region: 0/0" in capsys.readouterr().out


def test_cpu_only_trace_is_said_to_hold_no_device_activity(
    cpu_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["trace", str(cpu_trace)]) == 0
    assert "no device activity" in " ".join(capsys.readouterr().out.split())


def test_cpu_only_trace_has_null_device_fields_in_json(
    cpu_trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = run_json(cpu_trace, capsys)
    assert record["has_device_activity"] is False
    assert [record[k] for k in ("kernel_count", "device_time_ms", "gpu_busy_fraction")] == [
        None,
        None,
        None,
    ]


@pytest.mark.parametrize("content", [b"hello, not a trace", b'{"no": "events"}'])
def test_not_a_trace_is_a_one_line_error_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    assert main(["trace", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("compile-diagnose: error: ")
    assert captured.err.count("\n") == 1
    assert captured.out == ""


def test_top_below_one_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", str(COMPILED), "--top", "0"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("compile-diagnose")
    assert captured.err.count("\n") == 1
    assert captured.out == ""


def test_a_missing_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["trace", str(tmp_path / "absent.json")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("width", [80, 200])
def test_summary_fits_the_terminal_width(width: int) -> None:
    console = Console(width=width, record=True)
    console.print(trace_summary_view(summarize(load_trace(EAGER))))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= width
    assert any("ampere_sgemm_32x32_sliced1x4_tn" in line for line in lines)


def test_the_command_line_parses_without_importing_torch() -> None:
    # `compile-diagnose trace` on a large file: importing torch first (2 s, 600 MB here) was a
    # third of its time; only the commands that diagnose import it, when they run
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from analyzer.cli import build_parser\n"
        "build_parser().parse_args(['trace', 'x.json'])\n"
        "print(sorted(m for m in ('torch', 'lerobot') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"
