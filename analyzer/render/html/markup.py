"""The few HTML pieces every section of the report is made of, each string escaped on its way in.

Every text that reaches the page passes through `esc` (or a helper that calls it): a recorded
string (a module path, an op name, an error message) is never markup.
"""

from __future__ import annotations

import html
import posixpath
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from analyzer.format import NOT_MEASURED


def esc(value: Any) -> str:
    """Any value as text that cannot be read as markup."""
    return html.escape(str(value), quote=True)


def paragraph(text: Any, css_class: str = "") -> str:
    attribute = f' class="{esc(css_class)}"' if css_class else ""
    return f"<p{attribute}>{esc(text)}</p>"


def absent(why: str) -> str:
    """The one line a section shows in place of what was not recorded."""
    return paragraph(why, "absent")


def code_block(lines: Iterable[str]) -> str:
    return f"<pre><code>{esc(chr(10).join(lines))}</code></pre>"


def badge(text: Any, tone: str) -> str:
    """A short label (PASS, NEEDS WORK, warning) coloured by its tone (a CSS class)."""
    return f'<span class="badge {esc(tone)}">{esc(text)}</span>'


def passed_badge(passed: Any, missing: str = NOT_MEASURED) -> str:
    if passed is None:
        return badge(missing, "muted")
    return badge("PASS", "good") if passed else badge("FAIL", "bad")


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    numeric: Collection[int] | None = None,
    raw_columns: Collection[int] = (),
    names: Collection[int] = (),
    row_classes: Sequence[str] = (),
) -> str:
    """A table of text cells, escaped. `numeric` columns are right-aligned (by default all but
    the first); the cells of `raw_columns` are markup this module made (a badge, a link) and go
    in as they are; `names` columns hold names that must not break at a hyphen
    (no-layout-optimization); `row_classes` marks rows (a CSS class per row, "" for none)."""
    right = set(range(1, len(header)) if numeric is None else numeric)

    def cell(tag: str, i: int, content: str) -> str:
        css = "num" if i in right else "name" if i in names else ""
        return f'<{tag} class="{css}">{content}</{tag}>' if css else f"<{tag}>{content}</{tag}>"

    head = "".join(cell("th", i, esc(h)) for i, h in enumerate(header))
    body = []
    for index, row in enumerate(rows):
        cells = "".join(
            cell("td", i, value if i in raw_columns else esc(value)) for i, value in enumerate(row)
        )
        marked = row_classes[index] if index < len(row_classes) else ""
        body.append(f'<tr class="{esc(marked)}">{cells}</tr>' if marked else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def notes(items: Iterable[tuple[str, str]]) -> str:
    """Sentences that do not fit a table's column, each under its row's name."""
    shown = "".join(
        f"<li><strong>{esc(label)}</strong>: {esc(text)}</li>" for label, text in items if text
    )
    return f'<ul class="notes">{shown}</ul>' if shown else ""


def key_values(rows: Iterable[tuple[str, Any]]) -> str:
    """Label and value pairs, as a definition list."""
    items = "".join(f"<dt>{esc(label)}</dt><dd>{esc(value)}</dd>" for label, value in rows)
    return f'<dl class="pairs">{items}</dl>'


def section(anchor: str, title: str, *parts: str) -> str:
    body = "\n".join(part for part in parts if part)
    return f'<section id="{esc(anchor)}">\n<h2>{esc(title)}</h2>\n{body}\n</section>'


def subheading(text: str) -> str:
    return f"<h3>{esc(text)}</h3>"


def figure(svg: str, caption: str, name: str) -> str:
    """An inline SVG plot (markup made by `analyzer.render.html.plot`) with its caption."""
    return (
        f'<figure class="plot" data-plot="{esc(name)}">{svg}'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
    )


def missing_probe(diagnosis: Mapping[str, Any], probe: str, what: str) -> str:
    """Why a section has nothing to show: its probe failed (with its error), or did not run."""
    error = (diagnosis.get("probe_errors") or {}).get(probe)
    if error:
        return absent(f"No {what}: the {probe} probe failed ({error}).")
    return absent(f"No {what}: the {probe} probe did not run in this diagnosis.")


def link(path: str, out_dir: str | None, base: str, text: str | None = None) -> str:
    """A link to a file the diagnosis wrote, relative to the report.

    A path inside the diagnosis folder (`out_dir`, as recorded) is linked by its place in that
    folder, seen from the report (`base`: the diagnosis folder relative to the report's, "" when
    the report sits in it), so that the folder can be moved or copied as a whole; a path outside
    it keeps its recorded form.
    """
    href = path
    if out_dir and posixpath.isabs(path) and posixpath.isabs(out_dir):
        relative = posixpath.relpath(path, out_dir)
        href = posixpath.normpath(posixpath.join(base, relative)) if base else relative
    shown = esc(text if text is not None else href)
    return f'<a href="{esc(href)}" title="{esc(path)}">{shown}</a>'
