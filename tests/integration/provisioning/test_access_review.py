"""The access-review loop: export as of a date, a reviewer revokes, the import creates approved removals,
the provisioning job applies them in Bitbucket."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest
from openpyxl import load_workbook

from bitbucket_assets.reporting.review import (
    COLUMNS,
    export_rows,
    new_campaign,
    register_campaign,
    write_review,
)
from bitbucket_assets.reporting.review_import import ReviewImportError, import_review
from tests.support.provisioning import provision, statuses


def campaign_rows(warehouse: str, workspace: str = "tiny-co") -> list[dict]:
    """Export a campaign as the CLI does: taken from the warehouse, registered in it."""
    with duckdb.connect(warehouse, read_only=True) as con:
        campaign = new_campaign(con, datetime.now(UTC), workspace)
    with duckdb.connect(warehouse) as con:
        register_campaign(con, campaign, datetime.now(UTC))
    return campaign.rows


def test_export_rows_carry_paths_history_and_empty_decisions(warehouse) -> None:
    with duckdb.connect(warehouse, read_only=True) as con:
        rows = export_rows(con, datetime.now(UTC), "tiny-co")
        effective = con.execute(
            "select count(*) from marts.fct_effective_access where workspace_slug = 'tiny-co'"
        ).fetchone()[0]
        memberships = con.execute(
            "select count(*) from marts.fct_grants where resource_type = 'group' and workspace_slug = "
            "'tiny-co'"
        ).fetchone()[0]
    assert len(rows) == effective + memberships
    ben = next(
        r for r in rows if r["user_display_name"] == "Ben Okafor" and r["resource_key"] == "payments-api"
    )
    assert ben["permission"] == "write"
    assert (
        ben["grant_paths"]
        == "group via group developers: write; project via group developers via project PAY: read"
    )
    assert ben["first_granted_at"] is not None and ben["groups"] == "developers, everyone, on-call"
    assert ben["reviewer"] == ben["decision"] == ""


def test_round_trip_revoke_becomes_an_applied_removal(make_sim, warehouse, tmp_path) -> None:
    sim = make_sim()
    rows = campaign_rows(warehouse)
    book_path = write_review(rows, tmp_path / "review.xlsx", "xlsx")
    book = load_workbook(book_path)
    sheet = book.active
    header = [c.value for c in sheet[1]]
    assert header == COLUMNS
    for row in sheet.iter_rows(min_row=2):
        values = dict(zip(header, [c.value for c in row], strict=True))
        if values["user_display_name"] == "Ben Okafor" and values["resource_key"] == "payments-api":
            row[header.index("decision")].value = "revoke"
            row[header.index("reviewer")].value = "olga@tiny.example"
            row[header.index("comment")].value = "left the payments team"
        elif values["user_display_name"] == "Dev Only-Direct" and values["resource_key"] == "payments-api":
            row[header.index("decision")].value = "revoke"
            row[header.index("reviewer")].value = "olga@tiny.example"
        elif values["user_display_name"] == "Ana Ruiz":
            row[header.index("decision")].value = "keep"
            row[header.index("reviewer")].value = "olga@tiny.example"
    book.save(book_path)

    with duckdb.connect(warehouse) as con:
        result = import_review(con, book_path)
    assert [(r["group_slug"], r["approved_by"], r["action"]) for r in result.requests] == [
        ("developers", "olga@tiny.example", "remove")
    ]
    assert (
        len(result.manual) == 1
        and "Dev Only-Direct" in result.manual[0]
        and "direct: write" in result.manual[0]
    )
    assert result.kept > 0
    provision(sim, warehouse)
    assert sim.user("ben").uuid not in sim.org.workspaces["tiny-co"].groups["developers"].members
    assert {s for s, _ in statuses(warehouse).values()} == {"applied"}


def test_bad_decisions_are_named_and_nothing_is_imported(warehouse, tmp_path) -> None:
    path = tmp_path / "review.csv"
    rows = campaign_rows(warehouse)[:2]
    rows[0]["decision"], rows[1]["decision"] = "maybe", "revoke"
    write_review(rows, path, "csv")
    with duckdb.connect(warehouse) as con, pytest.raises(ReviewImportError) as excinfo:
        import_review(con, path)
    assert "line 2: decision: 'maybe' is not keep or revoke" in str(excinfo.value)
    assert "line 3: reviewer: required for a decision" in str(excinfo.value)
    assert statuses(warehouse) == {}


def test_a_revoke_says_what_else_leaving_the_group_takes(warehouse) -> None:
    """Ben reaches payments-api (write) and project PAY (read) only through `developers`: revoking one
    removes him from the group, and the file, the import and the plan name the rest (revoke_impact.py)."""
    from bitbucket_assets.reporting.revoke_impact import Loss, Removal, removal_losses

    rows = campaign_rows(warehouse)
    ben = next(
        r for r in rows if r["user_display_name"] == "Ben Okafor" and r["resource_key"] == "payments-api"
    )
    assert ben["revoke_also_removes"] == "project PAY (read); group developers (membership)"
    ana = next(r for r in rows if r["user_display_name"] == "Ana Ruiz" and r["resource_type"] == "workspace")
    assert ana["revoke_also_removes"] == ""
    with duckdb.connect(warehouse, read_only=True) as con:
        removal = Removal("tiny-co", ben["user_uuid"], "developers")
        assert removal_losses(con, [removal]) == {
            removal: [Loss("project", "PAY", "read"), Loss("repository", "payments-api", "write")]
        }
