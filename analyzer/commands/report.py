"""`compile-diagnose report DIAGNOSIS`: render an earlier diagnosis again, as the self-contained
HTML report with plots (`--html PATH`) or as Markdown (`--markdown PATH`), from its
`diagnosis.json` alone: no model is built, nothing is measured."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from analyzer.commands.common import write_text_output
from analyzer.diagnosis import DIAGNOSIS_FILE
from analyzer.errors import InputFileError, UsageError
from analyzer.render.report_markdown import report_markdown
from analyzer.runner.writer import REPORT_HTML, write_html_report


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="render an earlier diagnosis.json again: the HTML report with plots, or Markdown",
        description=f"Render the report of an earlier diagnosis from its {DIAGNOSIS_FILE}: "
        "--html PATH writes the self-contained HTML page with plots (it loads nothing when "
        "opened), --markdown PATH the Markdown report. With neither, the HTML report is "
        f"written beside {DIAGNOSIS_FILE} as {REPORT_HTML}.",
    )
    parser.add_argument(
        "diagnosis",
        metavar="DIAGNOSIS",
        type=Path,
        help=f"a {DIAGNOSIS_FILE}, or the diagnosis folder that holds one",
    )
    parser.add_argument("--html", metavar="PATH", help="write the HTML report to PATH")
    parser.add_argument(
        "--markdown", metavar="PATH", help="write the Markdown report to PATH ('-': stdout)"
    )
    parser.set_defaults(handler=run)


def read_diagnosis(path: Path) -> tuple[dict[str, Any], Path]:
    """The stored diagnosis and the folder it lies in; a file that is not one is a usage error."""
    file = path / DIAGNOSIS_FILE if path.is_dir() else path
    if not file.is_file():
        raise InputFileError(
            f"{path}: no such file" + (f" ({DIAGNOSIS_FILE})" if path.is_dir() else "")
        )
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputFileError(f"{file}: not a diagnosis ({error})") from None
    if not isinstance(record, dict) or not isinstance(record.get("probes"), dict):
        raise InputFileError(f"{file}: not a diagnosis (no probes section)")
    return record, file.parent


def run(args: argparse.Namespace) -> int:
    record, folder = read_diagnosis(args.diagnosis)
    html = args.html or (None if args.markdown else str(folder / REPORT_HTML))
    said = sys.stderr if args.markdown == "-" else sys.stdout
    if html:
        try:
            path = write_html_report(record, Path(html), diagnosis_dir=folder)
        except OSError as error:
            raise UsageError(f"--html {html}: cannot write ({error.strerror})") from None
        print(f"HTML report written to {path}", file=said)
    if args.markdown:
        write_text_output(args.markdown, report_markdown(record), "--markdown")
        if args.markdown != "-":
            print(f"Markdown report written to {args.markdown}", file=said)
    return 0
