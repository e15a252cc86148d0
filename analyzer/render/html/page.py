"""The report as one self-contained HTML page: the stored diagnosis, its plots inline.

The page needs nothing but itself: its CSS is inline, its plots are inline SVG, it runs no
script, and its Content-Security-Policy forbids the browser to load anything from anywhere
(`default-src 'none'`), so it opens the same offline, from a CI artefact, or mailed. Links to the
files the diagnosis wrote (traces, tlparse reports) are relative and load only when clicked.
The sections follow the terminal view: the setting, the verdict and its reading, the
recommendation, the findings, then the figures: timing, where the time goes, compile time, graph
breaks, divergence, and the files. A section whose record is absent says why in one line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from analyzer.render.html.compile_time import compile_time_section
from analyzer.render.html.divergence import divergence_section
from analyzer.render.html.findings import findings_section
from analyzer.render.html.graph_breaks import graph_breaks_section
from analyzer.render.html.links import links_section
from analyzer.render.html.markup import esc
from analyzer.render.html.summary import (
    header,
    recommendation_section,
    target_name,
    verdict_section,
)
from analyzer.render.html.time_split import time_split_section
from analyzer.render.html.timing import timing_section

SECTIONS: tuple[tuple[str, str, Callable[[Mapping[str, Any]], str]], ...] = (
    ("verdict", "Verdict", verdict_section),
    ("recommendation", "Recommendation", recommendation_section),
    ("findings", "Findings", findings_section),
    ("timing", "Timing", timing_section),
    ("time", "Where the time goes", time_split_section),
    ("compile-time", "Compile time", compile_time_section),
    ("graph-breaks", "Graph breaks", graph_breaks_section),
    ("divergence", "Divergence", divergence_section),
)
# Nothing is fetched: no script, no font, no image, no style sheet from anywhere.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

CSS = """
:root { --ink: #222; --muted: #6b6b6b; --line: #e3e3e3; --card: #fafafa;
  --good: #1e7b34; --bad: #b3261e; --warn: #9a6700; --info: #1f5fa8; }
* { box-sizing: border-box; }
html { background: #fff; }
body { margin: 0; color: var(--ink); background: #fff; font: 15px/1.5 system-ui, -apple-system,
  "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 26px; margin: 0 0 12px; }
h2 { font-size: 20px; margin: 40px 0 12px; padding-bottom: 6px;
  border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 20px 0 8px; }
h4 { font-size: 14px; margin: 14px 0 6px; }
nav { position: sticky; top: 0; z-index: 1; padding: 8px 28px; font-size: 14px;
  background: rgba(255, 255, 255, .96); border-bottom: 1px solid var(--line); }
nav a { margin-right: 16px; color: var(--info); text-decoration: none; }
a { color: var(--info); }
code, pre { font-size: 13px; font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas,
  "DejaVu Sans Mono", monospace; }
pre { background: #f4f4f4; border: 1px solid var(--line); border-radius: 6px;
  padding: 8px 12px; white-space: pre-wrap; overflow-wrap: anywhere; margin: 6px 0; }
table { border-collapse: collapse; margin: 10px 0 16px; font-size: 13.5px; width: 100%; }
th, td { text-align: left; padding: 5px 10px; vertical-align: top;
  border-bottom: 1px solid var(--line); }
th { font-weight: 600; background: #f6f6f6; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.name { white-space: nowrap; }
ul.notes { font-size: 13.5px; color: var(--muted); margin-top: -6px; }
ul.notes strong { color: var(--ink); font-weight: 600; }
tr.first td { background: #fdecea; font-weight: 600; }
.scroll { max-height: 360px; overflow-y: auto; border: 1px solid var(--line); border-radius: 6px; }
.scroll table { margin: 0; }
.scroll th { position: sticky; top: 0; }
dl.pairs { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0;
  font-size: 14px; }
dl.pairs dt { color: var(--muted); }
dl.pairs dd { margin: 0; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12.5px;
  font-weight: 600; color: #fff; background: var(--muted); white-space: nowrap; }
.badge.good { background: var(--good); } .badge.bad { background: var(--bad); }
.badge.warn { background: var(--warn); } .badge.info { background: var(--info); }
p.verdict { font-size: 17px; }
p.verdict .badge { font-size: 15px; padding: 2px 12px; }
p.reading { border-left: 4px solid var(--good); padding-left: 10px; font-weight: 600; }
p.good-line { font-weight: 600; color: var(--good); margin-bottom: 2px; }
p.muted-line { color: var(--muted); margin-bottom: 2px; }
.note { color: var(--muted); font-size: 13.5px; }
p.warn { color: var(--warn); }
p.absent { color: var(--muted); font-style: italic; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 12px 16px; margin: 12px 0; }
.card h3 { margin: 6px 0; }
.card table { background: #fff; }
details.numbers table { font-size: 12.5px; max-width: 760px; }
details.numbers td { overflow-wrap: anywhere; }
details.numbers td:first-child { color: var(--muted); width: 35%; }
.pair td { overflow-wrap: anywhere; }
.pair { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 0 24px; }
@media (max-width: 800px) { .pair { grid-template-columns: 1fr; } }
figure.plot { margin: 12px 0 8px; }
figure.plot svg { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
details > summary { cursor: pointer; color: var(--info); margin: 8px 0; }
details.card > summary { color: var(--ink); list-style-position: outside; margin-left: 16px; }
details.card > summary h3 { display: inline; }
footer { color: var(--muted); font-size: 12.5px; margin-top: 48px; }
"""


def _footer(diagnosis: Mapping[str, Any]) -> str:
    tool = diagnosis.get("tool") or {}
    made_by = f"{tool.get('name', 'compile-diagnose')} {tool.get('version', '')}".strip()
    schema = diagnosis.get("schema_version", "?")
    return esc(f"{made_by}, from the stored diagnosis (schema {schema}).")


def _nav() -> str:
    links = "".join(f'<a href="#{anchor}">{esc(label)}</a>' for anchor, label, _ in SECTIONS)
    return f'<nav>{links}<a href="#files">Files</a></nav>'


def report_html(diagnosis: Mapping[str, Any], base: str = "") -> str:
    """A diagnosis record (as `diagnosis.json` holds it) as one self-contained HTML page.

    `base` is the diagnosis folder seen from the page's folder ("" when the page sits beside
    `diagnosis.json`): the links to the files the diagnosis wrote are made relative through it.
    """
    body = "\n".join(render(diagnosis) for _, _, render in SECTIONS)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>compile-diagnose: {esc(target_name(diagnosis))}</title>
<style>{CSS}</style>
</head>
<body>
{_nav()}
<main>
{header(diagnosis)}
{body}
{links_section(diagnosis, base)}
<footer>{_footer(diagnosis)}</footer>
</main>
</body>
</html>
"""
