"""`--fail-on` and `--junit`: the gate's options, shared by the diagnosing commands and compare.

The thresholds are read and checked as the command starts (a bad one is a usage error, exit 2,
before anything runs); `analyzer.commands.common.finish_gate` reports the outcome at the end.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from analyzer.errors import UsageError
from analyzer.gate import Gate, gate_for_comparison, gate_for_diagnosis
from analyzer.gate.config import COMPARE_FAIL_ON, FAIL_ON, PYPROJECT, TABLE


def _thresholds_argument(comparison: bool) -> Callable[[str], str]:
    """`--fail-on`'s type: each threshold checked as the command line is parsed."""

    def check(text: str) -> str:
        try:
            if comparison:
                gate_for_comparison([text], Path.cwd())
            else:
                gate_for_diagnosis([text], Path.cwd())
        except UsageError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix("--fail-on: ")) from None
        return text

    return check


def add_gate_options(parser: argparse.ArgumentParser, *, comparison: bool) -> None:
    keys = f"{FAIL_ON} and {COMPARE_FAIL_ON}" if comparison else FAIL_ON
    parser.add_argument(
        "--fail-on",
        action="append",
        type=_thresholds_argument(comparison),
        metavar="THRESHOLDS",
        help="exit 1 when a threshold is violated, one line each: comma-separated, e.g. "
        "'graph-breaks>0,recompiles>0,speedup.inference<1.1,error'"
        + (", 'graph-breaks.added>0,speedup.inference.regressed'" if comparison else "")
        + f" (quote them: > is the shell's; the figures are in the README); 'none' for none. "
        f"Default: {keys} of [tool.{TABLE}] in the nearest {PYPROJECT} that has it",
    )
    parser.add_argument(
        "--junit",
        metavar="PATH",
        help="also write the thresholds as a JUnit XML file (one test case per threshold), "
        "which CI systems display",
    )


def requested_gate(args: argparse.Namespace, *, comparison: bool) -> Gate | None:
    """The gate the command line or the project asks for; None when neither names one."""
    read = gate_for_comparison if comparison else gate_for_diagnosis
    gate = read(args.fail_on, Path.cwd())
    if gate is None and args.junit:
        raise UsageError(
            f"--junit needs thresholds: give --fail-on, or {FAIL_ON} in [tool.{TABLE}] of "
            f"{PYPROJECT}"
        )
    return gate
