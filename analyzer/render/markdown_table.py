"""A Markdown table from columns and rows, as the report's sections write them."""

from __future__ import annotations

from collections.abc import Sequence


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The table's lines, then a blank one; a cell's `|` is escaped and its newlines joined."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(str(c)) for c in row) + " |" for row in rows]
    return [*lines, ""]
