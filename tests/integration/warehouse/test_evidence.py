"""The evidence pack: its numbers equal SQL over the marts, its risks name what `tiny` holds."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime, timedelta

import duckdb

from bitbucket_assets.reporting.evidence import build_evidence_pack
from tests.support import ROOT
from tests.support.warehouses import History


def test_leavers_still_holding_access_are_a_risk(tiny_history: History, tmp_path) -> None:
    import shutil

    from bitbucket_assets.provisioning.tables import create_provisioning_tables

    db = str(tmp_path / "copy.duckdb")
    shutil.copy(tiny_history.db, db)
    # Listed by account id (lena, a member; olive, an outside collaborator whose only access is a direct
    # grant) and by uuid (the former user, who has no account id).
    lena, olive = tiny_history.user("lena"), tiny_history.user("olive")
    former = next(u for u in tiny_history.org.users.values() if u.is_former)
    with duckdb.connect(db) as con:
        create_provisioning_tables(con)
        for user_id in (lena.account_id, olive.account_id, former.uuid):
            con.execute("insert into provisioning.leavers values (?, current_date - 10, 'hr')", [user_id])
        pack = build_evidence_pack(
            con, datetime.now(UTC) - timedelta(days=1), datetime.now(UTC), tmp_path / "pack"
        )
    with (pack.directory / "risks.csv").open() as handle:
        leavers = [r for r in csv.DictReader(handle) if r["risk"] == "access still held by a leaver"]
    assert sorted(
        (r["user_display_name"], r["workspace_slug"], r["detail"].split("; ")[1]) for r in leavers
    ) == [
        ("Former user", "tiny-co", "still reaches 1 resource"),
        ("Lena Leaver", "tiny-co", "still reaches 5 resources"),  # the workspace, PAY, three repositories
        ("Olive Outside", "tiny-co", "still reaches 1 resource"),
    ]


def test_evidence_pack_numbers_match_the_marts(tiny_history: History, tmp_path) -> None:
    start, end = datetime.now(UTC) - timedelta(days=1), datetime.now(UTC)
    with duckdb.connect(tiny_history.db, read_only=True) as con:
        pack = build_evidence_pack(con, start, end, tmp_path / "pack")
        population = con.execute("select count(*) from marts.effective_access_as_of(?)", [end]).fetchone()[0]
        changes = con.execute(
            "select change, count(*) from marts.fct_access_changes where changed_at between ? and ? group by "
            "1",
            [start, end],
        ).fetchall()
    html = pack.report.read_text()
    metrics = json.loads(
        re.search(r'<script type="application/json" id="metrics">(.*?)</script>', html).group(1)
    )
    assert metrics["population_rows"] == population
    assert metrics["changes"] == sum(n for _, n in changes) > 0
    assert {k: metrics[k] for k in ("added", "removed", "changed")} == {
        k: dict(changes).get(k, 0) for k in ("added", "removed", "changed")
    }
    assert f'data-metric="population_rows">{population}<' in html
    with (tmp_path / "pack" / "population.csv").open() as handle:
        assert sum(1 for _ in csv.DictReader(handle)) == population
    with (tmp_path / "pack" / "risks.csv").open() as handle:
        risks = {(r["risk"], r["resource_key"], r["user_display_name"]) for r in csv.DictReader(handle)}
    assert ("workspace owner", "tiny-co", "Olga Owner") in risks
    assert ("public repository", "public-docs", "anyone") in risks
    assert ("repository without an admin", "orphan-repo", "") in risks
    assert ("dormant account", "", "Dev Only-Direct") in risks
    # tiny-labs is administered from admin.atlassian.com: no last_accessed, so dormancy is unknown there.
    assert {(k, n) for r, k, n in risks if r == "dormant accounts unknown"} == {("tiny-labs", "")}
    outside = {n for r, _, n in risks if r == "access held outside the workspace membership"}
    assert outside == {"Olive Outside", "Deploy token", "Former user"}
    # Every risk with its severity and guidance (the dbt seed's words), the most severe first; a risk that
    # found nothing says "checked: none" (no leavers are recorded in this warehouse).
    with (tmp_path / "pack" / "risks.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    guide = {}
    for seed in ("risk_guidance.csv", "change_control_risk_guidance.csv"):  # access and change control
        with (ROOT / "dbt_project" / "seeds" / seed).open() as handle:
            guide |= {g["risk"]: g for g in csv.DictReader(handle)}
    assert {r["risk"] for r in rows} == set(guide)
    assert all(
        (r["severity"], r["why_it_matters"])
        == (guide[r["risk"]]["severity"], guide[r["risk"]]["why_it_matters"])
        for r in rows
    )
    order = [{"high": 1, "medium": 2, "low": 3}[r["severity"]] for r in rows]
    assert order == sorted(order)
    [leaver] = [r for r in rows if r["risk"] == "access still held by a leaver"]
    assert (leaver["detail"], leaver["is_finding"], leaver["workspace_slug"]) == (
        "checked: none",
        "False",
        "",
    )
    assert metrics["open_risks"] == sum(1 for r in rows if r["is_finding"] == "True") < len(rows)
    assert guide["public repository"]["what_to_do"] in html
    # Self-contained: charts inline, nothing loaded from the network.
    assert "<svg" in html and not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)


def test_evidence_pack_says_who_can_change_production(tiny_history: History, tmp_path) -> None:
    """Its own section and CSV: every row of fct_change_rights, with how many can change production alone and
    how many are unknown (tiny's projects were not checked for project rules:
    provisioning.project_branch_rules)."""
    end = datetime.now(UTC)
    with duckdb.connect(tiny_history.db, read_only=True) as con:
        pack = build_evidence_pack(con, end - timedelta(days=1), end, tmp_path / "pack")
        rows, alone, unknown = con.execute(
            "select count(*), count(*) filter (where can_change_alone), "
            "count(*) filter (where not rules_fully_readable) from marts.fct_change_rights"
        ).fetchone()
    with (tmp_path / "pack" / "change_control.csv").open() as handle:
        assert sum(1 for _ in csv.DictReader(handle)) == rows > 0
    assert pack.manifest["files"]["change_control.csv"]["rows"] == rows
    html = " ".join(pack.report.read_text().split())
    assert f"{alone} of {rows} can change production alone" in html
    assert f"{unknown} rows are unknown" in html and unknown > 0
