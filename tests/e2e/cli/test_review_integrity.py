"""Review campaigns: only rows that were exported, unchanged, become requests; nobody reviews their own
access."""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import duckdb
import pytest

from bitbucket_assets.provisioning.approvals import ApproverPolicy
from bitbucket_assets.reporting.review import ReviewImportError, import_review
from tests.support import CLI
from tests.support.provisioning import statuses


def cli(db: str, *args: str, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "DUCKDB_PATH": db, **env}
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=full_env, timeout=300)


def export(db: str, out: Path) -> list[dict]:
    done = cli(
        db,
        "review",
        "export",
        "--as-of",
        "2099-01-01",
        "--workspace",
        "tiny-co",
        "--format",
        "csv",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-1500:]
    return list(csv.DictReader(out.open(encoding="utf-8")))


def save(rows: list[dict], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def revoke(rows: list[dict], name: str, resource: str, reviewer: str = "olga@tiny.example") -> dict:
    row = next(r for r in rows if r["user_display_name"] == name and r["resource_key"] == resource)
    row.update(reviewer=reviewer, decision="revoke")
    return row


def test_a_forged_row_is_rejected_and_nothing_is_imported(warehouse, tmp_path) -> None:
    rows = export(warehouse, tmp_path / "review.csv")
    revoke(rows, "Ben Okafor", "payments-api")
    # A made-up row: remove the sync's own service account from a group it needs.
    forged = {
        **rows[0],
        "review_item": "tiny-co:group:administrators:{svc}",
        "resource_type": "group",
        "resource_key": "administrators",
        "user_display_name": "Access Sync Bot",
        "grant_paths": "direct: member",
        "reviewer": "olga@tiny.example",
        "decision": "revoke",
    }
    done = cli(warehouse, "review", "import", str(save([*rows, forged], tmp_path / "forged.csv")))
    assert done.returncode == 1
    assert f"line {len(rows) + 2}: review_item: not in campaign {rows[0]['campaign_id']}" in done.stderr
    assert statuses(warehouse) == {}


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("grant_paths", "group via group administrators: write", "grant_paths: changed since campaign"),
        ("user_uuid", "{00000000-0000-4000-8000-0000000000aa}", "user_uuid: changed since campaign"),
        ("campaign_id", "0123456789abcdef", "campaign_id: '0123456789abcdef' is not a review campaign"),
        ("campaign_id", "", "campaign_id: empty"),
    ],
)
def test_an_edited_row_is_rejected_naming_line_and_column(
    warehouse, tmp_path, column, value, expected
) -> None:
    rows = export(warehouse, tmp_path / "review.csv")
    row = revoke(rows, "Ben Okafor", "payments-api")
    row[column] = value
    done = cli(warehouse, "review", "import", str(save(rows, tmp_path / "edited.csv")))
    line = rows.index(row) + 2
    assert done.returncode == 1 and f"line {line}: {expected}" in done.stderr, done.stderr[-800:]
    assert statuses(warehouse) == {}


def test_files_with_the_same_name_never_collide_and_a_second_import_adds_nothing(warehouse, tmp_path) -> None:
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir(), second_dir.mkdir()
    first = export(warehouse, first_dir / "review.csv")
    second = export(warehouse, second_dir / "review.csv")
    assert first[0]["campaign_id"] != second[0]["campaign_id"]
    revoke(first, "Ben Okafor", "payments-api")
    revoke(second, "Lena Leaver", "payments-api")
    one = cli(warehouse, "review", "import", str(save(first, first_dir / "review.csv")))
    two = cli(warehouse, "review", "import", str(save(second, second_dir / "review.csv")))
    again = cli(warehouse, "review", "import", str(first_dir / "review.csv"))
    for done in (one, two):
        assert done.stdout.startswith("1 remove request(s) created;"), done.stderr[-800:]
    assert again.stdout.startswith("0 remove request(s) created (1 already imported before);")
    assert len(statuses(warehouse)) == 2
    assert {rid.split("-")[1] for rid in statuses(warehouse)} == {
        first[0]["campaign_id"],
        second[0]["campaign_id"],
    }


def test_nobody_decides_on_their_own_access(make_sim, warehouse, tmp_path) -> None:
    sim = make_sim()
    ben = sim.user("ben")
    rows = export(warehouse, tmp_path / "review.csv")
    revoke(rows, "Ben Okafor", "payments-api", reviewer=ben.account_id)
    path = save(rows, tmp_path / "self.csv")
    with (
        duckdb.connect(warehouse) as con,
        pytest.raises(ReviewImportError, match="may not decide on their own"),
    ):
        import_review(con, path)
    # By policy, a second reviewer may confirm such a decision.
    policy = tmp_path / "approvers.yaml"
    policy.write_text(
        f'identities: {{olga@tiny.example: "{sim.user("olga").account_id}"}}\n'
        f'approvers: {{"*": {{people: [{ben.account_id}, olga@tiny.example]}}}}\nself_review: '
        "second_reviewer\n",
        encoding="utf-8",
    )
    approvals = ApproverPolicy.load(str(policy))
    with duckdb.connect(warehouse) as con, pytest.raises(ReviewImportError, match="needs a second reviewer"):
        import_review(con, path, approvals=approvals)
    for row in rows:
        row["second_reviewer"] = "olga@tiny.example" if row["decision"] else ""
    with duckdb.connect(warehouse) as con:
        result = import_review(con, save(rows, tmp_path / "confirmed.csv"), approvals=approvals)
    assert [r["group_slug"] for r in result.requests] == ["developers"] and result.created == 1


def test_reviewers_must_be_approvers_the_policy_knows(make_sim, warehouse, tmp_path) -> None:
    sim = make_sim()
    policy = tmp_path / "approvers.yaml"
    policy.write_text(
        f'approvers: {{"*": {{people: ["{sim.user("olga").account_id}"]}}}}\n', encoding="utf-8"
    )
    rows = export(warehouse, tmp_path / "review.csv")
    revoke(rows, "Ben Okafor", "payments-api", reviewer="olga@tiny.example")  # an email the policy cannot map
    unmapped = cli(
        warehouse,
        "review",
        "import",
        str(save(rows, tmp_path / "a.csv")),
        BITBUCKET_APPROVER_POLICY=str(policy),
    )
    assert (
        unmapped.returncode == 1 and "is neither an account id nor an email mapped to one" in unmapped.stderr
    )
    revoke(rows, "Ben Okafor", "payments-api", reviewer=sim.user("zoe").account_id)  # known, not an approver
    stranger = cli(
        warehouse,
        "review",
        "import",
        str(save(rows, tmp_path / "b.csv")),
        BITBUCKET_APPROVER_POLICY=str(policy),
    )
    assert stranger.returncode == 1 and "may not approve requests for workspace 'tiny-co'" in stranger.stderr
    revoke(rows, "Ben Okafor", "payments-api", reviewer=sim.user("olga").account_id)
    allowed = cli(
        warehouse,
        "review",
        "import",
        str(save(rows, tmp_path / "c.csv")),
        BITBUCKET_APPROVER_POLICY=str(policy),
    )
    assert allowed.returncode == 0 and allowed.stdout.startswith("1 remove request(s) created")
