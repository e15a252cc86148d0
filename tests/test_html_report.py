"""The HTML report, read as a page: its sections, its plots, what it escapes, where it links, and
`compile-diagnose report` that writes it again from an earlier diagnosis.json.

Everything here renders recorded diagnoses (`examples/act-cpu/diagnosis.json`, the tiny Inductor
fixture, the planted divergence); the browser's view of the same pages is
`test_html_report_browser.py`.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli

from analyzer.commands.common import show
from analyzer.diagnosis import Diagnosis
from analyzer.findings import Finding
from analyzer.render.html import report_html
from analyzer.render.html.timing import sample_group
from analyzer.render.report_markdown import report_markdown
from probes.records.names import COMPILED, EAGER

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "act-cpu" / "diagnosis.json"
FIXTURES = ROOT / "tests" / "fixtures"
SECTIONS = [
    "verdict",
    "recommendation",
    "findings",
    "timing",
    "time",
    "compile-time",
    "graph-breaks",
    "divergence",
    "files",
]
PLANTED = "<script>alert('record')</script>"


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def tiny_with_planted_divergence() -> dict[str, Any]:
    """The tiny Inductor diagnosis (no speed or compile-time record: an older diagnosis) with
    the planted model's divergence section, which localizes to blocks.2.mix."""
    diagnosis = load(FIXTURES / "diagnosis_act_tiny_inductor.json")
    diagnosis["probes"]["divergence"] = load(FIXTURES / "divergence_planted.json")
    return diagnosis


class Page(HTMLParser):
    """What a browser would build from the page: elements by tag, attributes, and the text."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str, attribute: str) -> list[str]:
        return [str(a[attribute]) for t, a in self.tags if t == tag and a.get(attribute)]

    def section_text(self, markup: str, anchor: str) -> str:
        start = markup.index(f'<section id="{anchor}">')
        return "".join(Page(markup[start : markup.index("</section>", start)]).text).strip()


def plot_markup(page: str, name: str) -> str:
    start = page.index(f'data-plot="{name}"')
    return page[start : page.index("</figure>", start)]


def test_the_example_shows_every_section_and_its_plots() -> None:
    diagnosis = load(EXAMPLE)
    markup = report_html(diagnosis)
    page = Page(markup)
    assert page.all("section", "id") == SECTIONS
    assert page.all("figure", "data-plot") == [
        "timing",
        "time",
        "compile-time",
        "divergence-scenarios",
    ]
    text = "".join(page.text)
    assert diagnosis["verdict"]["reference"] in text  # NEEDS WORK
    for finding in diagnosis["findings"]:
        assert finding["cause"] in text
    # the act example walked no module: the walk says why, in the record's words
    walk = page.section_text(markup, "divergence")
    assert diagnosis["probes"]["divergence"]["localization_note"] in walk
    assert "lerobot/policies/act/modeling_act.py:150" in page.section_text(markup, "graph-breaks")
    assert "l1_loss.item()" in page.section_text(markup, "graph-breaks")


def test_every_timed_call_is_one_mark() -> None:
    """The distribution shows every sample the benchmark kept, not only the median."""
    diagnosis = load(EXAMPLE)
    timing = plot_markup(report_html(diagnosis), "timing")
    for entry_point, recorded in diagnosis["probes"]["benchmark"]["timings"].items():
        for side in (EAGER, COMPILED):
            group = re.search(
                rf'<g id="timing-{sample_group(entry_point, side)}">(.*?)</g>', timing, re.S
            )
            assert group is not None, (entry_point, side)
            assert group.group(1).count("<use") == len(recorded[side]["samples_ms"])


def test_the_page_loads_nothing_and_is_the_same_every_time() -> None:
    diagnosis = load(EXAMPLE)
    markup = report_html(diagnosis)
    assert markup == report_html(copy.deepcopy(diagnosis))  # no date, no random ids
    page = Page(markup)
    ids = [a["id"] for _, a in page.tags if a.get("id")]
    assert len(ids) == len(set(ids)) > 100  # four inline SVGs, not one id shared
    assert not [t for t, _ in page.tags if t in ("script", "img", "iframe", "object")]
    assert page.all("link", "href") == ["data:,"]
    policy = next(a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv"))
    assert "default-src 'none'" in str(policy)


def test_strings_from_the_record_stay_text() -> None:
    diagnosis = tiny_with_planted_divergence()
    diagnosis["findings"][0]["cause"] = PLANTED
    diagnosis["probes"]["graph_breaks"]["training"]["breaks"][0]["location"]["code"] = PLANTED
    modules = diagnosis["probes"]["divergence"]["localization"]["modules"]
    modules[0]["module_class"] = PLANTED
    op = diagnosis["probes"]["kernels"]["entry_points"][0]["compiled"]["top_ops"][0]
    op["name"] = "aten::$x_1$ <b>"
    markup = report_html(diagnosis)
    page = Page(markup)
    assert not [t for t, _ in page.tags if t in ("script", "b")]
    text = "".join(page.text)
    assert text.count(PLANTED) == 3
    assert "aten::$x_1$ <b>" in text  # in the plot's SVG: text, and no mathtext


def test_the_walk_marks_the_first_module_to_add_error() -> None:
    markup = report_html(tiny_with_planted_divergence())
    walk = "".join(Page(plot_markup(markup, "divergence-modules")).text)
    assert "first to add error: blocks.2.mix (ScaledWhenCompiled)" in walk
    first_rows = re.findall(r'<tr class="first">(.*?)</tr>', markup, re.S)
    assert first_rows and all("blocks.2.mix" in row for row in first_rows)


def test_without_the_speed_record_the_kernel_split_is_shown() -> None:
    markup = report_html(tiny_with_planted_divergence())
    time_split = "".join(Page(plot_markup(markup, "time")).text)
    assert "inside compiled regions" in time_split
    assert "outside compiled regions" in time_split
    assert "top host ops" in time_split


def test_absent_sections_say_why_in_one_line() -> None:
    diagnosis = load(EXAMPLE)
    probes = diagnosis["probes"]
    for probe in ("divergence", "compile_time", "speed", "kernels", "what_ifs"):
        probes.pop(probe)
    diagnosis["probe_errors"] = {"divergence": "RuntimeError: planted"}
    diagnosis["recommendation"] = None
    markup = report_html(diagnosis)
    page = Page(markup)
    assert page.all("figure", "data-plot") == ["timing"]
    assert page.section_text(markup, "divergence").endswith(
        "No divergence figures: the divergence probe failed (RuntimeError: planted)."
    )
    assert "the compile_time probe did not run" in page.section_text(markup, "compile-time")
    assert "the kernels probe did not run" in page.section_text(markup, "time")
    assert "No recommendation" in page.section_text(markup, "recommendation")


def test_links_are_relative_to_the_report() -> None:
    diagnosis = load(EXAMPLE)  # written to /tmp/act-ex
    merged = "/tmp/act-ex/traces/inference.perfetto.json"
    diagnosis["probes"]["kernels"]["entry_points"][0]["perfetto_trace"] = merged
    beside = Page(report_html(diagnosis)).all("a", "href")
    assert "tlparse/index.html" in beside
    assert "traces/inference.perfetto.json" in beside
    assert "diagnosis.json" in beside
    elsewhere = Page(report_html(diagnosis, base="../act-ex")).all("a", "href")
    assert "../act-ex/tlparse/index.html" in elsewhere
    local = [h for h in beside if not h.startswith(("#", "https://"))]
    assert local and not [h for h in local if h.startswith("/")]


def test_a_diagnosis_writes_its_html_report_beside_report_md(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Where a diagnosis command writes report.md, it writes report.html and says where."""
    record = load(EXAMPLE)
    fields = ("recommendation", "target", "environment", "compile_settings", "probes", "verdict")
    diagnosis = Diagnosis(
        command=record["command"],
        **{name: record[name] for name in fields},
        findings=[Finding.from_record(f) for f in record["findings"]],
        out_dir=str(tmp_path),
    )
    show(diagnosis, argparse.Namespace(markdown=None, json=None))
    out = capsys.readouterr().out
    html = tmp_path / "report.html"
    assert (tmp_path / "report.md").is_file()
    assert html.read_text(encoding="utf-8") == report_html(diagnosis.to_dict())
    assert out.rstrip().splitlines()[-1] == f"report with plots (opens offline): {html}"


