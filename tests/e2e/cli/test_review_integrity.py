"""Review campaigns: only rows that were exported, unchanged, become requests; nobody reviews their own
access."""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import duckdb
import pytest

from bitbucket_assets.reporting.review_import import ReviewImportError, import_review
from tests.support import CLI
from tests.support.provisioning import statuses
from tests.support.signing import keypair, signed_policy


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


def test_nobody_decides_on_their_own_access_keep_or_revoke(make_sim, warehouse, tmp_path) -> None:
    sim = make_sim()
    ben = sim.user("ben")
    rows = export(warehouse, tmp_path / "review.csv")
    revoke(rows, "Ben Okafor", "payments-api", reviewer=ben.account_id)
    for decision in ("revoke", "keep"):
        next(r for r in rows if r["decision"])["decision"] = decision
        path = save(rows, tmp_path / f"self-{decision}.csv")
        with (
            duckdb.connect(warehouse) as con,
            pytest.raises(ReviewImportError, match=r"may not decide on their own access \(keep or revoke\)"),
        ):
            import_review(con, path)
    assert statuses(warehouse) == {}


def test_with_a_policy_only_a_signed_file_counts_and_its_signer_is_the_reviewer(
    make_sim, warehouse, tmp_path
) -> None:
    sim = make_sim()
    keys = {name: keypair(tmp_path, name) for name in ("olga", "zoe")}
    _, policy = signed_policy(
        tmp_path,
        sim,
        {"olga@tiny.example": keys["olga"], sim.user("zoe").account_id: keys["zoe"]},
    )
    rows = export(warehouse, tmp_path / "review.csv")
    revoke(rows, "Ben Okafor", "payments-api", reviewer="")
    path = save(rows, tmp_path / "a.csv")
    unsigned = cli(warehouse, "review", "import", str(path), BITBUCKET_APPROVER_POLICY=policy)
    assert (
        unsigned.returncode == 1
        and "a.csv: not signed: the reviewer signs the completed file" in unsigned.stderr
    )
    # Zoe has a key, but is not an approver: her signed decisions are refused.
    signed = cli(warehouse, "review", "sign", str(path), "--key", str(keys["zoe"]))
    assert signed.returncode == 0 and (tmp_path / "a.csv.sig").exists(), signed.stderr
    stranger = cli(warehouse, "review", "import", str(path), BITBUCKET_APPROVER_POLICY=policy)
    assert stranger.returncode == 1 and "may not review access in workspace 'tiny-co'" in stranger.stderr
    # A reviewer cell naming someone other than the signer is refused.
    revoke(rows, "Ben Okafor", "payments-api", reviewer="cleo@tiny.example")
    save(rows, path)
    assert cli(warehouse, "review", "sign", str(path), "--key", str(keys["olga"])).returncode == 0
    named = cli(warehouse, "review", "import", str(path), BITBUCKET_APPROVER_POLICY=policy)
    assert named.returncode == 1 and "reviewer: 'cleo@tiny.example' is not the file's signer" in named.stderr
    # Olga's signed file: every decision is hers, whatever the cells say (nothing, or her own name).
    revoke(rows, "Ben Okafor", "payments-api", reviewer="")
    save(rows, path)
    assert cli(warehouse, "review", "sign", str(path), "--key", str(keys["olga"])).returncode == 0
    allowed = cli(warehouse, "review", "import", str(path), BITBUCKET_APPROVER_POLICY=policy)
    assert allowed.returncode == 0 and allowed.stdout.startswith("1 remove request(s) created"), (
        allowed.stderr
    )
    assert (
        "1 decision(s) recorded in provisioning.review_decisions, signed by olga@tiny.example (SHA256:"
        in (allowed.stdout)
    )
    # The file was changed after it was signed: refused.
    path.write_text(path.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    changed = cli(warehouse, "review", "import", str(path), BITBUCKET_APPROVER_POLICY=policy)
    assert changed.returncode == 1 and "review signature refused" in changed.stderr
