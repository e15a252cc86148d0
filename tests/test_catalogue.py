"""The rule catalogue: complete, consistent, documented in one place, printed by `explain`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from analyzer import cli
from analyzer.render.catalogue_page import catalogue_page
from analyzer.render.snippets import snippet_language
from analyzer.rules.catalogue import RULES, lookup

DOCS_PAGE = Path(__file__).parent.parent / "docs" / "rules.md"
# The names issue 7 gives meanings to; other modules refer to them.
REQUIRED_NAMES = {
    "compiled-path-not-exercised",
    "graph-break",
    "recompilation",
    "launch-bound",
    "eager-work-outside-compiled-region",
    "rng-divergence",
    "numerical-divergence",
    "tolerance-too-strict",
    "precision-setting-mismatch",
    "compile-time-cost",
    "benchmark-methodology",
}
DOC_PARTS = ("title", "what_it_does", "why_it_matters", "example", "use_instead")


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch):
    """The real `compile-diagnose` entry point with only this test's command registered, so the
    test does not depend on (or pay for importing) the other sub-commands."""
    monkeypatch.setattr(cli, "COMMANDS", ("analyzer.commands.explain",))
    return cli.main


def test_codes_are_unique():
    codes = [rule.code for rule in RULES]
    assert len(codes) == len(set(codes))


def test_names_are_unique():
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names))


def test_codes_and_names_have_their_shape():
    for rule in RULES:
        assert re.fullmatch(r"CD\d{3}", rule.code), rule.code
        assert re.fullmatch(r"[a-z]+(-[a-z0-9]+)*", rule.name), rule.name


def test_every_name_the_issue_defines_is_in_the_catalogue():
    assert {rule.name for rule in RULES} >= REQUIRED_NAMES


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.code)
def test_every_rule_has_all_four_doc_parts(rule):
    for part in DOC_PARTS:
        assert getattr(rule, part).strip(), f"{rule.code} has no {part}"
    assert rule.example.strip() != rule.use_instead.strip()


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.code)
def test_python_examples_are_valid_python(rule):
    for snippet in (rule.example, rule.use_instead):
        if snippet_language(snippet) == "python":
            ast.parse(snippet)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.code)
def test_prose_is_whole_sentences(rule):
    for prose in (rule.what_it_does, rule.why_it_matters):
        assert prose[0].isupper() or prose[0] == "`", prose
        assert prose.endswith("."), prose
        assert "  " not in prose


def test_lookup_finds_a_rule_by_code_in_any_case_and_by_name():
    rule = lookup("rng-divergence")
    assert lookup(rule.code) is rule
    assert lookup(rule.code.lower()) is rule
    assert lookup("rng-divergence") is rule
    assert lookup("CD999") is None


def test_docs_page_is_the_generated_one():
    assert DOCS_PAGE.read_text(encoding="utf-8") == catalogue_page(), (
        "docs/rules.md is stale: python -m analyzer.render.catalogue_page > docs/rules.md"
    )


def test_docs_page_has_a_section_per_rule_in_catalogue_order():
    headings = re.findall(r"^## (CD\d{3}) `([a-z0-9-]+)`$", catalogue_page(), re.MULTILINE)
    assert headings == [(rule.code, rule.name) for rule in RULES]


def test_explain_prints_the_rules_four_parts(run_cli, capsys):
    rule = lookup("compiled-path-not-exercised")
    assert run_cli(["explain", rule.code]) == 0
    out = capsys.readouterr().out
    for heading in ("What it does", "Why does it matter?", "Example", "Use instead"):
        assert heading in out
    assert rule.name in out
    assert rule.example.splitlines()[0] in out


def test_explain_accepts_a_name(run_cli, capsys):
    assert run_cli(["explain", "tolerance-too-strict"]) == 0
    assert lookup("tolerance-too-strict").code in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["explain"], ["explain", "--all"]], ids=["bare", "all"])
def test_explain_without_a_rule_lists_every_code(run_cli, capsys, argv):
    assert run_cli(argv) == 0
    out = capsys.readouterr().out
    for rule in RULES:
        assert rule.code in out


def test_explain_of_an_unknown_code_is_one_line_and_exit_2(run_cli, capsys):
    assert run_cli(["explain", "CD999"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("compile-diagnose: error:") and "CD999" in lines[0]
