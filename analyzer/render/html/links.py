"""Links to what the diagnosis wrote beside the report: the record, the compile traces' tlparse
reports, the profiler traces. Each link is relative (`markup.link`), so the folder works offline,
moved, or as a CI artefact; nothing is loaded until it is clicked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analyzer.diagnosis import DIAGNOSIS_FILE
from analyzer.render.html.markup import absent, esc, link, section
from probes.records.names import COMPILE_TRACE, KERNELS, SIDES

ANCHOR = "files"
TITLE = "Files: the record, compile reports, traces"
REPORT_MARKDOWN = "report.md"


def _item(label: str, body: str) -> str:
    return f"<li><strong>{esc(label)}</strong>: {body}</li>"


def tlparse_items(probes: Mapping[str, Any], out_dir: str | None, base: str) -> list[str]:
    items = []
    for phase, trace in (probes.get(COMPILE_TRACE) or {}).items():
        report = (trace or {}).get("tlparse") or {}
        label = f"compile report ({phase}, tlparse)"
        if report.get("index_html") and not report.get("error"):
            items.append(_item(label, link(str(report["index_html"]), out_dir, base)))
        elif report.get("error"):
            items.append(_item(label, esc(f"not rendered: {report['error']}")))
        if trace and trace.get("trace_dir"):
            items.append(
                _item(f"compile trace ({phase})", link(str(trace["trace_dir"]), out_dir, base))
            )
    return items


def trace_items(probes: Mapping[str, Any], out_dir: str | None, base: str) -> list[str]:
    kernels = probes.get(KERNELS) or {}
    items = []
    for entry in kernels.get("entry_points") or []:
        if entry.get("perfetto_trace"):  # recorded since the merged traces exist
            merged = link(str(entry["perfetto_trace"]), out_dir, base)
            label = f"merged trace ({entry.get('name')}: eager above compiled, for Perfetto)"
            items.append(_item(label, merged))
        links = [
            link(str(entry[side]["trace_path"]), out_dir, base, side)
            for side in SIDES
            if isinstance(entry.get(side), Mapping) and entry[side].get("trace_path")
        ]
        if links:
            items.append(_item(f"profiler traces ({entry.get('name')})", " · ".join(links)))
    if kernels.get("tensorboard_logdir"):
        command = esc(kernels.get("tensorboard_command") or "")
        body = link(str(kernels["tensorboard_logdir"]), out_dir, base)
        items.append(
            _item("TensorBoard logdir", f"{body} <code>{command}</code>" if command else body)
        )
    return items


def links_section(diagnosis: Mapping[str, Any], base: str) -> str:
    out_dir = diagnosis.get("out_dir")
    probes = diagnosis.get("probes") or {}
    items = []
    if out_dir:
        record = link(f"{out_dir}/{DIAGNOSIS_FILE}", out_dir, base)
        markdown = link(f"{out_dir}/{REPORT_MARKDOWN}", out_dir, base)
        items.append(_item("the record", f"{record} · {markdown}"))
    items += tlparse_items(probes, out_dir, base) + trace_items(probes, out_dir, base)
    if not items:
        return section(
            ANCHOR, TITLE, absent("No files: this diagnosis was not written to a folder.")
        )
    note = (
        '<p class="note">Paths are relative to this report. A trace opens in the Perfetto UI '
        "(Open trace file: the file stays in the browser) or in TensorBoard.</p>"
    )
    return section(ANCHOR, TITLE, "<ul>" + "".join(items) + "</ul>", note)
