"""The merged Perfetto trace: eager above compiled, both from t=0, valid trace-event JSON.

Perfetto's own importer (the `perfetto` package's trace processor) needs a binary downloaded at
run time, which this machine cannot do; the file is checked here against the trace-event format
instead (the keys each phase requires, numeric non-negative times: Perfetto drops negative ones)
and read back by the project's own reader. Expected figures come from the original traces.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
import torch
from rich.console import Console

from analyzer.render.kernels import kernel_report_view
from probes.kernels.kineto import load_trace
from probes.kernels.perfetto import write_merged_trace
from probes.kernels.profiling import profile_kernels
from probes.records.kernels import PERFETTO_SUBDIR, PERFETTO_SUFFIX, PERFETTO_UI
from probes.records.serialize import dumps

TRACES = Path(__file__).parent / "data" / "traces"
A100_EAGER = TRACES / "a100_alexnet_eager.pt.trace.json.gz"
A100_COMPILED = TRACES / "a100_compiled_triton.pt.trace.json.gz"
STEP = "ProfilerStep#"
METADATA_NAMES = {"process_name", "process_sort_index", "thread_name", "thread_sort_index"}


# --- the trace-event format, as Perfetto's JSON importer reads it ------------------------------


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_errors(document: Any) -> list[str]:
    """What breaks the trace-event format (or Perfetto's reading of it) in `document`."""
    if not isinstance(document, dict) or not isinstance(document.get("traceEvents"), list):
        return ["not an object with a 'traceEvents' list"]
    errors = []
    for index, event in enumerate(document["traceEvents"]):
        errors += [f"event {index}: {problem}" for problem in event_errors(event)]
    return errors


def event_errors(event: Any) -> list[str]:
    if not isinstance(event, dict):
        return ["not an object"]
    ph = event.get("ph")
    problems = [] if isinstance(event.get("name"), str) else ["no name"]
    problems += [f"{key} not an int" for key in ("pid", "tid") if type(event.get(key)) is not int]
    if not is_number(event.get("ts")) or event["ts"] < 0:
        problems.append("ts not a number >= 0")
    if ph == "X":
        if not is_number(event.get("dur")) or event["dur"] < 0:
            problems.append("complete event without a dur >= 0")
    elif ph == "M":
        if event.get("name") not in METADATA_NAMES or not isinstance(event.get("args"), dict):
            problems.append("metadata event with an unknown name or no args")
    elif ph in ("s", "t", "f"):
        if "id" not in event or not isinstance(event.get("cat"), str):
            problems.append("flow event without id or cat")
    elif ph in ("i", "I"):
        if event.get("s", "t") not in ("g", "p", "t"):
            problems.append("instant event with an unknown scope")
    elif ph not in ("B", "E", "C"):
        problems.append(f"phase {ph!r} not expected in a merged trace")
    return problems


# --- reading the merged file back ---------------------------------------------------------------


def raw_events(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    return json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)["traceEvents"]


def processes(events: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(name, pid) of each process, in the order of their sort index."""
    named = {e["pid"]: e["args"]["name"] for e in events if e.get("name") == "process_name"}
    order = {
        e["pid"]: e["args"]["sort_index"] for e in events if e.get("name") == "process_sort_index"
    }
    return [(named[pid], pid) for pid in sorted(named, key=order.__getitem__)]


def side_events(events: list[dict[str, Any]], pid: int) -> list[dict[str, Any]]:
    return [e for e in events if e["pid"] == pid and e.get("ph") != "M"]


def first_step_us(events: list[dict[str, Any]]) -> float:
    return min(e["ts"] for e in events if e.get("name", "").startswith(STEP) and e["ph"] == "X")


# --- the probe writes one per entry point ---------------------------------------------------------


@pytest.fixture(scope="module")
def report_and_dir(tmp_path_factory: pytest.TempPathFactory):
    model = torch.nn.Linear(8, 8)
    compiled = torch.compile(torch.nn.Linear(8, 8), backend="eager")
    inputs = torch.randn(4, 8)
    out = tmp_path_factory.mktemp("probe")
    report = profile_kernels(
        {
            "forward": (lambda: model(inputs), lambda: compiled(inputs)),
            "train step": (lambda: model(inputs).sum(), lambda: compiled(inputs).sum()),
        },
        device="cpu",
        out_dir=out,
        warmup=1,
        calls=2,
    )
    return report, out


def test_one_merged_trace_per_entry_point_is_written_and_recorded(report_and_dir) -> None:
    report, out = report_and_dir
    written = sorted(p.name for p in (out / PERFETTO_SUBDIR).iterdir())
    assert written == [f"forward{PERFETTO_SUFFIX}", f"train_step{PERFETTO_SUFFIX}"]
    recorded = json.loads(dumps(report))["entry_points"]
    assert [Path(e["perfetto_trace"]).name for e in recorded] == written


def test_the_merged_trace_is_valid_trace_event_json(report_and_dir) -> None:
    report, _ = report_and_dir
    for entry in report.entry_points:
        document = json.loads(Path(entry.perfetto_trace).read_text())
        assert format_errors(document) == []


def test_eager_is_listed_above_compiled_and_every_event_is_in_one_of_them(report_and_dir) -> None:
    report, _ = report_and_dir
    events = raw_events(Path(report.entry_points[0].perfetto_trace))
    listed = processes(events)
    assert [name for name, _ in listed] == ["eager", "compiled"]
    assert {e["pid"] for e in events} == {pid for _, pid in listed}


def test_every_thread_is_named(report_and_dir) -> None:
    report, _ = report_and_dir
    events = raw_events(Path(report.entry_points[1].perfetto_trace))
    named = {(e["pid"], e["tid"]) for e in events if e.get("name") == "thread_name"}
    assert {(e["pid"], e["tid"]) for e in events if e["ph"] != "M"} <= named


def test_both_sides_start_their_first_step_at_zero(report_and_dir) -> None:
    report, _ = report_and_dir
    for entry in report.entry_points:
        events = raw_events(Path(entry.perfetto_trace))
        for _, pid in processes(events):
            assert first_step_us(side_events(events, pid)) == 0


def test_each_side_keeps_its_complete_events_from_its_first_step_on(report_and_dir) -> None:
    report, _ = report_and_dir
    entry = report.entry_points[0]
    merged = raw_events(Path(entry.perfetto_trace))
    for (_, pid), profile in zip(processes(merged), (entry.eager, entry.compiled), strict=True):
        original = raw_events(Path(profile.trace_path))
        start = first_step_us(original)
        expected = Counter(
            e["name"] for e in original if e["ph"] == "X" and e["ts"] + e["dur"] > start
        )
        got = Counter(e["name"] for e in side_events(merged, pid) if e["ph"] == "X")
        assert got == expected


def test_the_project_reader_takes_the_merged_trace(report_and_dir) -> None:
    report, _ = report_and_dir
    path = Path(report.entry_points[0].perfetto_trace)
    events = raw_events(path)
    trace = load_trace(path)
    assert len(trace.events) == sum(1 for e in events if e["ph"] == "X")
    assert trace.other_event_count == len(events) - len(trace.events)


@pytest.mark.parametrize("width", [80, 200])
def test_the_terminal_says_where_the_merged_traces_are_and_how_to_open_them(
    report_and_dir, width: int
) -> None:
    report, _ = report_and_dir
    console = Console(width=width, record=True)
    console.print(kernel_report_view(report))
    text = " ".join(console.export_text().split())
    assert PERFETTO_UI in text and "stays in your browser" in text
    assert text.count("Perfetto (") == len(report.entry_points)
    assert "tensorboard --logdir" in text


def test_a_record_written_before_the_merged_traces_still_renders() -> None:
    record = json.loads((Path(__file__).parent / "fixtures" / "kernels_cpu.json").read_text())
    for entry in record["entry_points"]:
        entry.pop("perfetto_trace", None)
    console = Console(width=120, record=True)
    console.print(kernel_report_view(record))
    text = console.export_text()
    assert "Perfetto (" not in text and "tensorboard --logdir" in text


# --- a real CUDA trace: GPU streams and launch-to-kernel flows ----------------------------------


@pytest.fixture(scope="module")
def a100_merged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("a100") / "merged.perfetto.json"
    return write_merged_trace({"eager": A100_EAGER, "compiled": A100_COMPILED}, dest)


def test_a_cuda_trace_merges_into_valid_trace_event_json(a100_merged: Path) -> None:
    assert format_errors(json.loads(a100_merged.read_text())) == []


def test_gpu_streams_become_named_threads_of_their_side(a100_merged: Path) -> None:
    events = raw_events(a100_merged)
    (_, eager), _ = processes(events)
    names = {e["args"]["name"] for e in events if e.get("name") == "thread_name"}
    kernel_threads = {e["tid"] for e in side_events(events, eager) if e.get("cat") == "kernel"}
    streams = {
        e["args"]["name"]
        for e in events
        if e.get("name") == "thread_name" and e["pid"] == eager and e["tid"] in kernel_threads
    }
    assert streams == {"GPU 0: stream 7", "GPU 0: stream 20"}
    assert any(name.startswith("CPU: thread") for name in names)


def flow_shapes(events: list[dict[str, Any]]) -> Counter[tuple[str, ...]]:
    """How many flow ids have each set of phases (("f", "s"): a start and an end)."""
    phases: defaultdict[Any, list[str]] = defaultdict(list)
    for e in events:
        if e.get("ph") in ("s", "t", "f"):
            phases[e["id"]].append(e["ph"])
    return Counter(tuple(sorted(p)) for p in phases.values())


def test_flows_keep_their_ends_and_their_ids_are_disjoint_across_sides(a100_merged: Path) -> None:
    events = raw_events(a100_merged)
    (_, eager), (_, compiled) = processes(events)
    # The A100 eager trace has no ProfilerStep: its window starts at its first event, so no
    # flow is left out and every flow keeps the ends it had.
    assert flow_shapes(side_events(events, eager)) == flow_shapes(raw_events(A100_EAGER))
    ids = {
        pid: {e["id"] for e in side_events(events, pid) if "id" in e} for pid in (eager, compiled)
    }
    assert ids[eager] and ids[compiled] and not ids[eager] & ids[compiled]


def kineto_like(step_start: float, *, flow_id: int) -> dict[str, Any]:
    """A small trace by hand: a profiler span and a flow from before the step, one inside it."""
    host, gpu = {"pid": 10, "tid": 10}, {"pid": 0, "tid": 7}
    ahead = step_start - 50
    return {
        "traceEvents": [
            {"ph": "M", "name": "process_labels", "pid": 0, "tid": 0, "ts": 0,
             "args": {"labels": "GPU 0"}},
            {"ph": "X", "cat": "Trace", "name": "PyTorch Profiler (0)", "pid": "Spans",
             "tid": "PyTorch Profiler", "ts": ahead - 10, "dur": 200},
            {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", **host, "ts": ahead,
             "dur": 5, "args": {"correlation": 1}},
            {"ph": "s", "cat": "ac2g", "name": "ac2g", "id": flow_id, **host, "ts": ahead},
            {"ph": "X", "cat": "kernel", "name": "early", **gpu, "ts": ahead + 10, "dur": 5,
             "args": {"correlation": 1}},
            {"ph": "f", "cat": "ac2g", "name": "ac2g", "id": flow_id, "bp": "e", **gpu,
             "ts": ahead + 10},
            {"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#1", **host,
             "ts": step_start, "dur": 100},
            {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", **host,
             "ts": step_start + 10, "dur": 5, "args": {"correlation": 2}},
            {"ph": "s", "cat": "ac2g", "name": "ac2g", "id": flow_id + 1, **host,
             "ts": step_start + 10},
            {"ph": "X", "cat": "kernel", "name": "k", **gpu, "ts": step_start + 20, "dur": 30,
             "args": {"correlation": 2}},
            {"ph": "f", "cat": "ac2g", "name": "ac2g", "id": flow_id + 1, "bp": "e", **gpu,
             "ts": step_start + 20},
        ]
    }  # fmt: skip


@pytest.fixture
def by_hand(tmp_path: Path) -> list[dict[str, Any]]:
    sides = {}
    for side, start in (("eager", 1_000_000.0), ("compiled", 9_000_000.0)):
        sides[side] = tmp_path / f"{side}.json"
        sides[side].write_text(json.dumps(kineto_like(start, flow_id=1)))
    return raw_events(write_merged_trace(sides, tmp_path / "merged.json"))


def test_what_ended_before_the_first_step_is_left_out_with_its_flow(by_hand) -> None:
    assert format_errors({"traceEvents": by_hand}) == []
    for _, pid in processes(by_hand):
        events = side_events(by_hand, pid)
        assert "early" not in {e["name"] for e in events}
        assert flow_shapes(events) == Counter({("f", "s"): 1})  # the later flow, whole


def test_the_profiler_span_running_at_the_first_step_is_cut_to_start_there(by_hand) -> None:
    for _, pid in processes(by_hand):
        (span,) = [e for e in side_events(by_hand, pid) if e.get("cat") == "Trace"]
        # It ran from 60 us before the step for 200 us: 140 us of it lie after the step's start.
        assert (span["ts"], span["dur"]) == (0, 140)


def test_the_same_flow_id_on_both_sides_becomes_two_flows(by_hand) -> None:
    (_, eager), (_, compiled) = processes(by_hand)
    ids = [{e["id"] for e in side_events(by_hand, pid) if "id" in e} for pid in (eager, compiled)]
    assert len(ids[0]) == len(ids[1]) == 1 and ids[0] != ids[1]
