"""Importing requests from CSV and JSON Lines: all rows valid, or nothing imported."""

from __future__ import annotations

import json

import duckdb
import pytest

from bitbucket_assets.provisioning.requests_import import RequestImportError, import_requests
from tests.support.provisioning import REQUESTS_HEADER as HEADER


def count(db: str) -> int:
    with duckdb.connect(db, read_only=True) as con:
        return con.execute("select count(*) from provisioning.access_requests").fetchone()[0]


def test_csv_imports_every_row(tmp_path) -> None:
    path = tmp_path / "requests.csv"
    path.write_text(
        HEADER
        + "r1,tiny-co,leads,{6b1d0c4e-0000-4000-8000-000000000001},add,ana@x,olga@x,"
        + "2026-11-20T09:00:00+00:00,,migration\n"
        + 'r2,tiny-co,leads,557058:abc,remove,ana@x,olga@x,2026-11-20T09:00:00Z,,"left, the team"\n'
    )
    db = str(tmp_path / "w.duckdb")
    with duckdb.connect(db) as con:
        assert import_requests(con, path) == 2
        row = con.execute(
            "select status, reason, expires_at from provisioning.access_requests where request_id='r2'"
        ).fetchone()
    assert row == ("pending", "left, the team", None)


def test_jsonl_with_expiry(tmp_path) -> None:
    path = tmp_path / "requests.jsonl"
    items = [
        {
            "request_id": "j1",
            "workspace_slug": "tiny-co",
            "group_slug": "leads",
            "user_id": "557058:abc",
            "action": "add",
            "requested_by": "ana@x",
            "approved_by": "olga@x",
            "approved_at": "2026-11-20T09:00:00+00:00",
            "expires_at": "2026-11-27T09:00:00+00:00",
        },
    ]
    path.write_text("\n".join(json.dumps(i) for i in items) + "\n")
    db = str(tmp_path / "w.duckdb")
    with duckdb.connect(db) as con:
        assert import_requests(con, path) == 1
    assert count(db) == 1


def test_bad_rows_are_named_by_line_and_field_and_nothing_is_imported(tmp_path) -> None:
    path = tmp_path / "requests.csv"
    path.write_text(
        HEADER
        + "r1,tiny-co,leads,557058:abc,add,ana@x,olga@x,2026-11-20T09:00:00+00:00,,ok\n"
        + "r2,tiny-co,,557058:abc,grant,ana@x,olga@x,yesterday,,bad\n"
        + "r1,tiny-co,leads,557058:abc,remove,ana@x,olga@x,2026-11-20T09:00:00,"
        + "2026-12-01T00:00:00+00:00,dup\n"
    )
    db = str(tmp_path / "w.duckdb")
    with duckdb.connect(db) as con, pytest.raises(RequestImportError) as excinfo:
        import_requests(con, path)
    problems = excinfo.value.problems
    assert "line 3: group_slug: required" in problems
    assert "line 3: action: 'grant' is not one of add, remove" in problems
    assert "line 3: approved_at: 'yesterday' is not an ISO-8601 timestamp" in problems
    assert any(p.startswith("line 4: approved_at:") and "no timezone" in p for p in problems)
    assert "line 4: expires_at: only an `add` can expire" in problems
    assert "line 4: request_id: 'r1' repeats line 2" in problems
    with duckdb.connect(db) as con:
        tables = con.execute(
            "select count(*) from information_schema.tables where table_name = 'access_requests'"
        ).fetchone()
    assert tables == (0,) or count(db) == 0


def test_malformed_jsonl_names_the_line(tmp_path) -> None:
    path = tmp_path / "requests.jsonl"
    path.write_text('{"request_id": "a"}\n{not json\n')
    with (
        duckdb.connect(str(tmp_path / "w.duckdb")) as con,
        pytest.raises(RequestImportError, match="line 2: not valid JSON"),
    ):
        import_requests(con, path)
