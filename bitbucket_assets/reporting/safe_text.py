"""Text that came from Bitbucket (names anyone can type) made safe for spreadsheets, terminals and pages.

- Spreadsheet cells: a value starting with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with a
  single quote, as OWASP's CSV-injection guidance says, so Excel, LibreOffice and Sheets show it as text
  instead of running it as a formula (`=HYPERLINK(...)`). XLSX cells are also written as strings, and the
  control characters XLSX cannot hold are removed.
- Terminal lines and the dashboard: control characters (ESC sequences, bells, carriage returns, newlines) and
  bidi controls (overrides, embeddings, isolates, marks) are shown escaped (`\\x1b`, `\\u202e`), so a name
  cannot rewrite a line or reorder what is shown around it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# C0 and C1 controls but the tab, and the bidi controls that make a terminal or a browser show text in another
# order (embeddings and overrides, isolates, and the marks LRM, RLM and ALM).
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def text(value: Any) -> str:
    """A cell's text: timestamps in UTC ISO-8601, None as empty."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return "" if value is None else str(value)


def spreadsheet_cell(value: Any) -> str:
    """Text for a CSV or XLSX cell that no spreadsheet will evaluate."""
    cell = text(value)
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def xlsx_cell(value: Any) -> str:
    """`spreadsheet_cell` without the characters the XLSX format cannot store."""
    return spreadsheet_cell(_XLSX_ILLEGAL.sub("", text(value)))


def from_spreadsheet_cell(cell: str) -> str:
    """Undo `spreadsheet_cell` on a value read back (the quote added before a formula character)."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_START) else cell


def terminal_line(line: str) -> str:
    """A line safe to print: control characters (newlines too) and bidi overrides shown as escapes."""
    return _CONTROL.sub(_escape, line)


def visible(value: Any) -> str:
    """A value as text whose every character shows as itself: controls and bidi controls escaped."""
    return terminal_line(text(value))


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
