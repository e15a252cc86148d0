"""The thresholds a project writes once, in its pyproject.toml:

    [tool.compile-diagnose]
    fail-on = ["graph-breaks>0", "recompiles>0", "speedup.inference<1.1", "error"]
    compare-fail-on = ["graph-breaks.added>0", "speedup.inference.regressed"]

`fail-on` applies to every diagnosing command and to `compile-diagnose compare` (read from
AFTER there); `compare-fail-on` to `compare` alone. The file is the nearest pyproject.toml with
a `[tool.compile-diagnose]` table, from the current folder up (as ruff and pytest find theirs).
A `--fail-on` on the command line replaces both.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analyzer.errors import UsageError

PYPROJECT = "pyproject.toml"
TABLE = "compile-diagnose"  # [tool.compile-diagnose]
FAIL_ON = "fail-on"
COMPARE_FAIL_ON = "compare-fail-on"
KEYS = (FAIL_ON, COMPARE_FAIL_ON)


@dataclass(frozen=True)
class ProjectThresholds:
    path: Path  # the pyproject.toml they come from
    fail_on: tuple[str, ...]
    compare_fail_on: tuple[str, ...]

    def where(self, key: str) -> str:
        """How a usage error names one key of the table."""
        return f"{self.path} [tool.{TABLE}] {key}"


def project_thresholds(start: Path) -> ProjectThresholds | None:
    """The thresholds of the nearest pyproject.toml with the table, or None if there is none."""
    for folder in (start, *start.parents):
        path = folder / PYPROJECT
        if not path.is_file():
            continue
        table = _read(path).get("tool", {}).get(TABLE)
        if table is not None:
            return _thresholds(path, table)
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{path}: not valid TOML ({error})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read it ({error})") from None


def _thresholds(path: Path, table: Any) -> ProjectThresholds:
    where = f"{path} [tool.{TABLE}]"
    if not isinstance(table, dict):
        raise UsageError(f"{where}: must be a table")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key {', '.join(unknown)} (known: {', '.join(KEYS)})")
    return ProjectThresholds(
        path,
        _expressions(table.get(FAIL_ON, ()), f"{where} {FAIL_ON}"),
        _expressions(table.get(COMPARE_FAIL_ON, ()), f"{where} {COMPARE_FAIL_ON}"),
    )


def _expressions(value: Any, where: str) -> tuple[str, ...]:
    """A list of strings, or one comma-separated string."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise UsageError(f'{where}: must be a list of strings, e.g. ["graph-breaks>0", "error"]')
