"""Find a planted line by its marker comment, so that editing a test module never breaks a test.

A planted line ends with `# PLANTED: <name>`; `marker_line(FILE, name)` is its line number.
"""

from __future__ import annotations

from pathlib import Path


def marker_line(file: Path, name: str) -> int:
    """The line number of the one line in `file` that ends with `# PLANTED: <name>`."""
    marker = f"# PLANTED: {name}"
    lines = file.read_text(encoding="utf-8").splitlines()
    found = [i for i, line in enumerate(lines, start=1) if line.rstrip().endswith(marker)]
    assert len(found) == 1, f"{marker!r} found {len(found)} times in {file.name}"
    return found[0]
