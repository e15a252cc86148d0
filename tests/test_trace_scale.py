"""The typed, chunked trace reader: the same reading as plain JSON, in bounded memory.

The reference in each test is the file read with `json.loads` and turned into events here, by
the trace-event format's rules (complete events only, `cat` and `args.correlation` as the
analysis reads them), not by the project's reader.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from analyzer.cli import main
from probes.kernels import trace_stream
from probes.kernels.kineto import KinetoTrace, TraceEvent, TraceFormatError, load_trace
from probes.kernels.trace_events import EventArgs
from probes.kernels.trace_summary import summarize
from probes.records.serialize import to_jsonable

ROOT = Path(__file__).parent.parent
TRACES = Path(__file__).parent / "data" / "traces"
FIXTURES = [
    TRACES / "a100_alexnet_eager.pt.trace.json.gz",
    TRACES / "a100_compiled_triton.pt.trace.json.gz",
]


def benchmark_module(monkeypatch: pytest.MonkeyPatch) -> Any:
    """benchmarks/trace_scale.py, imported for this test only."""
    path = ROOT / "benchmarks" / "trace_scale.py"
    spec = importlib.util.spec_from_file_location("trace_scale", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # its dataclasses look it up there
    spec.loader.exec_module(module)
    return module


def text_of(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def reference(path: Path) -> KinetoTrace:
    """The file read with plain json, its complete events made by hand."""
    document = json.loads(text_of(path))
    raw = document["traceEvents"]
    complete = [e for e in raw if e.get("ph") == "X"]
    return KinetoTrace(
        path=path,
        events=[reference_event(e) for e in complete],
        device_names=[d["name"] for d in document.get("deviceProperties", [])],
        other_event_count=len(raw) - len(complete),
    )


def reference_event(raw: dict[str, Any]) -> TraceEvent:
    args = raw.get("args")
    return TraceEvent(
        name=raw.get("name", ""),
        category=raw.get("cat", ""),
        ts_us=float(raw["ts"]),
        dur_us=float(raw.get("dur", 0)),
        pid=raw.get("pid", ""),
        tid=raw.get("tid", ""),
        args=EventArgs(args.get("correlation")) if isinstance(args, dict) else None,
    )


def summary_record(trace: KinetoTrace) -> dict[str, Any]:
    return to_jsonable(summarize(trace))


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Chunks of a few events, so that a fixture is read in many runs and cut many times."""
    monkeypatch.setattr(trace_stream, "CHUNK_BYTES", 700)
    return 700


