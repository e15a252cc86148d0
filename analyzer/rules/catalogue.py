"""The rule catalogue: an index from code and name to the rules of every family.

Each rule is documented beside its check, in its family's module (`analyzer/rules/compile.py`,
...), in the four parts of a ruff rule page; this module only gathers them, as ruff's registry
does. `compile-diagnose explain CODE` and `docs/rules.md` are rendered from these objects.
"""

from __future__ import annotations

from analyzer.findings import Rule
from analyzer.rules import RULE_FAMILIES

RULES: tuple[Rule, ...] = tuple(
    sorted((rule for family in RULE_FAMILIES for rule in family.RULES), key=lambda rule: rule.code)
)

_BY_NAME = {rule.name: rule for rule in RULES}
_BY_CODE = {rule.code: rule for rule in RULES}


def lookup(code_or_name: str) -> Rule | None:
    """A rule by its code (case-insensitive) or its name."""
    return _BY_CODE.get(code_or_name.upper()) or _BY_NAME.get(code_or_name.lower())
