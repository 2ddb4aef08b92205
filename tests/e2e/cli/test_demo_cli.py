"""The installed `bitbucket-access` command, run as a user would."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import requests

from bitbucket_assets.warehouse.dbt_runs import warehouse_target
from bitbucket_assets.warehouse.files import DBT_PROJECT_DIR
from bitbucket_simulator import SIM_API_TOKEN, SIM_ORG_API_KEY

BIN = Path(sys.executable).parent / "bitbucket-access"


def command() -> list[str]:
    found = shutil.which("bitbucket-access") or (str(BIN) if BIN.exists() else None)
    return [found] if found else [sys.executable, "-m", "bitbucket_assets.cli"]


def test_simulator_command_serves_an_organisation() -> None:
    proc = subprocess.Popen(
        [*command(), "simulator", "--org", "tiny", "--port", "0", "--rate-limit", "off"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        banner = proc.stdout.readline()
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", banner).group(1)
        email = re.search(r"BITBUCKET_EMAIL=(\S+)", proc.stdout.readline() + proc.stdout.readline()).group(1)
        me = requests.get(f"{url}/2.0/user", auth=(email, SIM_API_TOKEN), timeout=10)
        assert me.status_code == 200 and me.json()["display_name"] == "Access Sync Bot"
        summary = requests.get(f"{url}/_sim/summary", timeout=10).json()
        # 100 members and 3 with access from outside
        assert summary["repositories"] == 6 and summary["users"] == 103
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_demo_runs_simulator_and_syncs_end_to_end(demo_warehouse) -> None:
    out = demo_warehouse.stdout
    # A short story on the terminal; every day's sync and Dagster's and dbt's lines in the log file it names.
    assert len(out.splitlines()) < 60 and " - dagster - " not in out and "raw/" not in out
    log = Path(re.search(r"^Details: +(\S+\.log) ", out, re.MULTILINE).group(1))
    details = log.read_text()
    assert " - dagster - " in details and SIM_API_TOKEN not in details
    # Two simulated days and today's Dagster sync, whose dbt build folds all three in.
    assert details.count("complete: workspaces northwind, northwind-labs") == 2
    assert out.count("complete: workspaces northwind, northwind-labs") == 1
    assert details.count("on a simulated clock") == 2 and "(today): the Dagster sync job" in out
    # The demo built the refresh plan's views after the first day as the job builds them: today's sync ran no
    # dbt for them, and its one dbt run reused the demo's parse of the project.
    assert "The refresh plan's views are this project's already: dbt is not run for them." in details
    target = DBT_PROJECT_DIR / warehouse_target(str(demo_warehouse.db))
    log = (target / "dbt.log").read_text()  # the demo's own run logs in text, the job's in JSON lines
    full_parse = log.index("Unable to do partial parsing because")
    assert log.count("Running with dbt=") == 2 and log.count("Unable to do partial parsing") == 1
    assert full_parse < log.rindex("Running with dbt=")  # the job's run reused the demo run's parse
    assert "2 snapshot(s) complete; repositories' permission lists read" in out
    assert "marts/fct_grants:" in out and "FAILED" not in out
    assert re.search(r"checks: (\d+) of \1 passed", out)
    assert SIM_API_TOKEN not in out
    assert f"Analysts open: {demo_warehouse.read_copy}" in out
    # The demo's three approved requests; the one in northwind-labs (administered from admin.atlassian.com)
    # went through the Atlassian Admin API, whose key never shows.
    assert "provisioning: applied 3," in out
    assert (
        re.search(
            r"demo-org-northwind-labs: add [^{]+ to [^{]+ in [^{]+ -> applied \[atlassian-admin-api\]",
            out,
        )
        and SIM_ORG_API_KEY not in out
    )
    # Every request signed by the demo approver, under a policy that requires it; one signed review, whose
    # revocation the provisioning job applied.
    assert "signatures required for every request; 2 signer key(s)" in out
    assert re.search(r"-- approved requests, signed by \S+@northwind\.example", out)
    assert re.search(r"-- access review: campaign \w+ .* signed 6 decisions \(5 keep, 1 revoke\)", out)
    assert re.search(
        r"review-\w+-\w+-\S+: remove [^{]+ from [^{]+ in [^{]+ -> applied \[bitbucket-1\.0\]", out
    )
    with duckdb.connect(str(demo_warehouse.db), read_only=True) as con:
        unproven = con.execute(
            "select count(*) from provisioning.access_requests where approval_signature is null and "
            "review_file_sha256 is null"
        ).fetchone()[0]
        attested = con.execute(
            "select decision, count(*), count(key_fingerprint) from provisioning.attestations group by 1 "
            "order by 1"
        ).fetchall()
    assert unproven == 0 and attested == [("keep", 5, 5), ("revoke", 1, 1)]
    evidence = demo_warehouse.db.with_name("demo-evidence") / "evidence.html"
    assert f"Evidence pack: {evidence}" in out and evidence.exists()
    attestations = (evidence.parent / "attestations.csv").read_text(encoding="utf-8").splitlines()
    assert len(attestations) == 7 and "key_fingerprint" in attestations[0]  # the header and six decisions
    assert "bitbucket-access dashboard" in out and "demo --dagster" in out
    with duckdb.connect(str(demo_warehouse.db), read_only=True) as con:
        statuses = con.execute("SELECT status FROM raw.syncs").fetchall()
        repos = con.execute("SELECT count(DISTINCT sync_id) FROM raw.repositories").fetchone()[0]
        changes = con.execute("SELECT count(*) FROM marts.fct_access_changes").fetchone()[0]
        days = con.execute(
            "SELECT list(CAST(synced_at AS DATE) ORDER BY synced_at) FROM marts.fct_sync_summary"
        )
        days = days.fetchone()[0]
        first_repositories = con.execute(
            "SELECT count(*) FROM raw.repositories WHERE sync_id = (SELECT arg_min(sync_id, started_at) FROM "
            "raw.syncs)"
        ).fetchone()[0]
    assert statuses == [("complete",)] * 3 and repos == 3
    # One snapshot a day, ending today; the first day holds the company as generated (later days add
    # repositories).
    assert [(d - days[0]).days for d in days] == [0, 1, 2] and days[-1] in demo_warehouse.ran_on
    assert first_repositories == 200
    with duckdb.connect(str(demo_warehouse.db), read_only=True) as con:
        sources = con.execute("SELECT DISTINCT group_sources FROM raw.syncs").fetchall()
    expected = {"northwind": "bitbucket-1.0", "northwind-labs": "atlassian-admin-api"}
    assert [json.loads(s) for (s,) in sources] == [expected]
    assert changes > 0  # the simulated days produced history
    with duckdb.connect(str(demo_warehouse.db), read_only=True) as con:
        team_granted = con.execute(
            "SELECT count(*) FROM marts.fct_access_changes g WHERE g.principal_type = 'group' "
            "AND g.change = 'added' AND g.new_permission = 'write' AND g.workspace_slug = 'northwind' "
            "AND CAST(g.changed_at AS DATE) = ? AND EXISTS (SELECT 1 FROM "
            "marts.fct_access_changes u WHERE u.principal_type = 'user' AND u.change = 'added' "
            "AND u.via_group_slug = g.principal_id AND u.changed_at = g.changed_at "
            "AND u.workspace_slug = g.workspace_slug AND u.resource_type = g.resource_type "
            "AND u.resource_key = g.resource_key)",
            [days[1]],
        ).fetchone()[0]
    # The scripted second day grants a team write where it raises a member's access, whatever the
    # date-seeded churn brings: the group's own grant, and its members' new paths, the day it happened
    # (dates cast as `days` casts them).
    assert team_granted >= 1
    with duckdb.connect(str(demo_warehouse.read_copy), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM marts.fct_grants").fetchone()[0] > 1000
        leavers = con.execute("SELECT count(*) FROM provisioning.leavers").fetchone()[0]
        held = con.execute(
            "SELECT count(*) FROM marts.fct_access_risks WHERE risk = 'access still held by a leaver'"
        ).fetchone()[0]
    # The simulated leavers reach provisioning.leavers as an HR feed would, and one who kept access shows.
    assert f"leavers recorded in provisioning.leavers (as HR would): {leavers}" in out and leavers >= 1
    assert held >= 1
