"""The structured compile trace of real aot_eager compiles, recorded at run time."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch._logging._internal as torch_logging
from compile_trace_module import FILE, ReadsScalar, planted_line, trace_planted_break
from torch._dynamo.utils import get_compilation_metrics

from probes.compile.trace import read_trace_records, record_compile_trace
from probes.records.compile_trace import TRACE_SUBDIR, CompileTraceRecord


@dataclass
class Traced:
    record: CompileTraceRecord
    out_dir: Path
    state_before: tuple
    state_after: tuple


def trace_logger_state() -> tuple:
    logger = torch_logging.trace_log
    return (tuple(logger.handlers), logger.level, logger.propagate, logging.getLogger().handlers[:])


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Traced:
    # A compile before the block: torch has interned file names the trace must still define.
    torch.compile(lambda x: x.cos() + 1, backend="aot_eager")(torch.ones(3))
    out_dir = tmp_path_factory.mktemp("diagnosis")
    # torch's placeholder, as torch attaches it at import: it removes itself on its first record
    placeholder = torch_logging.LazyTraceHandler(None)
    torch_logging.trace_log.addHandler(placeholder)
    before = trace_logger_state()
    record = trace_planted_break(out_dir)
    after = trace_logger_state()
    torch_logging.trace_log.removeHandler(placeholder)
    return Traced(record, out_dir, before, after)


def test_trace_log_is_written_under_torch_trace(traced: Traced) -> None:
    [log] = traced.record.logs
    assert log.path.parent == traced.out_dir / TRACE_SUBDIR
    assert log.size_bytes == log.path.stat().st_size > 0


def test_record_names_the_frame_of_the_compiled_forward(traced: Traced) -> None:
    [frame_id] = traced.record.frames_of("forward", str(FILE))
    frame = next(f for f in traced.record.frames if f.frame_id == frame_id)
    assert frame.first_line == ReadsScalar.forward.__code__.co_firstlineno
    assert frame.graph_ops and frame.graph_ops > 0


def test_record_maps_the_planted_line_to_the_frame_that_broke(traced: Traced) -> None:
    frame_id = traced.record.frame_at(str(FILE), planted_line("item"))
    assert frame_id == traced.record.frames_of("forward", str(FILE))[0]
    [found] = traced.record.graph_breaks
    assert "Tensor.item()" in found.reason


def test_frame_ids_are_the_compile_ids_of_torch_compilation_metrics(traced: Traced) -> None:
    ours = {f"[{m.compile_id}]" for m in get_compilation_metrics() if m.co_filename == str(FILE)}
    assert ours
    assert ours <= {frame.frame_id for frame in traced.record.frames}


def test_trace_logger_is_as_before_after_the_block(traced: Traced) -> None:
    assert traced.record.records > 0  # torch wrote (and its placeholder handler saw) records
    assert traced.state_after == traced.state_before


def test_trace_logger_is_restored_when_the_block_raises(tmp_path: Path) -> None:
    before = trace_logger_state()
    with pytest.raises(RuntimeError), record_compile_trace(tmp_path):
        raise RuntimeError("compile failed")
    assert trace_logger_state() == before


def test_log_defines_every_file_name_its_stacks_refer_to(traced: Traced) -> None:
    [log] = traced.record.logs
    records = [m for m, _ in read_trace_records(log.path.read_text().split("\n"))]
    defined = {m["str"][1] for m in records if "str" in m}
    used = {
        frame["filename"]
        for m in records
        if "dynamo_start" in m
        for frame in m["dynamo_start"]["stack"]
    }
    assert used and used <= defined


def test_calls_that_do_not_compile_write_no_records(tmp_path: Path) -> None:
    compiled = torch.compile(torch.nn.Linear(4, 4), backend="aot_eager")
    x = torch.ones(2, 4)
    compiled(x)
    with record_compile_trace(tmp_path) as record:
        for _ in range(20):
            compiled(x)
    assert record.records == 0
    assert record.frames == []
    assert record.logging_overhead_s == 0.0


def test_a_reset_inside_the_block_is_flagged_as_repeated_frame_ids(tmp_path: Path) -> None:
    torch.compiler.reset()
    with record_compile_trace(tmp_path) as record:
        torch.compile(lambda x: x.sin(), backend="aot_eager")(torch.ones(3))  # [0/0]
        torch.compiler.reset()  # as torch._dynamo.explain does: frame ids count from 0 again
        torch.compile(lambda x: x.cos(), backend="aot_eager")(torch.ones(3))
    assert record.frame_ids_repeat
