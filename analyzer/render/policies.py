"""The table of `compile-diagnose list`: LeRobot's policies and this tool's presets for each."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text

from analyzer.format import MISSING


@dataclass(frozen=True)
class PolicyRow:
    name: str
    presets: Sequence[str] = ()  # none: the tool cannot build this policy yet
    cuda_preset: str = ""
    cpu_preset: str = ""
    needs: str = ""


def policy_list_table(rows: Iterable[PolicyRow]) -> Table:
    table = Table(title="LeRobot policies (installed lerobot)", title_justify="left")
    table.add_column("policy")
    table.add_column("presets (CUDA / CPU default)")
    table.add_column("what it needs")
    for row in rows:
        if not row.presets:
            table.add_row(row.name, MISSING, "not supported by compile-diagnose yet")
            continue
        presets = f"{', '.join(row.presets)} ({row.cuda_preset} / {row.cpu_preset})"
        # Text, not markup: "lerobot[pi]" would read as a style tag
        table.add_row(row.name, presets, Text(row.needs))
    return table
