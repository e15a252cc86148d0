"""`compile-diagnose compare BEFORE AFTER`: what changed between two diagnoses, in compile terms.

BEFORE and AFTER are diagnosis folders (as `act`, `module` or any policy writes them) or their
`diagnosis.json`. Shows the settings that differ first, then graph breaks fixed, added and
unchanged, recompiles and their guards, compiled frames and regions, CUDA-graph replays and
skips, each speedup with its range and whether the change is beyond the spread, the action and
loss differences and fp64 verdicts, and the findings that appeared or disappeared. Two
diagnoses of different targets are refused in one line unless `--force`. Exit status: 0, or 1
when a threshold (`--fail-on`, or the project's pyproject.toml) is violated; 2 for bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from analyzer.commands.common import (
    EXIT_HEALTHY,
    add_json_option,
    finish_gate,
    write_json_output,
    write_text_output,
)
from analyzer.commands.gate import add_gate_options, requested_gate
from analyzer.comparison import compare, read_diagnosis
from analyzer.comparison.speed import MIN_CHANGE
from analyzer.gate import check_comparison
from analyzer.render.comparison import comparison_json, comparison_markdown, comparison_view


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="what changed between two diagnoses: breaks fixed, recompiles, speedups, accuracy",
        description="Compare two diagnoses of one target (folders or diagnosis.json files): "
        "settings that differ, graph breaks fixed or added, recompiles, compiled frames, "
        "speedups with their ranges (a change is noise while the two ranges overlap or the "
        "median moved under --min-change), action and "
        "loss differences, fp64 verdicts, and findings that appeared or disappeared.",
    )
    parser.add_argument("before", metavar="BEFORE", type=Path, help="the earlier diagnosis")
    parser.add_argument("after", metavar="AFTER", type=Path, help="the later diagnosis")
    parser.add_argument(
        "--force",
        action="store_true",
        help="compare diagnoses of different targets (policy or module, preset, entry points)",
    )
    parser.add_argument(
        "--min-change",
        metavar="PERCENT",
        type=min_change_argument,
        default=MIN_CHANGE,
        help="the smallest move of a median speedup called faster or slower, with the ranges "
        f"apart (default {100 * MIN_CHANGE:g}%%): one run's spread does not hold what moves "
        "between runs",
    )
    add_json_option(parser, "the comparison")
    parser.add_argument("--markdown", metavar="PATH", help="write the comparison as Markdown")
    add_gate_options(parser, comparison=True)
    parser.set_defaults(handler=run)


def min_change_argument(text: str) -> float:
    """`--min-change 10` or `10%`: a percentage from 0 (the ranges alone) to under 100."""
    try:
        value = float(text.strip().removesuffix("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r}") from None
    if not 0 <= value < 100:
        raise argparse.ArgumentTypeError(f"must be from 0 to under 100 (percent), got {text}")
    return value / 100


def run(args: argparse.Namespace) -> int:
    gate = requested_gate(args, comparison=True)
    before, after = read_diagnosis(args.before), read_diagnosis(args.after)
    comparison = compare(
        before,
        after,
        before_source=str(args.before),
        after_source=str(args.after),
        force=args.force,
        min_change=args.min_change,
    )
    result = check_comparison(gate, comparison, before, after) if gate else None
    if args.json != "-":
        Console().print(comparison_view(comparison, result))
    if args.json:
        write_json_output(args.json, comparison_json(comparison, result))
    if args.markdown:
        write_text_output(args.markdown, comparison_markdown(comparison, result), "--markdown")
    return EXIT_HEALTHY if result is None else finish_gate(args, result)
