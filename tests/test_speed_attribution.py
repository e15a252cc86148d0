"""The time attribution: hand-built Kineto traces with known answers, and one real profile.

Each synthetic trace is a few microseconds of events repeated over several ProfilerSteps, so the
expected figures are worked out once per call in the test and must come back per call.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from torch import nn

from probes.compile.capture import record_compiles
from probes.kernels.profiling import profile_call
from probes.records.names import COMPILED, EAGER
from probes.records.speed import (
    CATEGORIES,
    DEVICE_IDLE,
    DEVICE_TIMELINE,
    FRAMEWORK_OVERHEAD,
    GENERATED_KERNELS,
    HOST_TIMELINE,
    LIBRARY_KERNELS,
    OUTSIDE_COMPILED,
    EntrySpeed,
)
from probes.speed.attribution import attribute_entry_point, is_library_op

TRACES = Path(__file__).parent / "data" / "traces"
MAIN_TID = 1
DEVICE_TID = 7
STEPS = 2
STEP_US = 1000.0


def event(name: str, ts: float, dur: float, cat: str = "cpu_op", **extra: object) -> dict:
    tid = extra.pop("tid", MAIN_TID)
    return {
        "ph": "X",
        "cat": cat,
        "name": name,
        "ts": ts,
        "dur": dur,
        "pid": 1,
        "tid": tid,
        **extra,
    }


def write_steps(path: Path, call: Sequence[dict], step_us: float, steps: int = STEPS) -> Path:
    """`call` (times from 0) once per ProfilerStep, each step `step_us` long, a gap between."""
    events = [event("PyTorch Profiler (0)", -10, steps * (step_us + 50.0) + 10, cat="Trace")]
    for index in range(steps):
        offset = index * (step_us + 50.0)
        events.append(event(f"ProfilerStep#{index + 1}", offset, step_us, cat="user_annotation"))
        for raw in call:
            shifted = dict(raw, ts=raw["ts"] + offset)
            if "correlation" in raw.get("args", {}):
                shifted["args"] = {"correlation": raw["args"]["correlation"] + 1000 * index}
            events.append(shifted)
    path.write_text(json.dumps({"traceEvents": events}))
    return path


def shares(speed: EntrySpeed) -> dict[str, tuple[float | None, float | None]]:
    return {s.category: (s.eager_ms, s.compiled_ms) for s in speed.attribution}


def assert_adds_up(speed: EntrySpeed) -> None:
    """Each side's categories add up to its span per call."""
    eager = sum(s.eager_ms or 0.0 for s in speed.attribution)
    compiled = sum(s.compiled_ms or 0.0 for s in speed.attribution)
    assert eager == pytest.approx(speed.eager_ms, rel=1e-9)
    assert compiled == pytest.approx(speed.compiled_ms, rel=1e-9)


# Eager, per call (µs): linear [10, 40] holding t [12, 15] and addmm [16, 36]; a convolution
# [50, 80]; relu [85, 95]; the autograd wrapper of a convolution's backward [100, 110]; the rest
# of the 200 µs step is Python between ops.
EAGER_CALL = [
    event("aten::linear", 10, 30),
    event("aten::t", 12, 3),
    event("aten::addmm", 16, 20),
    event("aten::mkldnn_convolution", 50, 30),
    event("aten::relu", 85, 10),
    event("autograd::engine::evaluate_function: ConvolutionBackward0", 100, 10),
    event("eager (eager)", 1, 198, cat="user_annotation"),
]
EAGER_LIBRARY_US = (30 - 3 - 20) + 20 + 30  # linear's self time, addmm, convolution
EAGER_OTHER_US = 3 + 10 + 10


def eager_trace(tmp_path: Path) -> Path:
    return write_steps(tmp_path / "speed_eager.json", EAGER_CALL, 200.0)


def test_library_ops_are_named_vendor_calls() -> None:
    assert is_library_op("aten::addmm")
    assert is_library_op("aten::mkldnn_convolution")
    assert is_library_op("aten::convolution_backward")
    assert is_library_op("aten::_scaled_dot_product_flash_attention_for_cpu")
    assert is_library_op("mkldnn::_linear_pointwise")
    assert not is_library_op("aten::add")
    assert not is_library_op("autograd::engine::evaluate_function: ConvolutionBackward0")
    assert not is_library_op("ConvolutionBackward0")
    assert not is_library_op("Torch-Compiled Region: 0/0")


