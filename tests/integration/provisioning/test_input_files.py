"""Files as people produce them: encodings, multi-line fields, wrong types, missing columns, broken
workbooks."""

from __future__ import annotations

import json

import duckdb
import pytest

from bitbucket_assets.provisioning.requests_import import RequestImportError, import_requests, read_requests
from bitbucket_assets.reporting.review_import import ReviewImportError, read_review

HEADER = "request_id,workspace_slug,group_slug,user_id,action,requested_by,approved_by,approved_at,reason\n"
UUID = "{0b6d6d6e-1111-4222-8333-444455556666}"


def row(rid: str, reason: str = "needed", user: str = UUID) -> str:
    return f'{rid},tiny-co,leads,{user},add,ana@x,olga@x,2026-11-27T08:00:00Z,"{reason}"\n'


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    # plain, Excel's "CSV UTF-8", UTF-16 with BOM
    [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("utf-16", b"")],
    ids=["utf-8", "utf-8-bom", "utf-16"],
)
def test_spreadsheet_encodings_are_read(tmp_path, encoding, prefix) -> None:
    path = tmp_path / "requests.csv"
    path.write_bytes(prefix + (HEADER + row("r1", "café, für Zoë")).encode(encoding))
    [parsed] = read_requests(path)
    assert parsed["request_id"] == "r1" and parsed["reason"] == "café, für Zoë"


def test_latin1_is_refused_naming_the_line(tmp_path) -> None:
    path = tmp_path / "requests.csv"
    path.write_bytes((HEADER + row("r1") + row("r2", "café")).encode("latin-1"))
    with pytest.raises(RequestImportError, match=r"line 3: byte 0xe9 is not UTF-8: save the file as UTF-8"):
        read_requests(path)


def test_a_multi_line_field_stays_one_row_and_lines_stay_right(tmp_path) -> None:
    path = tmp_path / "requests.csv"
    path.write_text(
        HEADER + row("r1", "first line\nsecond line") + row("r2", user="not-an-id"), encoding="utf-8"
    )
    with pytest.raises(RequestImportError) as excinfo:
        read_requests(path)
    assert excinfo.value.problems == [
        "line 4: user_id: 'not-an-id' is neither a {uuid} nor an Atlassian account id"
    ]
    path.write_text(HEADER + row("r1", "first line\nsecond line"), encoding="utf-8")
    assert read_requests(path)[0]["reason"] == "first line\nsecond line"


def test_wrong_types_missing_columns_and_bad_slugs_are_named(tmp_path) -> None:
    jsonl = tmp_path / "requests.jsonl"
    good = {
        "request_id": "r1",
        "workspace_slug": "tiny-co",
        "group_slug": "leads",
        "user_id": UUID,
        "action": "add",
        "requested_by": "ana@x",
    }
    lines = [
        {**good, "request_id": 7},
        {**good, "request_id": "r2", "allow_protected": "maybe", "approved_at": 1764230400},
        {**good, "request_id": "r3", "group_slug": "leads/../admins", "workspace_slug": "tiny co"},
    ]
    jsonl.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    with pytest.raises(RequestImportError) as excinfo:
        read_requests(jsonl)
    assert excinfo.value.problems == [
        "line 1: request_id: expected text, got int 7",
        "line 2: approved_at: expected an ISO-8601 timestamp as text, got int 1764230400",
        "line 2: allow_protected: 'maybe' is not true or false",
        "line 3: workspace_slug: 'tiny co' is not a Bitbucket slug (letters, digits, - _ .)",
        "line 3: group_slug: 'leads/../admins' is not a Bitbucket slug (letters, digits, - _ .)",
    ]
    csv_path = tmp_path / "requests.csv"
    csv_path.write_text("request_id,workspace_slug,user_id\nr1,tiny-co,x\n", encoding="utf-8")
    with pytest.raises(
        RequestImportError, match=r"line 1: missing column\(s\) group_slug, action, requested_by"
    ):
        read_requests(csv_path)
    csv_path.write_text("", encoding="utf-8")
    with pytest.raises(RequestImportError, match="the file is empty"):
        read_requests(csv_path)


def test_broken_review_workbooks_are_clear_errors(tmp_path) -> None:
    from openpyxl import Workbook

    empty = tmp_path / "empty.xlsx"
    Workbook().save(empty)
    with pytest.raises(ReviewImportError, match="the workbook is empty"):
        read_review(empty)
    corrupt = tmp_path / "corrupt.xlsx"
    corrupt.write_bytes(b"PK\x03\x04 this is not really a workbook")
    with pytest.raises(ReviewImportError, match=r"not a readable \.xlsx workbook"):
        read_review(corrupt)
    partial = tmp_path / "partial.csv"
    partial.write_text("review_item,decision\nx,revoke\n", encoding="utf-8")
    with pytest.raises(ReviewImportError, match=r"line 1: missing column\(s\) workspace_slug"):
        read_review(partial)


def test_a_large_import_is_one_bulk_insert(warehouse, tmp_path) -> None:
    """30,000 rows in one file land in one transaction (the 300,000-row figure is in docs/benchmarks.md)."""
    path = tmp_path / "many.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write(HEADER)
        for i in range(30_000):
            handle.write(f"bulk-{i:06d},tiny-co,leads,{UUID},add,ana@x,olga@x,2026-11-27T08:00:00Z,batch\n")
    with duckdb.connect(warehouse) as con:
        assert import_requests(con, path) == 30_000
        assert con.execute(
            "select count(*), count(distinct request_id) from provisioning.access_requests "
            "where request_id like 'bulk-%'"
        ).fetchone() == (30_000, 30_000)
