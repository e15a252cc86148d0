"""The real tlparse on a real aot_eager compile trace, and `compile-diagnose tlparse DIR`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from compile_trace_module import FILE, planted_line, trace_planted_break

from analyzer.cli import main
from probes.compile.tlparse import (
    INSTALL_HINT,
    VENV_BIN,
    find_tlparse,
    render_diagnosis_report,
    render_report,
)
from probes.records.compile_trace import CompileTraceRecord, TlparseReport

pytestmark = pytest.mark.skipif(find_tlparse() is None, reason=f"tlparse: {INSTALL_HINT}")


@dataclass
class Rendered:
    record: CompileTraceRecord
    report: TlparseReport
    out_dir: Path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    out_dir = tmp_path_factory.mktemp("diagnosis")
    record = trace_planted_break(out_dir)
    return Rendered(record, render_diagnosis_report(out_dir), out_dir)


def one_line(text: str | None) -> bool:
    return bool(text) and "\n" not in text


def test_report_is_written_under_tlparse(rendered: Rendered) -> None:
    assert rendered.report.error is None
    assert rendered.report.index_html == rendered.out_dir / "tlparse" / "index.html"
    assert rendered.report.index_html.is_file()


def test_report_lists_every_frame_the_trace_recorded(rendered: Rendered) -> None:
    recorded = {frame.frame_id for frame in rendered.record.frames}
    assert recorded <= {frame.frame_id for frame in rendered.report.frames}


def test_report_names_the_function_of_the_compiled_forward(rendered: Rendered) -> None:
    [frame_id] = rendered.record.frames_of("forward", str(FILE))
    frame = rendered.report.frame(frame_id)
    assert frame is not None
    assert (frame.function, frame.filename, frame.status) == ("forward", str(FILE), "break")


def test_report_names_the_planted_graph_break_under_our_frame_id(rendered: Rendered) -> None:
    line = planted_line("item")
    [found] = rendered.report.graph_breaks
    assert (found.filename, found.lineno) == (str(FILE), line)
    assert "Tensor.item()" in found.reason
    assert found.frame_id == rendered.record.frame_at(str(FILE), line)


def test_tlparse_is_found_beside_python_without_path() -> None:
    assert find_tlparse(VENV_BIN, search_path="") == str(VENV_BIN / "tlparse")


def test_missing_tlparse_is_one_line_with_the_install_hint(
    rendered: Rendered, tmp_path: Path
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    log = rendered.report.log
    report = render_report(log, tmp_path / "tlparse", venv_bin=empty, search_path=str(empty))
    assert not report.ok
    assert one_line(report.error) and INSTALL_HINT in report.error


def test_empty_log_is_one_line(tmp_path: Path) -> None:
    log = tmp_path / "dedicated_log_torch_trace_empty.log"
    log.write_text("")
    report = render_report(log, tmp_path / "tlparse")
    assert not report.ok
    assert one_line(report.error) and str(log) in report.error


def test_corrupt_log_is_one_line_from_tlparse(tmp_path: Path) -> None:
    log = tmp_path / "dedicated_log_torch_trace_corrupt.log"
    log.write_text("not a trace\n{half a record\n")
    report = render_report(log, tmp_path / "tlparse")
    assert not report.ok
    assert one_line(report.error) and "Failed to parse glog prefix" in report.error


def test_tlparse_exit_status_gives_its_first_stderr_line(tmp_path: Path) -> None:
    report = render_report(tmp_path, tmp_path / "tlparse")  # a folder: tlparse exits 1
    assert one_line(report.error)
    assert "exit 1" in report.error and "is not a file" in report.error


def test_tlparse_past_its_time_limit_is_one_line(rendered: Rendered, tmp_path: Path) -> None:
    report = render_report(rendered.report.log, tmp_path / "tlparse", timeout_s=1e-6)
    assert one_line(report.error) and "did not finish" in report.error


def test_command_renders_the_report_and_says_where_to_open_it(
    rendered: Rendered, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")
    assert main(["tlparse", str(rendered.out_dir)]) == 0
    out = capsys.readouterr().out
    assert (rendered.out_dir / "tlparse" / "index.html").resolve().as_uri() in out
    assert rendered.record.frame_at(str(FILE), planted_line("item")) in out


def test_command_on_a_folder_without_a_trace_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tlparse", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no compile trace" in err
