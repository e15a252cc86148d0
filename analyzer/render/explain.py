"""A rule's page and the catalogue's table in the terminal (`compile-diagnose explain`)."""

from __future__ import annotations

from collections.abc import Iterable

from rich import box
from rich.console import Group, RenderableType
from rich.markdown import Markdown
from rich.padding import Padding
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from analyzer.findings import Rule
from analyzer.render.findings import SEVERITY_STYLE
from analyzer.render.snippets import snippet_language


def catalogue_table(rules: Iterable[Rule]) -> Table:
    table = Table(
        title="compile-diagnose rules",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        caption_justify="left",
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("Code", no_wrap=True)
    table.add_column("Name", no_wrap=True, style="bold")
    table.add_column("Severity", no_wrap=True)
    table.add_column("Title", ratio=1)
    for rule in rules:
        severity = Text(rule.default_severity.value, SEVERITY_STYLE[rule.default_severity])
        table.add_row(rule.code, rule.name, severity, rule.title)
    table.caption = "compile-diagnose explain CODE prints one rule"
    return table


def _code_block(snippet: str) -> Syntax:
    return Syntax(
        snippet,
        snippet_language(snippet),
        theme="ansi_dark",
        background_color="default",
        word_wrap=True,
    )


def _section(heading: str, body: RenderableType) -> Group:
    return Group(Text(heading, style="bold underline"), Padding(body, (0, 0, 1, 2)))


def rule_page(rule: Rule) -> Group:
    """One rule in the four parts of a ruff rule page."""
    header = Text.assemble(
        (rule.code, "bold"),
        " ",
        (rule.name, "bold magenta"),
        "  default severity: ",
        (rule.default_severity.value, SEVERITY_STYLE[rule.default_severity]),
    )
    return Group(
        header,
        Padding(Text(rule.title, style="italic"), (0, 0, 1, 0)),
        _section("What it does", Markdown(rule.what_it_does)),
        _section("Why does it matter?", Markdown(rule.why_it_matters)),
        _section("Example", _code_block(rule.example)),
        _section("Use instead", _code_block(rule.use_instead)),
    )
