"""Horizontal stacked bars: a segment per part, each a glyph and a colour, to a common scale."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text


def append_segments(text: Text, segments: Iterable[tuple[str, str, float]], scale: float) -> int:
    """Append a segment per (glyph, style, value) to `text`, `scale` columns per unit; the
    columns used. Rounded on the running total, so the bar is as long as the total's rounding
    and no segment's rounding adds up along it."""
    done, done_columns = 0.0, 0
    for glyph, style, value in segments:
        done += value
        columns = round(done * scale) - done_columns
        text.append(glyph * columns, style=style)
        done_columns += columns
    return done_columns
