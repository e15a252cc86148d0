"""`compile-diagnose explain CODE|NAME`: one rule's page; `--all` (or nothing): the catalogue."""

from __future__ import annotations

import argparse

from rich.console import Console

from analyzer.errors import UsageError
from analyzer.render.explain import catalogue_table, rule_page
from analyzer.rules.catalogue import RULES, lookup


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="explain a finding's rule (what it detects, why, what to do instead)",
        description="Print the documentation of one rule, by code (CD101) or name "
        "(compiled-path-not-exercised); without one, or with --all, list every rule.",
    )
    parser.add_argument("rule", nargs="?", metavar="CODE|NAME", help="a rule's code or name")
    parser.add_argument("--all", action="store_true", help="list every rule in the catalogue")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    console = Console()
    if args.all or args.rule is None:
        console.print(catalogue_table(RULES))
        return 0
    rule = lookup(args.rule)
    if rule is None:
        raise UsageError(
            f"no rule {args.rule!r}; `compile-diagnose explain --all` lists the codes and names"
        )
    console.print(rule_page(rule))
    return 0
