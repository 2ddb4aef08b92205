"""The review export, the evidence pack and the dashboard give the same numbers for the same date: all three
select from the same dbt rules (macros/access_rules.sql), so none can drift from another."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta

import duckdb

from bitbucket_assets.dashboard import data
from bitbucket_assets.reporting.evidence import build_evidence_pack
from bitbucket_assets.reporting.review import new_campaign
from tests.support.warehouses import History


def test_review_evidence_and_dashboard_agree(tiny_history: History, tmp_path, monkeypatch) -> None:
    db = str(tmp_path / "copy.duckdb")  # a copy, as the dashboard and reports read the published read copy
    shutil.copy(tiny_history.db, db)
    as_of = datetime.now(UTC)
    with duckdb.connect(db, read_only=True) as con:
        review = new_campaign(con, as_of).rows
        pack = build_evidence_pack(con, as_of - timedelta(days=7), as_of, tmp_path / "pack")
        latest_risks = con.execute(
            "select risk, workspace_slug, resource_key, user_uuid from marts.fct_access_risks union all "
            "select risk, workspace_slug, resource_key, user_uuid from marts.fct_change_control_risks"
        )
        latest_risks = sorted(latest_risks.fetchall())
    monkeypatch.setenv("BITBUCKET_DASHBOARD_DB", db)

    def held(rows) -> Counter:
        return Counter(
            (
                r["workspace_slug"],
                r["resource_type"],
                r["resource_key"],
                r["user_display_name"],
                r["permission"],
            )
            for r in rows
            if r["resource_type"] in ("repository", "project")
        )

    from_review = held(review)
    with (pack.directory / "population.csv").open() as handle:
        from_evidence = held(csv.DictReader(handle))
    from_dashboard = Counter()
    for r in data.resources(None).itertuples():
        for row in data.who_has_access(r.workspace_slug, r.resource_type, r.resource_key, as_of).itertuples():
            from_dashboard[
                (r.workspace_slug, r.resource_type, r.resource_key, row.user_display_name, row.permission)
            ] += 1
    assert from_review == from_evidence == from_dashboard
    assert sum(from_review.values()) > 40  # tiny: 6 repositories and 4 projects, most of them widely held

    # Grant paths: the review file's label string is the evidence's, path for path.
    with (pack.directory / "population.csv").open() as handle:
        evidence_paths = {
            (r["workspace_slug"], r["resource_type"], r["resource_key"], r["user_uuid"]): sorted(
                r["grant_paths"].split("; ")
            )
            for r in csv.DictReader(handle)
        }
    for r in review:
        if r["resource_type"] != "group":
            key = (r["workspace_slug"], r["resource_type"], r["resource_key"], r["user_uuid"])
            assert sorted(r["grant_paths"].split("; ")) == evidence_paths[key]

    # Risks: the evidence pack, the dashboard and the mart list the same ones.
    html = pack.report.read_text()
    metrics = json.loads(
        re.search(r'<script type="application/json" id="metrics">(.*?)</script>', html).group(1)
    )
    register = data.risks(as_of, None)
    dashboard_risks = register[register.is_finding]
    assert metrics["open_risks"] == len(dashboard_risks) == len(latest_risks) > 10
    assert (
        sorted(
            dashboard_risks[["risk", "workspace_slug", "resource_key", "user_uuid"]].itertuples(
                index=False, name=None
            )
        )
        == latest_risks
    )
    # The risks that found nothing are the same "checked: none" rows in the dashboard and the summary mart,
    # and those found nowhere but not checkable everywhere the same "unknown" ones.
    with duckdb.connect(db, read_only=True) as con:
        summary = con.execute("select status, risk from marts.fct_risk_summary order by risk").fetchall()
    checked = [r for (status, r) in summary if status == "checked: none"]
    assert sorted(register[register.status == "checked: none"].risk) == checked
    found = set(register[register.is_finding].risk)
    unknown = sorted(set(register[register.status == "unknown"].risk) - found)
    assert unknown == [r for (status, r) in summary if status == "unknown"]
