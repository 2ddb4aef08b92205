"""Review and request files read as hostile ones: a repeated column refused, a workbook bounded before its
rows are read."""

from __future__ import annotations

import io
import json
import re
import tracemalloc
import zipfile

import pytest
from openpyxl import Workbook

from bitbucket_assets.provisioning.requests_import import RequestImportError, read_requests
from bitbucket_assets.reporting.review import COLUMNS
from bitbucket_assets.reporting.review_files import ReviewFile, ReviewImportError, review_rows
from bitbucket_assets.reporting.review_import import IMPORT_COLUMNS, read_review

UUID = "{0b6d6d6e-1111-4222-8333-444455556666}"


@pytest.mark.parametrize("column", ["approved_by", "action"])
def test_a_repeated_request_column_is_refused_naming_it(tmp_path, column) -> None:
    header = f"request_id,workspace_slug,group_slug,user_id,action,requested_by,approved_by,{column}"
    path = tmp_path / "requests.csv"
    path.write_text(f"{header}\nr1,tiny-co,leads,{UUID},add,ana@x,ana@x,olga@x\n", encoding="utf-8")
    with pytest.raises(RequestImportError, match=rf"line 1: column '{column}' appears more than once"):
        read_requests(path)
    jsonl = tmp_path / "requests.jsonl"
    jsonl.write_text(
        '{"request_id": "r1", "approved_by": "ana@x", "approved_by": "olga@x"}\n', encoding="utf-8"
    )
    with pytest.raises(RequestImportError, match=r"line 1: key\(s\) approved_by appear more than once"):
        read_requests(jsonl)


def review_header(extra: str = "decision") -> list[str]:
    return [*COLUMNS, extra]


def workbook(rows: list[list], cell=None) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    if cell:
        sheet.cell(row=cell[0], column=cell[1], value="x")
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_a_repeated_review_column_is_refused_in_csv_and_xlsx(tmp_path) -> None:
    csv_path = tmp_path / "review.csv"
    csv_path.write_text(",".join(review_header()) + "\n" + ",".join("x" * 20) + "\n", encoding="utf-8")
    with pytest.raises(ReviewImportError, match="line 1: column 'decision' appears more than once"):
        read_review(csv_path)
    xlsx = tmp_path / "review.xlsx"
    xlsx.write_bytes(workbook([review_header(), ["x"] * 20]))
    with pytest.raises(ReviewImportError, match="line 1: column 'decision' appears more than once"):
        read_review(xlsx)


def peak_while(call) -> tuple[Exception | None, int]:
    tracemalloc.start()
    try:
        call()
        error = None
    except ReviewImportError as exc:
        error = exc
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return error, peak


def test_a_small_workbook_that_declares_a_huge_sheet_is_refused_before_its_rows(tmp_path) -> None:
    """One cell at the sheet's far corner makes a file of a few KB that openpyxl would pad to a million rows
    of 16,384 cells: it is refused by its declared size, in a few MB."""
    header = list(IMPORT_COLUMNS)
    for cell, problem in (
        ((1_048_576, 16_384), "the sheet declares 16384 columns, more than 64"),
        ((1_048_576, 3), "the sheet declares 1048575 rows, more than 500000"),
    ):
        content = workbook([header], cell)
        assert len(content) < 10_000
        error, peak = peak_while(
            lambda c=content: list(review_rows(ReviewFile("r.xlsx", c), IMPORT_COLUMNS, 500_000))
        )
        assert problem in str(error) and peak < 20_000_000, (problem, peak)


def test_a_workbook_that_declares_no_size_is_stopped_at_the_cap(tmp_path) -> None:
    content = workbook([list(IMPORT_COLUMNS)], (1_048_576, 3))
    unsized = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as source, zipfile.ZipFile(unsized, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb"<dimension [^>]*/>", b"", data)
                assert b"<dimension" not in data
            target.writestr(info, data)
    rows = review_rows(ReviewFile("r.xlsx", unsized.getvalue()), IMPORT_COLUMNS, 1_000)
    error, peak = peak_while(lambda: list(rows))
    assert "more than 1000 rows (BITBUCKET_REVIEW_MAX_ROWS)" in str(error) and peak < 20_000_000


def test_rows_are_read_one_at_a_time_with_their_lines(tmp_path) -> None:
    header = list(IMPORT_COLUMNS)
    content = workbook([header, ["a"] * len(header), [], ["b"] * len(header)])
    rows = review_rows(ReviewFile("r.xlsx", content), IMPORT_COLUMNS, 10)
    first = next(rows)  # a generator: nothing past the first row is read yet
    assert first[0] == 2 and first[1]["review_item"] == "a"
    assert [(line, row["review_item"]) for line, row in rows] == [(3, ""), (4, "b")]
    assert json.dumps(IMPORT_COLUMNS)  # the columns an import needs are the export's
