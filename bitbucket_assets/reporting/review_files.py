"""Reading a completed review file (CSV or XLSX) as a hostile one: bounded before its rows are read.

The file is read once into memory (its bytes are what the reviewer signed, and what the warehouse keeps); its
rows are then produced one at a time. A workbook is opened read-only, its parts' declared sizes are checked,
then its header (each column named once, every needed one present), then its declared rows and columns
against the caps, and only then are rows read, each bounded to the header's width; a workbook that declares no
size is counted as it is read, and stopped at the cap.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..provisioning.requests_import import decode_text, header_problem, iter_csv_records
from .safe_text import from_spreadsheet_cell

MAX_COLUMNS = 64  # the export writes 19; reviewers may add a few of their own
MAX_UNPACKED_BYTES = 1 << 30  # a workbook's parts, unpacked: a small file that unpacks to more is refused
XLSX = ".xlsx"


class ReviewImportError(ValueError):
    """Rows the import could not accept, each named by line and column; nothing was imported."""


@dataclass(frozen=True)
class ReviewFile:
    """A review file as it was read: its name and bytes (what the reviewer's signature covers)."""

    name: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @classmethod
    def read(cls, path: Path) -> ReviewFile:
        try:
            return cls(path.name, path.read_bytes())
        except OSError as exc:
            raise ReviewImportError(f"{path}: cannot be read ({exc.strerror}); nothing imported") from None


def review_rows(
    file: ReviewFile, required: tuple[str, ...], max_rows: int, where: str | None = None
) -> Iterator[tuple[int, dict]]:
    """The file's rows, one at a time, each with its line and cell values as text (spreadsheet escapes
    undone). Raises `ReviewImportError` for a file that cannot be read as a review: encoding, a corrupt or
    empty workbook, a repeated or missing column, more rows or columns than allowed."""
    where = where or file.name

    def error(problems: list[str]) -> ReviewImportError:
        return ReviewImportError(f"{where}: {'; '.join(problems)}; nothing imported")

    if file.name.lower().endswith(XLSX):
        yield from _workbook_rows(file.content, required, max_rows, error)
        return
    records = iter_csv_records(decode_text(file.content, error), required, error)
    for count, (line, row) in enumerate(records, start=1):
        if len(row) > MAX_COLUMNS:
            raise error([f"line 1: {len(row)} columns, more than {MAX_COLUMNS}"])
        if count > max_rows:
            raise error([f"more than {max_rows} rows (BITBUCKET_REVIEW_MAX_ROWS): split the review"])
        yield line, {k: from_spreadsheet_cell(v or "") for k, v in row.items() if k is not None}


def _workbook_rows(
    content: bytes, required: tuple[str, ...], max_rows: int, error: Callable[[list[str]], Exception]
) -> Iterator[tuple[int, dict]]:
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise error(["not a readable .xlsx workbook (not a zip archive)"]) from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise error([f"the workbook unpacks to {unpacked:,} bytes, more than {MAX_UNPACKED_BYTES:,}"])
    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        sheet = book.active
        rows = (
            sheet.iter_rows(min_row=1, max_row=1, max_col=MAX_COLUMNS + 1, values_only=True)
            if sheet is not None
            else iter(())
        )
        first = next(rows, None)
    except Exception as exc:  # openpyxl raises zip, XML and key errors for a damaged file
        raise error([f"not a readable .xlsx workbook ({type(exc).__name__})"]) from None
    if not first or all(v is None for v in first):
        raise error(["the workbook is empty"])
    header = ["" if value is None else str(value).strip() for value in first]
    while header and not header[-1]:
        header.pop()
    if len(header) > MAX_COLUMNS:
        raise error([f"line 1: more than {MAX_COLUMNS} columns"])
    header_problem(header, required, error)
    declared_rows, declared_columns = sheet.max_row, sheet.max_column
    if declared_columns is not None and declared_columns > MAX_COLUMNS:
        raise error(
            [f"the sheet declares {declared_columns} columns, more than {MAX_COLUMNS}: delete the extra ones"]
        )
    if declared_rows is not None and declared_rows - 1 > max_rows:
        raise error(
            [f"the sheet declares {declared_rows - 1} rows, more than {max_rows} (BITBUCKET_REVIEW_MAX_ROWS)"]
        )
    try:
        body = sheet.iter_rows(min_row=2, max_row=max_rows + 2, max_col=len(header), values_only=True)
        for line, values in enumerate(body, start=2):
            if line - 1 > max_rows:
                raise error([f"more than {max_rows} rows (BITBUCKET_REVIEW_MAX_ROWS): split the review"])
            cells = ["" if v is None else str(v) for v in values]
            yield (
                line,
                {name: from_spreadsheet_cell(v) for name, v in zip(header, cells, strict=False) if name},
            )
    except ReviewImportError:
        raise
    except Exception as exc:
        raise error([f"not a readable .xlsx workbook ({type(exc).__name__})"]) from None
    finally:
        book.close()
