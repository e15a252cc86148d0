"""Trace analysis on two real A100 traces and on traces recorded here (CPU) or built by hand.

Expected figures are recomputed from the raw JSON in each test, not hard-coded.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch

from probes.kernels.kineto import TraceFormatError, load_trace
from probes.kernels.trace_summary import kernel_family, summarize
from probes.records.serialize import to_jsonable

TRACES = Path(__file__).parent / "data" / "traces"
EAGER = TRACES / "a100_alexnet_eager.pt.trace.json.gz"
COMPILED = TRACES / "a100_compiled_triton.pt.trace.json.gz"
LAUNCH_NAMES = {"cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cudaGraphLaunch"}


def raw_complete_events(path: Path) -> list[dict]:
    events = json.loads(gzip.decompress(path.read_bytes()))["traceEvents"]
    return [e for e in events if e.get("ph") == "X"]


def of_category(events: list[dict], *categories: str) -> list[dict]:
    return [e for e in events if e.get("cat") in categories]


def write_trace(path: Path, events: list[dict]) -> Path:
    path.write_text(json.dumps({"schemaVersion": 1, "traceEvents": events}))
    return path


def x(name: str, cat: str, ts: float, dur: float, tid: int = 1, **args: object) -> dict:
    return {"ph": "X", "name": name, "cat": cat, "ts": ts, "dur": dur, "pid": 1, "tid": tid,
            "args": args}  # fmt: skip


@pytest.mark.parametrize("path", [EAGER, COMPILED], ids=["eager", "compiled"])
def test_kernel_memcpy_and_memset_counts_match_the_raw_events(path: Path) -> None:
    raw = raw_complete_events(path)
    summary = summarize(load_trace(path))
    assert summary.kernel_count == len(of_category(raw, "kernel"))
    assert summary.memcpy_count == len(of_category(raw, "gpu_memcpy"))
    assert summary.memset_count == len(of_category(raw, "gpu_memset"))


@pytest.mark.parametrize("path", [EAGER, COMPILED], ids=["eager", "compiled"])
def test_launch_counts_match_the_raw_runtime_and_driver_calls(path: Path) -> None:
    raw = raw_complete_events(path)
    expected: dict[str, int] = {}
    for e in raw:
        if e["name"] in LAUNCH_NAMES:
            expected[e["name"]] = expected.get(e["name"], 0) + 1
    summary = summarize(load_trace(path))
    assert summary.launch_counts == expected
    assert summary.launch_api_ms == pytest.approx(
        sum(e["dur"] for e in raw if e["name"] in LAUNCH_NAMES) / 1e3
    )


def test_the_triton_kernel_is_launched_through_the_driver_api() -> None:
    summary = summarize(load_trace(COMPILED))
    assert summary.launch_counts == {"cuLaunchKernel": 1}
    assert summary.kernel_launch_count == 1


@pytest.mark.parametrize("path", [EAGER, COMPILED], ids=["eager", "compiled"])
def test_device_time_is_kernels_copies_and_memsets_only(path: Path) -> None:
    raw = raw_complete_events(path)
    device = of_category(raw, "kernel", "gpu_memcpy", "gpu_memset")
    summary = summarize(load_trace(path))
    assert summary.device_time_ms == pytest.approx(sum(e["dur"] for e in device) / 1e3)


def test_busy_fraction_is_the_covered_microseconds_over_the_span() -> None:
    # The eager trace has whole-microsecond times: count covered microseconds one by one.
    raw = raw_complete_events(EAGER)
    activity = [e for e in raw if e["cat"] not in ("user_annotation", "Trace")]
    start = min(e["ts"] for e in activity)
    end = max(e["ts"] + e["dur"] for e in activity)
    covered: set[int] = set()
    for e in of_category(raw, "kernel", "gpu_memcpy", "gpu_memset"):
        covered.update(range(int(e["ts"]), int(e["ts"] + e["dur"])))
    summary = summarize(load_trace(EAGER))
    assert summary.span_ms == pytest.approx((end - start) / 1e3)
    assert summary.gpu_busy_ms == pytest.approx(len(covered) / 1e3)
    assert summary.gpu_busy_fraction == pytest.approx(len(covered) / (end - start))


def test_compiled_fixture_shows_its_compiled_region_and_triton_kernel() -> None:
    summary = summarize(load_trace(COMPILED))
    assert summary.compiled_region_names == ["Torch-Compiled Region: 0/0"]
    region = next(e for e in raw_complete_events(COMPILED) if e["name"].startswith("Torch-Comp"))
    assert summary.compiled_region_ms == pytest.approx(region["dur"] / 1e3)
    top = summary.top_kernels[0]
    assert (top.name, top.family, top.count) == ("triton_poi_fused_add_cos_sin_0", "triton", 1)


def test_eager_fixture_has_no_compiled_region() -> None:
    summary = summarize(load_trace(EAGER))
    assert summary.compiled_region_count == 0
    assert summary.compiled_region_ms is None


def test_a_profiler_step_that_outlives_the_trace_ends_with_its_last_event() -> None:
    raw = raw_complete_events(COMPILED)
    activity = [e for e in raw if e["cat"] not in ("user_annotation", "Trace")]
    step = next(e for e in raw if e["name"].startswith("ProfilerStep#"))
    last_end = max(e["ts"] + e["dur"] for e in activity)
    summary = summarize(load_trace(COMPILED))
    assert summary.window_source == "ProfilerStep"
    assert summary.span_ms == pytest.approx((last_end - step["ts"]) / 1e3)
    assert summary.step_ms == [pytest.approx(step["dur"] / 1e3)]


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("triton_poi_fused_add_cos_sin_0", "triton"),
        ("ampere_sgemm_32x32_sliced1x4_tn", "cublas"),
        ("nvjet_tst_128x64_64x8_2x1_v_bz_coopA_TNT", "cublas"),
        ("cudnn_ampere_scudnn_128x64_relu_xregs_large_nn_v1", "cudnn"),
        ("sm80_xmma_fprop_implicit_gemm_indexed_tf32f32_tf32f32_f32_nhwckrsc_nchw", "cudnn"),
        (
            "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float>>",
            "other",
        ),
    ],
)
def test_kernels_are_split_by_library(name: str, family: str) -> None:
    assert kernel_family(name) == family


def test_library_split_covers_every_kernel_of_the_eager_fixture() -> None:
    summary = summarize(load_trace(EAGER))
    assert sum(f.count for f in summary.kernel_families) == summary.kernel_count
    assert sum(f.total_ms for f in summary.kernel_families) == pytest.approx(summary.kernel_time_ms)
    assert {f.family for f in summary.kernel_families if f.count} == {"cublas", "cudnn", "other"}


@pytest.mark.filterwarnings("ignore:.*Profiler clears events")
def test_a_cpu_only_trace_has_no_device_activity_and_no_device_figures(tmp_path: Path) -> None:
    model = torch.nn.Linear(8, 8)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        model(torch.randn(4, 8))
    path = tmp_path / "cpu.pt.trace.json"
    profiler.export_chrome_trace(str(path))
    summary = summarize(load_trace(path))
    assert summary.has_device_activity is False
    device_fields = (summary.kernel_count, summary.device_time_ms, summary.gpu_busy_fraction,
                     summary.launch_api_ms, summary.top_kernels)  # fmt: skip
    assert device_fields == (None,) * 5
    assert "aten::addmm" in {op.name for op in summary.top_ops}


def test_gzipped_and_plain_json_read_alike(tmp_path: Path) -> None:
    plain = tmp_path / "compiled.json"
    plain.write_bytes(gzip.decompress(COMPILED.read_bytes()))
    assert summarize(load_trace(plain)).kernel_count == summarize(load_trace(COMPILED)).kernel_count


@pytest.mark.parametrize(
    "content",
    ["not json at all", json.dumps({"schemaVersion": 1}), json.dumps({"traceEvents": {}}),
     json.dumps([1, 2, 3]), json.dumps({"traceEvents": [{"ph": "X", "name": "a"}]})],
    ids=["text", "no-traceEvents", "events-not-a-list", "a-list", "event-without-ts"],
)  # fmt: skip
def test_a_file_that_is_not_a_trace_is_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "not_a_trace.json"
    path.write_text(content)
    with pytest.raises(TraceFormatError):
        load_trace(path)


def test_annotations_on_the_gpu_are_not_device_time(tmp_path: Path) -> None:
    path = write_trace(
        tmp_path / "t.json",
        [
            x("step", "gpu_user_annotation", 0, 100, tid=7),
            x("k", "kernel", 10, 30, tid=7),
            x("aten::add", "cpu_op", 0, 100),
        ],
    )
    assert summarize(load_trace(path)).device_time_ms == pytest.approx(0.030)


def test_a_kernel_belongs_to_the_step_whose_host_call_launched_it(tmp_path: Path) -> None:
    path = write_trace(
        tmp_path / "t.json",
        [
            x("ProfilerStep#1", "user_annotation", 0, 100),
            x("cudaLaunchKernel", "cuda_runtime", 90, 5, correlation=1),
            x("cudaLaunchKernel", "cuda_runtime", 200, 5, correlation=2),
            x("late", "kernel", 150, 20, tid=7, correlation=1),  # runs after its step
            x("next", "kernel", 210, 20, tid=7, correlation=2),  # launched after the step
        ],
    )
    summary = summarize(load_trace(path))
    assert summary.kernel_count == 1
    assert summary.top_kernels[0].name == "late"
    assert summary.span_ms == pytest.approx(0.170)  # the step stretched to its kernel's end


def test_nested_host_ops_are_not_counted_twice(tmp_path: Path) -> None:
    path = write_trace(
        tmp_path / "t.json",
        [x("aten::linear", "cpu_op", 0, 100), x("aten::addmm", "cpu_op", 10, 80)],
    )
    summary = summarize(load_trace(path))
    assert summary.cpu_op_self_ms == pytest.approx(0.100)
    assert {op.name: op.self_ms for op in summary.top_ops} == pytest.approx(
        {"aten::linear": 0.020, "aten::addmm": 0.080}
    )


def test_compiled_backward_counts_as_compiled_time(tmp_path: Path) -> None:
    path = write_trace(
        tmp_path / "t.json",
        [
            x("ProfilerStep#1", "user_annotation", 0, 100),
            x("Torch-Compiled Region: 0/0", "cpu_op", 0, 30),
            x("CompiledFunctionBackward", "cpu_op", 40, 30),
            x("Optimizer.step#AdamW.step", "cpu_op", 70, 30),
        ],
    )
    summary = summarize(load_trace(path))
    assert (summary.compiled_region_count, summary.compiled_backward_count) == (1, 1)
    assert summary.compiled_region_ms == pytest.approx(0.060)
    assert summary.outside_compiled_region_ms == pytest.approx(0.040)


def test_the_rule_fixture_of_a_trace_summary_has_the_current_shape() -> None:
    fixture = Path(__file__).parent / "fixtures" / "kernels_trace_summary.json"
    recorded = json.loads(fixture.read_text())
    assert recorded.keys() == to_jsonable(summarize(load_trace(COMPILED))).keys()
