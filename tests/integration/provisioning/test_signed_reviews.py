"""A review counts only when its reviewer signed it; every decision is a record; campaigns end; a decision on
access that changed since the export is refused; provisioning checks the signed file again."""

from __future__ import annotations

import csv
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from bitbucket_assets.reporting.review import new_campaign, register_campaign, write_review
from bitbucket_assets.reporting.review_import import (
    ReviewFile,
    ReviewImportError,
    import_review,
    plan_review_import,
    record_review_import,
    sign_review,
    signature_beside,
)
from tests.support.provisioning import add_request, provision, statuses, writes
from tests.support.signing import keypair, signed_policy


@pytest.fixture
def keys(tmp_path) -> dict:
    return {name: keypair(tmp_path, name) for name in ("olga", "cleo")}


def export(
    db: str, path: Path, as_of: datetime | None = None, created_at: datetime | None = None, due_at=None
):
    """A campaign of tiny-co registered as the CLI does; its rows as a reviewer's CSV reader sees them."""
    now = created_at or datetime.now(UTC)
    with duckdb.connect(db, read_only=True) as con:
        campaign = new_campaign(con, as_of or now, "tiny-co", due_at)
    with duckdb.connect(db) as con:
        register_campaign(con, campaign, now)
    write_review(campaign.rows, path, "csv")
    return list(csv.DictReader(path.open(encoding="utf-8")))


def decide(rows: list[dict], name: str, resource: str, decision: str, reviewer: str = "") -> dict:
    row = next(r for r in rows if r["user_display_name"] == name and r["resource_key"] == resource)
    row.update(decision=decision, reviewer=reviewer)
    return row


