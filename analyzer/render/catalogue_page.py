"""The catalogue page, `docs/rules.md`, generated from the rule objects.

Regenerate with `python -m analyzer.render.catalogue_page > docs/rules.md`; a test checks that the
committed page equals what this module writes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from analyzer.findings import Rule
from analyzer.render.snippets import snippet_language
from analyzer.rules.catalogue import RULES

_INTRO = """\
# Rules

Every finding `compile-diagnose` can report, with a stable code and name. Print one rule in the
terminal with `compile-diagnose explain CODE` (or its name), and the whole list with
`compile-diagnose explain --all`.

This page is generated from the rules' own documentation (`RULES` in each module of
`analyzer/rules/`) by
`python -m analyzer.render.catalogue_page > docs/rules.md`; edit the rules, not this page.
"""


def _anchor(rule: Rule) -> str:
    # The anchor GitHub derives from the heading "CD101 `compiled-path-not-exercised`".
    return f"{rule.code.lower()}-{rule.name}"


def _index(rules: Iterable[Rule]) -> list[str]:
    lines = ["| code | name | default severity | title |", "|---|---|---|---|"]
    for rule in rules:
        name = f"[`{rule.name}`](#{_anchor(rule)})"
        lines.append(f"| {rule.code} | {name} | {rule.default_severity.value} | {rule.title} |")
    return lines


def rule_section(rule: Rule) -> str:
    """One rule in the shape of a ruff rule page."""
    parts = [
        f"## {rule.code} `{rule.name}`",
        f"**{rule.title}.** Default severity: {rule.default_severity.value}.",
        "### What it does",
        rule.what_it_does,
        "### Why does it matter?",
        rule.why_it_matters,
        "### Example",
        f"```{snippet_language(rule.example)}\n{rule.example}\n```",
        "### Use instead",
        f"```{snippet_language(rule.use_instead)}\n{rule.use_instead}\n```",
    ]
    return "\n\n".join(parts)


def catalogue_page(rules: Iterable[Rule] = RULES) -> str:
    rules = tuple(rules)
    sections = [_INTRO.rstrip("\n"), "\n".join(_index(rules))]
    sections.extend(rule_section(rule) for rule in rules)
    return "\n\n".join(sections) + "\n"


def main() -> int:
    sys.stdout.write(catalogue_page())
    return 0


if __name__ == "__main__":
    sys.exit(main())