def test_eager_cpu_call_splits_into_library_ops_other_ops_and_python(tmp_path: Path) -> None:
    eager = eager_trace(tmp_path)
    speed = attribute_entry_point("inference", eager, eager, device_type="cpu")
    assert speed.basis == HOST_TIMELINE
    assert speed.eager_ms == pytest.approx(0.2)
    split = shares(speed)
    assert split[LIBRARY_KERNELS][0] == pytest.approx(EAGER_LIBRARY_US / 1e3)
    assert split[GENERATED_KERNELS][0] == pytest.approx(EAGER_OTHER_US / 1e3)
    assert split[FRAMEWORK_OVERHEAD][0] == pytest.approx(
        (200 - EAGER_LIBRARY_US - EAGER_OTHER_US) / 1e3
    )
    assert split[OUTSIDE_COMPILED][0] is None
    assert split[DEVICE_IDLE] == (None, None)
    assert [s.category for s in speed.attribution] == list(CATEGORIES)
    assert [op.name for op in speed.library_ops] == [
        "aten::mkldnn_convolution",
        "aten::addmm",
        "aten::linear",
    ]
    assert speed.library_ops[0].eager_ms == pytest.approx(0.03)
    assert speed.traces == [str(eager), str(eager)]
    assert_adds_up(speed)


# Compiled, per call (µs), as dynamo nests them: guards [10, 15]; region 0/0 [15, 100] runs its
# graph (CompiledFunction [20, 50]: a convolution [25, 40] and an add [42, 48]), then the break's
# eager code (item [52, 55], an eager mm [57, 59]), the resume frame's guards [62, 66] and its
# region 1/0 [66, 95] (Inductor's graph call [68, 90] holding addmm [70, 80]). Step: 110 µs.
RESUME_LINE = 3
COMPILED_CALL = [
    event("TorchDynamo Cache Lookup", 10, 5),
    event("Torch-Compiled Region: 0/0", 15, 85),
    event("Pregraph bytecode", 16, 2),
    event("CompiledFunction", 20, 30),
    event("aten::mkldnn_convolution", 25, 15),
    event("aten::add", 42, 6),
    event("aten::item", 52, 3),
    event("aten::mm", 57, 2),
    event("TorchDynamo Cache Lookup", 62, 4),
    event("Torch-Compiled Region: 1/0", 66, 29),
    event("## Call CompiledFxGraph fabc123 ##", 68, 22),
    event("aten::addmm", 70, 10),
]
GUARD_US = 5 + 4
GAP_US = (66 - 50) - 4  # after the graph call, less the resume frame's guards
REGION_US = (50 - 15) + (100 - 66)  # the regions, less the gap and the nested guards
LIBRARY_INSIDE_US = 15 + 10
LIBRARY_IN_GAP_US = 2


def compiled_trace(tmp_path: Path) -> Path:
    return write_steps(tmp_path / "speed_compiled.json", COMPILED_CALL, 110.0)


def user_file(tmp_path: Path) -> Path:
    source = tmp_path / "policy.py"
    source.write_text("def forward(self, x):\n    y = self.encoder(x)\n    if y.sum().item():\n")
    return source


def frames_of(source: Path) -> list[dict]:
    return [
        {"compile_id": "0/0", "function": "forward", "filename": str(source), "first_line": 1},
        {
            "compile_id": "1/0",
            "function": f"torch_dynamo_resume_in_forward_at_{RESUME_LINE}",
            "filename": str(source),
            "first_line": RESUME_LINE,
        },
    ]