def signed(rows: list[dict], path: Path, key: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    sign_review(path, key)
    return path


def line_of(rows: list[dict], row: dict) -> int:
    return rows.index(row) + 2


def test_a_signed_review_is_recorded_decision_by_decision_and_its_revokes_applied(
    make_sim, warehouse, tmp_path, keys
) -> None:
    sim = make_sim()
    approvals, _ = signed_policy(tmp_path, sim, {"olga@tiny.example": keys["olga"]})
    rows = export(warehouse, tmp_path / "review.csv")
    decide(rows, "Ben Okafor", "payments-api", "revoke")
    decide(rows, "Ana Ruiz", "payments-api", "keep", reviewer="OLGA@tiny.example")
    path = signed(rows, tmp_path / "review.csv", keys["olga"])
    with duckdb.connect(warehouse) as con:
        result = import_review(con, path, approvals=approvals)
        attestations = con.execute(
            "select user_display_name, resource_key, decision, reviewer, key_fingerprint, file_sha256 "
            "from provisioning.attestations order by decision"
        ).fetchall()
        completion = con.execute(
            "select reviewer, items_exported, items_decided, kept, revoked "
            "from provisioning.review_completion order by reviewer nulls first"
        ).fetchall()
        request = con.execute(
            "select approved_by, review_file_sha256 from provisioning.access_requests"
        ).fetchone()
    assert result.reviewer == "olga@tiny.example" and result.key_fingerprint.startswith("SHA256:")
    assert attestations == [
        ("Ana Ruiz", "payments-api", "keep", "olga@tiny.example", result.key_fingerprint, result.file.sha256),
        (
            "Ben Okafor",
            "payments-api",
            "revoke",
            "olga@tiny.example",
            result.key_fingerprint,
            result.file.sha256,
        ),
    ]
    assert completion == [(None, len(rows), 2, 1, 1), ("olga@tiny.example", len(rows), 2, 1, 1)]
    assert request == ("olga@tiny.example", result.file.sha256)
    provision(sim, warehouse, approvals=approvals)
    assert {s for s, _ in statuses(warehouse).values()} == {"applied"}
    assert sim.user("ben").uuid not in sim.org.workspaces["tiny-co"].groups["developers"].members


def test_a_request_that_claims_a_signed_review_must_be_one_it_made(
    make_sim, warehouse, tmp_path, keys
) -> None:
    """Someone who writes to the warehouse copies a review-made request for another group or user, or alters
    the stored file: provisioning reads the signed file again and refuses each."""
    sim = make_sim()
    approvals, _ = signed_policy(tmp_path, sim, {"olga@tiny.example": keys["olga"]})
    rows = export(warehouse, tmp_path / "review.csv")
    decide(rows, "Ben Okafor", "payments-api", "revoke")
    path = signed(rows, tmp_path / "review.csv", keys["olga"])
    with duckdb.connect(warehouse) as con:
        result = import_review(con, path, approvals=approvals)
        [genuine] = result.requests
        for request_id, user, group in (
            (genuine["request_id"].replace("-developers", "-leads"), genuine["user_id"], "leads"),
            (genuine["request_id"] + "-copy", sim.user("ana").uuid, "developers"),
        ):
            con.execute(
                "insert into provisioning.access_requests (request_id, workspace_slug, group_slug, user_id, "
                "action, requested_by, approved_by, approved_at, review_file_sha256) "
                "values (?, 'tiny-co', ?, ?, 'remove', 'access-review:x', 'olga@tiny.example', ?, ?)",
                [request_id, group, user, datetime.now(UTC), result.file.sha256],
            )
        con.execute(
            "update provisioning.access_requests set user_id = ? where request_id = ?",
            [sim.user("cleo").uuid, genuine["request_id"]],
        )
    provision(sim, warehouse, approvals=approvals)
    got = statuses(warehouse)
    digest = result.file.sha256[:12]
    assert got[genuine["request_id"]] == (
        "rejected",
        f"user_id: not what review file {digest} (signed by olga@tiny.example) decided",
    )
    assert set(got.values()) == {
        got[genuine["request_id"]],
        ("rejected", f"review file {digest} (signed by olga@tiny.example) makes no such request"),
    }
    with duckdb.connect(warehouse) as con:
        con.execute(
            "update provisioning.access_requests set status = 'pending', user_id = ? where request_id = ?",
            [genuine["user_id"], genuine["request_id"]],
        )
        con.execute("update provisioning.review_files set content = content || 'x'::blob")
    provision(sim, warehouse, approvals=approvals)
    status, reason = statuses(warehouse)[genuine["request_id"]]
    assert status == "rejected" and reason.startswith(f"review file {digest} was altered in the warehouse")
    assert writes(sim) == []


def test_one_reviewer_per_item_and_nobody_attests_their_own_access(
    make_sim, warehouse, tmp_path, keys
) -> None:
    sim = make_sim()
    approvals, _ = signed_policy(
        tmp_path, sim, {"olga@tiny.example": keys["olga"], "cleo@tiny.example": keys["cleo"]}
    )
    rows = export(warehouse, tmp_path / "review.csv")
    decide(rows, "Ana Ruiz", "payments-api", "keep")
    first = signed(rows, tmp_path / "olga.csv", keys["olga"])
    with duckdb.connect(warehouse) as con:
        assert len(import_review(con, first, approvals=approvals).decisions) == 1
        again = import_review(con, first, approvals=approvals)
    assert again.decisions == [] and again.repeated == 1
    # Cleo (a member of leads, so an approver) decides the same item otherwise, and keeps her own access.
    ana = decide(rows, "Ana Ruiz", "payments-api", "revoke")
    cleo = decide(rows, "Cleo Lead", "leads", "keep")
    second = signed(rows, tmp_path / "cleo.csv", keys["cleo"])
    with duckdb.connect(warehouse) as con, pytest.raises(ReviewImportError) as refused:
        import_review(con, second, approvals=approvals)
    problems = str(refused.value)
    assert (
        f"line {line_of(rows, ana)}: decision: campaign {rows[0]['campaign_id']} already holds 'keep'"
        in problems
    )
    assert (
        f"line {line_of(rows, cleo)}: reviewer: 'cleo@tiny.example' may not decide on their own access "
        "(keep or revoke)" in problems
    )
    assert statuses(warehouse) == {}


def test_a_campaign_takes_no_decision_after_its_due_date(make_sim, warehouse, tmp_path, keys) -> None:
    sim = make_sim()
    approvals, _ = signed_policy(tmp_path, sim, {"olga@tiny.example": keys["olga"]})
    due = datetime.now(UTC) + timedelta(days=3)
    rows = export(warehouse, tmp_path / "review.csv", due_at=due)
    row = decide(rows, "Ben Okafor", "payments-api", "revoke")
    path = signed(rows, tmp_path / "review.csv", keys["olga"])
    with duckdb.connect(warehouse) as con, pytest.raises(ReviewImportError) as late:
        import_review(con, path, now=due + timedelta(minutes=1), approvals=approvals)
    assert (
        f"line {line_of(rows, row)}: campaign_id: campaign {rows[0]['campaign_id']} ended on "
        f"{due:%Y-%m-%d %H:%M} UTC: decisions after it are refused" in str(late.value)
    )
    with duckdb.connect(warehouse) as con:
        assert import_review(con, path, now=due - timedelta(minutes=1), approvals=approvals).created == 1


def test_a_decision_on_access_that_changed_after_the_export_is_refused(tiny_history, tmp_path, keys) -> None:
    """The campaign is exported after the first of three syncs; the second saw ben leave developers (a path
    to payments-api removed), and a newer request was approved for zoe. Decisions on both are refused,
    naming the change; nothing of the file is imported."""
    db = str(tmp_path / "w.duckdb")
    shutil.copy(tiny_history.db, db)
    with duckdb.connect(db, read_only=True) as con:
        first, second = [
            r[0]
            for r in con.execute("select synced_at from marts.fct_sync_summary order by 1").fetchall()[:2]
        ]
    exported_at = first + (second - first) / 2
    approvals, _ = signed_policy(tmp_path, tiny_history, {"olga@tiny.example": keys["olga"]})
    rows = export(db, tmp_path / "review.csv", as_of=first, created_at=exported_at)
    add_request(
        db, "newer", tiny_history.user("zoe"), "on-call", action="remove", approved_at=datetime.now(UTC)
    )
    ben = decide(rows, "Ben Okafor", "payments-api", "revoke")
    zoe = decide(rows, 'Zoë O\'Brien "Zed" Łukasiewicz', "on-call", "keep")
    decide(rows, "Ana Ruiz", "payments-api", "keep")  # unchanged: fine on its own
    path = signed(rows, tmp_path / "review.csv", keys["olga"])
    with duckdb.connect(db) as con, pytest.raises(ReviewImportError) as refused:
        import_review(con, path, approvals=approvals)
    problems = str(refused.value)
    assert problems.startswith("review.csv: 2 problem(s), nothing imported")
    assert re.search(
        rf"line {line_of(rows, ben)}: access changed after the export: a (group|project) path via group "
        rf"developers was removed in the snapshot of {second:%Y-%m-%d %H:%M} UTC",
        problems,
    )
    assert (
        f"line {line_of(rows, zoe)}: access changed after the export: request newer (remove in group on-call"
        in problems
    )
    with duckdb.connect(db, read_only=True) as con:
        assert con.execute("select count(*) from provisioning.review_decisions").fetchone() == (0,)


def test_access_that_changes_between_the_check_and_the_recording_refuses_the_file(
    make_sim, warehouse, tmp_path, keys
) -> None:
    """`review import` checks the file on a read-only connection and records it under the writer's lock: a
    request approved in between is found again when recording, and nothing is imported."""
    sim = make_sim()
    approvals, _ = signed_policy(tmp_path, sim, {"olga@tiny.example": keys["olga"]})
    rows = export(warehouse, tmp_path / "review.csv")
    zoe = decide(rows, 'Zoë O\'Brien "Zed" Łukasiewicz', "on-call", "keep")
    path = signed(rows, tmp_path / "review.csv", keys["olga"])
    file = ReviewFile.read(path)
    with duckdb.connect(warehouse, read_only=True) as con:
        plan = plan_review_import(con, file, signature_beside(path), approvals=approvals)
    assert [d["decision"] for d in plan.decisions] == ["keep"]
    add_request(
        warehouse, "meanwhile", sim.user("zoe"), "on-call", action="remove", approved_at=datetime.now(UTC)
    )
    with duckdb.connect(warehouse) as con, pytest.raises(ReviewImportError) as refused:
        record_review_import(con, plan, signature_beside(path))
    assert str(refused.value) == (
        f"review.csv: line {line_of(rows, zoe)}: access changed after the export: request meanwhile (remove "
        f"in group on-call, approved {_approved_at(warehouse, 'meanwhile'):%Y-%m-%d %H:%M} UTC); decide it "
        "in a new campaign (meanwhile); nothing imported"
    )
    with duckdb.connect(warehouse, read_only=True) as con:
        assert con.execute("select count(*) from provisioning.review_decisions").fetchone() == (0,)


def _approved_at(db: str, request_id: str) -> datetime:
    with duckdb.connect(db, read_only=True) as con:
        return con.execute(
            "select approved_at from provisioning.access_requests where request_id = ?", [request_id]
        ).fetchone()[0]
