"""Rich renderables for a tlparse report: where to open it, its frames and its graph breaks.

They show the frames and breaks by tlparse's ids (`[1/0]`), the ids the findings name, so a
reader goes from a finding to the page that holds the compiler's full detail.
"""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from analyzer.format import file_link, ms, plural, short_path
from probes.records.compile_trace import TlparseReport


def tlparse_report_view(report: TlparseReport) -> RenderableType:
    """Where to open the report, and the frames and graph breaks it lists by their ids."""
    if not report.ok or report.index_html is None:
        return Text(f"tlparse report: none ({report.error})", style="yellow")
    uri = file_link(report.index_html)
    where = Text.assemble(("tlparse report: ", "bold"), (uri, f"link {uri}"))
    counts = Text(
        f"{plural(len(report.frames), 'frame')}, "
        f"{plural(len(report.graph_breaks), 'graph break')}, "
        f"tlparse {report.tlparse_version or '?'} in {ms(report.seconds * 1000)}",
        style="dim",
    )
    return Group(where, counts, _frames_table(report), _breaks_table(report))


def _frames_table(report: TlparseReport) -> Table:
    table = Table("frame", "function", "where", "status", box=box.SIMPLE, title="Frames compiled")
    for frame in report.frames:
        where = f"{short_path(frame.filename)}:{frame.line}" if frame.filename else ""
        table.add_row(frame.frame_id, frame.function or "", where, frame.status or "")
    return table


def _breaks_table(report: TlparseReport) -> RenderableType:
    if not report.graph_breaks:
        return Text("No graph breaks in the report.")
    table = Table("frame", "where", "reason", box=box.SIMPLE, title="Graph breaks")
    for found in report.graph_breaks:
        where = f"{short_path(found.filename)}:{found.lineno}" if found.filename else ""
        table.add_row(found.frame_id, where, found.reason)
    return table