def test_compiled_cpu_call_splits_regions_guards_and_breaks(tmp_path: Path) -> None:
    source = user_file(tmp_path)
    speed = attribute_entry_point(
        "inference",
        eager_trace(tmp_path),
        compiled_trace(tmp_path),
        device_type="cpu",
        compiled_frames=frames_of(source),
    )
    split = shares(speed)
    assert speed.compiled_ms == pytest.approx(0.11)
    library_us = LIBRARY_INSIDE_US + LIBRARY_IN_GAP_US
    outside_us = 110 - REGION_US - GUARD_US - LIBRARY_IN_GAP_US
    assert split[LIBRARY_KERNELS][1] == pytest.approx(library_us / 1e3)
    assert split[GENERATED_KERNELS][1] == pytest.approx((REGION_US - LIBRARY_INSIDE_US) / 1e3)
    assert split[FRAMEWORK_OVERHEAD][1] == pytest.approx(GUARD_US / 1e3)
    assert split[OUTSIDE_COMPILED][1] == pytest.approx(outside_us / 1e3)
    assert_adds_up(speed)

    (cost,) = speed.break_costs
    assert cost.compile_id == "1/0"
    assert cost.function == f"torch_dynamo_resume_in_forward_at_{RESUME_LINE}"
    assert cost.ms_per_call == pytest.approx(GAP_US / 1e3)
    assert cost.gaps_per_call == 1.0
    assert cost.location is not None
    assert (cost.location.filename, cost.location.lineno) == (str(source), RESUME_LINE)
    assert cost.location.function == "forward"
    assert cost.location.code == "if y.sum().item():"
    # Outside compiled code, the break's gap apart (its eager mm is library time already).
    assert speed.outside_compiled_rest_ms == pytest.approx(
        (outside_us - (GAP_US - LIBRARY_IN_GAP_US)) / 1e3
    )


def test_regions_one_after_another_charge_the_gap_between_them(tmp_path: Path) -> None:
    call = [
        event("Torch-Compiled Region: 0/0", 10, 30),
        event("aten::relu", 42, 2),
        event("TorchDynamo Cache Lookup", 45, 5),
        event("Torch-Compiled Region: 3/1", 50, 30),
        event("TorchDynamo Cache Lookup", 82, 3),
        event("Torch-Compiled Region: 3/1", 85, 10),
    ]
    compiled = write_steps(tmp_path / "speed_siblings.json", call, 100.0)
    frames = [{"compile_id": "3/0", "function": None, "filename": "x.py", "first_line": 1}]
    speed = attribute_entry_point(
        "inference", eager_trace(tmp_path), compiled, device_type="cpu", compiled_frames=frames
    )
    (cost,) = speed.break_costs
    assert cost.compile_id == "3/1"
    assert cost.ms_per_call == pytest.approx(((50 - 40) - 5 + (85 - 80) - 3) / 1e3)
    assert cost.gaps_per_call == 2.0
    assert (cost.function, cost.location) == ("", None)  # the recorded frame has no name
    assert_adds_up(speed)


# A compiled training step (µs): forward region [10, 60]; backward under autograd's engine
# [70, 130] (CompiledFunctionBackward [72, 128] holding mm [80, 100]); the optimizer's step
# annotation [140, 190] over two eager adds. Step: 200 µs.
TRAINING_CALL = [
    event("TorchDynamo Cache Lookup", 5, 5),
    event("Torch-Compiled Region: 0/0", 10, 50),
    event("CompiledFunction", 12, 45),
    event("aten::addmm", 15, 20),
    event("autograd::engine::evaluate_function: CompiledFunctionBackward", 70, 60),
    event("CompiledFunctionBackward", 72, 56),
    event("aten::mm", 80, 20),
    event("Optimizer.step#Adam.step", 140, 50, cat="user_annotation"),
    event("aten::add_", 145, 10),
    event("aten::add_", 160, 10),
]


def test_training_step_counts_compiled_backward_and_leaves_the_optimizer_outside(
    tmp_path: Path,
) -> None:
    compiled = write_steps(tmp_path / "speed_training.json", TRAINING_CALL, 200.0)
    speed = attribute_entry_point("training", eager_trace(tmp_path), compiled, device_type="cpu")
    split = shares(speed)
    regions_us = 50 + 56
    assert split[LIBRARY_KERNELS][1] == pytest.approx((20 + 20) / 1e3)
    assert split[GENERATED_KERNELS][1] == pytest.approx((regions_us - 40) / 1e3)
    assert split[FRAMEWORK_OVERHEAD][1] == pytest.approx(5 / 1e3)
    assert split[OUTSIDE_COMPILED][1] == pytest.approx((200 - regions_us - 5) / 1e3)
    assert speed.break_costs == []
    assert speed.outside_compiled_rest_ms == pytest.approx(split[OUTSIDE_COMPILED][1])
    assert_adds_up(speed)