def typed_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the general reader is used: the typed reader must take the file."""

    def general(path: Path) -> KinetoTrace:
        raise AssertionError(f"{path} was not read by the typed reader")

    monkeypatch.setattr("probes.kernels.kineto.read_whole", general)


@pytest.mark.parametrize("path", FIXTURES, ids=["alexnet", "compiled"])
def test_the_typed_reader_reads_the_fixtures_as_plain_json_does(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    typed_only(monkeypatch)
    trace, expected = load_trace(path), reference(path)
    assert trace.events == expected.events
    assert (trace.other_event_count, trace.device_names) == (
        expected.other_event_count,
        expected.device_names,
    )
    assert summary_record(trace) == summary_record(expected)


@pytest.mark.parametrize("path", FIXTURES, ids=["alexnet", "compiled"])
def test_a_trace_read_in_many_small_chunks_reads_the_same(
    path: Path, small_chunks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(text_of(path)) > 10 * small_chunks
    typed_only(monkeypatch)
    assert load_trace(path).events == reference(path).events


def test_a_gzip_trace_and_its_plain_text_read_alike(tmp_path: Path, small_chunks: int) -> None:
    plain = tmp_path / "alexnet.json"
    plain.write_bytes(text_of(FIXTURES[0]))
    packed, unpacked = load_trace(FIXTURES[0]), load_trace(plain)
    assert packed.events == unpacked.events
    assert summary_record(packed) | {"source": ""} == summary_record(unpacked) | {"source": ""}


def write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document, indent=1))
    return path


def x(name: str, ts: float, **extra: Any) -> dict[str, Any]:
    return {"ph": "X", "cat": "cpu_op", "name": name, "pid": 1, "tid": 1, "ts": ts, "dur": 5,
            **extra}  # fmt: skip


def test_brackets_and_boundaries_inside_events_do_not_cut_them(
    tmp_path: Path, small_chunks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "}, {" inside a name and a list of objects in args look like the end of an event.
    tricky = [
        x("a}, {b", 0, args={"shapes": [{"d": [1, 2]}, {"d": [3]}], "correlation": 7}),
        x("]", 10, args={"note": '], "traceEvents": ['}),
    ]
    events = [x(f"op{i}", 20 + i) for i in range(40)] + tricky + [x("last", 99)]
    path = write(
        tmp_path / "t.json",
        {"schemaVersion": 1, "traceEvents": events, "after": [{"x": "]"}], "traceName": "]"},
    )
    typed_only(monkeypatch)
    assert load_trace(path).events == reference(path).events


@pytest.mark.parametrize(
    "event",
    [
        {"ph": "X", "name": 3, "ts": 1, "dur": 1},  # a name that is not a string
        {"ph": "X", "name": "a", "ts": 1, "dur": 1, "pid": 1.5},  # a float pid
        {"ph": "X", "name": "a", "ts": 1, "dur": 1, "args": [1]},  # args not an object
        {"ph": "Q", "name": "a", "ts": 1},  # a phase outside the format
        {"name": "no phase", "ts": 1},
    ],
    ids=["name", "pid", "args", "phase", "no-phase"],
)
def test_events_the_typed_reader_does_not_take_are_read_the_general_way(
    tmp_path: Path, event: dict[str, Any]
) -> None:
    path = write(tmp_path / "t.json", {"traceEvents": [x("op", 0), event, x("op", 9)]})
    trace = load_trace(path)
    assert [e.ts_us for e in trace.events] == [0.0] + ([1.0] if event.get("ph") == "X" else []) + [
        9.0
    ]
    assert trace.other_event_count == (0 if event.get("ph") == "X" else 1)  # fmt: skip


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"traceEvents": [{"ph": "X", "name": "a"}]}', "event 0 ('X') has no numeric 'ts'"),
        (b'{"traceEvents": [1]}', "event 0 is not an object"),
        (b'{"traceEvents": {}}', "'traceEvents' is not a list of events"),
        (b'{"traceEvents": [{"ph": "X", "ts": NaN}]}', "event 0 ('X') has no numeric 'ts'"),
        (b"[1, 2]", "is JSON but not a profiler trace"),
        (b'{"traceEvents": [', "is not JSON"),
    ],
    ids=["no-ts", "not-object", "not-list", "nan", "a-list", "cut-short"],
)
def test_a_malformed_trace_gives_the_error_it_gave_before(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(TraceFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_trace(path)


def test_a_cut_short_gzip_trace_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cut.json.gz"
    path.write_bytes(FIXTURES[0].read_bytes()[:5000])
    assert main(["trace", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("compile-diagnose: error: ")
    assert "is not a readable gzip file" in captured.err and captured.err.count("\n") == 1
    assert captured.out == ""


def test_memory_grows_with_the_complete_events_not_with_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 8 MB of instants with long arguments and 200 complete events: only the latter are kept.
    monkeypatch.setattr(trace_stream, "CHUNK_BYTES", 256 * 1024)
    filler = {"ph": "i", "s": "t", "name": "mark", "pid": 1, "tid": 1, "args": {"pad": "x" * 4000}}
    events = [filler | {"ts": i} for i in range(2000)] + [x(f"op{i}", i) for i in range(200)]
    path = write(tmp_path / "big.json", {"traceEvents": events})
    assert path.stat().st_size > 8e6
    typed_only(monkeypatch)
    tracemalloc.start()
    try:
        trace = load_trace(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (len(trace.events), trace.other_event_count) == (200, 2000)
    assert peak < 2e6


def test_the_benchmark_builds_a_trace_of_the_fixture_repeated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = benchmark_module(monkeypatch)
    built = bench.build_trace(bench.SOURCE_TRACE, 2_000_000, tmp_path / "big.json")
    assert built.size_bytes >= 2_000_000
    source = reference(bench.SOURCE_TRACE)
    trace = load_trace(built.path)
    copies = len(trace.events) / len(source.events)
    assert copies > 5
    # Every copy starts after the one before ends, with ids of its own: the kernels of a copy are
    # launched by that copy's calls, so none is lost to another copy's correlation ids.
    kernels = summarize(trace).kernel_count
    in_source = summarize(source).kernel_count
    assert in_source * int(copies) <= kernels <= in_source * (int(copies) + 1)
    assert trace.events == reference(built.path).events
