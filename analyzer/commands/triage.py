"""`compile-diagnose triage REPORT`: what a benchmark report's numbers likely mean.

Reads the report, runs the triage rules and hands the result to the renderer: the report's
verdict beside the one recomputed from its numbers, then the findings. `--json [PATH]` writes the
verdict and findings as JSON (no PATH or `-`: to standard output, and nothing else is printed
there); `--markdown PATH` writes them as Markdown. Exit status: 0 when no error-severity finding
stands, 1 when one does, 2 for bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from analyzer.commands.common import (
    EXIT_ERROR_FINDING,
    EXIT_HEALTHY,
    add_json_option,
    write_json_output,
    write_text_output,
)
from analyzer.reference_report import read_report
from analyzer.render.triage import render_triage, triage_json, triage_markdown
from analyzer.rules.triage import triage


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "triage",
        help="explain a LeRobot benchmark report's numbers (e.g. a NEEDS WORK verdict)",
        description="Read a report in the format of LeRobot's policies_compilation benchmark "
        "(Markdown with a Raw Data JSON block, or the JSON alone) and say, from its numbers, "
        "what they likely mean, how sure that is, and which command would confirm it.",
    )
    parser.add_argument("report", metavar="REPORT", type=Path, help="the report file")
    add_json_option(parser, "the verdict and findings")
    parser.add_argument("--markdown", metavar="PATH", help="write them as Markdown")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    result = triage(read_report(args.report))
    if args.json != "-":
        Console().print(render_triage(result))
    if args.json:
        write_json_output(args.json, triage_json(result))
    if args.markdown:
        write_text_output(args.markdown, triage_markdown(result), "--markdown")
    return EXIT_ERROR_FINDING if result.has_error else EXIT_HEALTHY