def cuda_call(kernels: Sequence[tuple[str, float, float, str]]) -> list[dict]:
    """A host step launching each kernel (name, start, duration, category) on the device."""
    events = []
    for index, (name, start, dur, cat) in enumerate(kernels):
        events.append(
            event("cudaLaunchKernel", 2 + index, 1, cat="cuda_runtime", args={"correlation": index})
        )
        events.append(event(name, start, dur, cat=cat, tid=DEVICE_TID, args={"correlation": index}))
    return events


# Per call (µs), step 100 µs: cuBLAS [10, 30], a Triton kernel on another stream [20, 25],
# cuDNN [30, 45], flash attention [50, 60], Triton [60, 70], a copy [70, 75], and a Triton
# kernel launched in the step that ends after it [95, 105]: span 105, busy 70, library 45.
CUDA_KERNELS = [
    ("ampere_sgemm_128x64_nn", 10, 20, "kernel"),
    ("triton_red_fused_sum_1", 20, 5, "kernel"),
    ("cudnn_infer_volta_scudnn_128x64_relu_small_nn_v1", 30, 15, "kernel"),
    ("flash_fwd_kernel", 50, 10, "kernel"),
    ("triton_poi_fused_add_0", 60, 10, "kernel"),
    ("Memcpy HtoD (Pageable -> Device)", 70, 5, "gpu_memcpy"),
    ("triton_poi_fused_relu_2", 95, 10, "kernel"),
]


def test_cuda_splits_the_device_timeline(tmp_path: Path) -> None:
    call = [
        *cuda_call(CUDA_KERNELS),
        event("Torch-Compiled Region: 0/0", 1, 40),
        event("Torch-Compiled Region: 1/0", 50, 40),
    ]
    trace = write_steps(tmp_path / "speed_cuda.json", call, 100.0)
    speed = attribute_entry_point("inference", trace, trace, device_type="cuda")
    assert speed.basis == DEVICE_TIMELINE
    assert speed.eager_ms == pytest.approx(0.105)
    split = shares(speed)
    assert split[LIBRARY_KERNELS] == pytest.approx((0.045, 0.045))
    assert split[GENERATED_KERNELS] == pytest.approx((0.025, 0.025))
    assert split[DEVICE_IDLE] == pytest.approx((0.035, 0.035))
    assert split[OUTSIDE_COMPILED] == (None, None)
    assert split[FRAMEWORK_OVERHEAD] == (None, None)
    assert speed.outside_compiled_rest_ms is None
    assert [op.name for op in speed.library_ops] == [
        "ampere_sgemm_128x64_nn",
        "cudnn_infer_volta_scudnn_128x64_relu_small_nn_v1",
        "flash_fwd_kernel",
    ]
    (cost,) = speed.break_costs  # read on the host timeline
    assert cost.ms_per_call == pytest.approx((50 - 41) / 1e3)
    assert_adds_up(speed)


def test_real_cuda_traces_add_up() -> None:
    speed = attribute_entry_point(
        "inference",
        TRACES / "a100_alexnet_eager.pt.trace.json.gz",
        TRACES / "a100_compiled_triton.pt.trace.json.gz",
        device_type="cuda",
    )
    split = shares(speed)
    assert split[LIBRARY_KERNELS][0] > 0  # AlexNet's cuBLAS and cuDNN kernels
    assert split[LIBRARY_KERNELS][1] == 0.0  # one Triton kernel
    assert speed.ceiling.library_ms == split[LIBRARY_KERNELS][0]
    assert_adds_up(speed)


def test_ceiling_is_eager_time_over_the_smaller_library_time(tmp_path: Path) -> None:
    speed = attribute_entry_point(
        "inference", eager_trace(tmp_path), compiled_trace(tmp_path), device_type="cpu"
    )
    eager_library_ms = EAGER_LIBRARY_US / 1e3
    compiled_library_ms = (LIBRARY_INSIDE_US + LIBRARY_IN_GAP_US) / 1e3
    ceiling = speed.ceiling
    assert ceiling.library_ms == pytest.approx(min(eager_library_ms, compiled_library_ms))
    assert ceiling.speedup == pytest.approx(0.2 / ceiling.library_ms)
    assert ceiling.eager_ms == pytest.approx(0.2)
    assert ceiling.library_share == pytest.approx(compiled_library_ms / 0.11)
    assert ceiling.reason == (
        "library kernels (aten::mkldnn_convolution, aten::addmm, aten::linear) take "
        "0.027 ms of the compiled call's 0.110 ms and 0.057 ms of eager's 0.200 ms: with "
        "everything else at zero the call would still take 0.027 ms, a speedup of 7.41x over "
        "eager at most"
    )


