"""`compile-diagnose tlparse DIR`: re-render the tlparse report of an earlier diagnosis folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from analyzer.errors import InputFileError
from probes.compile.tlparse import TlparseReport, latest_trace_log, render_diagnosis_report
from probes.compile.trace import TRACE_SUBDIR

PROG = "compile-diagnose"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tlparse",
        help="re-render the tlparse report of a diagnosis folder's compile trace",
        description="Run tlparse (pip install 'compile-diagnose[tlparse]') on the structured "
        f"compile trace a diagnosis wrote to DIR/{TRACE_SUBDIR}/, write the report to "
        "DIR/tlparse/, and say where to open it.",
    )
    parser.add_argument("dir", metavar="DIR", type=Path, help="a diagnosis output folder")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    folder: Path = args.dir
    if not folder.is_dir():
        raise InputFileError(f"{folder} is not a folder")
    if latest_trace_log(folder) is None:
        raise InputFileError(f"{folder} holds no compile trace ({TRACE_SUBDIR}/ with a log)")
    report = render_diagnosis_report(folder)
    if report.error is not None:
        print(f"{PROG}: error: {report.error}", file=sys.stderr)
        return 1
    Console().print(tlparse_report_view(report))
    return 0


def tlparse_report_view(report: TlparseReport) -> RenderableType:
    """Where to open the report, and the frames and graph breaks it lists by their ids."""
    if not report.ok:
        return Text(f"tlparse report: none ({report.error})", style="yellow")
    assert report.index_html is not None
    where = Text.assemble(
        ("tlparse report: ", "bold"),
        (report.index_html.resolve().as_uri(), "link " + report.index_html.resolve().as_uri()),
    )
    counts = Text(
        f"{len(report.frames)} frames, {len(report.graph_breaks)} graph breaks, "
        f"tlparse {report.tlparse_version or '?'} in {report.seconds * 1000:.0f} ms",
        style="dim",
    )
    return Group(where, counts, _frames_table(report), _breaks_table(report))


def _frames_table(report: TlparseReport) -> Table:
    table = Table("frame", "function", "where", "status", box=box.SIMPLE, title="Frames compiled")
    for frame in report.frames:
        where = f"{_short(frame.filename)}:{frame.line}" if frame.filename else ""
        table.add_row(frame.frame_id, frame.function or "", where, frame.status or "")
    return table


def _breaks_table(report: TlparseReport) -> RenderableType:
    if not report.graph_breaks:
        return Text("No graph breaks in the report.")
    table = Table("frame", "where", "reason", box=box.SIMPLE, title="Graph breaks")
    for found in report.graph_breaks:
        where = f"{_short(found.filename)}:{found.lineno}" if found.filename else ""
        table.add_row(found.frame_id, where, found.reason)
    return table


def _short(filename: str) -> str:
    """A path under the working folder, relative to it: the part a user recognises."""
    path = Path(filename)
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else filename
