"""`compile-diagnose trace FILE`: summarise a torch.profiler trace a user already has.

`--json [PATH]` works as on every command: with no PATH or "-" the summary and its findings go
to stdout as JSON and nothing else is printed there; with a PATH they are written there and the
table is printed as well.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console, Group

from analyzer.commands.common import add_json_option, positive_int, write_json_output
from analyzer.errors import InputFileError
from analyzer.render.findings import render_findings
from analyzer.render.kernels import trace_summary_view
from analyzer.rules.kernels import check_trace
from probes.kernels.kineto import TraceFormatError, load_trace
from probes.kernels.trace_summary import summarize
from probes.records.serialize import dumps, to_jsonable


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "trace",
        help="summarise a torch.profiler trace (Kineto JSON, .json or .json.gz)",
        description="Read a trace written by torch.profiler (export_chrome_trace or "
        "tensorboard_trace_handler) and report kernels, device time, GPU busy time, launch "
        "cost and time inside compiled regions, with the findings they support.",
    )
    parser.add_argument("file", metavar="FILE", type=Path, help="the trace file")
    add_json_option(parser, "the summary and its findings")
    parser.add_argument(
        "--top",
        type=positive_int,
        default=10,
        metavar="N",
        help="kernels and ops to list (default 10)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        summary = summarize(load_trace(args.file), top=args.top)
    except TraceFormatError as error:
        raise InputFileError(str(error)) from error
    record = to_jsonable(summary)  # the rules read the recorded form, as from a file
    findings = check_trace(record)
    if args.json is not None:
        # The summary's keys, then the findings under a key of their own.
        write_json_output(args.json, dumps(record | {"findings": findings}))
        if args.json == "-":
            return 0
    Console().print(Group(trace_summary_view(summary), render_findings(findings)))
    return 0
