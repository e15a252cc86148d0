#!/usr/bin/env bash
# Triage LeRobot's reference "NEEDS WORK" report for ACT (a copy beside this script): the
# report's verdict, the one its own numbers support, and what each number likely means, with
# the compile-diagnose command that would confirm it. Writes the same as Markdown beside it.
#
#   ./examples/triage_reference_report.sh [REPORT]
set -euo pipefail
cd "$(dirname "$0")/.."
report="${1:-examples/act_needs_work_report.md}"
out="${TMPDIR:-/tmp}/compile-diagnose-triage.md"
# Exit status 1 means an error-severity finding stands: the expected answer for this report.
.venv/bin/compile-diagnose triage "$report" --markdown "$out" || status=$?
echo "Markdown: $out" >&2
exit "${status:-0}"
