"""`compile-diagnose trace FILE`: summarise a torch.profiler trace a user already has."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console, Group

from analyzer.errors import InputFileError, UsageError
from analyzer.findings import rank
from analyzer.render.findings import render_findings
from analyzer.render.kernels import trace_summary_view
from analyzer.rules.kernels import check_trace
from probes.kernels.kineto import TraceFormatError, load_trace
from probes.kernels.trace_summary import summarize
from probes.records.serialize import to_jsonable, write_json_atomic


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "trace",
        help="summarise a torch.profiler trace (Kineto JSON, .json or .json.gz)",
        description="Read a trace written by torch.profiler (export_chrome_trace or "
        "tensorboard_trace_handler) and report kernels, device time, GPU busy time, launch "
        "cost and time inside compiled regions, with the findings they support.",
    )
    parser.add_argument("file", metavar="FILE", type=Path, help="the trace file")
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write the summary and findings as JSON to PATH ('-': stdout only)",
    )
    parser.add_argument(
        "--top", type=int, default=10, metavar="N", help="kernels and ops to list (default 10)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.top < 1:
        raise UsageError(f"--top must be at least 1, got {args.top}")
    try:
        summary = summarize(load_trace(args.file), top=args.top)
    except TraceFormatError as error:
        raise InputFileError(str(error)) from error
    record = to_jsonable(summary)
    findings = rank(check_trace(record))
    record["findings"] = to_jsonable(findings)
    if args.json == "-":
        sys.stdout.write(json.dumps(record, indent=2, allow_nan=False) + "\n")
        return 0
    if args.json:
        _write(Path(args.json), record)
    Console().print(Group(trace_summary_view(summary), render_findings(findings)))
    return 0


def _write(path: Path, record: dict[str, Any]) -> None:
    try:
        write_json_atomic(path, record)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from error
