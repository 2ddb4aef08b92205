"""`review export --campaign change-control`: who can change a production branch alone, reviewed like access:
exported, signed, imported; a revoke removes the person from the group that exempts them (applied by
`provision`), and a rule that names someone directly is listed for a person to edit in Bitbucket."""

from __future__ import annotations

import csv

import duckdb

from tests.e2e.cli.test_signed_commands import cli, environment
from tests.support.extraction import sync
from tests.support.signing import keypair, signed_policy


def test_a_change_control_review_revokes_an_exemption_and_lists_a_named_one(
    make_sim, warehouse, tmp_path
) -> None:
    sim = make_sim()
    with duckdb.connect(warehouse) as con:  # an administrator checked the projects for project-level rules
        con.execute(
            "INSERT INTO provisioning.project_branch_rules VALUES ('tiny-co', 'PAY', false, 'olga', "
            "'2026-03-01'), ('tiny-co', 'ORPH', false, 'olga', '2026-03-01')"
        )
    key = keypair(tmp_path, "olga")
    _, policy = signed_policy(tmp_path, sim, {"olga@tiny.example": key})
    env = environment(sim, warehouse, policy)
    # The shared first day read change control for a share of the repositories (the rolling schedule): one
    # more snapshot reads every repository's. Extraction alone: the marts the review reads are views over the
    # raw snapshots (staging) and table macros, so no dbt build is needed (the CLI commands are the test).
    sync(sim, warehouse)
    out = tmp_path / "change.csv"
    export = ["review", "export", "--campaign", "change-control", "--as-of", "2099-01-01"]
    exported = cli(env, *export, "--workspace", "tiny-co", "--format", "csv", "--out", str(out))
    assert exported.returncode == 0 and "change-control review rows" in exported.stdout, exported.stderr
    with duckdb.connect(warehouse, read_only=True) as con:
        alone = con.execute(
            "SELECT repository_slug, user_display_name FROM marts.change_rights_as_of(now(), 'tiny-co') "
            "WHERE can_change_alone ORDER BY 1, 2"
        ).fetchall()
        kind = con.execute("SELECT campaign_kind FROM provisioning.review_completion").fetchall()
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert sorted((r["resource_key"], r["user_display_name"]) for r in rows) == alone and alone
    assert kind == [("change-control",)]
    decided = {("payments-api", "Ben Okafor"): "revoke", ("payments-api", "Cleo Lead"): "revoke"}
    for row in rows:
        row["decision"] = decided.get((row["resource_key"], row["user_display_name"]), "keep")
        if row["user_display_name"] == "Olga Owner":  # nobody decides on their own access
            row["decision"] = ""
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert cli(env, "review", "sign", str(out), "--key", str(key)).returncode == 0
    imported = cli(env, "review", "import", str(out))
    assert imported.returncode == 0 and imported.stdout.startswith("1 remove request(s) created"), (
        imported.stdout + imported.stderr
    )
    # Cleo is named in the push rule itself: the tool edits no branch restriction, a person does.
    assert "Cleo Lead on repository tiny-co/payments-api: push rule #2 (main) names them" in imported.stdout
    applied = cli(env, "provision")
    assert applied.returncode == 0 and "-> applied" in applied.stdout, applied.stdout + applied.stderr
    assert sim.user("ben").uuid not in sim.org.workspaces["tiny-co"].groups["developers"].members
