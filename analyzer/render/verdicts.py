"""How a decided outcome reads: a criterion's PASS or FAIL cell, and the reference verdict's colour.

Shared by the diagnosis's benchmark table, the divergence tables and triage, so that a pass reads
the same in each; what was not decided reads as the caller's `missing` text ("not measured",
"not run", "n/a").
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from analyzer.format import NOT_MEASURED
from probes.records.reference import NEEDS_WORK, SUCCESS, UNDECIDED

VERDICT_STYLE = {SUCCESS: "bold green", NEEDS_WORK: "bold red", UNDECIDED: "bold yellow"}


def passed_text(passed: Any, missing: str = NOT_MEASURED) -> Text:
    """PASS or FAIL for a recorded outcome; `missing`, dimmed, where none was decided."""
    if passed is None:
        return Text(missing, style="dim")
    return Text("PASS", style="green") if passed else Text("FAIL", style="red")