def test_report_command_renders_an_earlier_diagnosis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html, markdown = tmp_path / "out" / "act.html", tmp_path / "act.md"
    code, out, err = run_cli(
        ["report", str(EXAMPLE), "--html", str(html), "--markdown", str(markdown)], capsys
    )
    assert (code, err) == (0, "")
    assert str(html) in out and str(markdown) in out
    record = load(EXAMPLE)
    base = os.path.relpath(EXAMPLE.parent, html.parent)  # the diagnosis folder, from the page
    assert html.read_text(encoding="utf-8") == report_html(record, base=base)
    assert markdown.read_text(encoding="utf-8").rstrip("\n") == report_markdown(record).rstrip("\n")


def test_report_command_writes_beside_the_diagnosis_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(EXAMPLE, tmp_path / "diagnosis.json")
    code, out, _ = run_cli(["report", str(tmp_path)], capsys)
    assert code == 0
    assert out.strip() == f"HTML report written to {tmp_path / 'report.html'}"
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == report_html(load(EXAMPLE))


@pytest.mark.parametrize("content", ["not json", '{"schema_version": 1}'])
def test_report_command_refuses_what_is_not_a_diagnosis(
    tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "diagnosis.json"
    path.write_text(content, encoding="utf-8")
    code, out, err = run_cli(["report", str(path), "--html", str(tmp_path / "r.html")], capsys)
    assert code == 2 and out == ""
    assert err.startswith("compile-diagnose: error:") and "not a diagnosis" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.html").exists()
