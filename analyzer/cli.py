"""The `compile-diagnose` command line: a thin layer that parses arguments and dispatches.

Each sub-command lives in its own module under `analyzer/commands/` and exposes
`register(subparsers) -> None`, which adds its parser and sets `handler=callable(args) -> int`.
Nothing here measures or decides; errors the user can fix end as one line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from analyzer.errors import UsageError

# Order is the order of `compile-diagnose --help`.
COMMANDS: tuple[str, ...] = (
    "analyzer.commands.policy",
    "analyzer.commands.module",
    "analyzer.commands.list_policies",
    "analyzer.commands.trace",
    "analyzer.commands.tlparse",
    "analyzer.commands.report",
    "analyzer.commands.triage",
    "analyzer.commands.compare",
    "analyzer.commands.explain",
)

PROG = "compile-diagnose"


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (`compile-diagnose: error: ...`) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog=PROG,
        description="Diagnose torch.compile on LeRobot policies and any nn.Module: graph breaks, "
        "kernel timing, numerical divergence, and what to change.",
    )
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=OneLineErrorParser
    )
    for module_name in COMMANDS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from analyzer.commands.policy import split_policy_overrides

    parser = build_parser()
    try:
        argv, overrides = split_policy_overrides(list(sys.argv[1:] if argv is None else argv))
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return error.exit_code
    try:
        args = parser.parse_args(argv)
        if overrides and not hasattr(args, "policy_overrides"):
            parser.error("--policy.FIELD=VALUE applies to policy commands only")
    except SystemExit as exit_:  # argparse exits on --help and on usage errors
        return int(exit_.code or 0)
    if overrides:
        args.policy_overrides = overrides
    if getattr(args, "handler", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.handler(args))
    except UsageError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
