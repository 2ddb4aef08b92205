"""How the dashboard shows text that came from Bitbucket (names anyone types): as typed, never interpreted.

Streamlit renders headings, captions, alerts and `st.table` cells as Markdown, with GitHub's autolinks and
its own shortcodes (`:smile:`, `:red[...]`, `$...$`) applied to the text after escapes are resolved, so no
escaping makes a name inert there. Text holding names therefore never goes through Markdown: it is
HTML-escaped into elements of the dashboard's own (`st.html`, which Streamlit also sanitises), and the only
links are the dashboard's, relative to itself. Control and bidi characters are shown as escapes (`\\u202e`),
so a name cannot reorder what is shown around it. `st.dataframe` cells, pickers and chart labels are plain
text: they get `visible` text only.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..reporting.safe_text import visible

# One style for the dashboard's own elements, close to Streamlit's captions, alerts and tables.
CSS = """<style>
.bb-caption { color: rgba(49, 51, 63, 0.6); font-size: 0.875rem; margin: 0 }
.bb-note, .bb-warning, .bb-error { padding: 0.75rem 1rem; border-radius: 0.5rem; margin: 0 }
.bb-note { background: rgba(28, 131, 225, 0.1) }
.bb-warning { background: rgba(255, 193, 7, 0.15) }
.bb-error { background: rgba(255, 43, 43, 0.09); color: rgb(125, 53, 59) }
table.bb-table { border-collapse: collapse; width: 100%; font-size: 0.875rem }
.bb-table th, .bb-table td { text-align: left; vertical-align: top; padding: 0.25rem 0.5rem;
  border-bottom: 1px solid rgba(49, 51, 63, 0.1) }
</style>"""


@dataclass(frozen=True)
class Link:
    """A link the dashboard built: `href` is relative to the dashboard (`?page=...`)."""

    text: Any
    href: str

    def __post_init__(self) -> None:
        if not self.href.startswith("?"):
            raise ValueError(f"the dashboard links only to itself, not to {self.href!r}")


def shown(value: Any) -> str:
    """A value as the text to show: nothing for a missing value, control and bidi characters escaped."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value) == "NaT":
        return ""
    return visible(value)


def escaped(value: Any) -> str:
    return html.escape(shown(value), quote=True)


def element(text: Any, tag: str = "p", css: str = "") -> str:
    """`text` as the content of one element (a heading `h3`, a `p` of class `bb-caption`, ...)."""
    classes = " ".join(filter(None, ("bb-text", css)))
    return f'<{tag} class="{classes}">{escaped(text)}</{tag}>'


def linked_table(
    link_column: str,
    links: Sequence[Link | str | None],
    columns: Sequence[str],
    rows: Sequence[Sequence],
    cell_links: Mapping[str, Sequence[Link | None]] | None = None,
) -> str:
    """A table whose first column, `link_column`, holds the dashboard's `links`, one per row of `rows`; a
    column named in `cell_links` links its cells too. Text in place of a link is shown as text."""
    head = "".join(f"<th>{escaped(name)}</th>" for name in (link_column, *columns))
    linked = {columns.index(name): cells for name, cells in (cell_links or {}).items()}

    def cell(value: Any, target: Link | str | None) -> str:
        if not isinstance(target, Link):
            return f"<td>{escaped(value if target is None else target)}</td>"
        return f'<td><a href="{html.escape(target.href, quote=True)}">{escaped(target.text)}</a></td>'

    body = "".join(
        "<tr>"
        + cell(None, link)
        + "".join(cell(value, linked[i][r] if i in linked else None) for i, value in enumerate(row))
        + "</tr>"
        for r, (link, row) in enumerate(zip(links, rows, strict=True))
    )
    return f'<table class="bb-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def anchor(target: Link, css: str = "bb-caption") -> str:
    """One of the dashboard's own links in a paragraph, its text escaped."""
    href = html.escape(target.href, quote=True)
    return f'<p class="bb-text {css}"><a href="{href}">{escaped(target.text)}</a></p>'
