"""`compile-diagnose tlparse DIR`: re-render the tlparse report of an earlier diagnosis folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from analyzer.errors import InputFileError
from analyzer.render.tlparse import tlparse_report_view
from probes.records.compile_trace import REPORT_SUBDIR, TLPARSE_INSTALL_HINT, TRACE_SUBDIR

PROG = "compile-diagnose"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tlparse",
        help="re-render the tlparse report of a diagnosis folder's compile trace",
        description=f"Run tlparse ({TLPARSE_INSTALL_HINT}) on the structured "
        f"compile trace a diagnosis wrote to DIR/{TRACE_SUBDIR}/, write the report to "
        f"DIR/{REPORT_SUBDIR}/, and say where to open it.",
    )
    parser.add_argument("dir", metavar="DIR", type=Path, help="a diagnosis output folder")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    folder: Path = args.dir
    if not folder.is_dir():
        raise InputFileError(f"{folder} is not a folder")
    from probes.compile.tlparse import latest_trace_log, render_diagnosis_report  # imports torch

    if latest_trace_log(folder) is None:
        raise InputFileError(f"{folder} holds no compile trace ({TRACE_SUBDIR}/ with a log)")
    report = render_diagnosis_report(folder)
    if report.error is not None:
        print(f"{PROG}: error: {report.error}", file=sys.stderr)
        return 1
    Console().print(tlparse_report_view(report))
    return 0
