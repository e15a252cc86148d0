"""The kernel-timing probe, for real, on the CPU: a small module eager against torch.compile."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from rich.console import Console

from analyzer.render.kernels import kernel_report_view
from analyzer.render.speed import speed_view
from probes.kernels.profiling import profile_kernels
from probes.records.kernels import LAUNCH_BOUND_BUSY, KernelTimingReport
from probes.records.names import SPEED_WHAT_IFS
from probes.records.serialize import dumps
from probes.speed.cudagraph_skips import watch_cudagraph_skips

CALLS = 2


def small_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))


def train_step(model: torch.nn.Module, inputs: torch.Tensor) -> Callable[[], None]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model(inputs).square().mean().backward()
        optimizer.step()

    return step


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kernels")


@pytest.fixture(scope="module")
def report(out_dir: Path) -> KernelTimingReport:
    inputs = torch.randn(8, 16)
    eager, twin = small_model(), small_model()
    compiled = torch.compile(twin, backend="aot_eager")
    eager_trained, twin_trained = copy.deepcopy(eager), copy.deepcopy(twin)
    compiled_trained = torch.compile(twin_trained, backend="aot_eager")

    @torch.no_grad()
    def infer(model: torch.nn.Module) -> torch.Tensor:
        return model(inputs)

    return profile_kernels(
        {
            "forward": (lambda: infer(eager), lambda: infer(compiled)),
            "train step": (
                train_step(eager_trained, inputs),
                train_step(compiled_trained, inputs),
            ),
        },
        device="cpu",
        out_dir=out_dir,
        warmup=2,
        calls=CALLS,
    )


def entry(report: KernelTimingReport, name: str):
    return next(e for e in report.entry_points if e.name == name)


def test_traces_are_written_under_tensorboard_eager_and_compiled(
    report: KernelTimingReport, out_dir: Path
) -> None:
    for side in ("eager", "compiled"):
        written = sorted(p.name for p in (out_dir / "tensorboard" / side).iterdir())
        assert [name.split(".")[0] for name in written] == ["forward", "train_step"]
        assert all(name.endswith(".pt.trace.json") for name in written)


def test_trace_paths_in_the_report_exist(report: KernelTimingReport) -> None:
    for e in report.entry_points:
        assert Path(e.eager.trace_path).is_file()
        assert Path(e.compiled.trace_path).is_file()


def test_each_side_holds_exactly_the_profiled_calls(report: KernelTimingReport) -> None:
    for e in report.entry_points:
        assert (e.eager.calls, e.compiled.calls) == (CALLS, CALLS)
        assert len(e.compiled.wall_ms_samples) == CALLS


def test_compiled_region_is_found_on_the_compiled_side_only(report: KernelTimingReport) -> None:
    forward = entry(report, "forward")
    # The frame id depends on what this process compiled before: name the region, not the id.
    (region,) = forward.compiled.compiled_region_names
    assert region.startswith("Torch-Compiled Region: ")
    assert forward.compiled.compiled_regions_per_call == 1.0
    assert forward.eager.compiled_region_ms_per_call is None


def test_compiled_region_time_fits_in_the_call(report: KernelTimingReport) -> None:
    compiled = entry(report, "train step").compiled
    assert 0 < compiled.compiled_region_ms_per_call <= compiled.span_ms_per_call


def test_device_fields_are_none_on_cpu(report: KernelTimingReport) -> None:
    for e in report.entry_points:
        for side in (e.eager, e.compiled):
            assert side.has_device_activity is False
            assert (side.kernels_per_call, side.device_ms_per_call, side.gpu_busy_fraction) == (
                None,
                None,
                None,
            )
            assert side.top_ops, "a CPU run is described by its host ops"


def test_report_records_the_launch_bound_line_in_force(
    report: KernelTimingReport,
) -> None:
    assert report.busy_threshold == LAUNCH_BOUND_BUSY


def test_report_is_json_with_the_tensorboard_command(report: KernelTimingReport) -> None:
    record = json.loads(dumps(report))
    assert record["tensorboard_command"] == f"tensorboard --logdir {record['tensorboard_logdir']}"
    assert record["entry_points"][0]["compiled"]["gpu_busy_fraction"] is None


@pytest.mark.parametrize("width", [80, 200])
def test_report_renders_within_the_terminal_width(report: KernelTimingReport, width: int) -> None:
    console = Console(width=width, record=True)
    console.print(kernel_report_view(report))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width
    assert "forward" in text and "train step" in text


def test_skip_watch_keeps_what_inductor_reports_about_a_cudagraph_skip() -> None:
    from torch._inductor.cudagraph_utils import log_cudagraph_skip_and_bump_counter

    with watch_cudagraph_skips() as skips:
        log_cudagraph_skip_and_bump_counter("skipping cudagraphs due to mutated inputs (1)")
    assert skips.count == 1
    assert skips.reasons == ["skipping cudagraphs due to mutated inputs (1)"]


def test_rule_fixtures_have_the_shape_the_probe_records(report: KernelTimingReport) -> None:
    record = json.loads(dumps(report))
    fixtures = Path(__file__).parent / "fixtures"
    for path in sorted(fixtures.glob("kernels_*.json")):
        recorded = json.loads(path.read_text())
        if "entry_points" not in recorded:
            continue  # a single trace summary, checked in test_trace_analysis
        assert recorded.keys() == record.keys(), path.name
        for side in ("eager", "compiled"):
            assert (
                recorded["entry_points"][0][side].keys() == record["entry_points"][0][side].keys()
            )


@pytest.mark.parametrize("width", [80, 200])
def test_a_measured_reduce_overhead_what_if_renders_its_speedups(width: int) -> None:
    what_ifs = json.loads(
        (Path(__file__).parent / "fixtures" / "speed_reduce_overhead.json").read_text()
    )["launch_bound_measured"]
    speedup = what_ifs[0]["speedup_vs_eager"]
    console = Console(width=width, record=True)
    console.print(speed_view({SPEED_WHAT_IFS: what_ifs}))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= width
    assert f"{speedup:.2f}x" in text