def test_ceiling_uses_the_one_side_with_library_time(tmp_path: Path) -> None:
    compiled = write_steps(
        tmp_path / "speed_no_library.json", [event("Torch-Compiled Region: 0/0", 0, 80)], 100.0
    )
    speed = attribute_entry_point("inference", eager_trace(tmp_path), compiled, device_type="cpu")
    assert speed.ceiling.library_ms == pytest.approx(EAGER_LIBRARY_US / 1e3)
    assert speed.ceiling.library_share == 0.0
    assert "none of the compiled call's 0.100 ms" in speed.ceiling.reason


def test_no_library_time_gives_no_ceiling(tmp_path: Path) -> None:
    eager = write_steps(tmp_path / "speed_plain.json", [event("aten::add", 5, 10)], 50.0)
    compiled = write_steps(
        tmp_path / "speed_plain_compiled.json", [event("Torch-Compiled Region: 0/0", 0, 20)], 40.0
    )
    speed = attribute_entry_point("inference", eager, compiled, device_type="cpu")
    ceiling = speed.ceiling
    assert (ceiling.speedup, ceiling.library_ms, ceiling.library_share) == (None, None, 0.0)
    assert ceiling.reason == (
        "no library kernel ran: neither the eager call (0.050 ms) nor the compiled call "
        "(0.040 ms) spent time in a GEMM, convolution, attention or other vendor-library op"
    )
    assert speed.library_ops == []
    assert_adds_up(speed)


def test_unknown_device_type_is_refused(tmp_path: Path) -> None:
    eager = eager_trace(tmp_path)
    with pytest.raises(ValueError, match="device_type"):
        attribute_entry_point("inference", eager, eager, device_type="cuda:0")


# --- a real profile ---------------------------------------------------------------------------


class TwoBreaks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(8, 8)
        self.second = nn.Linear(8, 8)
        self.third = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        if x.sum().item() > 1e9:  # graph break
            x = x * 2
        x = self.second(x)
        if x.mean().item() > 1e9:  # graph break
            x = x * 3
        return torch.relu(self.third(x))


def break_lines() -> list[int]:
    lines, first = inspect.getsourcelines(TwoBreaks.forward)
    return [first + i for i, line in enumerate(lines) if line.rstrip().endswith("# graph break")]


def test_real_profile_charges_each_break_to_its_line(tmp_path: Path) -> None:
    # A break inside a loop makes dynamo skip the whole frame (torch 2.11), so the breaks here
    # are one after another in straight-line code: three regions, two resume frames.
    torch.manual_seed(0)
    model, x = TwoBreaks(), torch.randn(4, 8)
    compiled = torch.compile(model, backend="aot_eager")
    with torch._dynamo.config.patch(capture_scalar_outputs=False):
        capture, _ = record_compiles("inference", lambda: compiled(x))
    traces = {}
    for side, call in ((EAGER, lambda: model(x)), (COMPILED, lambda: compiled(x))):
        profile = profile_call(
            call,
            entry_point="inference",
            side=side,
            device=torch.device("cpu"),
            logdir=tmp_path,
            warmup=2,
            calls=3,
        )
        traces[side] = profile.trace_path
    speed = attribute_entry_point(
        "inference",
        traces[EAGER],
        traces[COMPILED],
        device_type="cpu",
        compiled_frames=[asdict(frame) for frame in capture.frames],
    )
    assert len(speed.break_costs) == 2
    assert all(cost.ms_per_call > 0 and cost.gaps_per_call == 1.0 for cost in speed.break_costs)
    locations = [cost.location for cost in speed.break_costs]
    assert all(loc is not None and loc.filename == __file__ for loc in locations)
    assert sorted(loc.lineno for loc in locations if loc) == break_lines()
    assert {loc.function for loc in locations if loc} == {"forward"}
    split = shares(speed)
    assert split[LIBRARY_KERNELS][0] > 0 and split[LIBRARY_KERNELS][1] > 0  # addmm
    assert split[OUTSIDE_COMPILED][1] >= sum(cost.ms_per_call for cost in speed.break_costs)
    assert_adds_up(speed)
